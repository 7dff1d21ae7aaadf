import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu override --db FILE ID [--take kept|discarded | --value V] [--by STAFF] [--json]`.
struct OverrideCommand: Command {
    /// Which side of a conflict to make current.
    enum Side: String, CaseIterable, ArgumentConvertible {
        case kept, discarded
    }

    static let spec = CommandSpec(
        name: "override",
        summary: "resolve a conflict by choosing a side (or, for a field, a new value)",
        options: [ReplicaAccess.dbOption,
                  .value("take", "SIDE", "kept or discarded: the side to make current (default: discarded)"),
                  .value("value", "V", "for a field conflict: the value to set, parsed by the field's type (text, integer, true/false)"),
                  .value("by", "STAFF", "the staff member resolving (a userid this replica knows)"),
                  ReplicaAccess.jsonOption],
        arguments: [ArgumentSpec("ID", "the conflict (its id, or a unique prefix of 4 or more digits)")],
        discussion: """
        Field conflicts (lww) and exclusive tag group conflicts can be overridden; for the others
        (a deleted tag, a full group, a cancelled payment, …) acknowledge the conflict or edit the data.
        The resolution is an ordinary op: it replicates like any edit.
        """)

    var path: String
    var id: String
    var side: Side?
    var value: String?
    var staff: String
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        id = try Conflicts.checkedPrefix(arguments.positional(0) ?? "")
        side = try arguments.value("take", as: Side.self)
        value = arguments.value("value")
        staff = arguments.value("by") ?? ""
        json = arguments.flag("json")
        if side != nil && value != nil {
            throw CommandLineError.usage("give --take or --value, not both", hint: nil)
        }
    }

    /// `text` as a value of the field `spec` describes.
    static func typedValue(_ text: String, for spec: FieldSpec, entity: Entity) throws -> Value {
        let subject = "\(entity.name).\(spec.name)"
        let value: Value
        switch spec.type {
        case .text: value = .text(text)
        case .int:
            guard let v = Int64(text) else {
                throw CLIError("\(subject) is an integer; '\(text)' is not one", hint: "give --value as digits, such as --value 2")
            }
            value = .int(v)
        case .bool:
            guard let b = Bool(argument: text) else {
                throw CLIError("\(subject) is true or false; '\(text)' is neither", hint: "give --value true or --value false")
            }
            value = .bool(b)
        }
        do {
            try spec.validate(value, on: entity)
        } catch {
            throw CLIError.from(error)
        }
        return value
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForWriting(path, context: context)
        defer { replica.close() }
        let entry = try Conflicts.resolve(id, in: replica)
        guard entry.state == .open else {
            throw CLIError("conflict \(entry.id) is already \(entry.state.rawValue); nothing was written",
                           hint: "only open conflicts can be overridden; see them with: siyu conflicts --db FILE --state open")
        }
        // Everything is checked before anything is written.
        var typed: Value?
        switch entry.rule {
        case .lastWriterWins:
            if let value {
                guard let fieldSpec = entry.target.entity.field(named: entry.field) else {
                    throw CLIError("conflict \(entry.id) is on an unknown field '\(entry.field)'", hint: "acknowledge it: siyu ack --db FILE \(entry.id)")
                }
                typed = try OverrideCommand.typedValue(value, for: fieldSpec, entity: entry.target.entity)
            }
        case .exclusiveTagGroup:
            if value != nil {
                throw CLIError("conflict \(entry.id) is between two tags of an exclusive group; --value does not apply",
                               hint: "choose a side: siyu override --db FILE \(entry.id) --take discarded (or --take kept)")
            }
        default:
            throw CLIError("conflict \(entry.id) (\(entry.rule.rawValue)) cannot be overridden: \(entry.rule.explanation)",
                           hint: "acknowledge it: siyu ack --db FILE \(entry.id)")
        }
        if !staff.isEmpty { try ReplicaAccess.checkStaff(staff, in: replica) }
        let after = try ReplicaAccess.perform("overriding conflict \(entry.id)", path: path) { () throws -> ConflictEntry in
            if side == .kept {
                try replica.acknowledgeConflict(entry.id, by: staff)
            } else {
                try replica.overrideConflict(entry.id, with: typed ?? entry.loser.value, by: staff)
            }
            return try replica.conflict(entry.id)
        }
        try Conflicts.show(after, in: replica, json: json, to: context.io.output)
        if after.state == .open {
            context.io.error.line("siyu: the resolution was written but conflict \(after.id) is still open")
            context.io.error.line("hint: this is a bug in siyu; report it with the command you ran")
            return .failure
        }
        return .success
    }
}
