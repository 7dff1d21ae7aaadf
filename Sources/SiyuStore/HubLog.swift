import SiyuCore
import SiyuSQLite

/// A hub's own tables in its replica file: the registry of nodes (`hub_nodes`), the log
/// positions of the ops it holds (`hub_log`), the homes each position is logged under
/// (`hub_log_homes`), the moves into and out of stores' scopes (`hub_scope_entries`,
/// `hub_scope_exits`), the refused push numbers (`hub_refusals`) and the tombstones of ops the
/// log's compaction dropped (`hub_dropped`, with the compaction marks in `siyu_meta`). Every statement on those
/// tables that reads or writes one of them alone is here; the reads for CHANGES and snapshots,
/// which join them with the op log, stay with `Replica`'s hub code (Replica+Hub.swift,
/// Replica+Scopes.swift). `Replica` decides when these run (inside its transactions).
///
/// Guarantees: values are stored as given (callers range-check numbers from the wire with
/// `Replica.storable`); a position is given once per (origin, seq); a scope exit already seen
/// keeps its first time. Not thread-safe, as `Database` is not.
struct HubLog {
    let db: Database

    // MARK: - The registry

    static let nodeColumns = "node_id, role, store_id, salt, iterations, stored_key, server_key, acked_seq, cursor"

    func register(_ id: NodeID, role: Role, store: String?, verifiers: SCRAMVerifiers, at millis: UInt64) throws {
        try db.cached("INSERT INTO hub_nodes(node_id, role, store_id, salt, iterations, stored_key, server_key, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .run([.text(id), .text(role.description), store.map { .text($0) } ?? .null,
                  .blob(verifiers.salt), .integer(Int64(verifiers.iterations)), .blob(verifiers.storedKey),
                  .blob(verifiers.serverKey), .integer(Int64(clamping: millis))])
    }

    func setVerifiers(_ verifiers: SCRAMVerifiers, of id: NodeID) throws {
        try db.cached("UPDATE hub_nodes SET salt = ?, iterations = ?, stored_key = ?, server_key = ? WHERE node_id = ?")
            .run([.blob(verifiers.salt), .integer(Int64(verifiers.iterations)), .blob(verifiers.storedKey),
                  .blob(verifiers.serverKey), .text(id)])
    }

    func remove(_ id: NodeID) throws {
        try db.cached("DELETE FROM hub_nodes WHERE node_id = ?").run([.text(id)])
    }

    func node(_ id: NodeID) throws -> HubNodeRecord? {
        try db.cached("SELECT \(HubLog.nodeColumns) FROM hub_nodes WHERE node_id = ?").rows([.text(id)]).first.map(HubLog.nodeRecord)
    }

    func nodes() throws -> [HubNodeRecord] {
        try db.cached("SELECT \(HubLog.nodeColumns) FROM hub_nodes ORDER BY node_id").rows().map(HubLog.nodeRecord)
    }

    static func nodeRecord(_ row: [SQLiteValue]) -> HubNodeRecord {
        func blob(_ v: SQLiteValue) -> [UInt8] { if case let .blob(b) = v { return b }; return [] }
        let verifiers = SCRAMVerifiers(salt: blob(row[3]), iterations: Int(clamping: row[4].int64Value ?? 0),
                                       storedKey: blob(row[5]), serverKey: blob(row[6]))
        return HubNodeRecord(node: row[0].stringValue ?? "", role: Role(name: row[1].stringValue ?? "") ?? .store,
                             store: row[2].stringValue, verifiers: verifiers,
                             ackedSeq: UInt64(clamping: row[7].int64Value ?? 0), cursor: UInt64(clamping: row[8].int64Value ?? 0))
    }

    /// Stores a node's cursor (the position its last PULL asked from), writing only if it changed.
    func setCursor(_ cursor: Int64, of id: NodeID) throws {
        try db.cached("UPDATE hub_nodes SET cursor = ? WHERE node_id = ? AND cursor != ?").run([.integer(cursor), .text(id), .integer(cursor)])
    }

    func setAcked(_ acked: Int64, of id: NodeID) throws {
        try db.cached("UPDATE hub_nodes SET acked_seq = ? WHERE node_id = ?").run([.integer(acked), .text(id)])
    }

    // MARK: - Log positions

    /// The position of the last op logged (0 when none).
    func head() throws -> UInt64 {
        UInt64(clamping: try db.cached("SELECT max(position) FROM hub_log").scalar()?.int64Value ?? 0)
    }

    /// Gives op `seq` of `origin` the next position, unless it has one.
    func append(origin: NodeID, seq: UInt64) throws {
        try db.cached("INSERT OR IGNORE INTO hub_log(origin, seq) VALUES (?, ?)").run([.text(origin), .integer(Int64(clamping: seq))])
    }

    /// Gives a position to every op held without one, in (clock, origin, seq) order; says how many.
    func appendUnpositioned() throws -> Int {
        try db.execute("""
            INSERT INTO hub_log(origin, seq) SELECT origin, seq FROM ops
            WHERE NOT EXISTS (SELECT 1 FROM hub_log h WHERE h.origin = ops.origin AND h.seq = ops.seq)
            ORDER BY hlc, origin, seq
            """)
        return db.changes
    }

    /// The position of op `seq` of `origin`; nil when it has none.
    func position(origin: NodeID, seq: UInt64) throws -> Int64? {
        try db.cached("SELECT position FROM hub_log WHERE origin = ? AND seq = ?").scalar([.text(origin), .integer(Int64(clamping: seq))])?.int64Value
    }

    /// Whether any op of `origin` was ever logged (compaction may have dropped it, and its position).
    func hasLogged(origin: NodeID) throws -> Bool {
        try db.cached("SELECT 1 FROM hub_log WHERE origin = ? LIMIT 1").scalar([.text(origin)]) != nil
            || db.cached("SELECT 1 FROM hub_dropped WHERE origin = ? LIMIT 1").scalar([.text(origin)]) != nil
    }

    /// Forgets the position of op `seq` of `origin`, which compaction dropped. Never the head's:
    /// SQLite gives a new row the highest position plus one, so the head's row keeps positions
    /// from being given twice. Its `hub_log_homes` rows stay (a read of a scope's range skips a
    /// position whose op is gone).
    /// Whether it forgot one.
    @discardableResult
    func forgetPosition(origin: NodeID, seq: UInt64) throws -> Bool {
        try db.cached("DELETE FROM hub_log WHERE origin = ? AND seq = ? AND position < (SELECT max(position) FROM hub_log)")
            .run([.text(origin), .integer(Int64(clamping: seq))])
        return db.changes > 0
    }

    /// Logs `position` under `home` (a store id, or `Replica.homeKey`'s key for HQ and shared).
    func logHome(_ home: String, at position: Int64) throws {
        try db.cached("INSERT OR IGNORE INTO hub_log_homes(home, position) VALUES (?, ?)").run([.text(home), .integer(position)])
    }

    /// The positions logged under `home` after `position`, ascending, at most `limit`.
    func positions(loggedUnder home: String, after position: Int64, limit: Int) throws -> [Int64] {
        var read: [Int64] = []
        try db.cached("SELECT position FROM hub_log_homes WHERE home = ? AND position > ? ORDER BY position LIMIT ?")
            .query([.text(home), .integer(position), .integer(Int64(max(0, limit)))]) { read.append($0.int64(0)) }
        return read
    }

    // MARK: - Scope moves

    /// An instance entered `store`'s scope at `position`: its old exit from there is forgotten.
    func recordEntry(of instance: InstanceRef, into store: String, at position: Int64) throws {
        try recordEntry(into: store, at: position)
        try db.cached("DELETE FROM hub_scope_exits WHERE home = ? AND inst_kind = ? AND inst_id = ?")
            .run([.text(store), .text(instance.kind.name), .text(instance.id)])
    }

    /// Something entered `store`'s scope at `position` (its next PULL from before it gets a snapshot of reason 1).
    func recordEntry(into store: String, at position: Int64) throws {
        try db.cached("INSERT OR IGNORE INTO hub_scope_entries(home, position) VALUES (?, ?)").run([.text(store), .integer(position)])
    }

    /// `instance` left `store`'s scope at `position`, not yet seen by the store.
    func recordExit(of instance: InstanceRef, from store: String, at position: Int64) throws {
        try db.cached("INSERT OR REPLACE INTO hub_scope_exits(home, inst_kind, inst_id, position, seen_at) VALUES (?, ?, ?, ?, NULL)")
            .run([.text(store), .text(instance.kind.name), .text(instance.id), .integer(position)])
    }

    /// Whether a move out of `store`'s scope at or before `cursor` is not yet seen.
    func hasUnseenExit(from store: String, through cursor: Int64) throws -> Bool {
        try db.cached("SELECT 1 FROM hub_scope_exits WHERE home = ?1 AND seen_at IS NULL AND position <= ?2 LIMIT 1")
            .scalar([.text(store), .integer(cursor)]) != nil
    }

    /// Whether something entered `store`'s scope after `cursor`.
    func hasEntry(into store: String, after cursor: Int64) throws -> Bool {
        try db.cached("SELECT 1 FROM hub_scope_entries WHERE home = ? AND position > ? LIMIT 1").scalar([.text(store), .integer(cursor)]) != nil
    }

    /// The moves out of `store`'s scope at or before `cursor` are seen at `millis` (a move seen
    /// before keeps its first time).
    func markExitsSeen(from store: String, through cursor: Int64, at millis: Int64) throws {
        try db.cached("UPDATE hub_scope_exits SET seen_at = ?3 WHERE home = ?1 AND seen_at IS NULL AND position <= ?2")
            .run([.text(store), .integer(cursor), .integer(millis)])
    }

    /// `instance`'s move out of `store`'s scope, if recorded.
    func departure(of instance: InstanceRef, from store: String) throws -> ScopeDeparture? {
        guard let row = try db.cached("SELECT position, seen_at FROM hub_scope_exits WHERE home = ? AND inst_kind = ? AND inst_id = ?")
            .rows([.text(store), .text(instance.kind.name), .text(instance.id)]).first else { return nil }
        return ScopeDeparture(position: UInt64(clamping: row[0].int64Value ?? 0), seenAtMillis: row[1].int64Value.map { UInt64(clamping: $0) })
    }

    // MARK: - Refused push numbers

    func refusals(of id: NodeID) throws -> [HubRefusal] {
        try db.cached("SELECT seq, code, message, settled FROM hub_refusals WHERE node_id = ? ORDER BY seq").rows([.text(id)]).map { row in
            HubRefusal(node: id, seq: UInt64(clamping: row[0].int64Value ?? 0), code: UInt64(clamping: row[1].int64Value ?? 0),
                       message: row[2].stringValue ?? "", settled: row[3].int64Value == 1)
        }
    }

    /// The code and message of `id`'s number `seq` if refused and not settled.
    func openRefusal(of id: NodeID, seq: UInt64) throws -> (code: Int64, message: String)? {
        try db.cached("SELECT code, message FROM hub_refusals WHERE node_id = ? AND seq = ? AND settled = 0")
            .rows([.text(id), .integer(Int64(clamping: seq))]).first.map { ($0[0].int64Value ?? 14, $0[1].stringValue ?? "refused before") }
    }

    /// `id`'s refused numbers below `seq` not settled yet.
    func openRefusals(of id: NodeID, below seq: UInt64) throws -> [Int64] {
        try db.cached("SELECT seq FROM hub_refusals WHERE node_id = ? AND settled = 0 AND seq < ?")
            .rows([.text(id), .integer(Int64(clamping: seq))]).compactMap { $0[0].int64Value }
    }

    func settle(_ seq: Int64, of id: NodeID) throws {
        try db.cached("UPDATE hub_refusals SET settled = 1 WHERE node_id = ? AND seq = ?").run([.text(id), .integer(seq)])
    }

    func isSettled(_ seq: Int64, of id: NodeID) throws -> Bool {
        try db.cached("SELECT 1 FROM hub_refusals WHERE node_id = ? AND seq = ? AND settled = 1").scalar([.text(id), .integer(seq)]) != nil
    }

    // MARK: - Ops dropped by compaction

    /// The `siyu_meta` key of the log's floor: the highest position of an op compaction dropped
    /// (a PULL from a cursor below it is answered with a snapshot).
    static let floorKey = "hub_log_floor"
    /// The `siyu_meta` key counting the compactions that dropped anything (a snapshot read across
    /// one is abandoned).
    static let compactionsKey = "hub_log_compactions"

    /// The tombstone of `origin`'s number `seq`: its stamp's clock and content digest.
    func dropped(origin: NodeID, seq: UInt64) throws -> (hlc: Int64, digest: [UInt8])? {
        try db.cached("SELECT hlc, digest FROM hub_dropped WHERE origin = ? AND seq = ?")
            .rows([.text(origin), .integer(Int64(clamping: seq))]).first.map { ($0[0].int64Value ?? 0, $0[1].blobValue ?? []) }
    }

    /// The content digests of `origin`'s dropped ops stamped `hlc` (one, for an honest node): a scan
    /// of the origin's range (asked only for an op older than its acknowledged ones).
    func droppedDigests(origin: NodeID, hlc: Int64) throws -> [[UInt8]] {
        try db.cached("SELECT digest FROM hub_dropped WHERE origin = ? AND hlc = ?").rows([.text(origin), .integer(hlc)]).map { $0[0].blobValue ?? [] }
    }

    func recordDropped(origin: NodeID, seq: UInt64, hlc: Int64, digest: [UInt8]) throws {
        try db.cached("INSERT OR REPLACE INTO hub_dropped(origin, seq, hlc, digest) VALUES (?, ?, ?, ?)")
            .run([.text(origin), .integer(Int64(clamping: seq)), .integer(hlc), .blob(digest)])
    }

    /// The clock of `instance`'s first op, when compaction dropped it.
    func firstClock(of instance: InstanceRef) throws -> HLC? {
        try db.cached("SELECT hlc FROM hub_first_clocks WHERE inst_kind = ? AND inst_id = ?")
            .scalar([.text(instance.kind.name), .text(instance.id)])?.int64Value.map { HLC(raw: UInt64(bitPattern: $0)) }
    }

    /// Keeps `hlc` as `instance`'s first clock unless an earlier one is kept.
    func keepFirstClock(_ hlc: HLC, of instance: InstanceRef) throws {
        let value = Int64(bitPattern: hlc.raw)
        try db.cached("""
            INSERT INTO hub_first_clocks(inst_kind, inst_id, hlc) VALUES (?1, ?2, ?3)
            ON CONFLICT(inst_kind, inst_id) DO UPDATE SET hlc = min(hlc, excluded.hlc)
            """).run([.text(instance.kind.name), .text(instance.id), .integer(value)])
    }

    func droppedCount() throws -> Int64 {
        try db.cached("SELECT count(*) FROM hub_dropped").scalar()?.int64Value ?? 0
    }

    /// A compaction mark of `siyu_meta` (0 when never set).
    func mark(_ key: String) throws -> UInt64 {
        UInt64(clamping: try db.cached("SELECT value FROM siyu_meta WHERE key = ?").scalar([.text(key)])?.int64Value ?? 0)
    }

    func setMark(_ key: String, _ value: UInt64) throws {
        try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?)").run([.text(key), .integer(Int64(clamping: value))])
    }

    /// The log position of every op of `instance` held, by (origin, seq).
    func positions(of ops: [Op]) throws -> [OpKey: Int64] {
        var found: [OpKey: Int64] = [:]
        let read = try db.cached("SELECT position FROM hub_log WHERE origin = ? AND seq = ?")
        for op in ops {
            if let p = try read.scalar([.text(op.origin), .integer(Int64(clamping: op.seq))])?.int64Value { found[OpKey(op)] = p }
        }
        return found
    }

    /// Records `refusal` (not settled), replacing an earlier record of its number.
    func recordRefusal(_ refusal: OpRefusal, at millis: UInt64) throws {
        try db.cached("INSERT OR REPLACE INTO hub_refusals(node_id, seq, code, message, settled, at) VALUES (?, ?, ?, ?, 0, ?)")
            .run([.text(refusal.origin), .integer(Int64(clamping: refusal.seq)), .integer(Int64(refusal.reason.protocolCode)),
                  .text(refusal.protocolMessage), .integer(Int64(clamping: millis))])
    }
}
