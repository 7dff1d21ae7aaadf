import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu tags --db FILE [--json]`: the tag library by group.
struct TagsCommand: Command {
    static let spec = CommandSpec(
        name: "tags",
        summary: "the tag library: groups (exclusive or not) and their tags, with how many customers show each",
        options: [ReplicaAccess.dbOption, ReplicaAccess.jsonOption])

    var path: String
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        json = arguments.flag("json")
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        var data = try ReplicaData(replica)
        let groups = try ReplicaAccess.perform("reading tags", path: path) { try data.tagLibrary() }
        if json {
            try JSONOutput.write(groups, to: context.io.output)
            return .success
        }
        if groups.isEmpty {
            context.io.output.line("(no tags; HQ defines the tag library)")
            return .success
        }
        var rows: [[String]] = []
        for g in groups {
            let notes = [g.exclusive ? "exclusive" : "multi", g.deleted ? "deleted" : nil].compactMap { $0 }.joined(separator: ", ")
            let groupCell = "\(Render.text(g.name ?? "?")) (\(Render.text(g.id)))"
            if g.tags.isEmpty { rows.append([groupCell, notes, "", "", "", ""]) }
            for (i, t) in g.tags.enumerated() {
                rows.append([i == 0 ? groupCell : "", i == 0 ? notes : "", Render.text(t.id), Render.text(t.name ?? ""),
                             "\(t.customers)", t.deleted ? "deleted" : ""])
            }
        }
        context.io.output.line(Render.table(["group", "kind", "tag", "name", "customers", "state"], rows))
        return .success
    }
}
