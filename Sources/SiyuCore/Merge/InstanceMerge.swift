/// The key of one LWW field: the target and the field name.
public struct FieldKey: Hashable, Comparable, Sendable {
    public var target: Target
    public var field: String

    public init(_ target: Target, _ field: String) {
        self.target = target
        self.field = field
    }

    public static func < (a: FieldKey, b: FieldKey) -> Bool { (a.target, a.field) < (b.target, b.field) }
}

/// The merged state of one instance: the rows it materialises into each of its tables, its
/// conflict entries, and the metadata a local edit needs (field heads, live adds).
///
/// Guarantee: `InstanceState.merge` is a pure function of the *set* of ops given (order and
/// duplicates do not matter) and of the tag catalog.
public struct InstanceState: Sendable {
    public let instance: InstanceRef
    /// Every row of this instance, per table, sorted by key. A table with no rows is absent.
    public private(set) var rows: [Table: [[Value]]] = [:]
    /// Conflict entries, sorted by id.
    public private(set) var conflicts: [ConflictEntry] = []
    public private(set) var registers: [FieldKey: RegisterState] = [:]
    public private(set) var elements: [Target: ElementState] = [:]
    /// Customer: deleted (a tombstone).
    public private(set) var isDeleted = false
    /// Customer: the merged points balance.
    public private(set) var pointsBalance: Int64 = 0
    /// Order: the merged status.
    public private(set) var status: OrderStatus?
    /// Order: the stamps of every line edit (add, remove, field write of a line) held, sorted —
    /// exactly what a payment made from this state saw of the lines.
    public private(set) var lineEdits: [Stamp] = []
    /// Tag / tag group: the merged definition, for the catalog.
    public private(set) var tagDefinition: TagDefinition?
    public private(set) var tagGroupDefinition: TagGroupDefinition?

    /// The current value of a field (`.null` when never written).
    public func value(_ target: Target, _ field: String) -> Value { registers[FieldKey(target, field)]?.value ?? .null }
    /// The writes a new write of this field must name.
    public func heads(_ target: Target, _ field: String) -> [Stamp] { registers[FieldKey(target, field)]?.headStamps ?? [] }
    /// The live adds of a set element (what a remove must name).
    public func liveAdds(_ target: Target) -> [Stamp] { elements[target]?.liveStamps ?? [] }
    public func isPresent(_ target: Target) -> Bool { elements[target]?.isPresent ?? false }
    /// Whether the instance exists at all (has a main row).
    public var exists: Bool { !(rows[Table.tables(of: instance.kind)[0]] ?? []).isEmpty }
    /// Everything a deletion must name: all field heads and live adds of the instance.
    public var observedForDelete: [Stamp] {
        var out = registers.values.flatMap(\.headStamps)
        out += elements.values.flatMap(\.liveStamps)
        return out.sorted()
    }

    init(instance: InstanceRef) { self.instance = instance }

    /// The state of an instance with no ops: no rows, no conflicts.
    public static func empty(_ instance: InstanceRef) -> InstanceState { InstanceState(instance: instance) }

    // MARK: - Merge

    /// Merges the ops of one instance. Ops of other instances are ignored.
    public static func merge(_ instance: InstanceRef, ops: [Op], catalog: TagCatalog) -> InstanceState {
        merge(instance, canonical: canonicalOps(instance, ops), catalog: catalog)
    }

    /// The ops of `instance` among `ops`, in stamp order, each stamp once: stamps are unique per
    /// node; should a faulty node reuse one, the lower sequence wins everywhere. (Sorting and
    /// skipping repeats costs less than a dictionary keyed by stamp.)
    public static func canonicalOps(_ instance: InstanceRef, _ ops: [Op]) -> [Op] {
        var sorted = ops.filter { $0.instance == instance }
        sorted.sort { $0.stamp != $1.stamp ? $0.stamp < $1.stamp : $0.seq < $1.seq }
        var all: [Op] = []
        all.reserveCapacity(sorted.count)
        for op in sorted where all.last?.stamp != op.stamp { all.append(op) }
        return all
    }

    /// Merges ops already in the form `canonicalOps` returns (a replica keeps an instance's ops so
    /// and appends a local edit's ops, whose stamps are greater than every stamp it holds).
    /// Equal to `merge(instance, ops: all, catalog:)` for such input.
    public static func merge(_ instance: InstanceRef, canonical all: [Op], catalog: TagCatalog) -> InstanceState {
        var state = InstanceState(instance: instance)
        var conflicts: [ConflictEntry] = []
        var live = all
        if instance.kind == .order {
            state.lineEdits = all.lazy.filter { $0.body.target.entity == .orderLine }.map(\.stamp)
            let (kept, frozen) = InstanceState.freezeLineEdits(all)
            live = kept
            conflicts += frozen
        }
        state.mergeSetsAndRegisters(live, conflicts: &conflicts)

        switch instance.kind {
        case .store, .staff, .tagGroup, .tag:
            state.materializeSimple(all)
        case .customer:
            state.materializeCustomer(all, catalog: catalog, conflicts: &conflicts)
        case .groupChat:
            state.materializeChat(conflicts: &conflicts)
        case .order:
            state.materializeOrder(all, conflicts: &conflicts)
        }
        state.conflicts = InstanceState.applyAcknowledgements(all, to: conflicts)
        return state
    }

    private mutating func mergeSetsAndRegisters(_ ops: [Op], conflicts: inout [ConflictEntry]) {
        var writes: [FieldKey: [RegisterWrite]] = [:]
        var adds: [Target: [ElementAdd]] = [:]
        var removed = Set<Stamp>()
        for op in ops {
            switch op.body {
            case let .write(target, field, value, overwrites):
                writes[FieldKey(target, field), default: []].append(
                    RegisterWrite(stamp: op.stamp, author: op.author, value: value, overwrites: overwrites))
            case let .add(target, removes):
                adds[target, default: []].append(ElementAdd(stamp: op.stamp, author: op.author))
                removed.formUnion(removes)
            case let .remove(target, removes):
                if adds[target] == nil { adds[target] = [] }
                removed.formUnion(removes)
            default:
                break
            }
        }
        for (key, ws) in writes {
            let reg = RegisterState(writes: ws)
            registers[key] = reg
            conflicts += reg.conflicts(target: key.target, field: key.field)
        }
        for (target, list) in adds {
            elements[target] = ElementState(adds: list, removed: removed)
        }
    }

    // MARK: Simple records (store, staff, tag group, tag)

    private mutating func materializeSimple(_ ops: [Op]) {
        let entity = instance.kind.primaryEntity
        let target = Target(entity, instance.id)
        guard registers.keys.contains(where: { $0.target == target }) else { return }
        let table = Table.tables(of: instance.kind)[0]
        rows[table] = [row(table, target: target, key: [.text(instance.id)])]
        func deletion() -> ConflictSide? {
            guard let reg = registers[FieldKey(target, "deleted")], reg.value.boolValue == true,
                  let w = reg.winner else { return nil }
            return ConflictSide(stamp: w.stamp, author: w.author, value: .text("deleted"))
        }
        var seen: [NodeID: Stamp] = [:]
        for op in ops { if case let .tagDeletion(_, stamps) = op.body {
            for s in stamps where seen[s.node].map({ s > $0 }) ?? true { seen[s.node] = s }
        } }
        if instance.kind == .tag {
            tagDefinition = TagDefinition(id: instance.id, groupID: value(target, "group_id").textValue,
                                          name: value(target, "name").textValue, deletedBy: deletion(), deletionSeen: seen)
        } else if instance.kind == .tagGroup {
            tagGroupDefinition = TagGroupDefinition(id: instance.id, name: value(target, "name").textValue,
                                                    exclusive: value(target, "exclusive").boolValue ?? false,
                                                    deletedBy: deletion(), deletionSeen: seen)
        }
    }

    /// A table row: the key values, then each remaining column's register value (bools as 0/1;
    /// flags default to 0).
    private func row(_ table: Table, target: Target, key: [Value], extra: [String: Value] = [:]) -> [Value] {
        var out = key
        for column in table.columns.dropFirst(key.count) {
            if let v = extra[column.name] { out.append(v); continue }
            var v = value(target, column.name)
            if case let .bool(b) = v { v = .int(b ? 1 : 0) }
            if v == .null && ["deleted", "exclusive", "overflow"].contains(column.name) { v = .int(0) }
            out.append(v)
        }
        return out
    }

    // MARK: Customers: fields, follow relations, tags, points, tombstone

    private mutating func materializeCustomer(_ ops: [Op], catalog: TagCatalog, conflicts: inout [ConflictEntry]) {
        let id = instance.id
        let customer = Target(.customer, id)
        var deletes: [(Op, [Stamp])] = []
        var pointOps: [Op] = []
        for op in ops {
            switch op.body {
            case let .deleteCustomer(_, observed): deletes.append((op, observed))
            case .points: pointOps.append(op)
            default: break
            }
        }
        isDeleted = !deletes.isEmpty
        let hasFields = registers.keys.contains { $0.target == customer }
        if hasFields || isDeleted {
            rows[.customers] = [row(.customers, target: customer, key: [.text(id)],
                                    extra: ["deleted": .int(isDeleted ? 1 : 0)])]
        }
        let relations = Set(registers.keys.filter { $0.target.entity == .followRelation }.map(\.target)).sorted()
        if !relations.isEmpty {
            rows[.followRelations] = relations.map { row(.followRelations, target: $0, key: [.text(id), .text($0.sub)]) }
        }

        // Tags: add-wins per tag, then the tag library's rules.
        var tagRows: [[Value]] = []
        var exclusiveCandidates: [String: [(tag: String, latest: ElementAdd)]] = [:]
        for (target, element) in elements.sorted(by: { $0.key < $1.key }) where target.entity == .customerTag {
            guard let latest = element.latest, let info = catalog.info(forTag: target.sub) else { continue }
            if let deletion = info.deletedBy {
                for add in element.liveAdds where !info.deletionSaw(add.stamp) {
                    conflicts.append(ConflictEntry(rule: .deletedTag, target: target, winner: deletion,
                                                   loser: ConflictSide(stamp: add.stamp, author: add.author, value: .text(target.sub))))
                }
                continue
            }
            if info.exclusive, let group = info.groupID {
                exclusiveCandidates[group, default: []].append((target.sub, latest))
            } else {
                tagRows.append(tagRow(target.sub, latest))
            }
        }
        for (_, candidates) in exclusiveCandidates {
            let sorted = candidates.sorted { $0.latest.stamp < $1.latest.stamp }
            let winner = sorted.last!
            tagRows.append(tagRow(winner.tag, winner.latest))
            for loser in sorted.dropLast() {
                conflicts.append(ConflictEntry(
                    rule: .exclusiveTagGroup, target: Target(.customerTag, id, loser.tag),
                    winner: ConflictSide(stamp: winner.latest.stamp, author: winner.latest.author, value: .text(winner.tag)),
                    loser: ConflictSide(stamp: loser.latest.stamp, author: loser.latest.author, value: .text(loser.tag))))
            }
        }
        conflicts += closedExclusiveConflicts(ops, catalog: catalog)
        if !tagRows.isEmpty { rows[.customerTags] = tagRows.sorted { ($0[1].textValue ?? "") < ($1[1].textValue ?? "") } }

        // Points: a counter; a merged balance below zero is an overdraft. Each sum saturates at
        // Int64.max (it only grows, so the result does not depend on order) and the balance of two
        // non-negative sums cannot overflow: no trap, no wrap, even on deltas validation refuses.
        if !pointOps.isEmpty {
            var awarded: Int64 = 0, redeemed: Int64 = 0
            func plus(_ sum: Int64, _ d: UInt64) -> Int64 {
                let (s, overflow) = sum.addingReportingOverflow(Int64(clamping: d))
                return overflow ? .max : s
            }
            for op in pointOps { if case let .points(_, d) = op.body { if d > 0 { awarded = plus(awarded, d.magnitude) } else { redeemed = plus(redeemed, d.magnitude) } } }
            pointsBalance = awarded - redeemed
            rows[.points] = [[.text(id), .int(pointsBalance), .int(awarded), .int(redeemed)]]
            if pointsBalance < 0, let last = pointOps.last(where: { if case let .points(_, d) = $0.body { return d < 0 }; return false }),
               case let .points(_, delta) = last.body {
                conflicts.append(ConflictEntry(rule: .overdraft, target: Target(.points, id),
                                               winner: nil,
                                               loser: ConflictSide(stamp: last.stamp, author: last.author, value: .int(delta))))
            }
        }

        // Tombstone: edits its deletion did not observe are concurrent with it.
        if let lastDelete = deletes.last?.0 {
            let observed = Set(deletes.flatMap(\.1))
            let deletion = ConflictSide(stamp: lastDelete.stamp, author: lastDelete.author, value: .text("deleted"))
            for (key, reg) in registers.sorted(by: { $0.key < $1.key }) {
                for head in reg.heads where !observed.contains(head.stamp) {
                    conflicts.append(ConflictEntry(rule: .editOnDeleted, target: key.target, field: key.field,
                                                   winner: deletion, loser: head.side))
                }
            }
            for (target, element) in elements.sorted(by: { $0.key < $1.key }) {
                for add in element.liveAdds where !observed.contains(add.stamp) {
                    conflicts.append(ConflictEntry(rule: .editOnDeleted, target: target, winner: deletion,
                                                   loser: ConflictSide(stamp: add.stamp, author: add.author, value: .text(target.sub))))
                }
            }
        }
    }

    private func tagRow(_ tag: String, _ add: ElementAdd) -> [Value] {
        [.text(instance.id), .text(tag), .text(add.author), .text(add.stamp.node), .int(Int64(add.stamp.hlc.millis))]
    }

    /// An exclusive-group add that removed adds of two or more tags of its group resolved a
    /// conflict its author saw: the greatest removed add was the winner, the other tags lost.
    private func closedExclusiveConflicts(_ ops: [Op], catalog: TagCatalog) -> [ConflictEntry] {
        // Only an add that removes two or more adds can close one; most customers have none.
        guard ops.contains(where: { if case let .add(t, removes) = $0.body { return t.entity == .customerTag && removes.count >= 2 }; return false })
        else { return [] }
        var addsByStamp: [Stamp: (tag: String, add: ElementAdd)] = [:]
        for op in ops { if case let .add(t, _) = op.body, t.entity == .customerTag {
            addsByStamp[op.stamp] = (t.sub, ElementAdd(stamp: op.stamp, author: op.author))
        } }
        // Ops ascend by stamp: a later resolver of the same entry replaces an earlier one.
        var entries: [String: ConflictEntry] = [:]
        for op in ops {
            guard case let .add(t, removes) = op.body, t.entity == .customerTag, removes.count >= 2,
                  let info = catalog.info(forTag: t.sub), info.exclusive, let group = info.groupID else { continue }
            let seenAdds = removes.compactMap { addsByStamp[$0] }
                .filter { catalog.info(forTag: $0.tag)?.groupID == group }
                .sorted { $0.add.stamp < $1.add.stamp }
            guard let top = seenAdds.last, Set(seenAdds.map(\.tag)).count >= 2 else { continue }
            let state: ConflictState = t.sub == top.tag ? .acknowledged : .overridden
            var latestPerTag: [String: ElementAdd] = [:]
            for a in seenAdds where a.tag != top.tag { latestPerTag[a.tag] = a.add }
            for (tag, add) in latestPerTag.sorted(by: { $0.key < $1.key }) {
                let entry = ConflictEntry(
                    rule: .exclusiveTagGroup, target: Target(.customerTag, instance.id, tag),
                    winner: ConflictSide(stamp: top.add.stamp, author: top.add.author, value: .text(top.tag)),
                    loser: ConflictSide(stamp: add.stamp, author: add.author, value: .text(tag)),
                    state: state, closedBy: ConflictSide(stamp: op.stamp, author: op.author, value: .text(t.sub)))
                entries[entry.id] = entry
            }
        }
        return entries.values.sorted { $0.id < $1.id }
    }

    // MARK: Group chats: fields, roster with capacity

    /// The capacity of a group when none was set (WeCom's limit for customer groups).
    public static let defaultCapacity: Int64 = 500

    private mutating func materializeChat(conflicts: inout [ConflictEntry]) {
        let chat = Target(.groupChat, instance.id)
        let capacity = value(chat, "capacity").intValue ?? InstanceState.defaultCapacity
        if registers.keys.contains(where: { $0.target == chat }) {
            rows[.groupChats] = [row(.groupChats, target: chat, key: [.text(instance.id)], extra: ["capacity": .int(capacity)])]
        }
        let members = elements.filter { $0.key.entity == .groupMember && $0.value.isPresent }
            .sorted { ($0.value.earliest!.stamp, $0.key) < ($1.value.earliest!.stamp, $1.key) }
        var memberRows: [[Value]] = []
        for (index, (target, element)) in members.enumerated() {
            let overflow = Int64(index) >= capacity
            memberRows.append(row(.groupMembers, target: target, key: [.text(instance.id), .text(target.sub)],
                                  extra: ["overflow": .int(overflow ? 1 : 0)]))
            if overflow, let join = element.earliest {
                conflicts.append(ConflictEntry(rule: .rosterOverflow, target: target, winner: nil,
                                               loser: ConflictSide(stamp: join.stamp, author: join.author, value: .text(target.sub))))
            }
        }
        if !memberRows.isEmpty { rows[.groupMembers] = memberRows.sorted { $0[1].description < $1[1].description } }
    }

    // MARK: Orders: fields, status lattice, lines frozen at payment

    /// Splits an order's ops into those that apply and the line edits a payment froze (with their
    /// conflict entries). A line edit applies when there is no payment or some payment names it:
    /// a payment names exactly the line edits its author held (an explicit set, not a per-origin
    /// bound, so a payer that held a later op of an origin but not an earlier one did not see the
    /// earlier one — whatever order the ops arrived in).
    static func freezeLineEdits(_ ops: [Op]) -> (kept: [Op], frozen: [ConflictEntry]) {
        let payments = ops.filter {
            if case let .status(_, from, to, _) = $0.body { return !from.isPaidOrLater && to.isPaidOrLater }
            return false
        }
        guard let firstPayment = payments.first else { return (ops, []) }
        var seenByAPayment = Set<Stamp>()
        for p in payments { if case let .status(_, _, _, seen) = p.body { seenByAPayment.formUnion(seen) } }
        var kept: [Op] = [], frozen: [ConflictEntry] = []
        let paymentSide: ConflictSide = {
            if case let .status(_, _, to, _) = firstPayment.body {
                return ConflictSide(stamp: firstPayment.stamp, author: firstPayment.author, value: .text(to.name))
            }
            return ConflictSide(stamp: firstPayment.stamp, author: firstPayment.author, value: .null)
        }()
        for op in ops {
            let target = op.body.target
            guard target.entity == .orderLine else { kept.append(op); continue }
            if seenByAPayment.contains(op.stamp) { kept.append(op); continue }
            var field = "", attempted = Value.null
            switch op.body {
            case let .write(_, f, v, _): field = f; attempted = v
            case .add: attempted = .text("add line")
            case .remove: attempted = .text("remove line")
            default: break
            }
            frozen.append(ConflictEntry(rule: .editAfterPayment, target: target, field: field, winner: paymentSide,
                                        loser: ConflictSide(stamp: op.stamp, author: op.author, value: attempted)))
        }
        return (kept, frozen)
    }

    private mutating func materializeOrder(_ ops: [Op], conflicts: inout [ConflictEntry]) {
        let order = Target(.order, instance.id)
        var moves: [Op] = []
        for op in ops { if case .status = op.body { moves.append(op) } }
        status = OrderStatus.merge(moves.compactMap { if case let .status(_, _, to, _) = $0.body { return to }; return nil })
        if registers.keys.contains(where: { $0.target == order }) || !moves.isEmpty {
            rows[.orders] = [row(.orders, target: order, key: [.text(instance.id)],
                                 extra: ["status": status.map { .text($0.name) } ?? .null])]
        }
        if let status, status.isPaidOrLater {
            let paidSide = moves.last { if case let .status(_, _, to, _) = $0.body { return to.isPaidOrLater }; return false }
            for cancel in moves {
                guard case .status(_, _, .cancelled, _) = cancel.body else { continue }
                conflicts.append(ConflictEntry(
                    rule: .cancelledAfterPayment, target: order, field: "status",
                    winner: paidSide.map { p in
                        if case let .status(_, _, to, _) = p.body { return ConflictSide(stamp: p.stamp, author: p.author, value: .text(to.name)) }
                        return ConflictSide(stamp: p.stamp, author: p.author, value: .null)
                    },
                    loser: ConflictSide(stamp: cancel.stamp, author: cancel.author, value: .text("cancelled"))))
            }
        }
        let lines = elements.filter { $0.key.entity == .orderLine && $0.value.isPresent }.keys.sorted()
        if !lines.isEmpty {
            rows[.orderLines] = lines.map { row(.orderLines, target: $0, key: [.text(instance.id), .text($0.sub)]) }
        }
    }

    // MARK: Acknowledgements

    /// An acknowledgement closes the open conflict it names; with several, the latest is recorded.
    /// Entries already closed by a resolving write keep that record; of two resolutions of one
    /// entry, the later (greater stamp) is recorded, as for fields.
    static func applyAcknowledgements(_ ops: [Op], to conflicts: [ConflictEntry]) -> [ConflictEntry] {
        var byID: [String: ConflictEntry] = [:]
        for c in conflicts {
            guard let held = byID[c.id] else { byID[c.id] = c; continue }
            switch (held.closedBy, c.closedBy) {
            case (nil, .some): byID[c.id] = c
            case let (a?, b?) where a.stamp < b.stamp: byID[c.id] = c
            default: break
            }
        }
        var latestAck: [String: ConflictSide] = [:]
        for op in ops {   // ascending stamps: the last one seen is the latest
            if case let .acknowledge(_, id) = op.body {
                latestAck[id] = ConflictSide(stamp: op.stamp, author: op.author, value: .null)
            }
        }
        for (id, ack) in latestAck {
            guard var entry = byID[id], entry.state == .open else { continue }
            entry.state = .acknowledged
            entry.closedBy = ack
            byID[id] = entry
        }
        return byID.values.sorted { $0.id < $1.id }
    }
}
