import SiyuCore
import SiyuSQLite

/// A snapshot from a hub, staged while it arrives and loaded only once it is complete.
///
/// A snapshot comes in chunks over the network, for as long as the hub and the link take. Holding
/// the replica's write transaction open across that time would block every local edit (`siyu` on
/// the same file waits for the lock and gives up), and an edit made through the same `Replica`
/// would join the load's transaction and be rolled back if the load were abandoned. So chunks
/// are staged in a temporary table of this connection (SQLite's `temp` schema: its own file,
/// its own lock, never the replica's), and `loadStagedSnapshot` loads them in one short local
/// transaction at SNAPSHOT_END, with the cursor.
///
/// Guarantees: staging never takes the replica's write lock and never changes what the replica
/// shows; the staged ops are loaded in the order they arrived, all or nothing, together with
/// the cursor (`finishSnapshot`); a crash or `discardStagedSnapshot` leaves nothing staged
/// (the temporary table lives only as long as this connection); a staged change set of a newer
/// data model is refused when it is staged, before anything of it is kept.
extension Replica {
    /// Ops loaded per `applySnapshotChunk` when the staged snapshot is loaded: bounds the decoded
    /// ops held at once.
    static let stagedOpsPerLoadStep = 5_000

    /// Stages one chunk of a snapshot. `first` starts a new snapshot (whatever was staged before
    /// is dropped).
    public func stageSnapshotChunk(_ changeSet: ChangeSet, first: Bool) throws {
        if changeSet.schemaVersion > currentSchemaVersion || changeSet.schemaVersion < 1 {
            throw ReplicaError.unsupportedSchema(found: changeSet.schemaVersion, supported: currentSchemaVersion)
        }
        try ReplicaError.wrap("staging a snapshot chunk") {
            try db.execute("CREATE TEMP TABLE IF NOT EXISTS snapshot_staging(n INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            // A transaction that writes only `temp` locks only the temporary file.
            try db.execute("BEGIN DEFERRED")
            do {
                if first { try db.execute("DELETE FROM temp.snapshot_staging") }
                let insert = try db.cached("INSERT INTO temp.snapshot_staging(body) VALUES (?)")
                for op in changeSet.ops { try insert.run([.blob(OpCoding.encode(op))]) }
                try db.execute("COMMIT")
            } catch {
                db.rollback()
                throw error
            }
        }
    }

    /// How many ops are staged.
    public func stagedSnapshotOpCount() throws -> Int {
        try ReplicaError.wrap("counting staged snapshot ops") {
            guard try hasStagingTable() else { return 0 }
            return Int(try db.cached("SELECT count(*) FROM temp.snapshot_staging").scalar()?.int64Value ?? 0)
        }
    }

    /// Loads every staged op as one snapshot load (`beginSnapshotLoad` … `finishSnapshot`) with
    /// `cursor` stored as the position at `hub`, then drops the staged ops. On any failure
    /// nothing of the snapshot is kept, staged ops included (the hub sends the snapshot again).
    public func loadStagedSnapshot(cursor: UInt64, from hub: String = Replica.defaultHubPeer, replacingAbove: UInt64? = nil) throws {
        defer { discardStagedSnapshot() }
        try beginSnapshotLoad(replacingAbove: replacingAbove, hub: hub)
        do {
            if try hasStagingTable() {
                let read = try ReplicaError.wrap("reading staged snapshot ops") {
                    try db.cached("SELECT n, body FROM temp.snapshot_staging WHERE n > ? ORDER BY n LIMIT ?")
                }
                var after: Int64 = 0
                while true {
                    var ops: [Op] = []
                    try ReplicaError.wrap("reading staged snapshot ops") {
                        try read.query([.integer(after), .integer(Int64(Replica.stagedOpsPerLoadStep))]) { row in
                            after = row.int64(0)
                            ops.append(try OpCoding.decode(row.blob(1)))
                        }
                    }
                    if ops.isEmpty { break }
                    try applySnapshotChunk(ChangeSet(ops: ops))
                }
            }
            try finishSnapshot(cursor: cursor, from: hub, ackedSeq: replacingAbove)
        } catch {
            abandonSnapshotLoad()
            throw error
        }
    }

    /// Drops whatever is staged. Never fails (a failure here leaves rows the next snapshot's
    /// first chunk drops).
    public func discardStagedSnapshot() {
        guard (try? hasStagingTable()) == true else { return }
        _ = try? db.execute("DELETE FROM temp.snapshot_staging")
    }

    private func hasStagingTable() throws -> Bool {
        try db.cached("SELECT 1 FROM temp.sqlite_master WHERE type = 'table' AND name = 'snapshot_staging'").scalar() != nil
    }
}
