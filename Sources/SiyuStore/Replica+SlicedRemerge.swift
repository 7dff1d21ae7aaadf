import Foundation
import SiyuCore
import SiyuSQLite

/// Re-merging the customers that hold a changed tag in slices (docs/RELIABILITY.md, "Limits a hub
/// applies before apply"). A change of what customers' merges read of the tag library (a tag's
/// group, a group's exclusive flag, a deletion) re-merges every customer holding an affected tag;
/// with `tagHolderSlice` set, a commit that would re-merge more holders than one slice (beyond the
/// customers it merges anyway, having new ops of theirs) only records the tags, and
/// `settlePendingRemerges(limit:)` re-merges their holders a slice at a time, between other writes.
/// A change with fewer holders is merged in its own commit, as without slicing.
///
/// Guarantees:
/// - what is pending is kept in the file (`siyu_meta`, key `remerge_pending`: per tag, the last
///   customer re-merged), written in the same transaction as the change that made it pending and
///   as each slice, so a crash loses nothing of it; the file layout is unchanged;
/// - once nothing is pending, the tables equal those of a replica that re-merged every holder at
///   once (re-merging is a function of the ops held and the library); a customer that receives
///   ops meanwhile is re-merged whole with them, so only the remaining holders' rows lag;
/// - `digest()` settles whatever is pending first, so a digest always describes the settled state;
/// - a tag changed again while pending starts over from its first holder.
extension Replica {
    static let pendingRemergeKey = "remerge_pending"

    /// A tag whose holders are being re-merged, and the last holder done ("" before the first).
    struct PendingRemerge: Equatable {
        var tag: String
        var after: String
    }

    /// Whether some customers holding a changed tag are still to be re-merged.
    public var hasPendingRemerges: Bool {
        get throws {
            try ReplicaError.wrap("reading pending re-merges") { try !pendingRemerges().isEmpty }
        }
    }

    /// Re-merges up to `limit` customers (nil: all) whose tags changed in the library, in one
    /// transaction. Returns whether any remain pending.
    /// With `timeBudgetMillis`, the slice also ends once it has re-merged for that long (checked
    /// every 32 customers, after at least one batch): a slice then holds a writer for about that
    /// time whatever one customer's re-merge costs.
    @discardableResult
    public func settlePendingRemerges(limit: Int?, timeBudgetMillis: UInt64? = nil) throws -> Bool {
        try ReplicaError.wrap("re-merging the customers holding changed tags") {
            guard try !pendingRemerges().isEmpty else { return false }
            return try transaction {
                try dropCachesIfChangedElsewhere()
                var pending = try pendingRemerges()
                var budget = limit.map { max(1, $0) } ?? Int.max
                let holders = try db.cached("""
                    SELECT customer_id FROM tagged_customers WHERE tag_id = ? AND customer_id > ? ORDER BY customer_id LIMIT ?
                    """)
                let deadline = timeBudgetMillis.map { DispatchTime.now().uptimeNanoseconds &+ $0 &* 1_000_000 }
                var done = 0
                while budget > 0, var first = pending.first {
                    if let deadline, done > 0, DispatchTime.now().uptimeNanoseconds >= deadline { break }
                    let want = min(budget, deadline == nil ? 100_000 : 32)
                    let ids = try holders.rows([.text(first.tag), .text(first.after), .integer(Int64(want))]).compactMap { $0[0].stringValue }
                    for id in ids { try remerge(InstanceRef(.customer, id), onlyOps: nil) }
                    budget -= ids.count
                    done += ids.count
                    if ids.count < want {
                        pending.removeFirst()
                    } else {
                        first.after = ids.last ?? first.after
                        pending[0] = first
                    }
                }
                try storePendingRemerges(pending)
                return !pending.isEmpty
            }
        }
    }

    /// Records that the holders of `tags` are to be re-merged (inside the commit that changed them).
    func deferRemerges(ofHoldersOf tags: Set<String>) throws {
        guard !tags.isEmpty else { return }
        var pending = try pendingRemerges().filter { !tags.contains($0.tag) }
        pending += tags.sorted().map { PendingRemerge(tag: $0, after: "") }
        try storePendingRemerges(pending)
    }

    func pendingRemerges() throws -> [PendingRemerge] {
        guard let text = try db.cached("SELECT value FROM siyu_meta WHERE key = ?").scalar([.text(Replica.pendingRemergeKey)])?.stringValue else {
            return []
        }
        // One tag a line, its last holder done after a tab: ids hold neither (no control characters).
        return text.split(separator: "\n").map { line in
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            return PendingRemerge(tag: String(parts[0]), after: parts.count > 1 ? String(parts[1]) : "")
        }
    }

    private func storePendingRemerges(_ pending: [PendingRemerge]) throws {
        if pending.isEmpty {
            try db.cached("DELETE FROM siyu_meta WHERE key = ?").run([.text(Replica.pendingRemergeKey)])
        } else {
            let text = pending.map { "\($0.tag)\t\($0.after)" }.joined(separator: "\n")
            try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?)").run([.text(Replica.pendingRemergeKey), .text(text)])
        }
    }
}
