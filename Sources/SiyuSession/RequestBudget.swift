import SiyuCore

/// A per-node budget for the requests that make a hub read a node's whole scope — a snapshot (a
/// PULL from cursor 0, past the log head, or after a new log epoch) and a state digest
/// (DIGEST_REQUEST) — so that a node asking for them in a loop gets `busy` (12) instead of
/// holding the hub's one writer thread (Protocol/SPEC.md, section 10).
///
/// Guarantees: pure (time is given, monotonic); a token bucket per node holding at most `burst`
/// requests, refilled one every `refillMillis`; a request not admitted takes nothing; integer
/// arithmetic that saturates; memory bounded by the nodes whose bucket is not full (full ones are
/// dropped whenever the table has doubled since it was last pruned).
public struct RequestBudget: Sendable {
    public let burst: UInt64
    public let refillMillis: UInt64
    private var spent: [NodeID: (tokens: UInt64, since: SessionInstant)] = [:]
    private var pruneAt = 1_024

    /// `burst` requests at once, then one every `refillMillis` (0: no limit).
    public init(burst: UInt64, refillMillis: UInt64) {
        self.burst = max(1, burst)
        self.refillMillis = refillMillis
    }

    /// Snapshots: 3 at once, then one a minute per node.
    public static let snapshots = RequestBudget(burst: 3, refillMillis: 60_000)
    /// State digests: 3 at once, then one every 10 seconds per node.
    public static let digests = RequestBudget(burst: 3, refillMillis: 10_000)

    /// Whether `node` may make one more such request at `now`; if so, it is charged. When not,
    /// `retryAfterMillis` says when it may.
    public mutating func admit(_ node: NodeID, now: SessionInstant) -> (admitted: Bool, retryAfterMillis: UInt64) {
        guard refillMillis > 0 else { return (true, 0) }
        var entry = spent[node] ?? (burst, now)
        let gained = now.milliseconds(since: entry.since) / refillMillis
        if gained > 0 {
            entry.tokens = min(burst, entry.tokens.addingReportingOverflow(gained).overflow ? burst : entry.tokens + gained)
            entry.since = entry.tokens == burst ? now : entry.since.adding(milliseconds: gained &* refillMillis)
        }
        guard entry.tokens > 0 else {
            spent[node] = entry
            return (false, refillMillis - now.milliseconds(since: entry.since) % refillMillis)
        }
        entry.tokens -= 1
        spent[node] = entry
        if spent.count >= pruneAt {
            spent = spent.filter { $0.value.tokens < burst }
            pruneAt = max(1_024, spent.count * 2)
        }
        return (true, 0)
    }
}
