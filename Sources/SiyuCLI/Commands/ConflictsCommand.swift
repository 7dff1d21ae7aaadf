import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu conflicts --db FILE [ID] [--state S] [--json]`: the conflict log.
struct ConflictsCommand: Command {
    static let spec = CommandSpec(
        name: "conflicts",
        summary: "the conflict log: both sides, both writers, the rule that decided, who closed it",
        options: [ReplicaAccess.dbOption,
                  .value("state", "STATE", "only conflicts in STATE: open, acknowledged or overridden"),
                  ReplicaAccess.jsonOption],
        arguments: [ArgumentSpec("ID", optional: true, "one conflict (its id, or a unique prefix of 4 or more digits)")])

    var path: String
    var id: String?
    var state: ConflictState?
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        id = arguments.positional(0)
        state = try arguments.value("state", as: ConflictState.self)
        json = arguments.flag("json")
        if let id { _ = try Conflicts.checkedPrefix(id) }
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        var entries: [ConflictEntry]
        if let id {
            entries = [try Conflicts.resolve(id, in: replica)]
            if let state { entries = entries.filter { $0.state == state } }
        } else {
            entries = try ReplicaAccess.perform("reading conflicts", path: path) { try replica.conflicts(state: state) }
        }
        let current = try Conflicts.currentValues(of: entries, in: replica)
        if json {
            try JSONOutput.write(entries.map { ConflictJSON($0, current: current[$0.id]) }, to: context.io.output)
        } else {
            context.io.output.line(Render.conflicts(entries, current: current))
        }
        return .success
    }
}

extension ConflictState: ArgumentConvertible {}

/// Finding conflicts by what a person typed, and what the commands show about them.
enum Conflicts {
    /// A conflict id as typed: 4 to 12 hexadecimal digits (case-insensitive), lowercased.
    static func checkedPrefix(_ typed: String) throws -> String {
        let lower = typed.lowercased()
        guard (4...12).contains(lower.count), lower.allSatisfy({ $0.isHexDigit && $0.isASCII }) else {
            throw CommandLineError.usage("'\(TerminalText.escaped(typed))' is not a conflict id (4 to 12 hex digits, as the conflict list shows them)",
                                         hint: "list conflicts with: siyu conflicts --db FILE")
        }
        return lower
    }

    /// The one conflict whose id starts with `typed`. Refuses an unknown or ambiguous prefix
    /// before anything is written.
    static func resolve(_ typed: String, in replica: Replica) throws -> ConflictEntry {
        let prefix = try checkedPrefix(typed)
        let matches = try ReplicaAccess.perform("reading conflicts", path: replica.path) {
            try replica.conflicts().filter { $0.id.hasPrefix(prefix) }
        }
        guard matches.count == 1 else {
            if matches.isEmpty {
                throw CLIError("no conflict with id \(prefix) in \(replica.path)", hint: "list conflicts with: siyu conflicts --db FILE")
            }
            throw CLIError("conflict id \(prefix) is ambiguous: it starts \(matches.count) ids (\(matches.prefix(4).map(\.id).joined(separator: ", ")))",
                           hint: "give more digits")
        }
        return matches[0]
    }

    /// For field (`lww`) conflicts: the field's value now, by conflict id.
    static func currentValues(of entries: [ConflictEntry], in replica: Replica) throws -> [String: Value] {
        var states: [InstanceRef: InstanceState] = [:]
        var out: [String: Value] = [:]
        for c in entries where c.rule == .lastWriterWins {
            if states[c.instance] == nil {
                states[c.instance] = try ReplicaAccess.perform("reading \(c.instance)", path: replica.path) { try replica.state(of: c.instance) }
            }
            out[c.id] = states[c.instance]?.value(c.target, c.field)
        }
        return out
    }

    /// Prints one conflict after a command acted on it.
    static func show(_ entry: ConflictEntry, in replica: Replica, json: Bool, to stream: TextStream) throws {
        let current = try currentValues(of: [entry], in: replica)
        if json {
            try JSONOutput.write(ConflictJSON(entry, current: current[entry.id]), to: stream)
        } else {
            stream.line(Render.conflicts([entry], current: current))
        }
    }
}
