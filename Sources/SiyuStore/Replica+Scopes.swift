import SiyuCore
import SiyuSQLite

/// A hub's scopes (SPEC section 7, "Scope"): the homes of its logged ops (`hub_log_homes`,
/// layout 6), a store's reads of the log, snapshot and digest restricted to its scope.
///
/// Guarantees:
/// - every op the hub logs has one `hub_log_homes` row per home its instance had when it was
///   logged (before and after the PUSH, when the PUSH moved it) that is shared or a store's, in
///   the same transaction as its log position;
/// - a store's read of the log costs the ops of its scope after the cursor (two index ranges),
///   not a walk of the log;
/// - a store's snapshot and digest cover exactly the instances whose home is shared or its store,
///   and read them through the indexes by store of layout 8 (the store's instance list, then each
///   instance's ops by key): their cost is the store's rows and the shared ones, not every store's.
extension Replica {
    /// The `hub_log_homes` key of a home: '' for shared, the store id for a store's, nil for
    /// HQ's alone (not indexed: HQ reads the whole log).
    static func homeKey(_ home: InstanceHome?) -> String? {
        switch home {
        case .shared?: return ""
        case let .store(id)?: return id
        case .hq?, nil: return nil
        }
    }

    /// The homes the instances of `ops` have before they are stored (none for new instances).
    func homes(of ops: [Op]) throws -> [InstanceRef: InstanceHome] {
        var seen = Set<InstanceRef>()
        var out: [InstanceRef: InstanceHome] = [:]
        for op in ops where seen.insert(op.instance).inserted {
            if let home = try heldHome(of: op.instance) { out[op.instance] = home }
        }
        return out
    }

    /// Records the homes of `ops`, just given log positions: their instance's home now (after
    /// the ops were merged) and, where it differs, the one in `before`. An instance that moved
    /// (a transfer) is recorded as entering its new store's scope and leaving its old one's; a
    /// staff member who moved takes the group chats they own along.
    ///
    /// `pushedBy`, the store of the node that pushed them (nil: HQ or a store registered without
    /// one): its ops are logged in that store's range too, whatever their instance's home — a
    /// store's own ops are in its scope (SPEC section 7, "Download"), and a node recovering its own
    /// ops after its file went back ("Identity") must find its late edits of an instance that left.
    func recordLogHomes(of ops: [Op], before: [InstanceRef: InstanceHome], pushedBy store: String? = nil) throws {
        guard !ops.isEmpty else { return }
        var after: [InstanceRef: InstanceHome] = [:]
        var moved: [InstanceRef: Int64] = [:]
        // The homes the PUSH's own writes of the deciding field take an instance through, in PUSH
        // order: a store it enters and leaves within the PUSH (HQ pushing again a creation and
        // the transfer that followed, after the hub's file went back) left it at that write,
        // which is logged in that store's range and recorded as its exit.
        var passing: [InstanceRef: (home: InstanceHome, at: Int64)] = [:]
        var transits: [(instance: InstanceRef, store: String, at: Int64)] = []
        // The stores those writes took an instance out of, and the writes that brought it back
        // into one of them: a node of that store pulling the PUSH's range a CHANGES at a time drops
        // the instance at the first (SPEC section 7) and would get only the ops after the second.
        var left: [InstanceRef: Set<String>] = [:]
        var reentries: [(instance: InstanceRef, store: String, at: Int64)] = []
        for op in ops {
            let now: InstanceHome
            if let known = after[op.instance] { now = known } else {
                now = try heldHome(of: op.instance) ?? .hq
                after[op.instance] = now
            }
            guard let at = try hubLog.position(origin: op.origin, seq: op.seq) else { continue }
            var keys = Set<String>()
            if let key = Replica.homeKey(now) { keys.insert(key) }
            // The home before this op, in PUSH order: a store the PUSH's own transfer took the
            // instance out of gets that write and the ops before it, not those after — a node of
            // that store drops the instance at the transfer, and an op after it alone would bring
            // the instance back to it as its own (simulator seed 5734: a CHANGES ended between the
            // transfer's two writes, owner_store and owner_staff).
            if let key = Replica.homeKey(passing[op.instance]?.home ?? before[op.instance]) { keys.insert(key) }
            if let store { keys.insert(store) }
            for key in keys { try hubLog.logHome(key, at: at) }
            if let old = before[op.instance], old != now { moved[op.instance] = max(moved[op.instance] ?? 0, at) }
            if let decided = try homeDecided(by: op) {
                let current = passing[op.instance]?.home ?? before[op.instance]
                if case let .store(store)? = current, decided != current {
                    transits.append((op.instance, store, at))
                    left[op.instance, default: []].insert(store)
                }
                if case let .store(store) = decided, decided != current, left[op.instance]?.contains(store) == true {
                    reentries.append((op.instance, store, at))
                }
                passing[op.instance] = (decided, at)
            }
        }
        // A store the PUSH's last deciding write names that the merge does not keep (a later write
        // the hub holds wins: a store's creation pushed again after HQ's transfer of it) lost it there.
        for (instance, last) in passing {
            if case let .store(store) = last.home, after[instance] != last.home { transits.append((instance, store, last.at)) }
        }
        // Such a store may hold the instance from an earlier history (its file, or the hub's, went
        // back): it is told as of any move out of its scope — the write is in its range, the
        // instance's ops come with its next snapshot (an entry makes its next PULL from before it
        // one of reason 1, which carries the instances that left), and its late edits are judged.
        for transit in transits where before[transit.instance] != .store(transit.store) && after[transit.instance] != .store(transit.store) {
            try hubLog.logHome(transit.store, at: transit.at)
            try hubLog.recordEntry(into: transit.store, at: transit.at)
            try hubLog.recordExit(of: transit.instance, from: transit.store, at: transit.at)
        }
        // A store the instance left and came back to within the PUSH, and holds now: its scope is
        // recorded as changed at the write that brought it back, so its nodes that pull from
        // before it get a snapshot of reason 1 (every op of the instance), not the CHANGES in which
        // they would drop it and then get only the ops after that write.
        for reentry in reentries where after[reentry.instance] == .store(reentry.store) {
            try hubLog.recordEntry(of: reentry.instance, into: reentry.store, at: reentry.at)
        }
        for (instance, at) in moved.sorted(by: { $0.key < $1.key }) {
            guard let old = before[instance], let now = after[instance] else { continue }
            try recordMove(instance, from: old, to: now, at: at)
            if instance.kind == .staff {
                for chat in try db.cached("SELECT chat_id FROM group_chats WHERE owner = ?").rows([.text(instance.id)]).compactMap({ $0[0].stringValue }) {
                    try recordMove(InstanceRef(.groupChat, chat), from: old, to: now, at: at)
                }
            }
        }
    }

    /// The home `op` gives its instance if it writes the field that decides it (a group chat's
    /// owner by the store of that staff member, as held); nil for any other op.
    private func homeDecided(by op: Op) throws -> InstanceHome? {
        guard case let .write(target, field, value, _) = op.body, target.instance == op.instance,
              field == InstanceHome.decidingFieldName(of: target.entity) else { return nil }
        var named: String?
        if case let .text(s) = value { named = s }
        if op.instance.kind == .groupChat { named = try named.flatMap { try store(ofStaff: $0) } }
        return InstanceHome.of(op.instance.kind, decidedBy: named)
    }

    /// Records that `instance` moved between homes at log position `at`: it entered the new
    /// store's scope (whose next PULL from before `at` gets a snapshot of reason 1) and left the
    /// old store's (whose late edits of it `ScopeDeparture` judges).
    private func recordMove(_ instance: InstanceRef, from old: InstanceHome, to now: InstanceHome, at: Int64) throws {
        if case let .store(store) = now { try hubLog.recordEntry(of: instance, into: store, at: at) }
        if case let .store(store) = old { try hubLog.recordExit(of: instance, from: store, at: at) }
    }

    /// What a PULL of a node of `store` from `cursor` finds, reading only (a hub's reader
    /// connection): whether an instance entered the store's scope after `cursor`, and whether a
    /// move out of its scope at or before `cursor` is not yet recorded as seen by the store (then
    /// the writer records it: `recordScopeSeen`). Two index probes.
    public func scopeChanges(of store: String, from cursor: UInt64) throws -> (entered: Bool, unseenExits: Bool) {
        try ReplicaError.wrap("reading the scope changes of store \(IdentifierRule.printable(store))") {
            let position = Int64(clamping: cursor)
            return (try hubLog.hasEntry(into: store, after: position), try hubLog.hasUnseenExit(from: store, through: position))
        }
    }

    /// Records that a node of `store` pulled from `cursor` at hub wall time `at`: the moves out
    /// of its scope up to `cursor` are seen from then on (late edits of those instances are judged
    /// against `at`, SPEC section 7, "Transfers"). A move already seen keeps its first time.
    public func recordScopeSeen(of store: String, upTo cursor: UInt64, at: UInt64) throws {
        try ReplicaError.wrap("recording a PULL of store \(IdentifierRule.printable(store))") {
            try transaction {
                try hubLog.markExitsSeen(from: store, through: Int64(clamping: cursor), at: Int64(clamping: at))
            }
        }
    }

    // MARK: - A store node's side

    /// Drops from a store node's replica the instances of `candidates` (all it holds, for nil)
    /// whose home is no longer shared or its store (SPEC section 7, "Transfers"): their rows and
    /// conflicts, and the ops of other origins; its own ops stay (its outbox and numbering). A
    /// staff member who left takes the group chats they own along. Returns how many it dropped.
    /// Does nothing on HQ or on a store node that records no store. With nil, `rowless` are
    /// judged too: instances the node got ops of (another origin's op of a move's PUSH that came
    /// in a CHANGES after the move, say) without a row in their table, which no table lists.
    @discardableResult
    func dropInstancesOutOfScope(_ candidates: Set<InstanceRef>?, rowless: Set<InstanceRef> = []) throws -> Int {
        guard role == .store, let store else { return 0 }
        var out = Set<InstanceRef>()
        func leaves(_ instance: InstanceRef) throws -> Bool {
            guard let home = try heldHome(of: instance) else { return false }
            if case .shared = home { return false }
            return home != .store(store)
        }
        if let candidates {
            for instance in candidates where try leaves(instance) { out.insert(instance) }
        } else {
            let s: [SQLiteValue] = [.text(store)]
            for (kind, sql) in [(InstanceKind.customer, "SELECT customer_id FROM customers WHERE owner_store IS NOT ?1"),
                                (.staff, "SELECT userid FROM staff WHERE store_id IS NOT ?1"),
                                (.order, "SELECT order_id FROM orders WHERE store_id IS NOT ?1"),
                                (.groupChat, "SELECT chat_id FROM group_chats WHERE owner IS NULL OR owner NOT IN (SELECT userid FROM staff WHERE store_id = ?1)")] {
                for row in try db.cached(sql).rows(s) { if let id = row[0].stringValue { out.insert(InstanceRef(kind, id)) } }
            }
            for instance in rowless where !out.contains(instance) && instance.kind != .tag && instance.kind != .tagGroup && instance.kind != .store {
                if try leaves(instance) { out.insert(instance) }
            }
        }
        for staff in out where staff.kind == .staff {
            for row in try db.cached("SELECT chat_id FROM group_chats WHERE owner = ?").rows([.text(staff.id)]) {
                if let id = row[0].stringValue { out.insert(InstanceRef(.groupChat, id)) }
            }
        }
        for instance in out.sorted() { try drop(instance) }
        if !out.isEmpty { forgetCaches() }
        return out.count
    }

    /// On a store node, the instances it dropped when they left its scope: held in its op log
    /// (its own ops stay), with no row in their table. Empty on HQ.
    func instancesDroppedFromScope() throws -> [InstanceRef] {
        guard role == .store, store != nil else { return [] }
        var out: [InstanceRef] = []
        for (kind, table, column) in [(InstanceKind.customer, "customers", "customer_id"), (.staff, "staff", "userid"),
                                      (.order, "orders", "order_id"), (.groupChat, "group_chats", "chat_id")] {
            out += try opLog.instanceIDs(of: kind, withoutRowIn: table, keyedBy: column).map { InstanceRef(kind, $0) }
        }
        return out
    }

    /// Deletes one instance's rows, conflicts and the ops of other origins.
    func drop(_ instance: InstanceRef) throws {
        let id: [SQLiteValue] = [.text(instance.id)]
        for table in Table.allCases where table.instanceKind == instance.kind {
            try db.cached("DELETE FROM \(table.rawValue) WHERE \(table.columns[0].name) = ?").run(id)
        }
        if instance.kind == .customer { try db.cached("DELETE FROM tagged_customers WHERE customer_id = ?").run(id) }
        try db.cached("DELETE FROM conflicts WHERE inst_kind = ? AND inst_id = ?").run([.text(instance.kind.name), .text(instance.id)])
        try opLog.deleteOps(of: instance, keepingOrigin: node)
    }

    /// Records the homes of the logged ops after `position` from the tables as they are (ops
    /// given positions outside a PUSH: `logUnpositionedOps`).
    func recordLogHomes(after position: Int64) throws {
        try db.cached("""
            INSERT OR IGNORE INTO hub_log_homes(home, position)
            SELECT home, position FROM (
                SELECT h.position AS position, CASE o.inst_kind
                    WHEN 'tag_group' THEN '' WHEN 'tag' THEN '' WHEN 'store' THEN ''
                    WHEN 'customer' THEN (SELECT NULLIF(owner_store, '') FROM customers WHERE customer_id = o.inst_id)
                    WHEN 'staff' THEN (SELECT NULLIF(store_id, '') FROM staff WHERE userid = o.inst_id)
                    WHEN 'order' THEN (SELECT NULLIF(store_id, '') FROM orders WHERE order_id = o.inst_id)
                    WHEN 'group_chat' THEN (SELECT NULLIF(s.store_id, '') FROM group_chats g JOIN staff s ON s.userid = g.owner
                                            WHERE g.chat_id = o.inst_id)
                    END AS home
                FROM hub_log h JOIN ops o ON o.origin = h.origin AND o.seq = h.seq WHERE h.position > ?)
            WHERE home IS NOT NULL
            """).run([.integer(position)])
    }

    /// `changes(after:…)` for a store's scope: the shared range and the store's range of
    /// `hub_log_homes` after `cursor`, merged by position. When both ranges are read to their end,
    /// `nextCursor` is the log head read before them (nothing of the scope lies between).
    func scopedChanges(after cursor: UInt64, store: String, byteBudget budget: Int, limit: Int,
                       leavingOut origin: NodeID?, passingAtMost passable: Int) throws -> HubChanges {
        // One read transaction: the head and both ranges are read from one snapshot of the log.
        try db.readTransaction {
            let head = try logHead()
            let cap = min(limit + passable, 8_192)
            var positions: [Int64] = []
            var cutoff = Int64.max
            for key in ["", store] {
                let read = try hubLog.positions(loggedUnder: key, after: Int64(clamping: cursor), limit: cap)
                if read.count == cap, let last = read.last { cutoff = min(cutoff, last) }
                positions += read
            }
            positions = Array(Set(positions.filter { $0 <= cutoff })).sorted()
            var ops: [PositionedOp] = []
            var total = 0
            var more = cutoff != Int64.max
            var passed = 0
            var last = cursor
            let read = try db.cached("""
                SELECT h.position, o.inst_id, o.origin, o.seq, o.hlc, o.body FROM hub_log h
                LEFT JOIN ops o ON h.origin IS NOT ?2 AND o.origin = h.origin AND o.seq = h.seq WHERE h.position = ?1
                """)
            let leftOut: SQLiteValue = origin.map { .text($0) } ?? .null
            var stopped = false
            for position in positions {
                var stop = false
                try read.query([.integer(position), leftOut]) { row in
                    guard !row.isNull(2) else {
                        if passed == passable { stop = true; return }
                        passed += 1
                        last = UInt64(clamping: position)
                        return
                    }
                    let size = Int(row.blob(5).count) + 4
                    if !ops.isEmpty && (total + size > budget || ops.count == limit) { stop = true; return }
                    total += size
                    last = UInt64(clamping: position)
                    ops.append(PositionedOp(position: last, op: try OpLog.op(row, at: 2, instanceID: row.text(1) ?? "")))
                }
                if stop { stopped = true; break }
            }
            if stopped { more = true } else if !more { last = max(last, head) }
            return HubChanges(ops: ops, nextCursor: last, more: more)
    
        }
    }

    /// The SQL condition that an instance of `kind` (ids in column `column`) is in store `?1`'s
    /// scope; nil for the shared kinds (every instance).
    static func scopeCondition(_ kind: InstanceKind, _ column: String) -> String? {
        switch kind {
        case .tagGroup, .tag, .store: return nil
        case .customer: return "\(column) IN (SELECT customer_id FROM customers WHERE owner_store = ?1)"
        case .staff: return "\(column) IN (SELECT userid FROM staff WHERE store_id = ?1)"
        case .order: return "\(column) IN (SELECT order_id FROM orders WHERE store_id = ?1)"
        case .groupChat:
            return "\(column) IN (SELECT chat_id FROM group_chats WHERE owner IN (SELECT userid FROM staff WHERE store_id = ?1))"
        }
    }

    /// The instances of `kind` in store `?1`'s scope as a table, its id column and the condition
    /// on its rows (columns unqualified: the table is aliased `s`); nil for the shared kinds.
    /// Each condition is served by an index of layout 8 that yields the ids in order.
    static func scopeInstances(_ kind: InstanceKind) -> (table: String, id: String, condition: String)? {
        switch kind {
        case .tagGroup, .tag, .store: return nil
        case .customer: return ("customers", "customer_id", "s.owner_store = ?1")
        case .staff: return ("staff", "userid", "s.store_id = ?1")
        case .order: return ("orders", "order_id", "s.store_id = ?1")
        case .groupChat: return ("group_chats", "chat_id", "s.owner IN (SELECT userid FROM staff WHERE store_id = ?1)")
        }
    }

    /// The rows of `table` in store `?1`'s scope, as a WHERE condition (nil: every row).
    static func scopeCondition(of table: String) -> String? {
        switch table {
        case "staff": return "store_id = ?1"
        case "customers": return "owner_store = ?1"
        case "follow_relations", "customer_tags", "points": return scopeCondition(.customer, "customer_id")
        case "group_chats": return scopeCondition(.groupChat, "chat_id")
        case "group_members": return scopeCondition(.groupChat, "chat_id")
        case "orders": return "store_id = ?1"
        case "order_lines": return scopeCondition(.order, "order_id")
        case "conflicts":
            let kinds = InstanceKind.allCases.map { kind in
                "(inst_kind = '\(kind.name)'" + (scopeCondition(kind, "inst_id").map { " AND \($0))" } ?? ")")
            }
            return "(" + kinds.joined(separator: " OR ") + ")"
        default: return nil
        }
    }
}

/// How much of a store's scope a hub holds (for operators: `siyu-hub nodes`).
public struct ScopeCounts: Equatable, Sendable {
    public var customers = 0
    public var groupChats = 0
    public var orders = 0

    public init(customers: Int = 0, groupChats: Int = 0, orders: Int = 0) {
        self.customers = customers
        self.groupChats = groupChats
        self.orders = orders
    }
}

extension Replica {
    /// Per store, the customers, group chats and orders whose home it is: one pass over each table.
    public func scopeCounts() throws -> [String: ScopeCounts] {
        try ReplicaError.wrap("counting the stores' scopes") {
            var out: [String: ScopeCounts] = [:]
            try db.cached("SELECT owner_store, count(*) FROM customers WHERE owner_store IS NOT NULL GROUP BY owner_store").query { row in
                out[row.text(0) ?? "", default: ScopeCounts()].customers = Int(row.int64(1))
            }
            try db.cached("""
                SELECT s.store_id, count(*) FROM group_chats g JOIN staff s ON s.userid = g.owner
                WHERE s.store_id IS NOT NULL GROUP BY s.store_id
                """).query { row in
                out[row.text(0) ?? "", default: ScopeCounts()].groupChats = Int(row.int64(1))
            }
            try db.cached("SELECT store_id, count(*) FROM orders WHERE store_id IS NOT NULL GROUP BY store_id").query { row in
                out[row.text(0) ?? "", default: ScopeCounts()].orders = Int(row.int64(1))
            }
            return out
        }
    }
}
