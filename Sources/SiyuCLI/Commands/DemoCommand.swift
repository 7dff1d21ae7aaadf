import SiyuCommandLine

/// `siyu demo [--keep DIR]`: the README's main job (see `Demo`).
struct DemoCommand: Command {
    static let spec = CommandSpec(
        name: "demo",
        summary: "a hub and three nodes (HQ, two stores) as processes on loopback: offline edits, conflicts, convergence",
        options: [.value("keep", "DIR", "keep the hub's file, the replica files (hq.db, xihu.db, jingan.db) and the daemons' logs in DIR; existing files are never overwritten")])

    var keep: String?

    init(parsing arguments: ParsedArguments) throws {
        keep = arguments.value("keep")
    }

    func run(in context: CLIContext) throws -> ExitCode {
        try Demo(keep: keep, output: context.io.output).run() == 0 ? .success : .failure
    }
}
