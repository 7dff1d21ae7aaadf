import SiyuCore
import SiyuStore
import SiyuCommandLine

/// What every edit command (`customer`, `tag`, `group`, `order`, `points`) shares: the replica is
/// opened for writing, `--by` is checked, then exactly one call of the library's edit pipeline
/// (Replica+Edits) runs — which reads what it checks and writes its ops in one write transaction —
/// and what it wrote is reported. A refusal writes nothing and says why, with a hint.
struct EditRun {
    var path: String
    var staff: String
    var json: Bool

    /// The options every edit command declares besides its own.
    static let byOption = OptionSpec.value("by", "STAFF", "the staff member making the edit (a userid this replica knows; default: none)")

    init(_ arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        staff = arguments.value("by") ?? ""
        json = arguments.flag("json")
    }

    /// What `--json` prints after an edit (docs/CLI.md, "Edits").
    struct Report: Encodable {
        var command: String
        var node: String
        var entity: String
        var id: String
        var sub: String
        var opsWritten: Int
        var summary: String
    }

    /// Runs `edit` on the replica as `command` (`tag add`) on `target`; `done` says what was
    /// done in words (`tagged customer wm_lin with et_gold`).
    func run(_ command: String, target: Target, done: String, in context: CLIContext,
             _ edit: (Replica) throws -> Void) throws -> ExitCode {
        let replica = try ReplicaAccess.openForWriting(path, context: context)
        defer { replica.close() }
        if !staff.isEmpty { try ReplicaAccess.checkStaff(staff, in: replica) }
        try ReplicaAccess.perform(command, path: path) { try edit(replica) }
        let written = replica.opsWrittenByLastEdit
        let summary = written == 0 ? "nothing to change: \(Render.text(target.description)) is already so; no op written"
                                   : "\(done) (\(EditRun.ops(written)) written on \(replica.node))"
        if json {
            try JSONOutput.write(Report(command: command, node: replica.node, entity: target.entity.name, id: target.id,
                                        sub: target.sub, opsWritten: written, summary: summary), to: context.io.output)
        } else {
            context.io.output.line(summary)
        }
        return .success
    }

    /// "1 op", "2 ops".
    static func ops(_ n: Int) -> String { Render.count(n, "op") }

    /// The action word of an edit command (its first positional), one of `actions`.
    static func action(_ arguments: ParsedArguments, of command: String, _ actions: [String]) throws -> String {
        let word = arguments.positional(0) ?? ""
        guard actions.contains(word) else {
            throw CommandLineError.usage("\(command) needs an action: \(actions.joined(separator: ", "))\(word.isEmpty ? "" : "; got '\(TerminalText.escaped(word))'")",
                                         hint: "see: siyu \(command) --help")
        }
        return word
    }

    /// The positional arguments after the action, exactly `names` of them.
    static func operands(_ arguments: ParsedArguments, _ action: String, of command: String, _ names: [String]) throws -> [String] {
        let rest = Array(arguments.positionals.dropFirst())
        guard rest.count == names.count else {
            throw CommandLineError.usage("\(command) \(action) takes \(names.joined(separator: " ")); got \(rest.count) argument\(rest.count == 1 ? "" : "s")",
                                         hint: "siyu \(command) \(action) --db FILE \(names.joined(separator: " "))")
        }
        for (name, value) in zip(names, rest) where value.isEmpty {
            throw CommandLineError.usage("\(name) is empty", hint: "siyu \(command) \(action) --db FILE \(names.joined(separator: " "))")
        }
        return rest
    }

    /// Field options (`--phone P` → `phone`) as typed values of `entity`'s fields, parsed by the
    /// field's type as `override --value` does (the parser refuses empty values).
    static func fields(_ arguments: ParsedArguments, _ options: [(option: String, field: String)], of entity: Entity) throws -> [String: Value] {
        var out: [String: Value] = [:]
        for (option, field) in options {
            guard let text = arguments.value(option) else { continue }
            guard let spec = entity.field(named: field) else { continue }
            out[field] = try OverrideCommand.typedValue(text, for: spec, entity: entity)
        }
        return out
    }

    /// Options that refuse to be given to an action they do not belong to.
    static func refuse(_ arguments: ParsedArguments, _ options: [String], for action: String, of command: String) throws {
        for option in options where arguments.value(option) != nil || arguments.flag(option) {
            throw CommandLineError.usage("--\(option) does not apply to \(command) \(action)", hint: "see: siyu \(command) --help")
        }
    }
}
