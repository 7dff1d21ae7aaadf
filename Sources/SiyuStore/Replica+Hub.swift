import Foundation
import SiyuCore
import SiyuSQLite

/// Which ops a node receives (SPEC section 7, "Scope"), decided by the hub from the node's
/// registration: HQ nodes (and store nodes registered without a store) everything; a store node
/// the shared instances (tag library, stores) and those whose home is its store.
public enum SyncScope: Sendable, Equatable {
    case everything
    case store(String)
}

/// An op of the hub's log with its position.
public struct PositionedOp: Equatable, Sendable {
    public var position: UInt64
    public var op: Op
}

/// What `changes(after:byteBudget:scope:leavingOut:)` read.
///
/// Guarantees: `ops` are in log order, all after the cursor, none of the origin left out;
/// `nextCursor` is the position of the last op read — one of `ops`, or one of the left-out origin
/// passed over after them — and the cursor itself when there is none; `more` is whether positions
/// after `nextCursor` are pending.
public struct HubChanges: Equatable, Sendable {
    public var ops: [PositionedOp]
    public var nextCursor: UInt64
    public var more: Bool
}

/// What became of a PUSH (`acceptPush`).
public enum PushOutcome: Equatable, Sendable {
    /// Every op not held before is durable with a log position; `newOps` of them were new.
    case stored(ackedSeq: UInt64, newOps: Int)
    /// Nothing of the PUSH was stored but, for codes 8 and 14, the refusal record.
    case refused(OpRefusal, ackedSeq: UInt64)
    /// Nothing of the PUSH was stored or recorded and the same PUSH may be taken later: an op is
    /// numbered more than `Replica.pushSequenceWindow` past acked_seq, or a write right that reads
    /// state refuses an op stamped before a new log epoch during the restore grace
    /// (`Replica.restoreGrace`). Answered `busy`, 12.
    case deferred(String, ackedSeq: UInt64)
}

/// A number of a node the hub refused (SPEC section 7, "Refused ops").
public struct HubRefusal: Equatable, Sendable {
    public var node: NodeID
    public var seq: UInt64
    public var code: UInt64
    public var message: String
    /// The node has quarantined it (it pushed a higher number without it): it counts as held for
    /// acked_seq.
    public var settled: Bool
}

/// Where a snapshot read stopped (`snapshotPart`): the next part starts after this op key.
public struct SnapshotPosition: Equatable, Sendable {
    var kindIndex: Int
    var instanceID: String
    var origin: String
    var seq: Int64
}

/// The hub side of sync (SPEC section 7): the registry of nodes, PUSH into the log with log
/// positions, bounded reads of the log by cursor, and snapshot parts in instance order.
///
/// Guarantees:
/// - a PUSH is all or nothing: every op is checked (origin and role, held numbers, the data
///   rules of SPEC section 9, the clock window) before anything is stored; at the first op
///   refused nothing of it is stored but the refusal record (codes 8 and 14);
/// - the ops of an accepted PUSH, their log positions (in PUSH order) and the node's acked_seq
///   are one transaction; acked_seq is contiguous and counts settled refusals;
/// - a read of the log returns at least one op when any is pending, whatever the budget.
extension Replica {
    /// Records the cursor of a node's PULL (for operators; writes only when it changed).
    public func recordCursor(_ cursor: UInt64, of id: NodeID) throws {
        try recordCursors([id: cursor])
    }

    /// Records the cursors of several nodes' PULLs in one transaction (a serving hub gathers them
    /// and records them with its next group commit, or about once a second: a cursor is shown to
    /// operators, nothing reads it to decide what to send).
    public func recordCursors(_ cursors: [NodeID: UInt64]) throws {
        guard !cursors.isEmpty else { return }
        try ReplicaError.wrap("recording \(cursors.count) node cursor(s)") {
            try transaction {
                for (id, cursor) in cursors.sorted(by: { $0.key < $1.key }) { try hubLog.setCursor(Int64(clamping: cursor), of: id) }
            }
        }
    }

    /// The refusals recorded for `id`, by number.
    public func refusals(of id: NodeID) throws -> [HubRefusal] {
        try ReplicaError.wrap("reading refusals") {
            try hubLog.refusals(of: id)
        }
    }

    // MARK: - The log

    /// The position of the last op in the hub's log (0 when empty).
    public func logHead() throws -> UInt64 {
        try ReplicaError.wrap("reading the log head") {
            try hubLog.head()
        }
    }

    /// Gives a log position to every op held without one (a replica made a hub, ops applied
    /// outside `acceptPush`), in (clock, origin, seq) order. Returns how many. A hub calls it when
    /// it starts, so that every op it holds can be pulled.
    @discardableResult
    public func logUnpositionedOps() throws -> Int {
        try ReplicaError.wrap("giving ops log positions") {
            try transaction {
                let head = Int64(clamping: try logHead())
                let logged = try hubLog.appendUnpositioned()
                try recordLogHomes(after: head)
                return logged
            }
        }
    }

    /// Takes a node's PUSH by SPEC section 7, "Upload". `id` is the authenticated node: an op of
    /// another origin, or of another role than its registered one, refuses the PUSH (code 8)
    /// without a refusal record. Then, in order: a number held with the same op is skipped; a
    /// number held with another op is refused (8); a number refused before and not settled is
    /// refused again; every other op is checked by `refusal(of:now:)` (8, 9 or 14). At the first op
    /// refused nothing is stored but, for 8 and 14, the record that this number is refused.
    /// Otherwise the refusals the PUSH settles are settled, the new ops stored and merged, given
    /// log positions in PUSH order, and the node's acked_seq advanced — one transaction.
    /// How far past a node's acknowledged sequence number a PUSH's ops may be numbered: 65,536.
    /// A far number would leave a gap nobody fills and hold the node's acknowledgements back for
    /// ever; an honest node pushes in order from its acknowledged number (docs/RELIABILITY.md).
    public static let pushSequenceWindow: UInt64 = 65_536

    public func acceptPush(from id: NodeID, _ changeSet: ChangeSet) throws -> PushOutcome {
        guard let registration = try registeredNode(id) else {
            throw ReplicaError.notFound(what: "registered node \(IdentifierRule.printable(id))", hint: "register it with: siyu-hub add-node")
        }
        if changeSet.schemaVersion > currentSchemaVersion || changeSet.schemaVersion < 1 {
            throw ReplicaError.unsupportedSchema(found: changeSet.schemaVersion, supported: currentSchemaVersion)
        }
        let now = wallClock()
        let savedClock = clock
        do {
            return try ReplicaError.wrap("storing a PUSH of \(IdentifierRule.printable(id))") {
                try transaction {
                    try dropCachesIfChangedElsewhere()
                    let acked = Int64(clamping: registration.ackedSeq)
                    var fresh: [Op] = []
                    var absorbed: [Op] = []
                    /// Whether `op` is stamped at or before the node's op numbered acked_seq (held, or
                    /// dropped): an honest node's new ops come later, so only an op it renumbered
                    /// while recovering is looked for under another number.
                    var ackedClock: Int64??
                    func isOlderThanAcknowledged(_ op: Op) throws -> Bool {
                        if ackedClock == nil {
                            let seq = UInt64(clamping: acked)
                            let held = try opLog.clock(of: id, seq: seq).map { Int64(bitPattern: $0.raw) }
                            ackedClock = .some(try held ?? hubLog.dropped(origin: id, seq: seq)?.hlc)
                        }
                        guard let clock = ackedClock ?? nil else { return false }
                        return Int64(bitPattern: op.hlc.raw) <= clock
                    }
                    var pushed: [UInt64: [UInt8]] = [:]
                    let rights = WriteCheck(writer: Writer(role: registration.role, store: registration.store), state: self, batch: changeSet.ops,
                                            windowMillis: clock.maxDriftMillis)
                    if restoreGrace != nil, restoreGrace?.firstPushMillis[id] == nil { restoreGrace?.firstPushMillis[id] = now }
                    let grace = restoreGrace.flatMap { now < $0.endMillis(of: id, now: now) ? $0 : nil }
                    let restoredBefore = grace.map { clock.maxDriftMillis > UInt64.max - $0.epochStartedMillis ? UInt64.max : $0.epochStartedMillis + clock.maxDriftMillis }
                    rights.restoredBeforeMillis = restoredBefore
                    /// Makes `fresh` durable with log positions and returns the node's acked_seq after
                    /// it; settles the numbers refused before that the PUSH skipped below its highest.
                    func store(_ fresh: [Op], pushed: [UInt64: [UInt8]]) throws -> Int64 {
                        if let highest = pushed.keys.max() {
                            for seq in try hubLog.openRefusals(of: id, below: highest) where pushed[UInt64(seq)] == nil {
                                try hubLog.settle(seq, of: id)
                            }
                        }
                        for op in absorbed {
                            try hubLog.recordDropped(origin: id, seq: op.seq, hlc: Int64(bitPattern: op.hlc.raw), digest: Replica.contentDigest(op))
                        }
                        let homesBefore = try homes(of: fresh)
                        try commit(fresh, peerCommitMode)
                        for op in fresh { try hubLog.append(origin: id, seq: op.seq) }
                        try recordLogHomes(of: fresh, before: homesBefore, pushedBy: registration.store)
                        return try advanceAcked(of: id, from: acked)
                    }
                    for op in changeSet.ops {
                        if op.origin != id || op.role != registration.role {
                            throw ReplicaError.refused(OpRefusal(.permission, origin: op.origin, seq: op.seq,
                                message: "the PUSH holds an op of \(IdentifierRule.printable(op.origin)) (\(op.role)); node \(IdentifierRule.printable(id)) pushes only its own ops, as \(registration.role)",
                                hint: "the node is faulty or forged"))
                        }
                        let encoded = OpCoding.encode(op)
                        if let earlier = pushed[op.seq] {
                            if earlier == encoded { continue }
                            return try refuse(OpRefusal(.permission, origin: id, seq: op.seq, message: "the PUSH holds two different ops numbered \(op.seq)",
                                                        hint: "a node numbers each op once; the node is faulty"), acked: acked)
                        }
                        guard op.seq <= Op.maxSeq else {
                            return try refuse(OpRefusal(.invalidOp, origin: id, seq: op.seq, message: "sequence number outside 1...\(Op.maxSeq)",
                                                        hint: "the node is faulty"), acked: acked)
                        }
                        guard op.seq <= UInt64(clamping: acked) || op.seq - UInt64(clamping: acked) <= Replica.pushSequenceWindow else {
                            // Retryable, never recorded: once the ops before it are held, the same op is taken.
                            return .deferred("the PUSH holds op #\(op.seq), more than \(Replica.pushSequenceWindow) past the last op acknowledged (\(acked)); nothing was stored: push the ops after #\(acked) first, in order",
                                             ackedSeq: UInt64(clamping: acked))
                        }
                        if let stored = try opLog.op(origin: id, seq: op.seq) {
                            if OpCoding.encode(stored) == encoded { pushed[op.seq] = encoded; continue }
                            return try refuse(OpRefusal(.permission, origin: id, seq: op.seq,
                                message: "this hub holds another op numbered \(op.seq) of node \(IdentifierRule.printable(id))",
                                hint: "the node was restored from a backup or another node uses its id; it must rejoin under a new node id"), acked: acked)
                        }
                        // A number whose op compaction dropped stays held: the same op again is a
                        // duplicate, another op under it an identity conflict (Replica+Compaction.swift).
                        if let tomb = try hubLog.dropped(origin: id, seq: op.seq) {
                            if tomb.digest == Replica.contentDigest(op) { pushed[op.seq] = encoded; continue }
                            return try refuse(OpRefusal(.permission, origin: id, seq: op.seq,
                                message: "this hub holds another op numbered \(op.seq) of node \(IdentifierRule.printable(id))",
                                hint: "the node was restored from a backup or another node uses its id; it must rejoin under a new node id"), acked: acked)
                        }
                        // An op this hub holds (or dropped) under another number, pushed again under a
                        // new one by a node that renumbered it while recovering its own ops: the number
                        // is held from now on, nothing else is stored.
                        if try isOlderThanAcknowledged(op), try isHeldUnderAnotherNumber(op) {
                            pushed[op.seq] = encoded
                            absorbed.append(op)
                            continue
                        }
                        if let (code, message) = try hubLog.openRefusal(of: id, seq: op.seq) {
                            return .refused(OpRefusal(code == 8 ? .permission : .invalidOp, origin: id, seq: op.seq,
                                                      message: message, hint: "quarantine it and push the ops after it"),
                                            ackedSeq: UInt64(clamping: acked))
                        }
                        if let refusal = refusal(of: op, now: now) { return try refuse(refusal, acked: acked) }
                        if let (refusal, rule) = try rightsBreach(of: op, in: rights) {
                            if rule.needsState, let grace {
                                // Retryable, never recorded: the ops this right reads may come back. The
                                // ops before it are taken now, while the grace still judges them as it
                                // should: a store's truly refused op must not hold them back past it.
                                // Only if they stand alone: a new instance's home came from the whole
                                // PUSH, and an op may have been admitted by one after the held op.
                                let alone = WriteCheck(writer: rights.writer, state: self, batch: fresh, windowMillis: clock.maxDriftMillis)
                                alone.restoredBeforeMillis = restoredBefore
                                let standAlone = try fresh.allSatisfy { try rightsBreach(of: $0, in: alone) == nil }
                                let newAcked = standAlone ? try store(fresh, pushed: pushed) : acked
                                let kept = fresh.isEmpty || !standAlone ? "nothing was stored" : "the \(fresh.count) op(s) before it were stored"
                                return .deferred("the PUSH holds op #\(op.seq): \(refusal.message), but this hub's log history is new (restored, or restarted after a crash) and it may still lack ops it had acknowledged that this rule reads, so it is judged again when pushed again (for good after \(grace.endMillis(of: id, now: now)) ms since the Unix epoch); \(kept)",
                                                 ackedSeq: UInt64(newAcked))
                            }
                            return try refuse(refusal, acked: acked)
                        }
                        pushed[op.seq] = encoded
                        fresh.append(op)
                    }
                    let newAcked = try store(fresh, pushed: pushed)
                    return .stored(ackedSeq: UInt64(newAcked), newOps: fresh.count)
                }
            }
        } catch {
            clock = savedClock
            forgetCaches()
            throw error
        }
    }

    /// Several nodes' PUSHes as one transaction — one commit and one WAL sync for all of them (a
    /// hub's group commit). Each PUSH is taken or refused as `acceptPush` would alone, inside a
    /// savepoint of its own: one that fails (an error, a refusal) leaves the others as they are.
    /// Nothing of any of them is durable until the whole commits; if that fails, the error is
    /// thrown and none was stored (the caller acknowledges none). Outcomes in the order given.
    /// `cursors` (`recordCursors`) are recorded in the same transaction, after the PUSHes.
    public func acceptPushes(_ pushes: [(node: NodeID, changeSet: ChangeSet)],
                             recordingCursors cursors: [NodeID: UInt64] = [:]) throws -> [Result<PushOutcome, any Error>] {
        let savedClock = clock
        do {
            return try ReplicaError.wrap("storing \(pushes.count) PUSHes in one transaction") {
                try transaction {
                    let outcomes = pushes.map { push in Result { try acceptPush(from: push.node, push.changeSet) } }
                    try recordCursors(cursors)
                    return outcomes
                }
            }
        } catch {
            clock = savedClock
            forgetCaches()
            throw error
        }
    }

    /// Whether the hub holds `op` — the same stamp and content — under another number of its
    /// origin, or dropped it by compaction under another number.
    private func isHeldUnderAnotherNumber(_ op: Op) throws -> Bool {
        let hlc = Int64(bitPattern: op.hlc.raw)
        let digest = Replica.contentDigest(op)
        if try hubLog.droppedDigests(origin: op.origin, hlc: hlc).contains(digest) { return true }
        return try opLog.ops(of: op.instance, origin: op.origin, hlc: hlc).contains { $0.seq != op.seq && Replica.contentDigest($0) == digest }
    }

    /// A refusal of a PUSH: recorded for codes 8 and 14 (not 9: the node retries it).
    private func refuse(_ refusal: OpRefusal, acked: Int64) throws -> PushOutcome {
        if refusal.reason != .clockSkew {
            try hubLog.recordRefusal(refusal, at: wallClock())
        }
        return .refused(refusal, ackedSeq: UInt64(clamping: acked))
    }

    /// Moves a node's acked_seq through the numbers now held or settled.
    private func advanceAcked(of id: NodeID, from start: Int64) throws -> Int64 {
        var acked = start
        while acked < Int64.max {
            guard try opLog.holds(origin: id, seq: UInt64(acked + 1)) || hubLog.isSettled(acked + 1, of: id)
                    || hubLog.dropped(origin: id, seq: UInt64(acked + 1)) != nil else { break }
            acked += 1
        }
        if acked != start {
            try hubLog.setAcked(acked, of: id)
        }
        return acked
    }

    /// The ops in `scope` after `cursor`, in log order, about `byteBudget` bytes worth (each op
    /// counted by its stored body: the wire encoding, with its string dictionary, is usually
    /// smaller, and the session trims to the exact budget) — and always at least one when any is
    /// pending. At most 65,536 ops per read.
    ///
    /// `origin` (the pulling node) is left out: a node holds its own ops, so they are passed over
    /// (`nextCursor` moves past them) without counting against the budget. At most
    /// `maxPassed` of them (`ownOpsPassedPerRead`, 65,536) are passed in one read; a read that
    /// passed that many and found nothing else returns no ops, `nextCursor` past them and `more`,
    /// so every read makes progress.
    public func changes(after cursor: UInt64, byteBudget: Int, scope: SyncScope = .everything,
                        leavingOut origin: NodeID? = nil, passingAtMost maxPassed: Int = Replica.ownOpsPassedPerRead) throws -> HubChanges {
        let budget = max(1, byteBudget)
        let limit = max(1, min(budget / 4, 65_536))
        let passable = max(1, maxPassed)
        if case let .store(store) = scope {
            return try ReplicaError.wrap("reading the log of store \(IdentifierRule.printable(store))") {
                try scopedChanges(after: cursor, store: store, byteBudget: budget, limit: limit, leavingOut: origin, passingAtMost: passable)
            }
        }
        return try ReplicaError.wrap("reading the log") {
            var ops: [PositionedOp] = []
            var total = 0
            var more = false
            var passed = 0
            var last = cursor
            // The left-out origin's rows join no op (their bodies are not read).
            try db.cached("""
                SELECT h.position, o.inst_id, o.origin, o.seq, o.hlc, o.body FROM hub_log h
                LEFT JOIN ops o ON h.origin IS NOT ?2 AND o.origin = h.origin AND o.seq = h.seq
                WHERE h.position > ?1 ORDER BY h.position
                """).queryWhile([.integer(Int64(clamping: cursor)), origin.map { .text($0) } ?? .null]) { row in
                guard !row.isNull(2) else {   // the origin left out (or a position whose op is gone)
                    if passed == passable { more = true; return false }
                    passed += 1
                    last = UInt64(clamping: row.int64(0))
                    return true
                }
                let size = Int(row.blob(5).count) + 4
                if !ops.isEmpty && (total + size > budget || ops.count == limit) { more = true; return false }
                total += size
                last = UInt64(clamping: row.int64(0))
                ops.append(PositionedOp(position: last, op: try OpLog.op(row, at: 2, instanceID: row.text(1) ?? "")))
                return true
            }
            return HubChanges(ops: ops, nextCursor: last, more: more)
        }
    }

    /// How many of the pulling node's own ops one `changes` read passes over at most: 65,536.
    public static let ownOpsPassedPerRead = 65_536

    /// Instance kinds in snapshot order: the tag library first (groups, then tags), then the rest
    /// by kind code (SPEC section 7, "Scope").
    static let snapshotKinds: [InstanceKind] = [.tagGroup, .tag] + InstanceKind.allCases.filter { !$0.isTagLibraryKind }

    /// The next part of a snapshot of `scope`: up to about `maxOps` ops in instance order, never
    /// splitting an instance, starting after `position` (nil: the start). `next` is nil after the
    /// last part. Ops stored meanwhile may or may not be included (they have positions after the
    /// snapshot's cursor, and applying is idempotent).
    ///
    /// `origin` (the node the snapshot is for) is left out: a node holds its own ops. A store's
    /// snapshot also holds the ops of the instances that left its scope and did not come back
    /// (`hub_scope_exits`): the node applies them and then drops those instances.
    ///
    /// `timeBudgetMillis` bounds how long one part reads (a hub's reader answers other nodes'
    /// PULLs between two parts, and on a hub held to one core its writer and loop wait for it):
    /// once it is spent — checked after each op, so a part holds at least one — the part ends
    /// with the rest of the instance it is in, and `next` says where the following part resumes.
    /// Nil: bounded by `maxOps` only.
    public func snapshotPart(after position: SnapshotPosition?, maxOps: Int, scope: SyncScope = .everything,
                             leavingOut origin: NodeID? = nil, timeBudgetMillis: UInt64? = nil) throws -> (ops: [Op], next: SnapshotPosition?) {
        var store: String?
        if case let .store(id) = scope { store = id }
        let want = max(1, maxOps)
        let deadline = timeBudgetMillis.map { DispatchTime.now().uptimeNanoseconds &+ min($0, 3_600_000) &* 1_000_000 }
        return try ReplicaError.wrap("reading a snapshot part") {
            var at = position ?? SnapshotPosition(kindIndex: 0, instanceID: "", origin: "", seq: 0)
            var ops: [Op] = []
            let leftOut: SQLiteValue = origin.map { .text($0) } ?? .null
            var spent = false
            while at.kindIndex < Replica.snapshotKinds.count && ops.count < want && !spent {
                let kind = Replica.snapshotKinds[at.kindIndex]
                let before = ops.count
                // A store's snapshot: only the instances of its scope (?1 is the store), read from
                // the store's list of them (an index range) and each one's ops by key, so it costs
                // the store's instances, not every store's. A shared kind: every instance.
                let range: Statement
                if store != nil, let list = Replica.scopeInstances(kind) {
                    // `+` keeps SQLite from turning the resume bound into a range on ops.
                    range = try db.cached("""
                        SELECT o.inst_id, o.origin, o.seq, o.hlc, o.body FROM \(list.table) s CROSS JOIN ops o
                        ON o.inst_kind = ?2 AND o.inst_id = +s.\(list.id)
                        WHERE \(list.condition) AND s.\(list.id) >= ?3 AND (s.\(list.id) > ?3 OR (o.origin, o.seq) > (?4, ?5))
                        AND o.origin IS NOT ?6 ORDER BY s.\(list.id), o.origin, o.seq LIMIT ?7
                        """)
                } else {
                    range = try db.cached("""
                        SELECT inst_id, origin, seq, hlc, body FROM ops WHERE inst_kind = ?2 AND (inst_id, origin, seq) > (?3, ?4, ?5)
                        AND origin IS NOT ?6 ORDER BY inst_id, origin, seq LIMIT ?7
                        """)
                }
                try range.queryWhile([.text(store ?? ""), .text(kind.name), .text(at.instanceID), .text(at.origin), .integer(at.seq), leftOut,
                                      .integer(Int64(want - before))]) { row in
                    ops.append(try OpLog.op(row, at: 1, instanceID: row.text(0) ?? ""))
                    at.instanceID = row.text(0) ?? ""
                    at.origin = row.text(1) ?? ""
                    at.seq = row.int64(2)
                    if let deadline, DispatchTime.now().uptimeNanoseconds >= deadline { spent = true }
                    return !spent
                }
                // Spent: the kind may hold more; the next part asks again from `at`.
                if !spent && ops.count - before < want - before {
                    at = SnapshotPosition(kindIndex: at.kindIndex + 1, instanceID: "", origin: "", seq: 0)
                }
            }
            // The rest of the last instance, so that no instance is split across parts.
            if at.kindIndex < Replica.snapshotKinds.count, !at.instanceID.isEmpty {
                try db.cached("""
                    SELECT inst_id, origin, seq, hlc, body FROM ops WHERE inst_kind = ? AND inst_id = ? AND (origin, seq) > (?, ?)
                    AND origin IS NOT ? ORDER BY origin, seq
                    """).query([.text(Replica.snapshotKinds[at.kindIndex].name), .text(at.instanceID), .text(at.origin), .integer(at.seq), leftOut]) { row in
                    ops.append(try OpLog.op(row, at: 1, instanceID: row.text(0) ?? ""))
                    at.origin = row.text(1) ?? ""
                    at.seq = row.int64(2)
                }
            }
            // The last part of a store's snapshot: the ops of the instances that left its scope and
            // did not come back, so that a store whose PULL a snapshot answers — passing over the
            // CHANGES that carried a move — applies the move and drops them (SPEC section 7, "Transfers").
            if at.kindIndex >= Replica.snapshotKinds.count, let store {
                try db.cached("""
                    SELECT o.inst_id, o.origin, o.seq, o.hlc, o.body FROM hub_scope_exits x CROSS JOIN ops o
                    ON o.inst_kind = x.inst_kind AND o.inst_id = x.inst_id
                    WHERE x.home = ? AND o.origin IS NOT ? ORDER BY x.inst_kind, x.inst_id, o.origin, o.seq
                    """).query([.text(store), leftOut]) { row in
                    ops.append(try OpLog.op(row, at: 1, instanceID: row.text(0) ?? ""))
                }
            }
            return (ops, at.kindIndex < Replica.snapshotKinds.count ? at : nil)
        }
    }
}

extension InstanceKind {
    var isTagLibraryKind: Bool { self == .tag || self == .tagGroup }
}
