import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu rebuild --db FILE`: recompute every table and the conflict log from the op log.
struct RebuildCommand: Command {
    static let spec = CommandSpec(
        name: "rebuild",
        summary: "recompute every table and the conflict log from the op log (repairs hand-edited tables)",
        options: [ReplicaAccess.dbOption])

    var path: String

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForWriting(path, context: context)
        defer { replica.close() }
        let (before, after) = try ReplicaAccess.perform("rebuilding \(path)", path: path) { () throws -> (String, String) in
            let before = try replica.digest().hexString
            try replica.rebuild()
            return (before, try replica.digest().hexString)
        }
        context.io.output.line(before == after ? "rebuilt; digest unchanged \(after)"
                               : "rebuilt; digest was \(before), now \(after) (the tables had drifted from the op log)")
        return .success
    }
}
