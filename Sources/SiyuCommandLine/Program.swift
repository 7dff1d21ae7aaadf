/// What every command of a program gets when it runs: at least the streams to write to.
public protocol CommandContext {
    var io: CommandIO { get }
}

/// One subcommand: its declared arguments, and how it runs.
///
/// A command is built from arguments the parser has already checked against `spec`; its
/// initializer converts them to typed values (and may refuse them with
/// `CommandLineError.usage`), and `run` does the work, writing only to the context's streams.
public protocol Command<Context> {
    associatedtype Context: CommandContext
    static var spec: CommandSpec { get }
    init(parsing arguments: ParsedArguments) throws
    func run(in context: Context) throws -> ExitCode
}

/// A program with subcommands (`siyu status …`): dispatch, help, usage errors and failures.
///
/// Guarantees:
/// - `--help`/`-h` on any command, `help COMMAND` and `NAME --help` print usage to the output
///   stream and exit 0;
/// - wrong usage prints `NAME COMMAND: message`, a `hint:` line when there is one, and the
///   command's usage to the error stream, and exits 2; nothing runs;
/// - a failure prints `NAME: message` and `hint: …` to the error stream and exits 1 (both
///   escaped with `TerminalText.escaped`, so data quoted in them cannot reach the terminal raw);
/// - no input traps: every error a command throws ends as one of the above.
public struct CommandLineProgram<Context: CommandContext> {
    public let name: String
    public let summary: String
    public let commands: [any Command<Context>.Type]
    /// Text after the command list in the program's usage (exit codes, examples).
    public let footer: String
    /// Turns an error a command threw into a message and hint; nil for errors it does not know
    /// (they are reported as internal errors).
    public let describeFailure: (Error) -> ActionableError?
    /// What `NAME --version` prints after the name (empty: the program has no version to say).
    public let version: String

    public init(name: String, summary: String, commands: [any Command<Context>.Type], footer: String = "", version: String = "",
                describeFailure: @escaping (Error) -> ActionableError? = { $0 as? ActionableError }) {
        self.name = name
        self.version = version
        self.summary = summary
        self.commands = commands
        self.footer = footer
        self.describeFailure = describeFailure
    }

    /// The command whose word is `word`.
    public func command(named word: String) -> (any Command<Context>.Type)? {
        commands.first { $0.spec.name == word }
    }

    /// Every command word, `help` included.
    public var commandNames: [String] { commands.map { $0.spec.name } + ["help"] }

    /// The program's usage: every command with its synopsis and summary.
    public var usage: String {
        var out = "usage: \(name) <command> [options]\(version.isEmpty ? "" : ", or \(name) --version")\n\n\(summary)\n\ncommands:\n"
        out += CommandSpec.columns(commands.map { ($0.spec.name, $0.spec.summary) } + [("help [COMMAND]", "this text, or a command's help")])
        out += "\nRun '\(name) COMMAND --help' for a command's options.\n"
        if !footer.isEmpty { out += footer + (footer.hasSuffix("\n") ? "" : "\n") }
        return out
    }

    /// Runs the command `arguments` name (the words after the program name); returns the exit code.
    public func run(_ arguments: [String], in context: Context) -> Int32 {
        let io = context.io
        defer { io.output.flush(); io.error.flush() }
        guard let word = arguments.first else {
            io.error.write("\(name): no command given\n\n" + usage)
            return ExitCode.usage.rawValue
        }
        let rest = Array(arguments.dropFirst())
        if word == "--help" || word == "-h" || word == "help" {
            return help(rest, io: io)
        }
        if word == "--version", !version.isEmpty {
            guard rest.isEmpty else {
                io.error.write("\(name): --version takes nothing after it\n")
                return ExitCode.usage.rawValue
            }
            io.output.write("\(name) \(version)\n")
            return ExitCode.success.rawValue
        }
        guard let type = command(named: word) else {
            var hint = "commands: " + commandNames.joined(separator: ", ")
            if word.hasPrefix("-") {
                hint = "options come after the command, as in '\(name) status --db FILE'; " + hint
            } else if let near = commandNames.min(by: { ArgumentParser.editDistance($0, word) < ArgumentParser.editDistance($1, word) }),
                      ArgumentParser.editDistance(near, word) <= max(1, near.count / 3) {
                hint = "did you mean '\(near)'? " + hint
            }
            io.error.write("\(name): unknown command '\(TerminalText.escaped(word))'\nhint: \(hint)\n\nRun '\(name) help' for the list of commands.\n")
            return ExitCode.usage.rawValue
        }
        return run(type, rest, io: io, context: context)
    }

    private func run<C: Command<Context>>(_ type: C.Type, _ arguments: [String], io: CommandIO, context: Context) -> Int32 {
        let usageText = type.spec.usage(program: name)
        do {
            let parsed = try ArgumentParser.parse(arguments, for: type.spec)
            let command = try type.init(parsing: parsed)
            return try command.run(in: context).rawValue
        } catch CommandLineError.helpRequested {
            io.output.write(usageText)
            return ExitCode.success.rawValue
        } catch let CommandLineError.usage(message, hint) {
            io.error.write("\(name) \(type.spec.name): \(message)\n" + (hint.map { "hint: \($0)\n" } ?? "") + "\n" + usageText)
            return ExitCode.usage.rawValue
        } catch {
            if let described = describeFailure(error) {
                io.error.write("\(name): \(TerminalText.escaped(described.message))\nhint: \(TerminalText.escaped(described.hint))\n")
            } else {
                io.error.write("\(name): internal error: \(TerminalText.escaped(String(describing: error)))\n"
                               + "hint: this is a bug in \(name); report it with the command you ran\n")
            }
            return ExitCode.failure.rawValue
        }
    }

    private func help(_ arguments: [String], io: CommandIO) -> Int32 {
        guard let word = arguments.first else {
            io.output.write(usage)
            return ExitCode.success.rawValue
        }
        guard arguments.count == 1, let type = command(named: word) else {
            io.error.write("\(name) help: \(arguments.count == 1 ? "unknown command '\(TerminalText.escaped(word))'" : "give one command")\n"
                           + "hint: commands: \(commandNames.joined(separator: ", "))\n")
            return ExitCode.usage.rawValue
        }
        io.output.write(type.spec.usage(program: name))
        return ExitCode.success.rawValue
    }

    /// Checks a command line quoted in a hint or document (the words after the program name,
    /// placeholders allowed as values): nil when the program would accept its shape (the command
    /// exists, every option is declared and takes a value exactly when given one, the number of
    /// arguments fits), or what is wrong. Required options may be left out.
    public func problem(withMention words: [String]) -> String? {
        guard let word = words.first else { return "no command" }
        if word == "help" {
            return words.count <= 2 && (words.count == 1 || command(named: words[1]) != nil) ? nil : "help takes one known command"
        }
        guard let type = command(named: word) else { return "no command '\(word)'" }
        var lenient = type.spec.options.map { o in
            OptionSpec(name: o.name, shortName: o.shortName, arity: o.arity, placeholder: o.placeholder, summary: o.summary)
        }
        lenient.append(.flag("help", short: "h", ""))
        let spec = CommandSpec(name: type.spec.name, summary: "", options: lenient,
                               arguments: type.spec.arguments.map { ArgumentSpec($0.name, optional: true, variadic: $0.isVariadic, $0.summary) })
        do {
            _ = try ArgumentParser.parse(Array(words.dropFirst()).filter { $0 != "--help" && $0 != "-h" }, for: spec)
            return nil
        } catch let error as CommandLineError {
            return error.description
        } catch {
            return String(describing: error)
        }
    }
}
