/// The error type of the command-line layer: the words given do not make a valid command.
///
/// A program answers `usage` with the message, the hint and the command's usage on standard
/// error and exit code 2, and `helpRequested` with the usage on standard output and exit code 0.
public enum CommandLineError: Error, Equatable, CustomStringConvertible {
    /// The arguments are wrong: what was wrong, and what to do instead (if there is more to say).
    case usage(String, hint: String?)
    /// `--help` or `-h` was given.
    case helpRequested

    public var description: String {
        switch self {
        case let .usage(message, hint): return message + (hint.map { " (hint: \($0))" } ?? "")
        case .helpRequested: return "help requested"
        }
    }
}

/// A failure a person can act on: a one-line message and a hint saying what to do next.
/// Programs print it as `NAME: message` and `hint: hint` on standard error and exit with 1.
public protocol ActionableError: Error {
    /// What went wrong, on one line.
    var message: String { get }
    /// What to do about it, on one line.
    var hint: String { get }
}

/// A program's exit status.
public enum ExitCode: Int32, Sendable {
    /// Done.
    case success = 0
    /// The command ran and failed (message and hint on standard error).
    case failure = 1
    /// The command was given wrong arguments (message and usage on standard error).
    case usage = 2
}
