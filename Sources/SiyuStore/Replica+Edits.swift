import SiyuCore
import SiyuSQLite

/// Local edits. Each public method is one SQLite transaction that writes the ops to the op log,
/// re-merges the instance and rewrites its rows; a rule broken anywhere refuses the whole edit and
/// writes nothing. `by` is the staff member (WeCom userid) making the edit.
extension Replica {

    // MARK: The edit pipeline

    /// This node's next ops for `bodies`: each stamped by the clock, numbered in turn, validated,
    /// and checked together against the write rights of a store (`checkOwnRights`). Advances the
    /// clock and the numbering; a caller whose transaction fails restores both (as `edit` does).
    func issue(_ bodies: [(OpBody, String)]) throws -> [Op] {
        var ops: [Op] = []
        ops.reserveCapacity(bodies.count)
        for (body, author) in bodies {
            let op = Op(stamp: Stamp(hlc: clock.tick(wallMillis: wallClock()), node: node), seq: nextSeq, role: role, author: author, body: body)
            try op.validate()
            nextSeq += 1
            ops.append(op)
        }
        try checkOwnRights(ops)
        return ops
    }

    /// Builds ops for one instance from its current merged state and commits them.
    func edit(_ instance: InstanceRef, _ build: (InstanceState) throws -> [OpBody], by staff: String) throws {
        try edit(locating: { instance }, doing: "editing \(instance)", build, by: staff)
    }

    /// As `edit(_:_:by:)`, with the instance found by `locate` inside the write transaction: an
    /// edit whose target depends on what the file says (a conflict's instance, its state) reads
    /// and writes under one `BEGIN IMMEDIATE`, so of many processes racing for it exactly one
    /// sees the state it checked.
    func edit(locating locate: () throws -> InstanceRef, doing: String, _ build: (InstanceState) throws -> [OpBody], by staff: String) throws {
        guard !isLoadingSnapshot else {
            throw ReplicaError.invalid("a snapshot load is open on this replica; an edit now would be part of its transaction",
                                       "edit after finishSnapshotLoad or abandonSnapshotLoad")
        }
        let saved = (clock, nextSeq)
        do {
            let written = try ReplicaError.wrap(doing) {
                try transaction { () throws -> Int in
                    let state = try takeInstance(try locate())
                    let bodies = try build(state)
                    guard !bodies.isEmpty else { remember(state); return 0 }
                    let ops = try issue(bodies.map { ($0, staff) })
                    try commit(ops, .localEdit(consume state))
                    return ops.count
                }
            }
            opsWrittenByLastEdit = written
        } catch {
            (clock, nextSeq) = saved
            forgetCaches()
            throw error
        }
    }

    /// Runs `body` (reads of the tag library, then an `edit`) in one write transaction, so what
    /// it read is what the edit is checked against even with other processes writing the file.
    /// Restores the clock and the numbering if the transaction fails after the edit.
    func atomically<T>(_ body: () throws -> T) throws -> T {
        guard !db.isInTransaction else { return try body() }
        let saved = (clock, nextSeq)
        do {
            return try ReplicaError.wrap("editing") {
                try transaction {
                    try dropCachesIfChangedElsewhere()
                    return try body()
                }
            }
        } catch {
            (clock, nextSeq) = saved
            forgetCaches()
            throw error
        }
    }

    /// Write ops for the fields that change, each naming the heads it overwrites.
    func writes(_ target: Target, _ fields: [String: Value], in state: InstanceState) throws -> [OpBody] {
        var out: [OpBody] = []
        // The field that decides the instance's home first (SPEC section 7, "Scope"): a hub judges
        // a new instance by the home its PUSH gives it, and a node may split one edit's ops over
        // two PUSHes, so the first PUSH holding any op of a new instance holds that write.
        let deciding = InstanceHome.decidingFieldName(of: target.entity)
        for (field, value) in fields.sorted(by: { ($0.key == deciding ? 0 : 1, $0.key) < ($1.key == deciding ? 0 : 1, $1.key) }) {
            guard let spec = target.entity.field(named: field) else {
                throw ReplicaError.invalid("\(target.entity.name) has no field '\(field)'",
                                           "fields are: \(target.entity.fields.map(\.name).joined(separator: ", "))")
            }
            try ReplicaError.wrap("checking \(field)") { try spec.validate(value, on: target.entity) }
            let heads = Replica.named(state.heads(target, field))
            if state.value(target, field) == value && heads.count <= 1 && !heads.isEmpty { continue }
            if heads.isEmpty && value == .null { continue }
            out.append(.write(target, field: field, value: value, overwrites: heads))
        }
        return out
    }

    /// What an op names of `stamps` (ascending): all of them, or past `cap` the greatest `cap`
    /// (`Op.maxNamedStamps` for heads and adds), so the op always passes validation and fits a
    /// frame. The rest stay what they were — heads stay heads (open conflicts, named by the next
    /// edits), adds stay live — on every replica alike, since the op says exactly what it named.
    static func named(_ stamps: [Stamp], cap: Int = Op.maxNamedStamps) -> [Stamp] {
        stamps.count <= cap ? stamps : Array(stamps.suffix(cap))
    }

    func requireHQ(_ what: String) throws {
        guard role == .hq else {
            throw ReplicaError.invalid("node '\(node)' is a store and cannot \(what)", "only HQ writes the tag library")
        }
    }

    func requireLiveCustomer(_ state: InstanceState) throws {
        guard state.exists else {
            throw ReplicaError.notFound(what: "customer '\(state.instance.id)'", hint: "list customers with: siyu customers --db FILE; create one with: siyu customer add")
        }
        if state.isDeleted {
            throw ReplicaError.invalid("customer '\(state.instance.id)' is deleted", "a deleted customer cannot be edited")
        }
    }

    // MARK: Stores and staff

    public func defineStore(_ id: String, name: String, region: String? = nil, by staff: String = "") throws {
        try edit(InstanceRef(.store, id), { try self.writes(Target(.store, id), ["name": .text(name), "region": region.map(Value.text) ?? .null], in: $0) }, by: staff)
    }

    public func defineStaff(_ userid: String, name: String, storeID: String?, by staff: String = "") throws {
        try edit(InstanceRef(.staff, userid), { try self.writes(Target(.staff, userid), ["name": .text(name), "store_id": storeID.map(Value.text) ?? .null], in: $0) }, by: staff)
    }

    // MARK: Customers and follow relations

    /// Creates a customer (fields: name, gender, phone, unionid, owner_store, owner_staff). On a
    /// store node that serves a store, `owner_store` defaults to that store.
    public func createCustomer(_ id: String, _ fields: [String: Value], by staff: String) throws {
        try edit(InstanceRef(.customer, id), { state in
            if state.exists {
                throw ReplicaError.invalid("customer '\(id)' already exists", "edit it instead; see it with: siyu customers --id \(id)")
            }
            var fields = fields
            if fields["name"] == nil { fields["name"] = .text(id) }
            // A store's new customer is its own (SPEC section 7, "Scope"): without an owner it would be HQ's alone.
            if role == .store, let store, fields["owner_store"] == nil { fields["owner_store"] = .text(store) }
            return try self.writes(Target(.customer, id), fields, in: state)
        }, by: staff)
    }

    public func editCustomer(_ id: String, _ fields: [String: Value], by staff: String) throws {
        try edit(InstanceRef(.customer, id), { state in
            try self.requireLiveCustomer(state)
            return try self.writes(Target(.customer, id), fields, in: state)
        }, by: staff)
    }

    /// Creates or edits the follow relation of a customer and a staff member
    /// (fields: remark, description, add_way, createtime, state).
    public func setFollowRelation(customer: String, userid: String, _ fields: [String: Value], by staff: String) throws {
        try edit(InstanceRef(.customer, customer), { state in
            try self.requireLiveCustomer(state)
            return try self.writes(Target(.followRelation, customer, userid), fields, in: state)
        }, by: staff)
    }

    /// Makes `userid` the customer's owner, and the owner store that member's store (none when the
    /// member has no store): HQ's own transfer of a customer (WeCom's transfer_customer), read and
    /// written in one transaction.
    public func transferCustomer(_ id: String, to userid: String, by staff: String) throws {
        try edit(InstanceRef(.customer, id), { state in
            try self.requireLiveCustomer(state)
            guard let member = try self.rows(of: .staff, where: "userid", equals: userid).first else {
                throw ReplicaError.notFound(what: "staff member '\(userid)'", hint: "HQ defines staff; a customer is transferred to a known member")
            }
            return try self.writes(Target(.customer, id), ["owner_staff": .text(userid), "owner_store": member["store_id"] ?? .null], in: state)
        }, by: staff)
    }

    /// WeCom says the transfer of the customer to `takeover` failed: if the customer's owner is
    /// `takeover` (HQ set it when it started the transfer), the owner and owner store go back to
    /// what that write overwrote. Otherwise nothing changes. Read and written in one transaction.
    public func revertFailedTransfer(_ id: String, takeover: String, by staff: String) throws {
        let ref = InstanceRef(.customer, id)
        try edit(ref, { state in
            guard state.exists, !state.isDeleted else { return [] }
            let target = Target(.customer, id)
            guard state.value(target, "owner_staff") == .text(takeover) else { return [] }
            let ops = try self.loadOps(ref)
            func previous(_ field: String) -> Value {
                let heads = Set(state.heads(target, field))
                for op in ops where heads.contains(op.stamp) {
                    guard case let .write(_, _, _, overwrites) = op.body else { continue }
                    let before = Set(overwrites)
                    for old in ops.reversed() where before.contains(old.stamp) {
                        if case let .write(_, f, value, _) = old.body, f == field { return value }
                    }
                }
                return .null
            }
            return try self.writes(target, ["owner_staff": previous("owner_staff"), "owner_store": previous("owner_store")], in: state)
        }, by: staff)
    }

    public func deleteCustomer(_ id: String, by staff: String) throws {
        try edit(InstanceRef(.customer, id), { state in
            try self.requireLiveCustomer(state)
            return [.deleteCustomer(customerID: id, observed: Replica.named(state.observedForDelete, cap: Op.maxObservedStamps))]
        }, by: staff)
    }

    // MARK: Tags

    public func defineTagGroup(_ id: String, name: String, order: Int64 = 0, exclusive: Bool = false, by staff: String = "") throws {
        try requireHQ("define tag groups")
        try edit(InstanceRef(.tagGroup, id), { state in
            try self.writes(Target(.tagGroup, id), ["name": .text(name), "sort_order": .int(order),
                                                   "exclusive": .bool(exclusive), "deleted": .bool(false)], in: state)
        }, by: staff)
    }

    public func defineTag(_ id: String, group: String, name: String, order: Int64 = 0, by staff: String = "") throws {
        try requireHQ("define tags")
        try atomically { try defineTagChecked(id, group: group, name: name, order: order, by: staff) }
    }

    private func defineTagChecked(_ id: String, group: String, name: String, order: Int64, by staff: String) throws {
        let catalog = try ReplicaError.wrap("reading the tag library") { try self.catalog() }
        guard let g = catalog.groups[group], !g.isDeleted else {
            throw ReplicaError.notFound(what: "tag group '\(group)'", hint: "HQ defines the group first; list the groups with: siyu tags")
        }
        if let clash = catalog.tags.values.first(where: { $0.groupID == group && $0.name == name && $0.id != id && !$0.isDeleted }) {
            throw ReplicaError.invalid("tag name '\(name)' already exists in group '\(group)' (tag \(clash.id))",
                                       "tag names are unique within a group (WeCom 40071)")
        }
        try edit(InstanceRef(.tag, id), { state in
            try self.writes(Target(.tag, id), ["group_id": .text(group), "name": .text(name),
                                              "sort_order": .int(order), "deleted": .bool(false)], in: state)
        }, by: staff)
    }

    /// Renames a tag (HQ). The tag must exist and be live; the new name must be free in its group.
    public func renameTag(_ id: String, to name: String, by staff: String = "") throws {
        try requireHQ("rename tags")
        try atomically {
            let catalog = try ReplicaError.wrap("reading the tag library") { try self.catalog() }
            guard let tag = catalog.tags[id] else {
                throw ReplicaError.notFound(what: "tag '\(id)'", hint: "list tags with: siyu tags --db FILE")
            }
            if catalog.info(forTag: id)?.isDeleted == true {
                throw ReplicaError.invalid("tag '\(id)' was deleted", "a deleted tag cannot be renamed; define a new one with: siyu tag define")
            }
            if let clash = catalog.tags.values.first(where: { $0.groupID == tag.groupID && $0.name == name && $0.id != id && !$0.isDeleted }) {
                throw ReplicaError.invalid("tag name '\(name)' already exists in group '\(tag.groupID ?? "")' (tag \(clash.id))",
                                           "tag names are unique within a group (WeCom 40071)")
            }
            try edit(InstanceRef(.tag, id), { try self.writes(Target(.tag, id), ["name": .text(name)], in: $0) }, by: staff)
        }
    }

    public func deleteTag(_ id: String, by staff: String = "") throws {
        try requireHQ("delete tags")
        try edit(InstanceRef(.tag, id), { state in
            guard state.exists else { throw ReplicaError.notFound(what: "tag '\(id)'", hint: "list tags with: siyu tags") }
            return try self.writes(Target(.tag, id), ["deleted": .bool(true)], in: state)
                + [.tagDeletion(InstanceRef(.tag, id), seen: try self.contiguousFrontier())]
        }, by: staff)
    }

    public func deleteTagGroup(_ id: String, by staff: String = "") throws {
        try requireHQ("delete tag groups")
        try edit(InstanceRef(.tagGroup, id), { state in
            guard state.exists else { throw ReplicaError.notFound(what: "tag group '\(id)'", hint: "list tags with: siyu tags") }
            return try self.writes(Target(.tagGroup, id), ["deleted": .bool(true)], in: state)
                + [.tagDeletion(InstanceRef(.tagGroup, id), seen: try self.contiguousFrontier())]
        }, by: staff)
    }

    /// Adds a tag to a customer. In an exclusive group the same edit removes the group's other tags
    /// (as WeCom's mark_tag with add_tag and remove_tag).
    public func addTag(_ tag: String, to customer: String, by staff: String) throws {
        try atomically { try addTagChecked(tag, to: customer, by: staff) }
    }

    private func addTagChecked(_ tag: String, to customer: String, by staff: String) throws {
        let catalog = try ReplicaError.wrap("reading the tag library") { try self.catalog() }
        guard let info = catalog.info(forTag: tag) else {
            throw ReplicaError.notFound(what: "tag '\(tag)'", hint: "HQ defines tags; list them with: siyu tags")
        }
        if info.isDeleted {
            throw ReplicaError.invalid("tag '\(tag)' was deleted by HQ", "pick an active tag (siyu tags)")
        }
        try edit(InstanceRef(.customer, customer), { state in
            try self.requireLiveCustomer(state)
            let element = Target(.customerTag, customer, tag)
            var removes: [Stamp] = []
            if info.exclusive, let group = info.groupID {
                removes = Replica.liveAdds(inGroup: group, of: state, catalog: catalog)
                let others = removes.filter { !state.liveAdds(element).contains($0) }
                if state.isPresent(element) && others.isEmpty { return [] }
            } else if state.isPresent(element) {
                return []
            }
            return [.add(element, removes: removes.sorted())]
        }, by: staff)
    }

    /// Every live add of a tag of `group` on the customer (hidden exclusive losers included), sorted:
    /// what an add in an exclusive group removes in the same op.
    static func liveAdds(inGroup group: String, of state: InstanceState, catalog: TagCatalog) -> [Stamp] {
        named(state.elements.filter { $0.key.entity == .customerTag && catalog.info(forTag: $0.key.sub)?.groupID == group }
            .flatMap(\.value.liveStamps).sorted())
    }

    public func removeTag(_ tag: String, from customer: String, by staff: String) throws {
        try edit(InstanceRef(.customer, customer), { state in
            try self.requireLiveCustomer(state)
            let element = Target(.customerTag, customer, tag)
            let live = Replica.named(state.liveAdds(element))
            guard !live.isEmpty else {
                throw ReplicaError.notFound(what: "tag '\(tag)' on customer '\(customer)'", hint: "list the customer's tags with: siyu customers --id \(customer)")
            }
            return [.remove(element, removes: live)]
        }, by: staff)
    }

    // MARK: Group chats

    /// Creates a customer group (fields: name, owner, notice, capacity).
    public func createGroupChat(_ id: String, _ fields: [String: Value], by staff: String) throws {
        try edit(InstanceRef(.groupChat, id), { state in
            if state.exists { throw ReplicaError.invalid("group '\(id)' already exists", "edit it instead") }
            return try self.writes(Target(.groupChat, id), fields, in: state)
        }, by: staff)
    }

    public func editGroupChat(_ id: String, _ fields: [String: Value], by staff: String) throws {
        try edit(InstanceRef(.groupChat, id), { state in
            guard state.exists else { throw ReplicaError.notFound(what: "group '\(id)'", hint: "list groups with: siyu groups --db FILE; create one with: siyu group create") }
            return try self.writes(Target(.groupChat, id), fields, in: state)
        }, by: staff)
    }

    /// Adds a member (fields: member_type, join_time, join_scene, invitor, nickname). Refused when
    /// the roster is full; concurrent joins beyond capacity are marked overflow by the merge.
    public func addMember(_ member: String, to chat: String, _ fields: [String: Value] = [:], by staff: String) throws {
        try edit(InstanceRef(.groupChat, chat), { state in
            guard state.exists else { throw ReplicaError.notFound(what: "group '\(chat)'", hint: "list groups with: siyu groups --db FILE; create one with: siyu group create") }
            let element = Target(.groupMember, chat, member)
            var ops: [OpBody] = []
            if !state.isPresent(element) {
                let capacity = state.value(Target(.groupChat, chat), "capacity").intValue ?? InstanceState.defaultCapacity
                let count = state.elements.filter { $0.key.entity == .groupMember && $0.value.isPresent }.count
                if count >= capacity {
                    throw ReplicaError.invalid("group '\(chat)' is full (\(count) of \(capacity) members)",
                                               "remove a member first; WeCom customer groups hold at most 500")
                }
                ops.append(.add(element, removes: []))
            }
            return ops + (try self.writes(element, fields, in: state))
        }, by: staff)
    }

    public func removeMember(_ member: String, from chat: String, by staff: String) throws {
        try edit(InstanceRef(.groupChat, chat), { state in
            let element = Target(.groupMember, chat, member)
            let live = Replica.named(state.liveAdds(element))
            guard !live.isEmpty else { throw ReplicaError.notFound(what: "member '\(member)' of group '\(chat)'", hint: "list members with: siyu groups \(chat)") }
            return [.remove(element, removes: live)]
        }, by: staff)
    }

    // MARK: Orders

    /// Creates an order in status draft (fields: customer_id, store_id, staff_id, address, note).
    public func createOrder(_ id: String, _ fields: [String: Value], by staff: String) throws {
        try edit(InstanceRef(.order, id), { state in
            if state.exists { throw ReplicaError.invalid("order '\(id)' already exists", "edit it instead") }
            var fields = fields
            if role == .store, let store, fields["store_id"] == nil { fields["store_id"] = .text(store) }
            return try self.writes(Target(.order, id), fields, in: state)
        }, by: staff)
    }

    public func editOrder(_ id: String, _ fields: [String: Value], by staff: String) throws {
        try edit(InstanceRef(.order, id), { state in
            guard state.exists else { throw ReplicaError.notFound(what: "order '\(id)'", hint: "list orders with: siyu orders --db FILE; create one with: siyu order create") }
            return try self.writes(Target(.order, id), fields, in: state)
        }, by: staff)
    }

    /// Adds or changes an order line (fields: sku, qty, unit_price_cents). Refused once paid.
    public func setOrderLine(_ line: String, of order: String, _ fields: [String: Value], by staff: String) throws {
        try edit(InstanceRef(.order, order), { state in
            try self.requireOpenOrder(state)
            let element = Target(.orderLine, order, line)
            let add: [OpBody] = state.isPresent(element) ? [] : [.add(element, removes: [])]
            return add + (try self.writes(element, fields, in: state))
        }, by: staff)
    }

    public func removeOrderLine(_ line: String, of order: String, by staff: String) throws {
        try edit(InstanceRef(.order, order), { state in
            try self.requireOpenOrder(state)
            let live = Replica.named(state.liveAdds(Target(.orderLine, order, line)))
            guard !live.isEmpty else { throw ReplicaError.notFound(what: "line '\(line)' of order '\(order)'", hint: "list lines with: siyu orders \(order)") }
            return [.remove(Target(.orderLine, order, line), removes: live)]
        }, by: staff)
    }

    func requireOpenOrder(_ state: InstanceState) throws {
        guard state.exists else { throw ReplicaError.notFound(what: "order '\(state.instance.id)'", hint: "list orders with: siyu orders --db FILE; create one with: siyu order create") }
        let status = state.status ?? .draft
        if status.isPaidOrLater || status == .cancelled {
            throw ReplicaError.invalid("order '\(state.instance.id)' is \(status); its lines are frozen",
                                       "lines can change only before payment")
        }
    }

    /// Moves an order's status along the lattice.
    public func moveOrder(_ id: String, to next: OrderStatus, by staff: String) throws {
        try edit(InstanceRef(.order, id), { state in
            guard state.exists else { throw ReplicaError.notFound(what: "order '\(id)'", hint: "list orders with: siyu orders --db FILE; create one with: siyu order create") }
            let current = state.status ?? .draft
            guard current.canMove(to: next) else {
                let legal = current.legalMoves.map(\.name).joined(separator: ", ")
                throw ReplicaError.invalid("order '\(id)' cannot move from \(current) to \(next)",
                                           legal.isEmpty ? "\(current) is final" : "from \(current) it can move to: \(legal)")
            }
            // A payment names every line edit it saw (what it freezes); other moves name none.
            let paying = !current.isPaidOrLater && next.isPaidOrLater
            if paying && state.lineEdits.count > Op.maxObservedStamps {
                throw ReplicaError.invalid("order '\(id)' has \(state.lineEdits.count) line edits, more than a payment can name (\(Op.maxObservedStamps))",
                                           "split the order: a payment names every line edit it freezes")
            }
            return [.status(orderID: id, from: current, to: next, seen: paying ? state.lineEdits : [])]
        }, by: staff)
    }

    // MARK: Points

    public func awardPoints(_ amount: Int64, to customer: String, by staff: String) throws {
        guard amount > 0 else { throw ReplicaError.invalid("points to award must be positive (got \(amount))", "give a positive amount") }
        try edit(InstanceRef(.customer, customer), { state in
            try self.requireLiveCustomer(state)
            return [.points(customerID: customer, delta: amount)]
        }, by: staff)
    }

    public func redeemPoints(_ amount: Int64, from customer: String, by staff: String) throws {
        guard amount > 0 else { throw ReplicaError.invalid("points to redeem must be positive (got \(amount))", "give a positive amount") }
        guard role == .hq else { throw ReplicaError.invalid("node '\(node)' is a store and cannot redeem points", "HQ redeems points") }
        try edit(InstanceRef(.customer, customer), { state in
            try self.requireLiveCustomer(state)
            guard state.pointsBalance >= amount else {
                throw ReplicaError.invalid("customer '\(customer)' has \(state.pointsBalance) points, fewer than \(amount)", "redeem at most the balance")
            }
            return [.points(customerID: customer, delta: -amount)]
        }, by: staff)
    }

    // MARK: Conflicts

    /// Acknowledges a conflict: it stays in the log, closed, on every replica. For a field conflict
    /// this writes the winning value over every side; for an exclusive tag group it re-adds the
    /// winning tag over every side. The conflict is read, checked open and resolved in one write
    /// transaction: of concurrent resolutions (in any processes) exactly one writes.
    public func acknowledgeConflict(_ id: String, by staff: String) throws {
        try resolveConflict(id, override: false, value: nil, by: staff)
    }

    /// Overrides a conflict: the losing side (or `value`, for a field) becomes current on every
    /// replica. Only field and exclusive-tag conflicts can be overridden. Read, checked and written
    /// in one write transaction, as `acknowledgeConflict`.
    public func overrideConflict(_ id: String, with value: Value? = nil, by staff: String) throws {
        try resolveConflict(id, override: true, value: value, by: staff)
    }

    private func resolveConflict(_ id: String, override: Bool, value: Value?, by staff: String) throws {
        var found: ConflictEntry?
        try edit(locating: {
            let entry = try conflict(id)
            guard entry.state == .open else {
                throw ReplicaError.invalid("conflict \(entry.id) is already \(entry.state.rawValue); nothing was written",
                                           "only open conflicts can be resolved; see them with: siyu conflicts --db FILE --state open")
            }
            if override && entry.rule != .lastWriterWins && entry.rule != .exclusiveTagGroup {
                throw ReplicaError.invalid("conflict \(entry.id) (\(entry.rule.rawValue)) cannot be overridden",
                                           "acknowledge it (siyu ack --db FILE \(entry.id)) or edit the data itself")
            }
            found = entry
            return entry.instance
        }, doing: "resolving conflict \(id)", { state in
            let entry = found!
            let keep: Value? = override ? (entry.rule == .lastWriterWins ? (value ?? entry.loser.value) : entry.loser.value) : nil
            switch entry.rule {
            case .lastWriterWins:
                let heads = Replica.named(state.heads(entry.target, entry.field))
                let value = keep ?? state.value(entry.target, entry.field)
                if let spec = entry.target.entity.field(named: entry.field) {
                    try ReplicaError.wrap("checking the value") { try spec.validate(value, on: entry.target.entity) }
                }
                return [.write(entry.target, field: entry.field, value: value, overwrites: heads)]
            case .exclusiveTagGroup:
                let catalog = try self.catalog()
                let tag = keep?.textValue ?? entry.winner?.value.textValue ?? entry.target.sub
                guard let group = catalog.info(forTag: tag)?.groupID else { return [.acknowledge(entry.instance, conflictID: entry.id)] }
                return [.add(Target(.customerTag, entry.target.id, tag),
                             removes: Replica.liveAdds(inGroup: group, of: state, catalog: catalog))]
            default:
                return [.acknowledge(entry.instance, conflictID: entry.id)]
            }
        }, by: staff)
    }
}
