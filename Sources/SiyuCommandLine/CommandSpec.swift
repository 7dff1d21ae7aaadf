/// One option a command declares: `--name` (and optionally `-x`), with how many values it takes.
///
/// Guarantees: an option is recognised only by the exact spelling declared here; a flag never
/// takes a value, a single-value option takes exactly one, a repeatable option one per use.
public struct OptionSpec: Sendable, Equatable {
    /// How many values an option takes.
    public enum Arity: Sendable, Equatable {
        /// No value: present or absent (`--json`).
        case flag
        /// Exactly one value, given at most once (`--db FILE`).
        case single
        /// One value per use, any number of uses (`--tag T --tag U`).
        case repeatable
    }

    /// The long name without dashes: `db` for `--db`.
    public let name: String
    /// The one-letter name without the dash, if any: `h` for `-h`.
    public let shortName: Character?
    public let arity: Arity
    /// What the value is, in usage text (`FILE`); empty for flags.
    public let placeholder: String
    /// Whether the command refuses to run without it.
    public let isRequired: Bool
    /// One line for the command's help.
    public let summary: String

    public init(name: String, shortName: Character? = nil, arity: Arity, placeholder: String = "",
                isRequired: Bool = false, summary: String) {
        self.name = name
        self.shortName = shortName
        self.arity = arity
        self.placeholder = placeholder
        self.isRequired = isRequired
        self.summary = summary
    }

    /// A flag: `--name`.
    public static func flag(_ name: String, short: Character? = nil, _ summary: String) -> OptionSpec {
        OptionSpec(name: name, shortName: short, arity: .flag, summary: summary)
    }

    /// An option with one value: `--name VALUE`, at most once.
    public static func value(_ name: String, _ placeholder: String, required: Bool = false, _ summary: String) -> OptionSpec {
        OptionSpec(name: name, arity: .single, placeholder: placeholder, isRequired: required, summary: summary)
    }

    /// An option that may be given several times, one value each.
    public static func repeatable(_ name: String, _ placeholder: String, _ summary: String) -> OptionSpec {
        OptionSpec(name: name, arity: .repeatable, placeholder: placeholder, summary: summary)
    }

    /// `--db FILE`, `--json`.
    public var spelling: String { arity == .flag ? "--\(name)" : "--\(name) \(placeholder)" }
}

/// One positional argument a command declares.
public struct ArgumentSpec: Sendable, Equatable {
    /// The placeholder in usage text: `ID`.
    public let name: String
    public let isOptional: Bool
    /// Whether it takes every remaining positional argument (only the last argument may).
    public let isVariadic: Bool
    public let summary: String

    public init(_ name: String, optional: Bool = false, variadic: Bool = false, _ summary: String) {
        self.name = name
        self.isOptional = optional
        self.isVariadic = variadic
        self.summary = summary
    }
}

/// What a command accepts: its options, its positional arguments, and the text of its help.
///
/// Guarantees: `--help` and `-h` are accepted by every command without being declared; the usage
/// text lists exactly the options and arguments the parser accepts.
public struct CommandSpec: Sendable {
    /// The command word: `status`.
    public let name: String
    /// One line: what the command does.
    public let summary: String
    public let options: [OptionSpec]
    public let arguments: [ArgumentSpec]
    /// Further paragraphs for `--help` (may be empty).
    public let discussion: String

    public init(name: String, summary: String, options: [OptionSpec] = [], arguments: [ArgumentSpec] = [],
                discussion: String = "") {
        self.name = name
        self.summary = summary
        self.options = options
        self.arguments = arguments
        self.discussion = discussion
    }

    /// The option declared as `--name`.
    public func option(named name: String) -> OptionSpec? { options.first { $0.name == name } }

    /// The option declared as `-c`.
    public func option(short c: Character) -> OptionSpec? { options.first { $0.shortName == c } }

    /// How many positional arguments the command needs at least.
    public var minimumArgumentCount: Int { arguments.filter { !$0.isOptional && !$0.isVariadic }.count }

    /// How many positional arguments it takes at most (nil: no limit).
    public var maximumArgumentCount: Int? { arguments.contains { $0.isVariadic } ? nil : arguments.count }

    /// `--db FILE [--json] ID [SUB]`: the command's arguments on one line.
    public var synopsis: String {
        var parts: [String] = []
        for o in options {
            switch o.arity {
            case .flag: parts.append("[\(o.spelling)]")
            case .single: parts.append(o.isRequired ? o.spelling : "[\(o.spelling)]")
            case .repeatable: parts.append("[\(o.spelling)]…")
            }
        }
        for a in arguments {
            var s = a.name
            if a.isVariadic { s += "…" }
            parts.append(a.isOptional || a.isVariadic ? "[\(s)]" : s)
        }
        return parts.joined(separator: " ")
    }

    /// The full help text: usage line, summary, arguments, options and discussion.
    public func usage(program: String) -> String {
        var out = "usage: \(program) \(name)\(synopsis.isEmpty ? "" : " " + synopsis)\n\n\(summary)\n"
        var rows: [(String, String)] = arguments.map { ($0.name, $0.summary) }
        if !rows.isEmpty {
            out += "\narguments:\n" + CommandSpec.columns(rows)
        }
        rows = options.map { o in
            let short = o.shortName.map { "-\($0), " } ?? ""
            return (short + o.spelling, o.summary + (o.isRequired ? " (required)" : "") + (o.arity == .repeatable ? " (repeatable)" : ""))
        }
        rows.append(("-h, --help", "show this help"))
        out += "\noptions:\n" + CommandSpec.columns(rows)
        if !discussion.isEmpty { out += "\n" + discussion + (discussion.hasSuffix("\n") ? "" : "\n") }
        return out
    }

    /// Two columns, the first padded to its widest entry.
    static func columns(_ rows: [(String, String)]) -> String {
        let width = min(28, rows.map(\.0.count).max() ?? 0)
        return rows.map { left, right in
            let pad = left.count < width ? String(repeating: " ", count: width - left.count) : ""
            return left.count > width ? "  \(left)\n  \(String(repeating: " ", count: width))  \(right)\n" : "  \(left)\(pad)  \(right)\n"
        }.joined()
    }
}
