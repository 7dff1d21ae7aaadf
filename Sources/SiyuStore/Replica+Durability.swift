import Foundation
import SiyuCore
import SiyuSQLite

/// How durable a commit is when it returns (SQLite's `synchronous` setting in WAL mode).
public enum CommitDurability: String, Sendable, Equatable {
    /// `synchronous = NORMAL`: the WAL is synced only at checkpoints. A commit survives a crash of
    /// the process, but a power cut or an OS crash may roll back the last commits. What a store
    /// node uses for its edits: its own ops that a hub acknowledged can be recovered from the hub
    /// (SPEC section 7, "Identity"), and what it pulled is pulled again. (The commit that stores
    /// its hub cursor is synced all the same: `committingDurably`.)
    case normal = "NORMAL"
    /// `synchronous = FULL`: the WAL is synced at every commit, so a commit that returned survives
    /// a power cut. What a hub uses: it acknowledges a PUSH only after the commit returns.
    case full = "FULL"
}

/// A hub's restore grace (SPEC section 7, "Log epochs"): after a new log epoch the hub may lack
/// ops it had acknowledged, which the nodes push again in an order it does not control — and the
/// stores go on editing on the strength of the ops it lost (HQ's staff rows, a transfer). Until
/// the grace ends for it — `graceMillis` after its first PUSH in this epoch, since a node's ops come
/// back only when it reconnects (a store offline for hours after the restore gets its hour then):
/// - for an op stamped before the epoch started (plus the clock window), an instance whose first
///   op in the PUSH is stamped before every op held of it counts as new
///   (`WriteCheck.restoredBeforeMillis`): the ops held came later causally and were pushed first;
/// - a write right that reads state and refuses an op answers `busy` (12), nothing stored or
///   recorded (`PushOutcome.deferred`): the ops the right reads may not have been pushed again
///   yet. After the node's grace such an op is judged for good.
public struct RestoreGrace: Sendable, Equatable {
    /// When the hub's current log epoch started (its wall clock, ms since the Unix epoch).
    public var epochStartedMillis: UInt64
    /// How long the grace lasts for each node.
    public var graceMillis: UInt64
    /// When each node first pushed in this epoch (kept in memory: a hub that starts again starts a
    /// new epoch, and with it new graces).
    public var firstPushMillis: [NodeID: UInt64] = [:]

    public init(epochStartedMillis: UInt64, graceMillis: UInt64) {
        self.epochStartedMillis = epochStartedMillis
        self.graceMillis = graceMillis
    }

    /// When node `node`'s grace ends (saturating): `graceMillis` after its first PUSH in this
    /// epoch, or, before it pushed, after `now` (a PUSH now would be its first).
    public func endMillis(of node: NodeID, now: UInt64) -> UInt64 {
        let start = max(epochStartedMillis, firstPushMillis[node] ?? now)
        return graceMillis > UInt64.max - start ? .max : start + graceMillis
    }
}

/// A hub log's identity (SPEC section 7, "Log epochs"): 32 random bytes made when the hub's log
/// starts, and made afresh whenever its history may have changed — the hub was restored from a
/// backup, or it stopped without a clean shutdown (a power cut may have rolled back its last
/// commits). A node that sees a new epoch pulls from the start and pushes again after WELCOME's
/// acked_seq, so it skips no op even if log positions were reused.
///
/// Guarantees: the epoch is kept only across a clean stop (`markCleanStop`) followed by a start of
/// the same file (`startHubLogEpoch`); the start removes the clean-stop mark durably before the
/// hub serves, so a copy of the file taken while it serves (`backup(to:)`), or a file left by a
/// crash, always starts with a new epoch. A backup copy never holds the mark.
extension Replica {
    static let hubLogEpochKey = "hub.log_epoch"
    static let hubCleanStopKey = "hub.clean_stop"
    static let hubLogEpochStartedKey = "hub.log_epoch_started"
    static func nodeLogEpochKey(_ hub: String) -> String { "sync.log_epoch." + hub }

    /// Sets how durable a commit is when it returns (for this connection to the file).
    public func setCommitDurability(_ durability: CommitDurability) throws {
        try ReplicaError.wrap("setting the commit durability") {
            try db.execute("PRAGMA synchronous = \(durability.rawValue)")
        }
    }

    /// Runs `body`, whose commit is synced to disk (`synchronous = FULL`) even on a connection that
    /// commits with `NORMAL`: a node stores its hub cursor (and the acked_seq that goes with it)
    /// this way, so that a power cut never takes its file back before a cursor it reported to the
    /// hub — the point up to which a hub may compact its log (docs/SCALING.md). Every earlier
    /// commit is in the WAL before it, so it is durable too.
    func committingDurably<T>(_ body: () throws -> T) throws -> T {
        guard !db.isInTransaction, try commitDurability() == .normal else { return try body() }
        try setCommitDurability(.full)
        defer { try? setCommitDurability(.normal) }
        let result = try body()
        syncedCursorCommits += 1
        return result
    }

    /// Sets SQLite's page cache of this connection to `megabytes` MiB (at least 1); the replica
    /// opens with `ReplicaOptions.cacheMegabytes`. A hub sets small caches on both of its
    /// connections (`HubStoreExecutor.writerCacheMegabytes`, `HubServer.readerCacheMegabytes`).
    public func setPageCache(megabytes: Int) throws {
        try ReplicaError.wrap("setting the page cache") { try Replica.setPageCache(of: db, megabytes: megabytes) }
    }

    /// The one statement that sizes a connection's page cache (at open, and `setPageCache`).
    static func setPageCache(of db: Database, megabytes: Int) throws {
        try db.execute("PRAGMA cache_size = -\(max(1, megabytes) * 1024)")
    }

    /// Sets after how many pages in the WAL a commit of this connection copies them into the file
    /// itself (SQLite's `wal_autocheckpoint`; SQLite's default is 1,000; 0: never). A serving hub
    /// raises it on its writer and checkpoints from another connection (`checkpointPassively`).
    public func setAutomaticCheckpoint(afterPages pages: Int) throws {
        try ReplicaError.wrap("setting the automatic checkpoint") {
            try db.execute("PRAGMA wal_autocheckpoint = \(max(0, pages))")
        }
    }

    /// After how many pages in the WAL a commit of this connection checkpoints (`setAutomaticCheckpoint`).
    public func automaticCheckpointPages() throws -> Int {
        try ReplicaError.wrap("reading the automatic checkpoint") {
            Int(clamping: try db.cached("PRAGMA wal_autocheckpoint").scalar()?.int64Value ?? 0)
        }
    }

    /// Copies into the file the WAL's pages that no reader still needs, without waiting for any
    /// reader or writer (`wal_checkpoint(PASSIVE)`): a writer of another connection goes on
    /// meanwhile. Returns how many pages the WAL holds and how many of them are now in the file.
    @discardableResult
    public func checkpointPassively() throws -> (walPages: Int, copied: Int) {
        try ReplicaError.wrap("checkpointing the WAL") {
            guard let row = try db.cached("PRAGMA wal_checkpoint(PASSIVE)").rows().first, row.count >= 3 else { return (0, 0) }
            return (Int(clamping: row[1].int64Value ?? 0), Int(clamping: row[2].int64Value ?? 0))
        }
    }

    /// This connection's page cache in KiB (SQLite's `cache_size`, read back as a size).
    public func pageCacheKibibytes() throws -> Int {
        try ReplicaError.wrap("reading the page cache size") {
            let pages = try db.cached("PRAGMA cache_size").scalar()?.int64Value ?? 0
            guard pages < 0 else {
                let pageSize = try db.cached("PRAGMA page_size").scalar()?.int64Value ?? 4096
                return Int(clamping: pages.multipliedReportingOverflow(by: pageSize).partialValue / 1024)
            }
            return Int(clamping: -pages)
        }
    }

    /// How durable a commit is when it returns (nil for a setting Siyu never makes: OFF, EXTRA).
    public func commitDurability() throws -> CommitDurability? {
        try ReplicaError.wrap("reading the commit durability") {
            switch try db.cached("PRAGMA synchronous").scalar()?.int64Value {
            case 1: return .normal
            case 2: return .full
            default: return nil
            }
        }
    }

    /// The hub's log epoch as a hub starts serving: the epoch kept if the file was stopped cleanly
    /// (`markCleanStop`) and is the same file since, else `fresh` (32 random bytes the caller drew)
    /// — in one transaction that also removes the clean-stop mark. `renewed` says which; a new
    /// epoch that replaces one (not the file's first) also records when it started
    /// (`hubLogEpochStartedMillis`, the wall clock now), which starts the restore grace.
    public func startHubLogEpoch(fresh: [UInt8]) throws -> (epoch: [UInt8], renewed: Bool) {
        guard fresh.count == 32 else { throw ReplicaError.invalid("a log epoch of \(fresh.count) bytes", "draw 32 random bytes") }
        return try ReplicaError.wrap("starting the hub's log epoch") {
            try transaction {
                let read = try db.cached("SELECT value FROM siyu_meta WHERE key = ?")
                let epoch = try read.scalar([.text(Replica.hubLogEpochKey)])?.blobValue
                let clean = try read.scalar([.text(Replica.hubCleanStopKey)])?.blobValue
                try db.cached("DELETE FROM siyu_meta WHERE key = ?").run([.text(Replica.hubCleanStopKey)])
                if let epoch, epoch.count == 32, clean == epoch { return (epoch, false) }
                try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?)").run([.text(Replica.hubLogEpochKey), .blob(fresh)])
                if epoch != nil {
                    // It replaces a history that nodes may have been acknowledged in: the restore grace starts.
                    try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?)")
                        .run([.text(Replica.hubLogEpochStartedKey), .integer(Int64(clamping: wallClock()))])
                }
                return (fresh, true)
            }
        }
    }

    /// The hub's current log epoch (empty before the hub first served).
    public func hubLogEpoch() throws -> [UInt8] {
        try ReplicaError.wrap("reading the hub's log epoch") {
            try db.cached("SELECT value FROM siyu_meta WHERE key = ?").scalar([.text(Replica.hubLogEpochKey)])?.blobValue ?? []
        }
    }

    /// When the hub's current log epoch started, if it replaced an earlier one (wall clock,
    /// milliseconds since the Unix epoch): nil for the file's first epoch (no node was acknowledged
    /// in an earlier history), or for an epoch made by a build that did not record it.
    public func hubLogEpochStartedMillis() throws -> UInt64? {
        try ReplicaError.wrap("reading when the hub's log epoch started") {
            try db.cached("SELECT value FROM siyu_meta WHERE key = ?").scalar([.text(Replica.hubLogEpochStartedKey)])?
                .int64Value.map { UInt64(clamping: $0) }
        }
    }

    /// Records that the hub stopped cleanly with every commit on disk: the next start of this same
    /// file keeps the log epoch. Call it last, after the hub stopped serving.
    public func markCleanStop() throws {
        try ReplicaError.wrap("marking the hub's clean stop") {
            let epoch = try hubLogEpoch()
            guard !epoch.isEmpty else { return }
            try transaction {
                try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?)").run([.text(Replica.hubCleanStopKey), .blob(epoch)])
            }
        }
    }

    /// Copies the replica into a new file at `path` (mode 0600) with SQLite's online backup, as
    /// one consistent snapshot, while other connections and processes go on writing. The copy
    /// holds no clean-stop mark, so a hub started from it makes a new log epoch and every node
    /// notices the restore. A file already at `path` is refused.
    public func backup(to path: String) throws {
        try ReplicaError.wrap("backing up to \(path)") {
            try db.backup(into: path)
            let copy = try Database(path: path, mode: .readWrite)
            defer { copy.close() }
            try copy.cached("DELETE FROM siyu_meta WHERE key = ?").run([.text(Replica.hubCleanStopKey)])
        }
    }

    // MARK: - The node's side

    /// The log epoch of `hub` this node's cursor refers to (nil if none is recorded: a node that
    /// never synced, or one of an older build).
    public func recordedLogEpoch(of hub: String = Replica.defaultHubPeer) throws -> [UInt8]? {
        try ReplicaError.wrap("reading the hub's log epoch") {
            try db.cached("SELECT value FROM siyu_meta WHERE key = ?").scalar([.text(Replica.nodeLogEpochKey(hub))])?.blobValue
        }
    }

    /// Records a hub's new log epoch and moves the cursor at `hub` back to 0, in one transaction:
    /// the positions the old cursor named may not exist, or hold other ops, in the new log. In
    /// the same transaction the quarantined own ops numbered above `ackedSeq` (the hub's, from the
    /// WELCOME that carried the epoch) leave the quarantine: the hub may have lost the record of
    /// their refusal (its file went back), and without it their numbers are never settled and
    /// acked_seq stays below them for good. Back in the outbox they are pushed again and judged
    /// again: refused again, they are quarantined again (and the hub records it); taken, they are
    /// acknowledged like any op. Quarantined ops at or below `ackedSeq` stay: the hub settled them.
    /// And the own ops a replacing snapshot set aside (the hub had dropped them by compaction) go
    /// back into the op log and their instances are merged again: the new log may be older than
    /// that compaction, and then the node reads again from it the ops of other origins those own
    /// ops overwrote — without them, such an op would be a head again at the node and not at the
    /// hub (simulator seed 2711). A new log that holds the compaction answers the PULL from 0 with
    /// a snapshot, which sets them aside again.
    public func adoptLogEpoch(_ epoch: [UInt8], of hub: String = Replica.defaultHubPeer, ackedSeq: UInt64) throws {
        try ReplicaError.wrap("adopting the hub's log epoch") {
            try transaction {
                try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?)").run([.text(Replica.nodeLogEpochKey(hub)), .blob(epoch)])
                try nodeSync.restart(at: hub, keepingQuarantineThrough: Int64(clamping: ackedSeq))
                var aside: [Op] = []
                try db.cached("SELECT body FROM own_set_aside ORDER BY seq").query { row in aside.append(try OpCoding.decode(row.blob(0))) }
                guard !aside.isEmpty else { return }
                try db.execute("DELETE FROM own_set_aside")
                _ = try commit(aside, peerCommitMode)
                // Rows of an instance that has left a store's scope since: gone again (its own ops stay).
                try dropInstancesOutOfScope(Set(aside.map(\.instance)))
            }
        }
    }
}
