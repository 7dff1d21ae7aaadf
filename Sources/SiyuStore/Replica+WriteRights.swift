import SiyuCore
import SiyuSQLite

/// The state a write-rights check reads (`WriteRightsState`), from this replica's tables: a hub
/// checks a PUSH against its state before the PUSH, a node its own edits against its state
/// before the edit.
///
/// Guarantees: reads only (point lookups by primary key); an instance is held when the op log
/// holds any op of it.
extension Replica: WriteRightsState {
    public func heldHome(of instance: InstanceRef) throws -> InstanceHome? {
        guard try opLog.holdsOps(of: instance) else { return nil }
        let id: [SQLiteValue] = [.text(instance.id)]
        switch instance.kind {
        case .tagGroup, .tag, .store:
            return .shared
        case .customer:
            return InstanceHome.of(.customer, decidedBy: try db.cached("SELECT owner_store FROM customers WHERE customer_id = ?").scalar(id)?.stringValue)
        case .staff:
            return InstanceHome.of(.staff, decidedBy: try db.cached("SELECT store_id FROM staff WHERE userid = ?").scalar(id)?.stringValue)
        case .order:
            return InstanceHome.of(.order, decidedBy: try db.cached("SELECT store_id FROM orders WHERE order_id = ?").scalar(id)?.stringValue)
        case .groupChat:
            let owner = try db.cached("SELECT owner FROM group_chats WHERE chat_id = ?").scalar(id)?.stringValue
            return InstanceHome.of(.groupChat, decidedBy: try owner.flatMap { try store(ofStaff: $0) })
        }
    }

    public func departure(of instance: InstanceRef, from store: String) throws -> ScopeDeparture? {
        try hubLog.departure(of: instance, from: store)
    }

    /// The clock of the instance's earliest op held — or dropped by compaction, which keeps it.
    public func earliestHeldClock(of instance: InstanceRef) throws -> HLC? {
        let held = try opLog.earliestClock(of: instance)
        guard let dropped = try hubLog.firstClock(of: instance) else { return held }
        return held.map { min($0, dropped) } ?? dropped
    }

    public func store(ofStaff userid: String) throws -> String? {
        try db.cached("SELECT store_id FROM staff WHERE userid = ?").scalar([.text(userid)])?.stringValue
    }

    /// The first write-rights breach (`WriteRights.rules`) of `op`, one of the batch `check`
    /// holds, against this replica's state before the batch; nil if it breaks none.
    func rightsRefusal(of op: Op, in check: WriteCheck) throws -> OpRefusal? {
        try rightsBreach(of: op, in: check)?.refusal
    }

    /// `rightsRefusal` with the rule breached.
    func rightsBreach(of op: Op, in check: WriteCheck) throws -> (refusal: OpRefusal, rule: WriteRule)? {
        guard check.writer.role == .store, let (rule, message) = try WriteRights.breach(op, check) else { return nil }
        let store = check.writer.store.map { "store \(IdentifierRule.printable($0))" } ?? "a store"
        return (OpRefusal(.permission, origin: op.origin, seq: op.seq,
                          message: "node \(IdentifierRule.printable(op.origin)) (\(store)) \(message) (rule \(rule.name))", hint: rule.hint),
                rule)
    }

    /// Refuses this node's own new ops that break a write right, before they are stored, so
    /// that a clerk learns of it at edit time rather than from a quarantine.
    func checkOwnRights(_ ops: [Op]) throws {
        guard role == .store else { return }
        let check = WriteCheck(writer: Writer(role: role, store: store), state: self, batch: ops, windowMillis: clock.maxDriftMillis)
        for op in ops {
            if let refusal = try rightsRefusal(of: op, in: check) { throw ReplicaError.invalid(refusal.message, refusal.hint) }
        }
    }
}
