import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu rebuild --db FILE`: repair missing or altered tables and indexes, then recompute every
/// table and the conflict log from the op log.
struct RebuildCommand: Command {
    static let spec = CommandSpec(
        name: "rebuild",
        summary: "repair a replica from its op log: recreate missing or damaged tables and indexes, recompute every table and the conflict log",
        options: [ReplicaAccess.dbOption],
        discussion: """
        Safe to run on a healthy replica (the digest stays the same) and while no other process writes the file.
        To see what is wrong without writing: siyu check --db FILE.
        The op log, a hub's log and its node registry
        cannot be recomputed: if they are gone the file is beyond repair (restore it from a backup).
        """)

    var path: String

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
    }

    func run(in context: CLIContext) throws -> ExitCode {
        _ = try ReplicaAccess.openForWriting(path, context: context, opening: false)
        let before = try ReplicaAccess.perform("repairing \(path)", path: path) { try Replica.repair(path: path) }
        let out = context.io.output
        for problem in before.problems { out.line("repaired: \(Render.text(problem))") }
        let after = try ReplicaAccess.perform("checking \(path) after the repair", path: path) { try Replica.check(path: path) }
        guard after.isHealthy else {
            throw CLIError("\(path) is still damaged after the repair: \((after.problems + after.beyondRepair).joined(separator: "; "))",
                           hint: "restore it from a backup; a node's replica can also be made again (moved aside, siyu-node init) and synced")
        }
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        let digest = try ReplicaAccess.perform("computing the digest", path: path) { try replica.digest().hexString }
        out.line("rebuilt \(Render.text(path)) from its op log\(before.problems.isEmpty ? " (nothing was damaged)" : ""); digest \(digest)")
        return .success
    }
}
