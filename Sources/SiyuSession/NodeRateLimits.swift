import SiyuCore

/// How much of the hub's one writer a PUSH may take (Protocol/SPEC.md, section 10;
/// docs/RELIABILITY.md, "Limits a hub applies before apply").
///
/// Guarantees: the defaults are the values the spec names — 20,000 ops a second per node, bursts of
/// 200,000, and at most one PUSH a second, hub-wide, that changes what customers' merges read of
/// the tag library. A rate of 0 switches the per-node limit off; an interval of 0 the tag-library one.
public struct PushLimits: Sendable, Equatable {
    /// Ops a second a node's bucket refills with (0: no per-node limit).
    public var opsPerSecond: UInt64
    /// The bucket's size: the most ops a node may push in one burst.
    public var burstOps: UInt64
    /// The least time between two PUSHes that change what customers' merges read of the tag
    /// library (`changesTagLibraryReads`), across all nodes (0: not paced).
    public var tagLibraryIntervalMillis: UInt64

    public init(opsPerSecond: UInt64 = 20_000, burstOps: UInt64 = 200_000, tagLibraryIntervalMillis: UInt64 = 1_000) {
        self.opsPerSecond = opsPerSecond
        self.burstOps = max(1, burstOps)
        self.tagLibraryIntervalMillis = tagLibraryIntervalMillis
    }

    public static let standard = PushLimits()
    /// No limit at all.
    public static let none = PushLimits(opsPerSecond: 0, tagLibraryIntervalMillis: 0)

    /// Whether these ops may change what a customer's merge reads of the tag library: a tag's
    /// group or deletion, a group's exclusive flag or deletion (a write of one of those fields, or
    /// a tag deletion op). Renames and re-sorts do not: they re-merge nobody. An op the store will
    /// refuse anyway (`Op.validate`) does not count: it is answered with its own error (8 or 14),
    /// never with `busy`.
    /// Only those ops are validated here (the store validates every op once, when it takes them).
    public static func changesTagLibraryReads(_ ops: [Op]) -> Bool {
        ops.contains { op in
            let reads: Bool
            switch op.body {
            case let .write(target, field, _, _):
                switch target.entity {
                case .tag: reads = field == "group_id" || field == "deleted"
                case .tagGroup: reads = field == "exclusive" || field == "deleted"
                default: reads = false
                }
            case .tagDeletion:
                reads = true
            default:
                reads = false
            }
            return reads && (try? op.validate()) != nil
        }
    }
}

/// The hub's PUSH limits across connections: a token bucket per node (refilled at
/// `PushLimits.opsPerSecond` up to `burstOps`) and the hub-wide pacing of tag-library changes.
/// Owned by the hub's loop thread and kept for the hub's lifetime, so reconnecting refills nothing.
///
/// Guarantees:
/// - pure: no clock, time is given (`SessionInstant`, monotonic); integer arithmetic that
///   saturates, never traps;
/// - a PUSH is admitted only if its node's bucket holds its ops (or, for a PUSH larger than the
///   whole bucket, only when the bucket is full) and, if it changes what customers' merges read of
///   the tag library, only when no such PUSH was admitted in the last interval; an admitted PUSH
///   takes its ops from the bucket (a larger one leaves it in debt) and, if it changes the
///   library, starts the interval. A PUSH that is not admitted takes nothing;
/// - memory is bounded by the nodes whose buckets are not full: a full bucket is the same as no
///   entry, and such entries are dropped whenever the table has doubled since it was last pruned.
public struct NodeRateLimits: Sendable {
    /// The answer to `admit`.
    public enum Verdict: Sendable, Equatable {
        case admitted
        /// Not admitted; `retryAfterMillis` is when the same PUSH would be; `message` says why, for
        /// people (an ERROR 12's text).
        case busy(message: String, retryAfterMillis: UInt64)
    }

    private struct Bucket: Sendable {
        /// Thousandths of an op (so that a millisecond's refill is whole); may be negative (debt).
        var milliTokens: Int64
        var updated: SessionInstant
    }

    public let limits: PushLimits
    private var buckets: [NodeID: Bucket] = [:]
    private var lastLibraryChange: SessionInstant?
    private var pruneAt = 1_024

    public init(_ limits: PushLimits = .standard) {
        self.limits = limits
    }

    /// How many nodes' buckets are kept (the others are full).
    public var trackedNodes: Int { buckets.count }

    /// Decides on a PUSH of `ops` ops by `node` at `now`, and if it is admitted, charges it.
    public mutating func admit(node: NodeID, ops: Int, changesTagLibraryReads: Bool, now: SessionInstant) -> Verdict {
        if changesTagLibraryReads, limits.tagLibraryIntervalMillis > 0, let last = lastLibraryChange {
            let since = now.milliseconds(since: last)
            if since < limits.tagLibraryIntervalMillis {
                let wait = limits.tagLibraryIntervalMillis - since
                return .busy(message: "the hub applies at most one change of a tag's group, a group's exclusive flag or a deletion every \(NodeRateLimits.seconds(limits.tagLibraryIntervalMillis)); nothing was stored: push again in \(NodeRateLimits.seconds(wait))",
                             retryAfterMillis: wait)
            }
        }
        if limits.opsPerSecond > 0, ops > 0 {
            let capacity = NodeRateLimits.milli(limits.burstOps)
            var bucket = refilled(node, now: now)
            let cost = NodeRateLimits.milli(UInt64(ops))
            let needed = min(cost, capacity)
            if bucket.milliTokens < needed {
                let perMilli = Int64(clamping: limits.opsPerSecond)   // milli-ops a millisecond
                let missing = needed - bucket.milliTokens
                let wait = UInt64(missing / perMilli + (missing % perMilli == 0 ? 0 : 1))
                buckets[node] = bucket
                return .busy(message: "node \(IdentifierRule.printable(node, limit: 64)) has used its share of the hub's writer (\(limits.opsPerSecond) ops a second, bursts of \(limits.burstOps)); nothing was stored: push again in \(NodeRateLimits.seconds(wait))",
                             retryAfterMillis: wait)
            }
            bucket.milliTokens = bucket.milliTokens.subtractingReportingOverflow(cost).overflow ? .min : bucket.milliTokens - cost
            buckets[node] = bucket
            pruneIfGrown(now: now)
        }
        if changesTagLibraryReads { lastLibraryChange = now }
        return .admitted
    }

    /// The node's bucket brought up to `now` (full if it has none).
    private func refilled(_ node: NodeID, now: SessionInstant) -> Bucket {
        let capacity = NodeRateLimits.milli(limits.burstOps)
        guard var bucket = buckets[node] else { return Bucket(milliTokens: capacity, updated: now) }
        let elapsed = now.milliseconds(since: bucket.updated)
        let (gain, overflow) = Int64(clamping: elapsed).multipliedReportingOverflow(by: Int64(clamping: limits.opsPerSecond))
        let (sum, over) = bucket.milliTokens.addingReportingOverflow(overflow ? .max : gain)
        bucket.milliTokens = over || overflow ? capacity : min(capacity, sum)
        if now > bucket.updated { bucket.updated = now }
        return bucket
    }

    /// Drops the buckets that are full again once the table has doubled since the last pruning.
    private mutating func pruneIfGrown(now: SessionInstant) {
        guard buckets.count >= pruneAt else { return }
        let capacity = NodeRateLimits.milli(limits.burstOps)
        for node in Array(buckets.keys) where refilled(node, now: now).milliTokens >= capacity {
            buckets[node] = nil
        }
        pruneAt = max(1_024, buckets.count * 2)
    }

    private static func milli(_ ops: UInt64) -> Int64 {
        let (m, overflow) = Int64(clamping: ops).multipliedReportingOverflow(by: 1_000)
        return overflow ? .max : m
    }

    public static func seconds(_ millis: UInt64) -> String {
        let fraction = String(millis % 1_000)
        return millis % 1_000 == 0 ? "\(millis / 1_000) s"
            : "\(millis / 1_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction) s"
    }
}

extension KeepalivePolicy {
    /// How long a node waits before it pushes again after ERROR 12 (`busy`): `busyRetryMillis`
    /// plus a jitter of up to as much again. The session layer has no randomness, so the jitter
    /// is drawn from the node id and the instant: nodes turned away together come back apart,
    /// and a run stays a function of its inputs.
    public func busyRetryDelay(node: NodeID, now: SessionInstant) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a of the id
        for byte in node.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        var z = (hash ^ now.milliseconds) &+ 0x9e37_79b9_7f4a_7c15   // one splitmix64 step
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        z ^= z >> 31
        let base = busyRetryMillis
        return base == 0 ? 0 : base.addingReportingOverflow(z % (base &+ 1)).partialValue
    }
}
