import SiyuCore
import SiyuSQLite

/// What applying a change set did.
public struct ApplyReport: Equatable, Sendable {
    /// Ops that were new to this replica.
    public var applied: Int
    /// Ops this replica already had (duplicates are harmless).
    public var duplicates: Int
    /// Instances re-merged.
    public var instancesMerged: Int
    /// Ops refused on their own because their clock is beyond the clock window (SPEC section 8,
    /// code 9): not stored, the rest of the change set was. Empty when every op was taken.
    public var refused: [OpRefusal] = []
}

/// Change sets between replicas: the version vector, the ops a peer lacks, the outbox, and
/// applying a peer's change set.
extension Replica {
    /// What this replica holds: per origin, the sequence number up to which it has every op.
    public func versionVector() throws -> VersionVector {
        try ReplicaError.wrap("reading the version vector") {
            try storedVersions()
        }
    }

    /// Per origin, the highest sequence up to which every op is held: other origins from the
    /// `versions` table, this node from its own numbering (replicas of schema 1 also stored it).
    func storedVersions() throws -> VersionVector {
        try dropCachesIfChangedElsewhere()
        var v = VersionVector()
        try db.cached("SELECT origin, contiguous FROM versions").query { row in
            v.entries[row.text(0) ?? ""] = UInt64(clamping: row.int64(1))
        }
        if nextSeq > 1 { v.entries[node] = nextSeq - 1 } else { v.entries[node] = nil }
        return v
    }

    /// Per origin, the stamp of the last op up to which this replica holds every op of that origin:
    /// everything this node has seen, in a form an op can carry.
    func contiguousFrontier() throws -> [Stamp] {
        var out: [Stamp] = []
        for (origin, seq) in try storedVersions().entries.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) where seq > 0 {
            if let hlc = try opLog.clock(of: origin, seq: seq) { out.append(Stamp(hlc: hlc, node: origin)) }
        }
        return out
    }

    /// The ops a peer that holds `peer` has not seen, in (origin, seq) order.
    public func changeSet(since peer: VersionVector) throws -> ChangeSet {
        try ReplicaError.wrap("extracting a change set") {
            let origins = try storedVersions().entries.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            return ChangeSet(ops: try origins.flatMap { try opLog.ops(of: $0, after: peer[$0]) })
        }
    }

    /// Applies a peer's change set in one transaction, and says what it did.
    ///
    /// Every op is checked first. An op that breaks a data rule (`Op.validate`), or claims this
    /// node's own origin past the last op it issued, refuses the **whole** change set: it throws
    /// `ReplicaError.refused` with the op, its SPEC section 8 code (8 or 14) and a hint, and
    /// nothing is stored. An op whose clock is beyond the clock window (more than
    /// `ReplicaOptions.maxClockDriftMillis` ahead of wall time) is refused **alone**: the others are
    /// stored and merged (a gap in its origin's numbering is fine, docs/MERGE.md), the clock does
    /// not adopt it, and `ApplyReport.refused` names it (code 9, retryable) so the sender can be
    /// told and send it again later. Ops already held are skipped as duplicates.
    @discardableResult
    public func apply(_ changeSet: ChangeSet) throws -> ApplyReport {
        try apply(changeSet, alongside: { _ in })
    }

    /// `apply`, running `alongside` in the same transaction after the ops are stored (with the
    /// report): a node stores its cursor this way, so the two are durable together or not at all.
    func apply(_ changeSet: ChangeSet, alongside: (ApplyReport) throws -> Void) throws -> ApplyReport {
        if changeSet.schemaVersion > currentSchemaVersion || changeSet.schemaVersion < 1 {
            throw ReplicaError.unsupportedSchema(found: changeSet.schemaVersion, supported: currentSchemaVersion)
        }
        let now = wallClock()
        // This node's own ops come back only as duplicates: it numbers its ops 1, 2, 3, … and holds
        // every one of them, so an op of its own origin numbered past its last is forged (or two
        // nodes share one id), and would otherwise take over its numbering.
        try ReplicaError.wrap("reading the replica's own numbering") { try dropCachesIfChangedElsewhere() }
        let (accepted, refused) = try screen(changeSet.ops, now: now)
        let savedClock = clock, savedSeq = nextSeq
        do {
            return try ReplicaError.wrap("applying a change set") {
                try transaction {
                    try dropCachesIfChangedElsewhere()
                    try reconcileOwnOps(accepted)   // a node recovering its own ops (Replica+OwnOpsRecovery.swift)
                    let (applied, merged) = try commit(accepted, peerCommitMode)
                    let report = ApplyReport(applied: applied, duplicates: accepted.count - applied, instancesMerged: merged,
                                             refused: refused)
                    try alongside(report)
                    return report
                }
            }
        } catch {
            clock = savedClock
            if bulk == nil { nextSeq = savedSeq }   // (inside one transaction, its end restores it)
            forgetCaches()
            throw error
        }
    }

    /// Splits a peer's ops into those to store and those refused for the clock window alone;
    /// throws for any other refusal (the whole change set is refused).
    func screen(_ ops: [Op], now: UInt64) throws -> (accepted: [Op], refused: [OpRefusal]) {
        var accepted: [Op] = []
        accepted.reserveCapacity(ops.count)
        var refused: [OpRefusal] = []
        for op in ops {
            guard let refusal = refusal(of: op, now: now) else { accepted.append(op); continue }
            guard refusal.reason == .clockSkew else { throw ReplicaError.refused(refusal) }
            refused.append(refusal)
        }
        return (accepted, refused)
    }
}
