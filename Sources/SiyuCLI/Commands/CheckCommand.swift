import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu check --db FILE [--json]`: what is wrong with a replica file, found without writing.
struct CheckCommand: Command {
    static let spec = CommandSpec(
        name: "check",
        summary: "say what is wrong with a replica file (missing or altered tables and indexes, damaged pages) without writing",
        options: [ReplicaAccess.dbOption, ReplicaAccess.jsonOption],
        discussion: "Exit 0 when the file is sound, 1 when something is wrong (each problem on a line, and the command that repairs it).")

    var path: String
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        json = arguments.flag("json")
    }

    /// What `--json` prints: `ok`, `problems` (repairable by siyu rebuild), `beyond_repair`, `hint`.
    struct Report: Encodable {
        var ok: Bool
        var problems: [String]
        var beyondRepair: [String]
        var hint: String?
    }

    func run(in context: CLIContext) throws -> ExitCode {
        _ = try ReplicaAccess.inspect(path)
        let damage = try ReplicaAccess.perform("checking \(path)", path: path) { try Replica.check(path: path) }
        let hint: String? = damage.isHealthy ? nil
            : damage.beyondRepair.isEmpty ? "repair it from its op log: siyu rebuild --db \(path)"
            : "restore it from a backup; a node's replica can also be made again (moved aside, siyu-node init) and synced"
        if json {
            try JSONOutput.write(Report(ok: damage.isHealthy, problems: damage.problems, beyondRepair: damage.beyondRepair, hint: hint),
                                 to: context.io.output)
            return damage.isHealthy ? .success : .failure
        }
        if damage.isHealthy {
            context.io.output.line("\(Render.text(path)): ok (every table and index as the layout defines it; SQLite's check passes)")
            return .success
        }
        for p in damage.problems { context.io.output.line("\(Render.text(path)): \(Render.text(p))") }
        for p in damage.beyondRepair { context.io.output.line("\(Render.text(path)): \(Render.text(p)) (beyond repair)") }
        context.io.error.line("siyu: \(Render.text(path)) is damaged (\(Render.count(damage.problems.count + damage.beyondRepair.count, "problem")))")
        context.io.error.line("hint: \(Render.text(hint ?? ""))")
        return .failure
    }
}
