import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu tag add|remove --db FILE CUSTOMER TAG`: tag a customer or untag one (any node);
/// `siyu tag define|rename|delete|define-group|delete-group`: the tag library (HQ only).
struct TagCommand: Command {
    static let spec = CommandSpec(
        name: "tag",
        summary: "tag or untag a customer (add, remove); HQ: define, rename or delete tags and groups",
        options: [
            ReplicaAccess.dbOption,
            .value("group", "GROUP", "define: the tag group the tag belongs to"),
            .value("name", "NAME", "define, define-group: the name shown"),
            .value("order", "N", "define, define-group: the sort order (default 0)"),
            .flag("exclusive", "define-group: a customer holds at most one tag of the group"),
            EditRun.byOption,
            ReplicaAccess.jsonOption,
        ],
        arguments: [ArgumentSpec("ACTION", "add, remove, define, rename, delete, define-group or delete-group"),
                    ArgumentSpec("ARG", variadic: true, "add/remove: CUSTOMER TAG; define/delete: TAG; rename: TAG NAME; define-group/delete-group: GROUP")],
        discussion: """
        siyu tag add --db FILE CUSTOMER TAG       tag a customer; in an exclusive group the group's other tag goes
        siyu tag remove --db FILE CUSTOMER TAG    untag a customer
        siyu tag define --db FILE TAG --group GROUP --name NAME [--order N]     (HQ)
        siyu tag rename --db FILE TAG NAME        (HQ)
        siyu tag delete --db FILE TAG             (HQ; customers holding it lose it on every replica)
        siyu tag define-group --db FILE GROUP --name NAME [--exclusive] [--order N]     (HQ)
        siyu tag delete-group --db FILE GROUP     (HQ)
        Tag names are unique within a group. Concurrent tags of one exclusive group on two nodes show as a conflict.
        """)

    enum Action: String, CaseIterable { case add, remove, define, rename, delete, defineGroup = "define-group", deleteGroup = "delete-group" }

    var run: EditRun
    var action: Action
    var operands: [String]
    var group: String?
    var name: String?
    var order: Int64
    var exclusive: Bool

    init(parsing arguments: ParsedArguments) throws {
        run = try EditRun(arguments)
        action = Action(rawValue: try EditRun.action(arguments, of: "tag", Action.allCases.map(\.rawValue)))!
        let names: [String]
        switch action {
        case .add, .remove: names = ["CUSTOMER", "TAG"]
        case .define, .delete: names = ["TAG"]
        case .rename: names = ["TAG", "NAME"]
        case .defineGroup, .deleteGroup: names = ["GROUP"]
        }
        operands = try EditRun.operands(arguments, action.rawValue, of: "tag", names)
        group = arguments.value("group")
        name = arguments.value("name")
        order = try arguments.value("order", as: Int64.self) ?? 0
        exclusive = arguments.flag("exclusive")
        switch action {
        case .add, .remove, .delete, .deleteGroup, .rename:
            try EditRun.refuse(arguments, ["group", "name", "order", "exclusive"], for: action.rawValue, of: "tag")
        case .define:
            try EditRun.refuse(arguments, ["exclusive"], for: "define", of: "tag")
            if group == nil || name == nil {
                throw CommandLineError.usage("tag define needs --group and --name",
                                             hint: "siyu tag define --db hq.db TAG --group GROUP --name NAME (groups: siyu tags --db hq.db)")
            }
        case .defineGroup:
            try EditRun.refuse(arguments, ["group"], for: "define-group", of: "tag")
            if name == nil {
                throw CommandLineError.usage("tag define-group needs --name", hint: "siyu tag define-group --db hq.db GROUP --name NAME [--exclusive]")
            }
        }
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let staff = run.staff
        let first = operands[0], r = Render.text
        switch action {
        case .add:
            let tag = operands[1]
            return try run.run("tag add", target: Target(.customerTag, first, tag), done: "tagged customer \(r(first)) with \(r(tag))", in: context) {
                try $0.addTag(tag, to: first, by: staff)
            }
        case .remove:
            let tag = operands[1]
            return try run.run("tag remove", target: Target(.customerTag, first, tag), done: "removed tag \(r(tag)) from customer \(r(first))", in: context) {
                try $0.removeTag(tag, from: first, by: staff)
            }
        case .define:
            return try run.run("tag define", target: Target(.tag, first), done: "defined tag \(r(first)) '\(r(name!))' in group \(r(group!))", in: context) {
                try $0.defineTag(first, group: group!, name: name!, order: order, by: staff)
            }
        case .rename:
            let newName = operands[1]
            return try run.run("tag rename", target: Target(.tag, first), done: "renamed tag \(r(first)) to '\(r(newName))'", in: context) {
                try $0.renameTag(first, to: newName, by: staff)
            }
        case .delete:
            return try run.run("tag delete", target: Target(.tag, first), done: "deleted tag \(r(first))", in: context) {
                try $0.deleteTag(first, by: staff)
            }
        case .defineGroup:
            return try run.run("tag define-group", target: Target(.tagGroup, first),
                               done: "defined \(exclusive ? "exclusive " : "")tag group \(r(first)) '\(r(name!))'", in: context) {
                try $0.defineTagGroup(first, name: name!, order: order, exclusive: exclusive, by: staff)
            }
        case .deleteGroup:
            return try run.run("tag delete-group", target: Target(.tagGroup, first), done: "deleted tag group \(r(first))", in: context) {
                try $0.deleteTagGroup(first, by: staff)
            }
        }
    }
}
