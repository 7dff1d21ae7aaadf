import Foundation
import SiyuCore
import SiyuSQLite

/// Transactions of the replica: one edit or apply (`transaction`), many change sets as one
/// (`inOneTransaction`), and a transaction held open across calls for a snapshot whose chunks
/// arrive one at a time (`beginSnapshotLoad` … `finishSnapshotLoad` / `abandonSnapshotLoad`).
extension Replica {
    /// Runs `body` (say, applying every chunk of a snapshot) as one transaction: all of it is
    /// stored, or nothing. Edits and applies inside it take no savepoints of their own, so one that
    /// fails after it started writing fails the whole transaction, even if `body` catches its
    /// error (the transaction is rolled back and that error rethrown); one refused before writing
    /// (a bad op, a clock too far ahead) leaves nothing behind, and `body` may go on. Applying many
    /// change sets in one transaction writes each page once instead of once per change set.
    @discardableResult
    public func inOneTransaction<T>(_ body: () throws -> T) throws -> T {
        try inOneTransaction(BulkTransaction(), body)
    }

    func inOneTransaction<T>(_ transaction: BulkTransaction, _ body: () throws -> T) throws -> T {
        guard bulk == nil else { return try body() }   // already inside one
        let saved = (clock, nextSeq)
        bulk = transaction
        defer { bulk = nil; staged = nil }
        do {
            return try ReplicaError.wrap("applying in one transaction") {
                try db.transaction {
                    let result = try body()
                    if bulk?.failure == nil { try commitStagedImports() }
                    if let failure = bulk?.failure { throw failure }
                    return result
                }
            }
        } catch {
            (clock, nextSeq) = bulk?.saved ?? saved
            forgetCaches()
            throw error
        }
    }

    /// Runs `body`'s reads on one snapshot of the file: one read transaction (`BEGIN` … `COMMIT`),
    /// or the transaction already open. Its reads agree with each other whatever another
    /// connection commits meanwhile, and SQLite asks once, not once a statement, whether another
    /// connection wrote since this one last read — which, on a hub whose writer commits many times a
    /// second, means discarding this connection's page cache and reading the pages again.
    public func readingOneSnapshot<T>(_ body: () throws -> T) throws -> T {
        try ReplicaError.wrap("reading the file") { try db.readTransaction(body) }
    }

    /// Inside `inOneTransaction` (not a snapshot load): commits everything done so far and opens
    /// the next transaction, so a long job (a WeCom import) lets other writers of the file — a
    /// node daemon recording its sync — in between its batches. What was committed stays even if
    /// a later batch fails; caches are dropped, since another process may have written meanwhile.
    public func commitSoFar() throws {
        guard let transaction = bulk, !transaction.heldOpen, transaction.load == nil, db.isInTransaction else {
            throw ReplicaError.invalid("commitSoFar runs only inside inOneTransaction", "call it from the body of inOneTransaction")
        }
        if let failure = transaction.failure { throw failure }
        try ReplicaError.wrap("committing a batch") {
            try commitStagedImports()
            try db.execute("COMMIT")
            bulk?.saved = (clock, nextSeq)
            try db.execute("BEGIN IMMEDIATE")
            try dropCachesIfChangedElsewhere()
        }
    }

    /// The state of an `inOneTransaction` in progress: the first error of a step inside it.
    struct BulkTransaction {
        var failure: Error?
        /// Set during `bulkLoad`.
        var load: BulkLoad?
        /// Opened by `beginSnapshotLoad` and held across calls.
        var heldOpen = false
        /// The clock and numbering to go back to if a held-open transaction is abandoned.
        var saved: (HybridClock, UInt64)?
        /// The held-open load switched the file to a rollback journal (back to WAL at its end).
        var switchedJournal = false
        /// A replacing load (`beginSnapshotLoad(replacingAbove:)`).
        var replacing: Replacing?
        /// The held-open load's commit is synced (FULL) on a connection that commits with NORMAL:
        /// back to NORMAL at its end.
        var syncedCommit = false
    }

    /// What a replacing snapshot load keeps track of until its end.
    struct Replacing {
        /// Own ops numbered up to this (and not quarantined) go unless the snapshot brought them.
        var bound: UInt64
        /// The instances this node's own ops touched when the load began: merged again at its end.
        var ownInstances: Set<InstanceRef>
        /// The instances the snapshot's ops touch, and the own numbers it brought.
        var brought: Set<InstanceRef> = []
        var broughtOwn: Set<UInt64> = []
    }

    /// What a bulk load defers to its end: per origin, the highest sequence number loaded.
    struct BulkLoad {
        var highest: [NodeID: UInt64] = [:]
    }

    /// How a peer's ops are committed now: as a bulk load while one is open (`bulkLoad`, or a
    /// snapshot load into a replica that held no ops), otherwise as a remote apply.
    var peerCommitMode: CommitMode { bulk?.load != nil ? .bulkLoad : .remoteApply }

    /// One edit or apply as a transaction of its own — or, inside `inOneTransaction`, as a step of
    /// that one (no savepoint: a failed step fails the whole transaction).
    /// Staged customer imports are committed first, so every step sees them and ops stay in order.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        guard bulk != nil else { return try db.transaction(body) }
        do {
            if staged != nil { try commitStagedImports() }
            return try body()
        } catch {
            if bulk?.failure == nil { bulk?.failure = error }
            throw error
        }
    }

    // MARK: - A transaction held open across calls

    /// Whether a snapshot load is open (`beginSnapshotLoad`).
    public var isLoadingSnapshot: Bool { bulk?.heldOpen == true }

    /// Opens one transaction that the chunks of a snapshot go into, one `apply` each, until
    /// `finishSnapshotLoad` commits them all or `abandonSnapshotLoad` (or a failed chunk, or
    /// closing the replica) leaves nothing of them. A replica that holds no ops yet loads the
    /// snapshot as `bulkLoad` does (rollback journal, indexes built at the end); one that holds
    /// ops gets an ordinary transaction. Refused while another transaction of this replica is open.
    ///
    /// `replacingAbove` (the hub's acked_seq as the node knows it; SPEC section 7, "Snapshots"): the
    /// snapshot replaces what this replica holds. When the load begins every op of another origin
    /// is forgotten and every row of the data model and the conflict log deleted; at its end each
    /// own op numbered up to `replacingAbove` and up to the acked_seq recorded from `hub` (the hub
    /// holds those, or dropped them) that is not quarantined goes unless the snapshot brought it —
    /// when it brought its instance (it brings every op the hub holds of the instances it brings,
    /// those of the node's scope and those that left it) — and the instances of the own ops are
    /// merged again. A hub that compacted its log
    /// no longer holds ops this replica may still hold without what overwrote them (its file went
    /// back); kept, they would merge differently than at the hub. The numbering is recorded so that
    /// no number is given twice.
    public func beginSnapshotLoad(replacingAbove: UInt64? = nil, hub: String = Replica.defaultHubPeer) throws {
        guard bulk == nil, !db.isInTransaction else {
            throw ReplicaError.invalid("a snapshot load cannot start inside another transaction of this replica",
                                       "finish or abandon the one in progress first")
        }
        try ReplicaError.wrap("starting a snapshot load") {
            try dropCachesIfChangedElsewhere()
            // A replacing load into a replica with no own op forgets everything: a bulk load then.
            let empty = try replacingAbove == nil ? opLog.isEmpty() : opLog.count(of: node) == 0
            var transaction = BulkTransaction(load: empty ? BulkLoad() : nil)
            transaction.heldOpen = true
            transaction.saved = (clock, nextSeq)
            if empty {
                transaction.switchedJournal = (try? db.prepare("PRAGMA journal_mode = DELETE").scalar()?.stringValue) == "delete"
            }
            // The load stores the node's cursor: its commit is synced, as `applyChanges`'s is.
            if try commitDurability() == .normal {
                try setCommitDurability(.full)
                transaction.syncedCommit = true
            }
            do {
                try db.execute("BEGIN IMMEDIATE")
                if let replacingAbove {
                    let bound = min(replacingAbove, try nodeSync.state(at: hub).ackedSeq)
                    transaction.replacing = Replacing(bound: bound, ownInstances: try forgetHistoryForReplacingSnapshot())
                }
                bulk = transaction
                if empty { try db.execute("DROP INDEX ops_by_origin") }
            } catch {
                bulk = nil
                db.rollback()
                if transaction.switchedJournal { _ = try? db.prepare("PRAGMA journal_mode = WAL").scalar() }
                if transaction.syncedCommit { try? setCommitDurability(.normal) }
                throw error
            }
        }
    }

    /// Commits the snapshot load, after running `last` inside it (a node stores its cursor there).
    /// If a chunk failed, or `last` or the commit fails, nothing of the load is kept and the error
    /// is thrown.
    public func finishSnapshotLoad(_ last: () throws -> Void = {}) throws {
        guard let transaction = bulk, transaction.heldOpen else {
            throw ReplicaError.invalid("no snapshot load is open", "start one with beginSnapshotLoad")
        }
        do {
            try ReplicaError.wrap("finishing a snapshot load") {
                if let failure = transaction.failure { throw failure }
                try commitStagedImports()
                try finishBulkLoad()
                if let replacing = bulk?.replacing { try finishReplacing(replacing) }
                try last()
                try db.execute("COMMIT")
            }
        } catch {
            abandonSnapshotLoad()
            throw error
        }
        bulk = nil
        if transaction.switchedJournal { _ = try? db.prepare("PRAGMA journal_mode = WAL").scalar() }
        if transaction.syncedCommit {
            try? setCommitDurability(.normal)
            syncedCursorCommits += 1
        }
    }

    /// The first step of a replacing snapshot load (see `beginSnapshotLoad`); the instances of
    /// this node's own ops.
    private func forgetHistoryForReplacingSnapshot() throws -> Set<InstanceRef> {
        try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES ('next_seq', ?)").run([.integer(Int64(clamping: nextSeq))])
        try db.cached("DELETE FROM ops WHERE origin != ?").run([.text(node)])
        var own = Set<InstanceRef>()
        try db.cached("SELECT DISTINCT inst_kind, inst_id FROM ops").query { row in
            if let kind = InstanceKind(name: row.text(0) ?? "") { own.insert(InstanceRef(kind, row.text(1) ?? "")) }
        }
        for table in Table.allCases { try db.execute("DELETE FROM \(table.rawValue)") }
        try db.execute("DELETE FROM conflicts")
        forgetCaches()
        return own
    }

    /// Notes what a chunk of a replacing snapshot load brings.
    func noteBrought(_ ops: [Op]) {
        guard bulk?.replacing != nil else { return }
        for op in ops {
            bulk?.replacing?.brought.insert(op.instance)
            if op.origin == node { bulk?.replacing?.broughtOwn.insert(op.seq) }
        }
    }

    /// The last step of a replacing snapshot load (see `beginSnapshotLoad`).
    private func finishReplacing(_ replacing: Replacing) throws {
        // The snapshot brings every op the hub holds of each instance it brings — those of the
        // node's scope, and those that left it (SPEC section 7, "Transfers") — own ops included.
        let quarantined = Set(try nodeSync.quarantined().map(\.seq))
        let delete = try db.cached("DELETE FROM ops WHERE inst_kind = ? AND inst_id = ? AND origin = ? AND seq = ?")
        let setAside = try db.cached("INSERT OR REPLACE INTO own_set_aside(seq, body) VALUES (?, ?)")
        for op in try opLog.ops(of: node, after: 0) where op.seq <= replacing.bound && !quarantined.contains(op.seq)
            && replacing.brought.contains(op.instance) && !replacing.broughtOwn.contains(op.seq) {
            try delete.run([.text(op.instance.kind.name), .text(op.instance.id), .text(node), .integer(Int64(clamping: op.seq))])
            // Out of every merge, but kept: a hub restored from a backup older than its compaction
            // may lack it, and then the node pushes it again (`outbox`).
            try setAside.run([.integer(Int64(clamping: op.seq)), .blob(OpCoding.encode(op))])
        }
        // Every instance of an own op, not only those that lost one: the chunks merged only the
        // instances they brought new ops of (an own op brought again is a duplicate, merged
        // nothing), and every row went when the load began.
        for instance in replacing.ownInstances.sorted() { try remerge(instance, onlyOps: nil) }
        forgetCaches()
        if ownOpsRecovery != nil {
            ownOpsRecovery?.replaced = true
            ownOpsRecovery?.brought = replacing.brought
        }
    }

    /// Rolls the snapshot load back: nothing of its chunks is kept. Does nothing when none is open.
    public func abandonSnapshotLoad() {
        guard let transaction = bulk, transaction.heldOpen else { return }
        db.rollback()
        bulk = nil
        staged = nil
        if let saved = transaction.saved { (clock, nextSeq) = saved }
        forgetCaches()
        if transaction.switchedJournal { _ = try? db.prepare("PRAGMA journal_mode = WAL").scalar() }
        if transaction.syncedCommit { try? setCommitDurability(.normal) }
    }
}
