import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu groups --db FILE [ID] [--json]`: group chats, or one group's roster.
struct GroupsCommand: Command {
    static let spec = CommandSpec(
        name: "groups",
        summary: "customer group chats with member counts; with ID, the roster (overflow marked)",
        options: [ReplicaAccess.dbOption, ReplicaAccess.jsonOption],
        arguments: [ArgumentSpec("ID", optional: true, "a group chat id")])

    var path: String
    var id: String?
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        id = arguments.positional(0)
        json = arguments.flag("json")
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        var data = try ReplicaData(replica)
        var groups = try ReplicaAccess.perform("reading group chats", path: path) { try data.groupChats() }
        let out = context.io.output
        if let id {
            groups = groups.filter { $0.id.utf8.elementsEqual(id.utf8) }
            guard let g = groups.first else {
                throw CLIError("group chat '\(id)' not found in \(path)", hint: "list group chats with: siyu groups --db FILE")
            }
            if json { try JSONOutput.write(g, to: out); return .success }
            out.line("group chat \(Render.text(g.id)): \(Render.text(g.name ?? ""))")
            out.line("  owner \(Render.text(g.owner ?? "—")), \(g.memberCount) of \(g.capacity) members"
                     + (g.overflowCount > 0 ? ", \(g.overflowCount) over capacity (see siyu conflicts)" : ""))
            if let notice = g.notice { out.line("  notice: \(Render.text(notice))") }
            out.line("")
            out.line(g.members.isEmpty ? "  (no members)" : Render.table(["member", "type", "joined", "scene", "invitor", "nickname", ""], g.members.map { m in
                [Render.text(m.memberId), m.memberType == 1 ? "staff" : m.memberType == 2 ? "customer" : "",
                 m.joinTime.map { Render.date(unixSeconds: $0) } ?? "", m.joinScene.map { "\($0)" } ?? "",
                 Render.text(m.invitor ?? ""), Render.text(m.nickname ?? ""), m.overflow ? "OVERFLOW" : ""]
            }))
            return .success
        }
        if json { try JSONOutput.write(groups, to: out); return .success }
        if groups.isEmpty { out.line("(no group chats)"); return .success }
        out.line(Render.table(["id", "name", "owner", "members", "overflow"], groups.map { g in
            [Render.text(g.id), Render.text(g.name ?? ""), Render.text(g.owner ?? ""), "\(g.memberCount)/\(g.capacity)",
             g.members.filter(\.overflow).map { Render.text($0.memberId) }.joined(separator: ",")]
        }))
        return .success
    }
}
