import Foundation
import SiyuCommandLine

/// What every `siyu` command runs with: its output streams and the wall clock its edits use.
public struct CLIContext: CommandContext {
    public var io: CommandIO
    /// Wall time in milliseconds since the Unix epoch, for the ops a command writes (tests inject
    /// a fixed clock so output is stable).
    public var wallClock: () -> UInt64

    public init(io: CommandIO = .standard,
                wallClock: @escaping () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }) {
        self.io = io
        self.wallClock = wallClock
    }
}

/// The `siyu` command line: every command, in the order `siyu help` lists them.
///
/// Guarantees (from `CommandLineProgram`): usage errors exit 2 with the command's usage on
/// standard error, failures exit 1 with a one-line message and a `hint:` line, `--help` works on
/// every command; every command writes only to the context's streams.
public enum SiyuProgram {
    public static let commands: [any Command<CLIContext>.Type] = [
        DemoCommand.self,
        InitCommand.self,
        StatusCommand.self,
        ShowCommand.self,
        CustomersCommand.self,
        TagsCommand.self,
        GroupsCommand.self,
        OrdersCommand.self,
        ConflictsCommand.self,
        AckCommand.self,
        OverrideCommand.self,
        HistoryCommand.self,
        CustomerCommand.self,
        TagCommand.self,
        GroupCommand.self,
        OrderCommand.self,
        PointsCommand.self,
        RebuildCommand.self,
        CheckCommand.self,
        WeComCommand.self,
        ExportChangesCommand.self,
        ImportChangesCommand.self,
        MergeCommand.self,
        SyncCommand.self,
        VerifyCommand.self,
    ]

    public static let program = CommandLineProgram<CLIContext>(
        name: "siyu",
        summary: "Siyu: a local-first sync store for WeCom retail data. Inspect and steer a replica file.",
        commands: commands,
        footer: """
        Output is text for people; --json gives JSON for scripts (see docs/CLI.md for the fields).
        Exit codes: 0 ok, 1 failure (message and hint on stderr), 2 usage error.
        """,
        version: SiyuVersion.line,
        describeFailure: { CLIError.from($0) })

    /// Runs `siyu` with `arguments` (the words after the program name); returns the exit code.
    public static func main(_ arguments: [String], context: CLIContext = CLIContext()) -> Int32 {
        program.run(arguments, in: context)
    }
}
