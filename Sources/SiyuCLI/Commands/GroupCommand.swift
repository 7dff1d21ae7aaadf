import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu group create --db FILE GROUP --name N [--owner U] [--capacity N]` and
/// `siyu group add-member|remove-member --db FILE GROUP MEMBER`: customer groups and their rosters.
struct GroupCommand: Command {
    static let spec = CommandSpec(
        name: "group",
        summary: "create a customer group, add a member to one or remove one (create, add-member, remove-member)",
        options: [
            ReplicaAccess.dbOption,
            .value("name", "NAME", "create: the group's name (required)"),
            .value("owner", "USERID", "create: the staff member who owns the group"),
            .value("capacity", "N", "create: at most how many members (1–500, default 500)"),
            .value("type", "T", "add-member: 1 staff member, 2 customer (WeCom's member_type)"),
            .value("nickname", "NAME", "add-member: the member's nickname in the group"),
            EditRun.byOption,
            ReplicaAccess.jsonOption,
        ],
        arguments: [ArgumentSpec("ACTION", "create, add-member or remove-member"), ArgumentSpec("GROUP", "the group's chat id"),
                    ArgumentSpec("MEMBER", optional: true, "add-member/remove-member: the member's userid or external_userid")],
        discussion: """
        A full group refuses a member (WeCom groups hold at most 500); concurrent joins past the capacity on two nodes
        show as a conflict. The groups and their rosters: siyu groups --db FILE [GROUP].
        """)

    enum Action: String { case create, addMember = "add-member", removeMember = "remove-member" }

    var run: EditRun
    var action: Action
    var chat: String
    var member: String
    var fields: [String: Value]

    init(parsing arguments: ParsedArguments) throws {
        run = try EditRun(arguments)
        action = Action(rawValue: try EditRun.action(arguments, of: "group", ["create", "add-member", "remove-member"]))!
        let memberOptions = ["type", "nickname"], groupOptions = ["name", "owner", "capacity"]
        if action == .create {
            chat = try EditRun.operands(arguments, "create", of: "group", ["GROUP"])[0]
            member = ""
            try EditRun.refuse(arguments, memberOptions, for: "create", of: "group")
            fields = try EditRun.fields(arguments, [("name", "name"), ("owner", "owner"), ("capacity", "capacity")], of: .groupChat)
            if arguments.value("name") == nil {
                throw CommandLineError.usage("group create needs --name", hint: "siyu group create --db FILE GROUP --name NAME (also --owner USERID, --capacity N)")
            }
            return
        }
        let operands = try EditRun.operands(arguments, action.rawValue, of: "group", ["GROUP", "MEMBER"])
        chat = operands[0]
        member = operands[1]
        try EditRun.refuse(arguments, groupOptions, for: action.rawValue, of: "group")
        fields = try EditRun.fields(arguments, [("type", "member_type"), ("nickname", "nickname")], of: .groupMember)
        if action == .removeMember { try EditRun.refuse(arguments, memberOptions, for: "remove-member", of: "group") }
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let target = Target(.groupMember, chat, member)
        let r = Render.text
        if action == .create {
            return try run.run("group create", target: Target(.groupChat, chat), done: "created group \(r(chat))", in: context) {
                try $0.createGroupChat(chat, fields, by: run.staff)
            }
        }
        if action == .addMember {
            return try run.run("group add-member", target: target, done: "added \(r(member)) to group \(r(chat))", in: context) {
                try $0.addMember(member, to: chat, fields, by: run.staff)
            }
        }
        return try run.run("group remove-member", target: target, done: "removed \(r(member)) from group \(r(chat))", in: context) {
            try $0.removeMember(member, from: chat, by: run.staff)
        }
    }
}
