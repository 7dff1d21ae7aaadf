import Foundation
import SiyuCore
import SiyuSQLite

/// A new replica's snapshot loaded for size (`bulkLoad`, and the held-open form
/// `beginSnapshotLoad`/`finishSnapshotLoad` in Replica+Transactions.swift).
extension Replica {
    /// Loads change sets (a new store's snapshot) into a replica that holds no ops yet, as one
    /// transaction like `inOneTransaction` — all or nothing — but built for size:
    /// - the file uses a rollback journal for the load instead of the write-ahead log (a new file's
    ///   journal holds almost nothing, and every page is written once rather than to the log and
    ///   again at the checkpoint), and returns to the write-ahead log after it;
    /// - `ops_by_origin` is built after the load, in one pass, and so are the version vector and
    ///   the `tagged_customers` pairs of tags shown in `customer_tags`.
    /// The version vector reads as empty until the load ends. Two different ops with the same
    /// origin and sequence number refuse the whole load. A replica that already holds ops gets
    /// exactly `inOneTransaction`.
    @discardableResult
    public func bulkLoad<T>(_ body: () throws -> T) throws -> T {
        guard bulk == nil else { return try body() }
        let empty = try ReplicaError.wrap("checking the replica is empty") { try opLog.isEmpty() }
        guard empty else { return try inOneTransaction(body) }
        // Another connection to the file keeps it in WAL mode: then the load simply runs in it.
        let switched = (try? db.prepare("PRAGMA journal_mode = DELETE").scalar()?.stringValue) == "delete"
        defer { if switched { _ = try? db.prepare("PRAGMA journal_mode = WAL").scalar() } }
        return try inOneTransaction(BulkTransaction(load: BulkLoad())) {
            try db.execute("DROP INDEX ops_by_origin")
            let result = try body()
            try finishBulkLoad()
            return result
        }
    }

    /// The end of a bulk load: the index, the tag pairs and the version vector it deferred.
    func finishBulkLoad() throws {
        guard let load = bulk?.load else { return }
        // SQLite's sorts (the index, the tag pairs in key order) take as much memory as the page
        // cache may: a quarter of it is as fast here, and keeps a store's peak near its page
        // cache. One helper thread sorts alongside (on two cores, −0.25 s of 0.7 s for the index
        // of 1.1M ops).
        let cache = try db.cached("PRAGMA cache_size").scalar()?.int64Value ?? -16_384
        try db.execute("PRAGMA cache_size = \(cache / 4); PRAGMA threads = 1")
        defer { try? db.execute("PRAGMA cache_size = \(cache); PRAGMA threads = 0") }
        do {
            try db.execute("CREATE UNIQUE INDEX ops_by_origin ON ops(origin, seq)")
        } catch let e as SQLiteError where e.isConstraintViolation {
            throw ReplicaError.invalid("the loaded change sets hold two different ops with the same origin and sequence number; nothing was stored",
                                       "the sender's op log is inconsistent; rebuild it, then load again")
        }
        try db.execute(Replica.tagShownPairs)
        for (origin, highest) in load.highest {
            // Held without a gap when as many ops are numbered up to the highest as its number says.
            let contiguous = Int64(clamping: try opLog.count(of: origin, through: highest) == Int64(clamping: highest)
                ? highest : opLog.contiguousEnd(of: origin))
            try db.cached("INSERT OR REPLACE INTO versions(origin, contiguous, highest) VALUES (?, ?, ?)")
                .run([.text(origin), .integer(contiguous), .integer(Int64(clamping: highest))])
        }
    }

    /// Every shown (tag, customer) pair into `tagged_customers` (a bulk load defers them), sorted
    /// first so the table is written in key order.
    static let tagShownPairs = "INSERT OR IGNORE INTO tagged_customers(tag_id, customer_id) SELECT tag_id, customer_id FROM customer_tags ORDER BY tag_id, customer_id"

    /// A bulk load's new instances: merged on a second thread a window at a time (merging is pure),
    /// while this one stores the window's ops and writes the previous window's rows. Windows bound
    /// the merged states held at once. Nothing happens when the tag library changes in the batch:
    /// then every instance merges in order, after the library, in `commit`.
    func writeNewInstancesAside(of batch: inout CommitBatch, tagged: Statement, indexingTags: Bool) throws {
        guard !batch.refs.indices.contains(where: { batch.isLibrary($0) && !batch.inserted[$0].isEmpty }) else { return }
        let fresh = batch.refs.indices.filter { !batch.existed[$0] && !batch.inserted[$0].isEmpty }
        var previous: [(slot: Int, state: InstanceState)] = []
        func writePrevious(_ batch: inout CommitBatch) throws {
            for (slot, state) in previous {
                try write(state, previous: InstanceState.empty(state.instance), indexingTags: indexingTags)
                if !stateCache.isEmpty { stateCache.removeValue(forKey: state.instance) }
                try recordHiddenTags(batch.tagsToRecord[slot], of: state, with: tagged)
                batch.written[slot] = true
            }
            previous = []
        }
        for start in stride(from: 0, to: fresh.count, by: Replica.mergeWindow) {
            let window = Array(fresh[start..<min(start + Replica.mergeWindow, fresh.count)])
            let states = try mergeAside(window.map { (batch.refs[$0], batch.inserted[$0]) }) {
                try insertOps(ofSlots: window, of: &batch)
                try writePrevious(&batch)
            }
            previous = Array(zip(window, states))
        }
        try writePrevious(&batch)
    }

    /// Merges each instance from the given ops alone, on a second thread while `work` runs on this
    /// one (merging is pure; SQLite work is not); the states come back in order. Below 64
    /// instances a thread is not worth it: they merge here, after `work`.
    private func mergeAside(_ instances: [(InstanceRef, [Op])], while work: () throws -> Void) throws -> [InstanceState] {
        let catalog = try catalog()
        guard instances.count >= 64 else {
            try work()
            return instances.map { InstanceState.merge($0.0, ops: $0.1, catalog: catalog) }
        }
        let merged = MergedStates()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global(qos: .userInitiated).async {
            merged.states = instances.map { InstanceState.merge($0.0, ops: $0.1, catalog: catalog) }
            done.signal()
        }
        var failure: Error?
        do { try work() } catch { failure = error }
        done.wait()
        if let failure { throw failure }
        return merged.states
    }

    /// How many new instances a bulk load merges aside at a time.
    static let mergeWindow = 250

    /// The merge thread's results: written by that thread alone, read only after it signalled.
    final class MergedStates: @unchecked Sendable {
        var states: [InstanceState] = []
    }

    /// In a bulk load: the tags a customer's new ops named that `customer_tags` does not show go
    /// to `tagged_customers` now (the shown ones follow at the end of the load).
    func recordHiddenTags(_ tags: Set<String>?, of state: InstanceState, with insert: Statement) throws {
        guard let tags else { return }
        let shown = Set((state.rows[.customerTags] ?? []).compactMap { $0.count > 1 ? $0[1].textValue : nil })
        for tag in tags.subtracting(shown).sorted() { try insert.run([.text(tag), .text(state.instance.id)]) }
    }
}
