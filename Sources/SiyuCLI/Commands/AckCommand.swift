import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu ack --db FILE ID [--by STAFF] [--json]`: acknowledge a conflict.
struct AckCommand: Command {
    static let spec = CommandSpec(
        name: "ack",
        summary: "acknowledge a conflict: the kept side stays, the conflict closes on every replica",
        options: [ReplicaAccess.dbOption,
                  .value("by", "STAFF", "the staff member acknowledging (a userid this replica knows)"),
                  ReplicaAccess.jsonOption],
        arguments: [ArgumentSpec("ID", "the conflict (its id, or a unique prefix of 4 or more digits)")],
        discussion: "The acknowledgement is an ordinary op: it replicates like any edit.")

    var path: String
    var id: String
    var staff: String
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        id = try Conflicts.checkedPrefix(arguments.positional(0) ?? "")
        staff = arguments.value("by") ?? ""
        json = arguments.flag("json")
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForWriting(path, context: context)
        defer { replica.close() }
        let entry = try Conflicts.resolve(id, in: replica)
        guard entry.state == .open else {
            throw CLIError("conflict \(entry.id) is already \(entry.state.rawValue); nothing was written",
                           hint: "only open conflicts can be acknowledged; see them with: siyu conflicts --db FILE --state open")
        }
        if !staff.isEmpty { try ReplicaAccess.checkStaff(staff, in: replica) }
        let after = try ReplicaAccess.perform("acknowledging conflict \(entry.id)", path: path) { () throws -> ConflictEntry in
            try replica.acknowledgeConflict(entry.id, by: staff)
            return try replica.conflict(entry.id)
        }
        try Conflicts.show(after, in: replica, json: json, to: context.io.output)
        return .success
    }
}
