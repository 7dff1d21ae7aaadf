import SiyuCore
import SiyuSQLite

/// The op log of one replica file (the `ops` table): every statement that reads or writes it,
/// except the hub's reads for CHANGES and snapshots, which join it with the hub's log and scope
/// tables (Replica+Hub.swift, Replica+Scopes.swift) and decode rows with `op(_:at:instanceID:)`.
///
/// A row holds an op's keys (instance, origin, sequence number, clock) in columns and the rest of
/// the op as a body encoded without them (`OpCoding.encode(_:keyedBy:)`). Rows are keyed by
/// instance, so one instance's ops are one range; `ops_by_origin` finds an origin's range.
///
/// Guarantees: reads return ops decoded and checked by `OpCoding`; a row that does not decode
/// throws. Writes never replace a row: an op is stored once, under its origin and number, and only
/// renumbered by own-ops recovery (`renumber`). Not thread-safe, as `Database` is not.
struct OpLog {
    let db: Database

    // MARK: - Decoding rows

    /// The op of a row whose columns from `column` on are origin, seq, hlc, body (a body is stored
    /// without them; replicas written before kept whole ops).
    static func op(_ row: Row, at column: Int32, instanceID: String) throws -> Op {
        let keys = OpKeys(origin: row.text(column) ?? "", seq: UInt64(clamping: row.int64(column + 1)),
                          hlc: HLC(raw: UInt64(bitPattern: row.int64(column + 2))), instanceID: instanceID)
        return try OpCoding.decode(row.blob(column + 3), keys: keys)
    }

    /// The columns `op(_:at:instanceID:)` reads, from column 1, after the instance id.
    static let keyedColumns = "inst_id, origin, seq, hlc, body"

    /// An op's row: its keys, and the op encoded without them. Every op reaching the op log passed
    /// `Op.validate()`, so its sequence number fits (`Op.maxSeq`); clamping only keeps this total.
    static func row(_ op: Op) -> [SQLiteValue] {
        [.text(op.instance.kind.name), .text(op.instance.id), .text(op.origin), .integer(Int64(clamping: op.seq)),
         .integer(Int64(bitPattern: op.hlc.raw)), .blob(OpCoding.encode(op, keyedBy: OpKeys(of: op)))]
    }

    // MARK: - Writing

    /// `insertRows[n - 1]` inserts n rows (`row`).
    static let insertRows = (1...Replica.rowsPerInsert).map { n in
        "INSERT INTO ops(inst_kind, inst_id, origin, seq, hlc, body) VALUES "
            + Array(repeating: "(?, ?, ?, ?, ?, ?)", count: n).joined(separator: ", ")
    }

    /// Inserts one row (`row`) unless the op is held already.
    static let insertUnlessHeld = "INSERT OR IGNORE" + insertRows[0].dropFirst("INSERT".count)

    /// Stores `op` unless an op with its keys is held; says whether it was stored.
    func insertUnlessHeld(_ op: Op) throws -> Bool {
        try db.cached(OpLog.insertUnlessHeld).run(OpLog.row(op))
        return db.changes == 1
    }

    /// Deletes an instance's ops, except those of `origin` (a store dropping an instance that left
    /// its scope keeps its own).
    func deleteOps(of instance: InstanceRef, keepingOrigin origin: NodeID) throws {
        try db.cached("DELETE FROM ops WHERE inst_kind = ? AND inst_id = ? AND origin != ?")
            .run([.text(instance.kind.name), .text(instance.id), .text(origin)])
    }

    /// Deletes one op (a hub's log compaction, which keeps its tombstone).
    func delete(_ op: Op) throws {
        try db.cached("DELETE FROM ops WHERE inst_kind = ? AND inst_id = ? AND origin = ? AND seq = ?")
            .run([.text(op.instance.kind.name), .text(op.instance.id), .text(op.origin), .integer(Int64(clamping: op.seq))])
    }

    /// Gives op `seq` of `origin` the number `newSeq` (own-ops recovery).
    func renumber(origin: NodeID, seq: UInt64, to newSeq: UInt64) throws {
        try db.cached("UPDATE ops SET seq = ? WHERE origin = ? AND seq = ?")
            .run([.integer(Int64(clamping: newSeq)), .text(origin), .integer(Int64(clamping: seq))])
    }

    // MARK: - Reading by instance

    /// Every op held of `instance`, in key order (origin, seq).
    func ops(of instance: InstanceRef) throws -> [Op] {
        var ops: [Op] = []
        try db.cached("SELECT origin, seq, hlc, body FROM ops WHERE inst_kind = ? AND inst_id = ?")
            .query([.text(instance.kind.name), .text(instance.id)]) { row in
                ops.append(try OpLog.op(row, at: 0, instanceID: instance.id))
            }
        return ops
    }

    /// The ops of `instance` by `origin` stamped `hlc` (one, for an honest origin).
    func ops(of instance: InstanceRef, origin: NodeID, hlc: Int64) throws -> [Op] {
        var ops: [Op] = []
        try db.cached("SELECT origin, seq, hlc, body FROM ops WHERE inst_kind = ? AND inst_id = ? AND origin = ? AND hlc = ?")
            .query([.text(instance.kind.name), .text(instance.id), .text(origin), .integer(hlc)]) { row in
                ops.append(try OpLog.op(row, at: 0, instanceID: instance.id))
            }
        return ops
    }

    /// Whether any op of `instance` is held.
    func holdsOps(of instance: InstanceRef) throws -> Bool {
        try db.cached(OpLog.probeInstance).scalar([.text(instance.kind.name), .text(instance.id)]) != nil
    }

    /// The statement `holdsOps(of:)` runs, for a caller that keeps it prepared (`CommitBatch`).
    static let probeInstance = "SELECT 1 FROM ops WHERE inst_kind = ? AND inst_id = ? LIMIT 1"

    /// The earliest clock of the ops held of `instance`; nil when none is held.
    func earliestClock(of instance: InstanceRef) throws -> HLC? {
        try db.cached("SELECT MIN(hlc) FROM ops WHERE inst_kind = ? AND inst_id = ?")
            .scalar([.text(instance.kind.name), .text(instance.id)])?.int64Value.map { HLC(raw: UInt64(bitPattern: $0)) }
    }

    /// Every op of the tag library (tags and tag groups), grouped by instance.
    func libraryOps() throws -> [InstanceRef: [Op]] {
        var byInstance: [InstanceRef: [Op]] = [:]
        try db.cached("SELECT \(OpLog.keyedColumns) FROM ops WHERE inst_kind IN ('tag', 'tag_group')").query { row in
            let op = try OpLog.op(row, at: 1, instanceID: row.text(0) ?? "")
            byInstance[op.instance, default: []].append(op)
        }
        return byInstance
    }

    /// Every instance with an op held.
    func instances() throws -> [InstanceRef] {
        var refs: [InstanceRef] = []
        try db.prepare("SELECT DISTINCT inst_kind, inst_id FROM ops").query { row in
            if let kind = InstanceKind(name: row.text(0) ?? "") { refs.append(InstanceRef(kind, row.text(1) ?? "")) }
        }
        return refs
    }

    /// Up to `limit` instances with ops held, in key order (kind name, then id), after `after`
    /// (from the first when nil): one range of the op log's key each.
    func instances(after: InstanceRef?, limit: Int) throws -> [InstanceRef] {
        var refs: [InstanceRef] = []
        let collect: (Row) throws -> Void = { row in
            if let kind = InstanceKind(name: row.text(0) ?? "") { refs.append(InstanceRef(kind, row.text(1) ?? "")) }
        }
        if let after {
            try db.cached("SELECT DISTINCT inst_kind, inst_id FROM ops WHERE (inst_kind, inst_id) > (?, ?) ORDER BY inst_kind, inst_id LIMIT ?")
                .query([.text(after.kind.name), .text(after.id), .integer(Int64(limit))], collect)
        } else {
            try db.cached("SELECT DISTINCT inst_kind, inst_id FROM ops ORDER BY inst_kind, inst_id LIMIT ?").query([.integer(Int64(limit))], collect)
        }
        return refs
    }

    /// The ids of the instances of `kind` with ops held but no row in `table` (keyed by `column`).
    func instanceIDs(of kind: InstanceKind, withoutRowIn table: String, keyedBy column: String) throws -> [String] {
        var ids: [String] = []
        try db.cached("SELECT DISTINCT inst_id FROM ops WHERE inst_kind = ? AND inst_id NOT IN (SELECT \(column) FROM \(table))")
            .query([.text(kind.name)]) { row in if let id = row.text(0) { ids.append(id) } }
        return ids
    }

    // MARK: - Reading by origin

    /// Whether no op is held at all.
    func isEmpty() throws -> Bool {
        try db.cached("SELECT 1 FROM ops LIMIT 1").scalar() == nil
    }

    /// The highest number held of `origin`; 0 when none.
    func lastSeq(of origin: NodeID) throws -> UInt64 {
        UInt64(clamping: try db.cached("SELECT max(seq) FROM ops WHERE origin = ?").scalar([.text(origin)])?.int64Value ?? 0)
    }

    /// The clock of the highest-numbered op held of `origin`; nil when none.
    func lastClock(of origin: NodeID) throws -> HLC? {
        try db.cached("SELECT hlc FROM ops WHERE origin = ? ORDER BY seq DESC LIMIT 1")
            .scalar([.text(origin)])?.int64Value.map { HLC(raw: UInt64(bitPattern: $0)) }
    }

    /// The clock of op `seq` of `origin`; nil when it is not held.
    func clock(of origin: NodeID, seq: UInt64) throws -> HLC? {
        try db.cached("SELECT hlc FROM ops WHERE origin = ? AND seq = ?")
            .scalar([.text(origin), .integer(Int64(clamping: seq))])?.int64Value.map { HLC(raw: UInt64(bitPattern: $0)) }
    }

    /// Whether op `seq` of `origin` is held.
    func holds(origin: NodeID, seq: UInt64) throws -> Bool {
        try db.cached("SELECT 1 FROM ops WHERE origin = ? AND seq = ?").scalar([.text(origin), .integer(Int64(clamping: seq))]) != nil
    }

    /// Op `seq` of `origin`, if held.
    func op(origin: NodeID, seq: UInt64) throws -> Op? {
        var found: Op?
        try db.cached("SELECT \(OpLog.keyedColumns) FROM ops WHERE origin = ? AND seq = ?")
            .query([.text(origin), .integer(Int64(clamping: seq))]) { row in found = try OpLog.op(row, at: 1, instanceID: row.text(0) ?? "") }
        return found
    }

    /// The ops of `origin` numbered above `seq`, ascending, at most `limit`; with
    /// `skippingQuarantined`, leaving out the numbers in `quarantine` (a node's outbox).
    func ops(of origin: NodeID, after seq: UInt64, limit: Int = .max, skippingQuarantined: Bool = false) throws -> [Op] {
        var ops: [Op] = []
        let sql = skippingQuarantined
            ? "SELECT \(OpLog.keyedColumns) FROM ops WHERE origin = ? AND seq > ? AND seq NOT IN (SELECT seq FROM quarantine) ORDER BY seq LIMIT ?"
            : "SELECT \(OpLog.keyedColumns) FROM ops WHERE origin = ? AND seq > ? ORDER BY seq LIMIT ?"
        try db.cached(sql).query([.text(origin), .integer(Int64(clamping: seq)), .integer(Int64(max(0, limit)))]) { row in
            ops.append(try OpLog.op(row, at: 1, instanceID: row.text(0) ?? ""))
        }
        return ops
    }

    /// The instances of the ops of `origin` numbered in `after + 1 ... through`.
    func instances(of origin: NodeID, after: UInt64, through: UInt64) throws -> Set<InstanceRef> {
        var out = Set<InstanceRef>()
        try db.cached("SELECT DISTINCT inst_kind, inst_id FROM ops WHERE origin = ? AND seq > ? AND seq <= ?")
            .query([.text(origin), .integer(Int64(clamping: after)), .integer(Int64(clamping: through))]) { row in
                if let kind = InstanceKind(name: row.text(0) ?? "") { out.insert(InstanceRef(kind, row.text(1) ?? "")) }
            }
        return out
    }

    /// Every origin with an op held.
    func origins() throws -> [NodeID] {
        var origins: [NodeID] = []
        try db.prepare("SELECT DISTINCT origin FROM ops").query { row in origins.append(row.text(0) ?? "") }
        return origins
    }

    /// How many ops of `origin` are numbered `through` or below.
    func count(of origin: NodeID, through seq: UInt64) throws -> Int64 {
        try db.cached("SELECT count(*) FROM ops WHERE origin = ? AND seq <= ?")
            .scalar([.text(origin), .integer(Int64(clamping: seq))])?.int64Value ?? 0
    }

    /// How many ops are held: all, or of one origin.
    func count(of origin: NodeID? = nil) throws -> Int64 {
        guard let origin else { return try db.cached("SELECT count(*) FROM ops").scalar()?.int64Value ?? 0 }
        return try db.cached("SELECT count(*) FROM ops WHERE origin = ?").scalar([.text(origin)])?.int64Value ?? 0
    }

    /// Per origin, the highest number held and the end of the run 1, 2, 3, … held without a gap
    /// (a full scan of each origin's numbers).
    func numbering() throws -> [(origin: NodeID, contiguous: UInt64, highest: UInt64)] {
        try origins().map { origin in
            let (contiguous, highest) = try scanNumbers(of: origin)
            return (origin, contiguous, highest)
        }
    }

    /// The end of the run 1, 2, 3, … of `origin` held without a gap (a scan of its numbers).
    func contiguousEnd(of origin: NodeID) throws -> UInt64 { try scanNumbers(of: origin).contiguous }

    /// One scan of `origin`'s numbers, ascending: the end of its gapless run from 1, and the highest.
    private func scanNumbers(of origin: NodeID) throws -> (contiguous: UInt64, highest: UInt64) {
        var contiguous: Int64 = 0, highest: Int64 = 0
        try db.cached("SELECT seq FROM ops WHERE origin = ? ORDER BY seq").query([.text(origin)]) { row in
            let seq = row.int64(0)
            if seq == contiguous + 1 { contiguous = seq }
            highest = max(highest, seq)
        }
        return (UInt64(clamping: contiguous), UInt64(clamping: highest))
    }
}
