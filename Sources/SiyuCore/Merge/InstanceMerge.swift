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
///
/// A merge has two steps: ops are *ingested* in ascending stamp order (each op costs the same
/// whatever the instance's history: no op is revisited), then the state is *materialised* (rows and
/// conflicts, from the fields, elements and the few facts ingesting kept). A local edit's ops have
/// greater stamps than every op held, so `adding(_:catalog:)` ingests just them into a kept state
/// and gives what merging every op again would give, at a cost independent of the history.
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
    /// Order: the stamps of every line edit (add, remove, field write of a line) held, ascending —
    /// exactly what a payment made from this state saw of the lines.
    public private(set) var lineEdits: [Stamp] = []
    /// Tag / tag group: the merged definition, for the catalog.
    public private(set) var tagDefinition: TagDefinition?
    public private(set) var tagGroupDefinition: TagGroupDefinition?
    /// What ingesting gathered beyond fields and elements.
    private var facts = Facts()

    /// The current value of a field (`.null` when never written).
    public func value(_ target: Target, _ field: String) -> Value { registers[FieldKey(target, field)]?.value ?? .null }
    /// The writes a new write of this field must name.
    public func heads(_ target: Target, _ field: String) -> [Stamp] { registers[FieldKey(target, field)]?.headStamps ?? [] }
    /// The live adds of a set element (what a remove must name).
    public func liveAdds(_ target: Target) -> [Stamp] { elements[target]?.liveStamps ?? [] }
    public func isPresent(_ target: Target) -> Bool { elements[target]?.isPresent ?? false }
    /// Whether the instance exists at all (has a main row).
    public var exists: Bool { !(rows[Table.tables(of: instance.kind)[0]] ?? []).isEmpty }
    /// Whether the state was merged from at least one op.
    public var hasOps: Bool { facts.last != nil }
    /// Everything a deletion must name: all field heads and live adds of the instance.
    public var observedForDelete: [Stamp] {
        var out = registers.values.flatMap(\.headStamps)
        out += elements.values.flatMap(\.liveStamps)
        return out.sorted()
    }

    init(instance: InstanceRef) { self.instance = instance }

    /// The state of an instance with no ops: no rows, no conflicts.
    public static func empty(_ instance: InstanceRef) -> InstanceState { InstanceState(instance: instance) }

    /// The rows and conflicts alone (shared, not copied): what the tables hold for this state, to
    /// compare a later state of the instance with.
    public var output: InstanceState {
        var out = InstanceState(instance: instance)
        out.rows = rows
        out.conflicts = conflicts
        return out
    }

    /// What ingesting ops keeps, besides fields and elements: enough to materialise without
    /// looking at the ops again.
    private struct Facts: Sendable {
        /// The greatest stamp ingested.
        var last: Stamp?
        /// Every add, ascending by stamp, with its element (a remove names adds by stamp).
        var adds: [(stamp: Stamp, target: Target, author: String)] = []
        /// Adds named by a remove that were greater than it (faulty peers only): dead on arrival.
        var removedAhead: Set<Stamp> = []
        /// While adding to a kept state: the fields and elements that changed (a full merge
        /// refreshes them all instead, without the cost of tracking).
        var tracksChanges = false
        var dirtyRegisters: Set<FieldKey> = []
        var dirtyElements: Set<Target> = []
        /// Order: status moves, and how many were payments.
        var moves: [Op] = []
        var payments = 0
        /// Order: line edits a payment froze (full merges only: see `merge(_:canonical:catalog:)`).
        var frozen: [ConflictEntry] = []
        /// Customer: deletions (the latest one, and everything they named).
        var lastDelete: ConflictSide?
        var deleteObserved: Set<Stamp> = []
        /// Customer: points awarded and redeemed (each saturating at Int64.max), the latest redemption.
        var awarded: Int64 = 0
        var redeemed: Int64 = 0
        var pointOps = 0
        var lastRedeem: ConflictSide?
        /// The latest acknowledgement of each conflict id.
        var acks: [String: ConflictSide] = [:]
        /// Customer: tag adds naming two or more removed adds (resolutions of exclusive-group conflicts).
        var tagResolvers: [Op] = []
        /// Tag / tag group: per origin, the greatest op a deletion had seen.
        var deletionSeen: [NodeID: Stamp] = [:]
    }

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

    /// Merges ops already in the form `canonicalOps` returns. Equal to
    /// `merge(instance, ops: all, catalog:)` for such input.
    public static func merge(_ instance: InstanceRef, canonical all: [Op], catalog: TagCatalog) -> InstanceState {
        var state = InstanceState(instance: instance)
        // A payment freezes the line edits it did not name, whatever their stamps: which ones is
        // known only from every payment, so they are found before anything is ingested.
        var frozen = Set<Stamp>()
        if instance.kind == .order {
            let (stamps, entries) = InstanceState.freezeLineEdits(all)
            frozen = stamps
            state.facts.frozen = entries
        }
        for op in all { state.ingest(op, intoSetsAndFields: !frozen.contains(op.stamp)) }
        state.materialize(catalog: catalog)
        return state
    }

    /// Adds `ops` to this state: ops of this instance whose stamps are greater than every stamp
    /// held, in ascending order (a local edit's). The result equals merging all the ops again.
    /// Returns false, changing nothing, where that cannot be done by adding (the tag library, and
    /// orders with a payment, whose freeze depends on every op): then merge from all the ops.
    /// (Keep the state uniquely referenced while adding, or it is copied whole first.)
    public mutating func add(_ ops: [Op], catalog: TagCatalog) -> Bool {
        guard instance.kind != .tag && instance.kind != .tagGroup, facts.payments == 0 else { return false }
        var previous = facts.last
        for op in ops {
            guard op.instance == instance, previous.map({ $0 < op.stamp }) ?? true, !op.isPayment else { return false }
            previous = op.stamp
        }
        facts.tracksChanges = true
        for op in ops { ingest(op, intoSetsAndFields: true) }
        materialize(catalog: catalog)
        facts.tracksChanges = false
        return true
    }

    /// Takes one op, greater than every op taken before. A frozen line edit is recorded but not
    /// applied to its line.
    private mutating func ingest(_ op: Op, intoSetsAndFields live: Bool) {
        facts.last = op.stamp
        if instance.kind == .order && op.body.target.entity == .orderLine { lineEdits.append(op.stamp) }
        switch op.body {
        case let .write(target, field, value, overwrites):
            guard live else { break }
            let key = FieldKey(target, field)
            registers[key, default: RegisterState(target: target, field: field)]
                .ingest(RegisterWrite(stamp: op.stamp, author: op.author, value: value, overwrites: overwrites))
            if facts.tracksChanges { facts.dirtyRegisters.insert(key) }
        case let .add(target, removes):
            guard live else { break }
            facts.adds.append((op.stamp, target, op.author))
            if facts.tracksChanges { facts.dirtyElements.insert(target) }
            remove(removes, by: op.stamp)
            if facts.removedAhead.remove(op.stamp) == nil && !removes.contains(op.stamp) {
                elements[target, default: ElementState()].insert(ElementAdd(stamp: op.stamp, author: op.author))
            } else if elements[target] == nil {
                elements[target] = ElementState()
            }
            if target.entity == .customerTag && removes.count >= 2 { facts.tagResolvers.append(op) }
        case let .remove(target, removes):
            guard live else { break }
            if elements[target] == nil { elements[target] = ElementState() }
            remove(removes, by: op.stamp)
        case let .status(_, from, to, _):
            facts.moves.append(op)
            if !from.isPaidOrLater && to.isPaidOrLater { facts.payments += 1 }
        case let .points(_, delta):
            facts.pointOps += 1
            func plus(_ sum: Int64, _ d: UInt64) -> Int64 {
                let (s, overflow) = sum.addingReportingOverflow(Int64(clamping: d))
                return overflow ? .max : s
            }
            if delta > 0 {
                facts.awarded = plus(facts.awarded, delta.magnitude)
            } else {
                facts.redeemed = plus(facts.redeemed, delta.magnitude)
                facts.lastRedeem = ConflictSide(stamp: op.stamp, author: op.author, value: .int(delta))
            }
        case let .deleteCustomer(_, observed):
            facts.lastDelete = ConflictSide(stamp: op.stamp, author: op.author, value: .text("deleted"))
            facts.deleteObserved.formUnion(observed)
        case let .acknowledge(_, id):
            facts.acks[id] = ConflictSide(stamp: op.stamp, author: op.author, value: .null)   // ascending: the latest stays
        case let .tagDeletion(_, seen):
            for s in seen where facts.deletionSeen[s.node].map({ s > $0 }) ?? true { facts.deletionSeen[s.node] = s }
        }
    }

    /// Removes the adds named by an op with stamp `by`: earlier ones now, later ones on arrival.
    private mutating func remove(_ stamps: [Stamp], by: Stamp) {
        for s in stamps {
            if s < by {
                guard let i = addIndex(of: s) else { continue }
                let target = facts.adds[i].target
                elements[target]?.remove(s)
                if facts.tracksChanges { facts.dirtyElements.insert(target) }
            } else if s > by {
                facts.removedAhead.insert(s)
            }
        }
    }

    /// Where the add with this stamp is in `facts.adds` (binary search: adds ascend by stamp).
    private func addIndex(of stamp: Stamp) -> Int? {
        var lo = 0, hi = facts.adds.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if facts.adds[mid].stamp < stamp { lo = mid + 1 } else { hi = mid }
        }
        return lo < facts.adds.count && facts.adds[lo].stamp == stamp ? lo : nil
    }

    // MARK: - Materialising

    /// Rows and conflicts from the fields, elements and facts.
    private mutating func materialize(catalog: TagCatalog) {
        if facts.tracksChanges {
            for key in facts.dirtyRegisters { registers[key]?.finish() }
            for target in facts.dirtyElements { elements[target]?.finish() }
            facts.dirtyRegisters = []
            facts.dirtyElements = []
        } else {
            // By index, so the dictionaries are changed in place (iterating `keys` would hold a
            // second reference and copy them).
            var r = registers.startIndex
            while r != registers.endIndex { registers.values[r].finish(); registers.formIndex(after: &r) }
            var e = elements.startIndex
            while e != elements.endIndex { elements.values[e].finish(); elements.formIndex(after: &e) }
        }
        rows = [:]
        var conflicts = facts.frozen
        for reg in registers.values { conflicts += reg.conflicts }
        switch instance.kind {
        case .store, .staff, .tagGroup, .tag:
            materializeSimple()
        case .customer:
            materializeCustomer(catalog: catalog, conflicts: &conflicts)
        case .groupChat:
            materializeChat(conflicts: &conflicts)
        case .order:
            materializeOrder(conflicts: &conflicts)
        }
        self.conflicts = InstanceState.applyAcknowledgements(facts.acks, to: conflicts)
    }

    // MARK: Simple records (store, staff, tag group, tag)

    private mutating func materializeSimple() {
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
        if instance.kind == .tag {
            tagDefinition = TagDefinition(id: instance.id, groupID: value(target, "group_id").textValue,
                                          name: value(target, "name").textValue, deletedBy: deletion(), deletionSeen: facts.deletionSeen)
        } else if instance.kind == .tagGroup {
            tagGroupDefinition = TagGroupDefinition(id: instance.id, name: value(target, "name").textValue,
                                                    exclusive: value(target, "exclusive").boolValue ?? false,
                                                    deletedBy: deletion(), deletionSeen: facts.deletionSeen)
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

    private mutating func materializeCustomer(catalog: TagCatalog, conflicts: inout [ConflictEntry]) {
        let id = instance.id
        let customer = Target(.customer, id)
        isDeleted = facts.lastDelete != nil
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
        conflicts += closedExclusiveConflicts(catalog: catalog)
        if !tagRows.isEmpty { rows[.customerTags] = tagRows.sorted { ($0[1].textValue ?? "") < ($1[1].textValue ?? "") } }

        // Points: a counter; a merged balance below zero is an overdraft. Each sum saturates at
        // Int64.max (it only grows, so the result does not depend on order) and the balance of two
        // non-negative sums cannot overflow: no trap, no wrap, even on deltas validation refuses.
        if facts.pointOps > 0 {
            pointsBalance = facts.awarded - facts.redeemed
            rows[.points] = [[.text(id), .int(pointsBalance), .int(facts.awarded), .int(facts.redeemed)]]
            if pointsBalance < 0, let last = facts.lastRedeem {
                conflicts.append(ConflictEntry(rule: .overdraft, target: Target(.points, id), winner: nil, loser: last))
            }
        }

        // Tombstone: edits its deletion did not observe are concurrent with it.
        if let deletion = facts.lastDelete {
            let observed = facts.deleteObserved
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
        [.text(instance.id), .text(tag), .text(add.author), .text(add.stamp.node), .int(Int64(clamping: add.stamp.hlc.millis))]
    }

    /// An exclusive-group add that removed adds of two or more tags of its group resolved a
    /// conflict its author saw: the greatest removed add was the winner, the other tags lost. Of
    /// two resolutions of one entry, the later is recorded — also when, in the later one's view,
    /// the entry's loser had the winning tag (it then resolved that conflict again, the other way:
    /// as `RegisterState` does for fields).
    private func closedExclusiveConflicts(catalog: TagCatalog) -> [ConflictEntry] {
        var entries: [String: ConflictEntry] = [:]
        for op in facts.tagResolvers {   // ascending: a later resolver of the same entry replaces an earlier one
            guard case let .add(t, removes) = op.body, let info = catalog.info(forTag: t.sub), info.exclusive,
                  let group = info.groupID else { continue }
            let seenAdds = removes.compactMap { s -> (tag: String, add: ElementAdd)? in
                guard let i = addIndex(of: s) else { return nil }
                let a = facts.adds[i]
                return (a.target.sub, ElementAdd(stamp: a.stamp, author: a.author))
            }
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
                if let held = entries[entry.id], let a = held.closedBy, op.stamp < a.stamp { continue }
                entries[entry.id] = entry
            }
            // Adds that an earlier resolution had closed as losers, against a winner this one also
            // removed — adds of the winning tag, and earlier adds of a losing tag than the one this
            // resolution records an entry for: this one is recorded on them.
            for a in seenAdds where a.add.stamp != top.add.stamp && (a.tag == top.tag || latestPerTag[a.tag]?.stamp != a.add.stamp) {
                let id = ConflictEntry.makeID(rule: .exclusiveTagGroup, target: Target(.customerTag, instance.id, a.tag),
                                              field: "", loser: a.add.stamp)
                guard var e = entries[id], let winner = e.winner, removes.contains(winner.stamp) else { continue }
                e.state = .text(t.sub) == winner.value ? .acknowledged : .overridden
                e.closedBy = ConflictSide(stamp: op.stamp, author: op.author, value: .text(t.sub))
                entries[id] = e
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

    /// The line edits a payment froze (with their conflict entries). A line edit applies when there
    /// is no payment or some payment names it: a payment names exactly the line edits its author
    /// held (an explicit set, not a per-origin bound, so a payer that held a later op of an origin
    /// but not an earlier one did not see the earlier one — whatever order the ops arrived in).
    static func freezeLineEdits(_ ops: [Op]) -> (frozen: Set<Stamp>, entries: [ConflictEntry]) {
        let payments = ops.filter(\.isPayment)
        guard let firstPayment = payments.first else { return ([], []) }
        var seenByAPayment = Set<Stamp>()
        for p in payments { if case let .status(_, _, _, seen) = p.body { seenByAPayment.formUnion(seen) } }
        var frozen = Set<Stamp>(), entries: [ConflictEntry] = []
        let paymentSide: ConflictSide = {
            if case let .status(_, _, to, _) = firstPayment.body {
                return ConflictSide(stamp: firstPayment.stamp, author: firstPayment.author, value: .text(to.name))
            }
            return ConflictSide(stamp: firstPayment.stamp, author: firstPayment.author, value: .null)
        }()
        for op in ops {
            let target = op.body.target
            guard target.entity == .orderLine, !seenByAPayment.contains(op.stamp) else { continue }
            var field = "", attempted = Value.null
            switch op.body {
            case let .write(_, f, v, _): field = f; attempted = v
            case .add: attempted = .text("add line")
            case .remove: attempted = .text("remove line")
            default: break
            }
            frozen.insert(op.stamp)
            entries.append(ConflictEntry(rule: .editAfterPayment, target: target, field: field, winner: paymentSide,
                                         loser: ConflictSide(stamp: op.stamp, author: op.author, value: attempted)))
        }
        return (frozen, entries)
    }

    private mutating func materializeOrder(conflicts: inout [ConflictEntry]) {
        let order = Target(.order, instance.id)
        let moves = facts.moves
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
    static func applyAcknowledgements(_ acks: [String: ConflictSide], to conflicts: [ConflictEntry]) -> [ConflictEntry] {
        var byID: [String: ConflictEntry] = [:]
        for c in conflicts {
            guard let held = byID[c.id] else { byID[c.id] = c; continue }
            switch (held.closedBy, c.closedBy) {
            case (nil, .some): byID[c.id] = c
            case let (a?, b?) where a.stamp < b.stamp: byID[c.id] = c
            default: break
            }
        }
        for (id, ack) in acks {
            guard var entry = byID[id], entry.state == .open else { continue }
            entry.state = .acknowledged
            entry.closedBy = ack
            byID[id] = entry
        }
        return byID.values.sorted { $0.id < $1.id }
    }
}

extension Op {
    /// Whether the op pays an order: a status move from before `paid` to `paid` or later.
    public var isPayment: Bool {
        if case let .status(_, from, to, _) = body { return !from.isPaidOrLater && to.isPaidOrLater }
        return false
    }
}
