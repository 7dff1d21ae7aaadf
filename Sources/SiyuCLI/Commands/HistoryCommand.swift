import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu history --db FILE ENTITY ID [SUB] [FIELD] [--json]`: why a value is what it is.
struct HistoryCommand: Command {
    static let spec = CommandSpec(
        name: "history",
        summary: "every write of a field, tag, member or line: who, when, what it overwrote, and whether it won",
        options: [ReplicaAccess.dbOption, ReplicaAccess.jsonOption],
        arguments: [ArgumentSpec("ENTITY", "customer, follow_relation, customer_tag, group_chat, group_member, order, order_line, tag, tag_group, store, staff, points"),
                    ArgumentSpec("ID", "the record's id (customer, group chat, order, …)"),
                    ArgumentSpec("SUB", optional: true, "for customer_tag, group_member, order_line, follow_relation: the tag, member, line or staff id"),
                    ArgumentSpec("FIELD", optional: true, "only this field (status for an order's status)")],
        discussion: """
        Each line: '*' on the write that is current, the clock (Asia/Shanghai), writer@node#sequence,
        what the op did, what it overwrote, and its fate: current, overwritten later, lost concurrently
        (with the conflict id), removed, or superseded.
        Examples:  siyu history --db hq.db customer wm_lin phone
                   siyu history --db hq.db customer_tag wm_zhou et_gold
                   siyu history --db hq.db order o_1002 status
        """)

    var path: String
    var target: Target
    var field: String?
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        json = arguments.flag("json")
        let word = arguments.positional(0) ?? ""
        guard let entity = Entity(name: word) else {
            throw CommandLineError.usage("unknown entity '\(TerminalText.escaped(word))'",
                                         hint: "entities: \(Entity.allCases.map(\.name).joined(separator: ", "))")
        }
        let id = arguments.positional(1) ?? ""
        var rest = Array(arguments.positionals.dropFirst(2))
        var sub = ""
        if entity.hasSub {
            guard !rest.isEmpty else {
                throw CommandLineError.usage("\(entity.name) needs SUB after the id (the \(HistoryCommand.subName(entity)))", hint: nil)
            }
            sub = rest.removeFirst()
        }
        if rest.count > 1 {
            throw CommandLineError.usage("unexpected argument '\(TerminalText.escaped(rest[1]))'", hint: nil)
        }
        field = rest.first
        if let field, entity.field(named: field) == nil, !(entity == .order && field == "status") {
            let names = entity.fields.map(\.name) + (entity == .order ? ["status"] : [])
            throw CommandLineError.usage("\(entity.name) has no field '\(TerminalText.escaped(field))'",
                                         hint: names.isEmpty ? "\(entity.name) has no fields; leave FIELD out" : "fields: \(names.joined(separator: ", "))")
        }
        target = Target(entity, id, sub)
    }

    static func subName(_ entity: Entity) -> String {
        switch entity {
        case .customerTag: return "tag id"
        case .groupMember: return "member id"
        case .orderLine: return "line id"
        case .followRelation: return "staff userid"
        default: return "sub id"
        }
    }

    static func listHint(_ kind: InstanceKind) -> String {
        switch kind {
        case .customer: return "list customers with: siyu customers --db FILE"
        case .groupChat: return "list group chats with: siyu groups --db FILE"
        case .order: return "list orders with: siyu orders --db FILE"
        case .tag, .tagGroup: return "list tags with: siyu tags --db FILE"
        case .store, .staff: return "check the id; see the whole replica with: siyu show --db FILE"
        }
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        let history = try ReplicaAccess.perform("reading history", path: path) { try replica.history(of: target.instance) }
        if history.ops.isEmpty {
            throw CLIError("\(target.instance.kind.name) '\(target.id)' not found in \(path)", hint: HistoryCommand.listHint(target.instance.kind))
        }
        let explainer = HistoryExplainer(history)
        let entries = explainer.explain(target, field: field)
        if entries.isEmpty {
            let what = target.sub.isEmpty ? "\(target.entity.name) \(target.id)" : "\(target.entity.name) \(target.id)/\(target.sub)"
            throw CLIError("\(what) has no \(field.map { "writes of \($0)" } ?? "ops") in \(path)",
                           hint: field == nil ? HistoryCommand.listHint(target.instance.kind)
                                              : "see every op of the record: siyu history --db FILE \(target.entity.name) ID\(target.sub.isEmpty ? "" : " SUB")")
        }
        if json {
            try JSONOutput.write(HistoryJSON(entity: target.entity.name, id: target.id, sub: target.sub, field: field, entries: entries),
                                 to: context.io.output)
            return .success
        }
        for e in entries {
            let mark = e.current ? "*" : " "
            let over = e.overwrites.isEmpty ? "" : "  over " + e.overwrites.map(\.label).joined(separator: ", ")
            context.io.output.line("\(mark) \(Render.time(HLC(millis: e.clock.millis, logical: UInt16(e.clock.logical))))  "
                                   + "\(e.label)  \(e.what)\(over)  → \(e.fateDetail)")
        }
        return .success
    }
}

/// `siyu history --json`: `entity`, `id`, `sub`, `field` (null when all), `entries`.
struct HistoryJSON: Encodable {
    var entity: String
    var id: String
    var sub: String
    var field: String?
    var entries: [HistoryEntryJSON]
}

/// Another op, as an entry names it: `node`, `seq`, `staff`.
struct OpRefJSON: Encodable {
    var node: String
    var seq: UInt64?
    var staff: String?

    /// `staff@node#seq`, escaped for printing.
    var label: String {
        "\(Render.text(staff.map { $0.isEmpty ? "system" : $0 } ?? "?"))@\(Render.text(node))" + (seq.map { "#\($0)" } ?? "")
    }
}

/// One op in a history: who (`node`, `seq`, `staff`), when (`clock`), what (`kind`: write, add,
/// remove, status, points, delete, acknowledge, tag_deletion; `field`, `value`, `from`, `to`,
/// `removes`), what it overwrote (`overwrites`), whether it is the current value (`current`) and
/// its `fate`: current, overwritten, resolved, lost, removed, live, hidden, superseded or applied,
/// with `fate_detail` in words and `by`, the op that overwrote or removed it.
struct HistoryEntryJSON: Encodable {
    var node: String
    var seq: UInt64
    var staff: String
    var clock: ClockJSON
    var kind: String
    var field: String?
    var value: ValueJSON?
    var from: String?
    var to: String?
    var removes: [OpRefJSON]?
    var overwrites: [OpRefJSON]
    var current: Bool
    var fate: String
    var fateDetail: String
    var by: OpRefJSON?
    var conflictId: String?

    var label: String { OpRefJSON(node: node, seq: seq, staff: staff).label }

    /// What the op did, for the text output.
    var what: String {
        switch kind {
        case "write": return "\(Render.text(field ?? "")) = \(value.map { Render.quoted($0.value) } ?? "null")"
        case "status": return "status \(from ?? "?") → \(to ?? "?")"
        case "add": return "add" + ((removes ?? []).isEmpty ? "" : " (replacing " + (removes ?? []).map(\.label).joined(separator: ", ") + ")")
        case "remove": return "remove (of " + (removes ?? []).map(\.label).joined(separator: ", ") + ")"
        case "points": return "points \(value.map { Render.quoted($0.value) } ?? "")"
        default: return kind
        }
    }
}

/// Works out the fate of every op of an instance from its history (`Replica.history(of:)`).
struct HistoryExplainer {
    let history: InstanceHistory
    var state: InstanceState { history.state }
    private var byStamp: [Stamp: Op] = [:]
    private var overwrittenBy: [Stamp: [Op]] = [:]
    private var removedBy: [Stamp: [Op]] = [:]
    private var lostIn: [Stamp: ConflictEntry] = [:]

    init(_ history: InstanceHistory) {
        self.history = history
        for op in history.ops {
            byStamp[op.stamp] = op
            switch op.body {
            case let .write(_, _, _, over): for s in over { overwrittenBy[s, default: []].append(op) }
            case let .add(_, removes), let .remove(_, removes): for s in removes { removedBy[s, default: []].append(op) }
            default: break
            }
        }
        for c in history.state.conflicts where lostIn[c.loser.stamp] == nil || c.state == .open { lostIn[c.loser.stamp] = c }
    }

    func ref(_ stamp: Stamp) -> OpRefJSON {
        let op = byStamp[stamp]
        return OpRefJSON(node: stamp.node, seq: op?.seq, staff: op?.author)
    }

    func ref(_ op: Op) -> OpRefJSON { OpRefJSON(node: op.origin, seq: op.seq, staff: op.author) }

    /// The ops that concern `target` (and `field`), oldest first (`InstanceHistory.entries`), with their fates.
    func explain(_ target: Target, field: String?) -> [HistoryEntryJSON] {
        history.entries(for: target, field: field).map { entry($0.op, for: target) }
    }

    private func entry(_ op: Op, for target: Target) -> HistoryEntryJSON {
        var e = HistoryEntryJSON(node: op.origin, seq: op.seq, staff: op.author, clock: ClockJSON(op.hlc), kind: op.body.kindName,
                                 overwrites: [], current: false, fate: "applied", fateDetail: "applied")
        func lost(_ c: ConflictEntry) {
            e.fate = "lost"
            e.conflictId = c.id
            e.fateDetail = "lost: \(c.rule.explanation) [\(c.id) \(c.state.rawValue)]"
        }
        switch op.body {
        case let .write(t, field, value, over):
            e.field = field
            e.value = ValueJSON(value)
            e.overwrites = over.map(ref)
            let register = state.registers[FieldKey(t, field)]
            if register?.winner?.stamp == op.stamp {
                e.current = true
                e.fate = "current"
                e.fateDetail = "current" + (over.count > 1 ? " (resolved \(over.count) sides)" : "")
            } else if let overwriters = overwrittenBy[op.stamp], let later = overwriters.first {
                e.by = ref(later)
                let names = overwriters.map { ref($0).label }.joined(separator: ", ")
                if let c = lostIn[op.stamp] {
                    e.fate = "resolved"
                    e.conflictId = c.id
                    e.fateDetail = "lost concurrently, then \(c.state.rawValue) by \(ref(later).label) [\(c.id)]"
                } else {
                    e.fate = "overwritten"
                    e.fateDetail = "overwritten later by \(names)"
                }
            } else if let c = lostIn[op.stamp] {
                lost(c)
                if let w = register?.winner { e.by = ref(w.stamp); e.fateDetail = "lost concurrently to \(ref(w.stamp).label) [\(c.id) \(c.state.rawValue)]" }
            } else if let w = register?.winner {
                e.fate = "lost"
                e.by = ref(w.stamp)
                e.fateDetail = "concurrent with \(ref(w.stamp).label), same value"
            }
        case let .add(t, removes):
            e.removes = removes.filter { $0 != op.stamp }.map(ref)
            if t != target {
                e.fate = "applied"
                e.fateDetail = "add of \(Render.text(t.sub)), replacing this \(target.entity == .customerTag ? "tag" : "element")"
                break
            }
            let element = state.elements[t]
            let live = element?.liveStamps.contains(op.stamp) ?? false
            if !live {
                if let by = removedBy[op.stamp]?.first {
                    e.fate = "removed"
                    e.by = ref(by)
                    if case let .add(other, _) = by.body, other != t {
                        e.fateDetail = "replaced by \(ref(by).label)'s add of \(Render.text(other.sub))"
                    } else {
                        e.fateDetail = "removed by \(ref(by).label)"
                    }
                } else {
                    e.fate = "removed"
                    e.fateDetail = "removed"
                }
            } else if let c = lostIn[op.stamp] {
                lost(c)
            } else if element?.latest?.stamp == op.stamp && isShown(t) {
                e.current = true
                e.fate = "current"
                e.fateDetail = "current (shown)"
            } else {
                e.fate = "live"
                e.fateDetail = "live (a later add is the one shown)"
            }
        case let .remove(_, removes):
            e.removes = removes.map(ref)
            e.fateDetail = "removed \(removes.count) add\(removes.count == 1 ? "" : "s")"
        case let .status(_, from, to, _):
            e.field = "status"
            e.from = from.name
            e.to = to.name
            if let c = lostIn[op.stamp] {
                lost(c)
            } else if state.status == to && history.ops.last(where: { if case let .status(_, _, t2, _) = $0.body { return t2 == to } else { return false } })?.stamp == op.stamp {
                e.current = true
                e.fate = "current"
                e.fateDetail = "current"
            } else {
                e.fate = "superseded"
                e.fateDetail = "superseded (status now \(state.status?.name ?? "?"))"
            }
        case let .points(_, delta):
            e.value = ValueJSON(.int(delta))
            e.fateDetail = "counted (balance now \(state.pointsBalance))"
        case .deleteCustomer:
            e.current = state.isDeleted
            e.fate = "current"
            e.fateDetail = "the customer is deleted"
        case let .acknowledge(_, conflictID):
            e.conflictId = conflictID
            e.fateDetail = "closed conflict \(Render.text(conflictID))"
        case .tagDeletion:
            e.fateDetail = "deleted the tag library entry"
        }
        return e
    }

    private func isShown(_ t: Target) -> Bool {
        switch t.entity {
        case .customerTag:
            return (state.rows[.customerTags] ?? []).contains { $0.count > 1 && $0[1] == .text(t.sub) }
        default:
            return state.isPresent(t)
        }
    }
}
