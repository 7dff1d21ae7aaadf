/// The arguments of one command, checked against its `CommandSpec`.
///
/// Guarantees: every option held was declared; a single-value option appears at most once; a
/// flag has no value; the number of positional arguments is within what the spec allows; every
/// required option is present. Values are strings until a typed accessor converts them, which
/// refuses a malformed value with a usage error naming the option.
public struct ParsedArguments: Sendable, Equatable {
    /// The command word the arguments belong to.
    public let command: String
    /// Flags given, by long name.
    public private(set) var flags: Set<String> = []
    /// Values given, by long name, in the order given.
    public private(set) var values: [String: [String]] = [:]
    /// Positional arguments, in order (everything after `--` included).
    public private(set) var positionals: [String] = []

    public init(command: String, flags: Set<String> = [], values: [String: [String]] = [:], positionals: [String] = []) {
        self.command = command
        self.flags = flags
        self.values = values
        self.positionals = positionals
    }

    /// Whether the flag `--name` was given.
    public func flag(_ name: String) -> Bool { flags.contains(name) }

    /// The value of the single-value option `--name`, if given.
    public func value(_ name: String) -> String? { values[name]?.last }

    /// Every value of the repeatable option `--name`, in the order given.
    public func allValues(_ name: String) -> [String] { values[name] ?? [] }

    /// The positional argument at `index`, if given.
    public func positional(_ index: Int) -> String? { index >= 0 && index < positionals.count ? positionals[index] : nil }

    /// The value of `--name` converted to `T`, or nil when the option was not given.
    /// - Throws: `CommandLineError.usage` when the value does not convert.
    public func value<T: ArgumentConvertible>(_ name: String, as type: T.Type) throws -> T? {
        guard let raw = value(name) else { return nil }
        guard let converted = T(argument: raw) else {
            throw CommandLineError.usage("--\(name) must be \(T.argumentExpectation); got '\(TerminalText.escaped(raw))'",
                                         hint: nil)
        }
        return converted
    }

    /// The value of a required option (the parser already refused its absence).
    public func required(_ name: String) throws -> String {
        guard let v = value(name) else { throw CommandLineError.usage("--\(name) is required", hint: nil) }
        return v
    }
}

/// A type an argument string converts to, with what a valid argument looks like for errors.
public protocol ArgumentConvertible {
    init?(argument: String)
    /// How a valid value is described in an error: "an integer", "one of open, closed".
    static var argumentExpectation: String { get }
}

extension String: ArgumentConvertible {
    public init?(argument: String) { self = argument }
    public static var argumentExpectation: String { "text" }
}

extension Int: ArgumentConvertible {
    public init?(argument: String) { self.init(argument, radix: 10) }
    public static var argumentExpectation: String { "an integer" }
}

extension Int64: ArgumentConvertible {
    public init?(argument: String) { self.init(argument, radix: 10) }
    public static var argumentExpectation: String { "an integer" }
}

extension Bool: ArgumentConvertible {
    public init?(argument: String) {
        switch argument.lowercased() {
        case "true", "yes", "1": self = true
        case "false", "no", "0": self = false
        default: return nil
        }
    }
    public static var argumentExpectation: String { "true or false" }
}

/// Enumerations with string raw values convert from their raw value.
extension ArgumentConvertible where Self: RawRepresentable, Self.RawValue == String, Self: CaseIterable {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var argumentExpectation: String { "one of " + allCases.map(\.rawValue).joined(separator: ", ") }
}

/// The strict parser shared by the Siyu executables.
///
/// Rules: `--name value` and `--name=value`; `-x` only for declared short names; `--` ends the
/// options (everything after it is positional); an argument starting with `-` before `--` is an
/// option and must be declared; a value is never taken from a word that is itself an option
/// (`--db --json` is refused; write `--db=--json`); empty values are refused; `--help` / `-h`
/// anywhere before `--` asks for help, even when other arguments are wrong.
public enum ArgumentParser {
    /// Parses `arguments` (the words after the command name) against `spec`.
    /// - Throws: `CommandLineError.helpRequested`, or `CommandLineError.usage` naming what was wrong.
    public static func parse(_ arguments: [String], for spec: CommandSpec) throws -> ParsedArguments {
        do {
            return try parseStrictly(arguments, for: spec)
        } catch let error as CommandLineError {
            if asksForHelp(arguments) { throw CommandLineError.helpRequested }
            throw error
        }
    }

    /// Whether `--help` or `-h` is among the words before `--`.
    static func asksForHelp(_ arguments: [String]) -> Bool {
        for a in arguments {
            if a == "--" { return false }
            if a == "--help" || a == "-h" { return true }
        }
        return false
    }

    private static func parseStrictly(_ arguments: [String], for spec: CommandSpec) throws -> ParsedArguments {
        var result = ParsedArguments(command: spec.name)
        var flags: Set<String> = []
        var values: [String: [String]] = [:]
        var positionals: [String] = []
        var index = 0
        var helpAsked = false
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if word == "--" {
                positionals.append(contentsOf: arguments[index...])
                break
            }
            if word == "--help" || word == "-h" { helpAsked = true; continue }
            guard word.hasPrefix("-"), word != "-" else { positionals.append(word); continue }

            let option: OptionSpec
            var inlineValue: String?
            if word.hasPrefix("--") {
                let body = word.dropFirst(2)
                let name: Substring
                if let eq = body.firstIndex(of: "=") {
                    name = body[..<eq]
                    inlineValue = String(body[body.index(after: eq)...])
                } else {
                    name = body
                }
                guard let found = spec.option(named: String(name)) else {
                    throw unknownOption("--" + String(name), in: spec)
                }
                option = found
            } else {
                let letters = word.dropFirst()
                guard letters.count == 1, let found = spec.option(short: letters.first!) else {
                    throw unknownOption(word, in: spec)
                }
                option = found
            }

            switch option.arity {
            case .flag:
                if inlineValue != nil {
                    throw CommandLineError.usage("--\(option.name) takes no value", hint: "write just --\(option.name)")
                }
                if flags.contains(option.name) {
                    throw CommandLineError.usage("--\(option.name) is given twice", hint: "give it once")
                }
                flags.insert(option.name)
            case .single, .repeatable:
                let value: String
                if let inlineValue {
                    value = inlineValue
                } else {
                    guard index < arguments.count else {
                        throw CommandLineError.usage("--\(option.name) needs a value (\(option.placeholder))",
                                                     hint: "write --\(option.name) \(option.placeholder)")
                    }
                    let next = arguments[index]
                    if next.hasPrefix("--") || (next.hasPrefix("-") && next.count == 2 && next.last?.isLetter == true) {
                        throw CommandLineError.usage(
                            "--\(option.name) needs a value (\(option.placeholder)), but the next word is the option \(TerminalText.escaped(next))",
                            hint: "to pass a value that starts with a dash, write --\(option.name)=VALUE")
                    }
                    value = next
                    index += 1
                }
                if value.isEmpty {
                    throw CommandLineError.usage("--\(option.name) needs a non-empty value (\(option.placeholder))", hint: nil)
                }
                if option.arity == .single && values[option.name] != nil {
                    throw CommandLineError.usage("--\(option.name) is given twice",
                                                 hint: "give --\(option.name) once")
                }
                values[option.name, default: []].append(value)
            }
        }
        if helpAsked { throw CommandLineError.helpRequested }

        if positionals.count < spec.minimumArgumentCount {
            let missing = spec.arguments.filter { !$0.isOptional && !$0.isVariadic }[positionals.count]
            throw CommandLineError.usage("missing \(missing.name) (\(missing.summary))", hint: nil)
        }
        if let max = spec.maximumArgumentCount, positionals.count > max {
            let extra = positionals[max]
            let what = max == 0 ? "\(spec.name) takes no arguments" : "\(spec.name) takes at most \(max) argument\(max == 1 ? "" : "s")"
            throw CommandLineError.usage("unexpected argument '\(TerminalText.escaped(extra))': \(what)",
                                         hint: extra.hasPrefix("-") ? nil : hintForStrayWord(extra, in: spec))
        }
        for o in spec.options where o.isRequired && values[o.name] == nil {
            throw CommandLineError.usage("\(o.spelling) is required", hint: "give \(o.spelling)")
        }
        result = ParsedArguments(command: spec.name, flags: flags, values: values, positionals: positionals)
        return result
    }

    private static func hintForStrayWord(_ word: String, in spec: CommandSpec) -> String? {
        if let o = spec.option(named: word) { return "did you mean --\(o.name)?" }
        return nil
    }

    private static func unknownOption(_ spelled: String, in spec: CommandSpec) -> CommandLineError {
        let name = spelled.drop { $0 == "-" }
        var hint = spec.options.isEmpty
            ? "\(spec.name) takes no options"
            : "options of \(spec.name): " + spec.options.map(\.spelling).joined(separator: ", ")
        if let near = spec.options.map(\.name).min(by: { editDistance($0, name) < editDistance($1, name) }),
           editDistance(near, name) <= max(1, near.count / 3) {
            hint = "did you mean --\(near)? " + hint
        }
        if spelled.dropFirst().first?.isNumber == true {
            hint += "; to pass \(TerminalText.escaped(spelled)) as an argument, put it after --"
        }
        return CommandLineError.usage("unknown option '\(TerminalText.escaped(spelled))'", hint: hint)
    }

    /// Levenshtein distance, for "did you mean" hints.
    static func editDistance<A: StringProtocol, B: StringProtocol>(_ a: A, _ b: B) -> Int {
        let a = Array(a.prefix(64)), b = Array(b.prefix(64))
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
