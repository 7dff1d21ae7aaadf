import Foundation
import SiyuCore
import SiyuSQLite

/// An op's number: its origin and sequence number.
struct OpKey: Hashable {
    var origin: NodeID
    var seq: UInt64
    init(_ op: Op) { origin = op.origin; seq = op.seq }
}

extension OpBody {
    /// Every stamp the op names (what it overwrote, removed, observed or had seen).
    var namedStamps: [Stamp] {
        switch self {
        case let .write(_, _, _, list), let .add(_, list), let .remove(_, list), let .status(_, _, _, list),
             let .deleteCustomer(_, list), let .tagDeletion(_, list):
            return list
        case .points, .acknowledge:
            return []
        }
    }
}

extension OpBody {
    /// The same body naming `new` wherever it named `old`.
    func naming(_ new: Stamp, insteadOf old: Stamp) -> OpBody {
        func swap(_ list: [Stamp]) -> [Stamp] { list.map { $0 == old ? new : $0 } }
        switch self {
        case let .write(t, f, v, list): return .write(t, field: f, value: v, overwrites: swap(list))
        case let .add(t, list): return .add(t, removes: swap(list))
        case let .remove(t, list): return .remove(t, removes: swap(list))
        case let .status(id, from, to, list): return .status(orderID: id, from: from, to: to, seen: swap(list))
        case let .deleteCustomer(id, list): return .deleteCustomer(customerID: id, observed: swap(list))
        case let .tagDeletion(ref, list): return .tagDeletion(ref, seen: swap(list))
        case .points, .acknowledge: return self
        }
    }
}

/// What one call of `compactLog` did.
public struct CompactionReport: Equatable, Sendable {
    /// The stable point: the lowest cursor of the registered nodes (0 when one of them has pulled
    /// nothing yet and has pushed something). Ops after it were not considered.
    public var stablePosition: UInt64
    /// The node whose cursor is the stable point (nil when no node is registered).
    public var heldBackBy: NodeID?
    /// Instances read, and ops dropped from them (field writes another write overwrote).
    public var instancesExamined = 0
    public var opsDropped = 0
    /// Log positions of dropped ops forgotten (`hub_log` rows deleted): all but the head's.
    public var positionsForgotten = 0
    /// Instances whose candidates were kept because the merge without them differed (none is
    /// expected: counted so that a wrong rule shows instead of changing anything).
    public var instancesKeptByCheck = 0
    /// The log's floor after the call: a PULL from a cursor below it is answered with a snapshot.
    public var floor: UInt64
    /// Where the next call starts (nil when this one reached the last instance).
    public var resumeAfter: InstanceRef?
}

/// A hub's log compaction (docs/SCALING.md, "The log grows with every op"; docs/OPERATIONS.md,
/// "Compacting the log"; SPEC section 7, "Compaction"):
/// it drops ops no merge can need any more, and keeps their numbers.
///
/// What goes: a field write at a log position at or before the stable point (every registered
/// node has pulled past it) that another write of the same field, also at or before it, names as
/// the only write it overwrote — when no other op names it, no conflict entry holds its stamp, and
/// every write it overwrote goes too (or is not held). Merging the instance without the candidates
/// must give the same rows and conflict entries as with them (checked for every instance, or
/// nothing of it goes). Tag library, stores and orders are left whole (the catalog, and payments
/// that name line edits), and so are the writes that decide an instance's home (transfers).
///
/// Guarantees: one instance's candidates go in one transaction with their tombstones
/// (`hub_dropped`: origin, number, clock, content digest) and the marks (`hub_log_floor`, the
/// highest position dropped; `hub_log_compactions`, counted up) and, when the instance's first op
/// goes, its clock (`hub_first_clocks`, which the restore grace reads); a dropped op's position is
/// forgotten (its `hub_log` row deleted) unless it is the head's, whose row keeps SQLite from
/// giving a position twice; the state digest of every scope is unchanged.
extension Replica {
    /// How many instances one transaction of `compactLog` examines.
    public static let compactionInstancesPerTransaction = 500

    /// The stable point and the node whose cursor it is: the lowest cursor of the registered nodes,
    /// leaving out those that never pulled nor pushed (a new node bootstraps from a snapshot).
    public func compactionStablePoint() throws -> (position: UInt64, node: NodeID?) {
        try ReplicaError.wrap("reading the nodes' cursors") {
            var lowest: (position: UInt64, node: NodeID?) = (try hubLog.head(), nil)
            for record in try hubLog.nodes() where !(record.cursor == 0 && record.ackedSeq == 0) {
                if lowest.node == nil || record.cursor < lowest.position { lowest = (record.cursor, record.node) }
            }
            return lowest
        }
    }

    /// The log's floor: the highest position of an op compaction dropped (0 when none).
    public func logFloor() throws -> UInt64 {
        try ReplicaError.wrap("reading the log's floor") { try hubLog.mark(HubLog.floorKey) }
    }

    /// How many compactions dropped anything (a snapshot read across one is abandoned).
    public func logCompactions() throws -> UInt64 {
        try ReplicaError.wrap("reading the compaction count") { try hubLog.mark(HubLog.compactionsKey) }
    }

    /// Whether compaction dropped op `seq` of `origin` (its number stays held).
    public func hasDropped(origin: NodeID, seq: UInt64) throws -> Bool {
        try ReplicaError.wrap("reading dropped ops") { try hubLog.dropped(origin: origin, seq: seq) != nil }
    }

    /// Every number whose op compaction dropped (or whose op came again under it, renumbered),
    /// as "origin#seq".
    public func droppedNumbers() throws -> Set<String> {
        try ReplicaError.wrap("reading dropped ops") {
            Set(try db.cached("SELECT origin, seq FROM hub_dropped").rows().map { "\($0[0].stringValue ?? "")#\($0[1].int64Value ?? 0)" })
        }
    }

    /// How many ops compaction has dropped in all.
    public func droppedOpCount() throws -> Int64 {
        try ReplicaError.wrap("counting dropped ops") { try hubLog.droppedCount() }
    }

    /// Compacts up to `maxInstances` instances after `after` (from the first when nil), in
    /// transactions of `compactionInstancesPerTransaction`, with ops up to the stable point (or
    /// `through`, if lower). Only a hub's file compacts (its role is HQ's; it has a registry).
    public func compactLog(after: InstanceRef? = nil, maxInstances: Int = .max, through: UInt64? = nil) throws -> CompactionReport {
        let stable = try compactionStablePoint()
        let limit = min(stable.position, through ?? .max)
        var report = CompactionReport(stablePosition: stable.position, heldBackBy: stable.node, floor: try logFloor())
        guard limit > 0 else { return report }
        var resume = after
        var remaining = maxInstances
        while remaining > 0 {
            let batch = min(remaining, Replica.compactionInstancesPerTransaction)
            let (last, done) = try ReplicaError.wrap("compacting the log") {
                try transaction {
                    let instances = try opLog.instances(after: resume, limit: batch)
                    var highest: Int64 = 0
                    var droppedAny = false
                    for instance in instances {
                        report.instancesExamined += 1
                        let outcome = try compact(instance, through: Int64(clamping: limit))
                        switch outcome {
                        case let .dropped(count, position, forgotten):
                            report.opsDropped += count
                            report.positionsForgotten += forgotten
                            highest = max(highest, position)
                            droppedAny = true
                        case .keptByCheck:
                            report.instancesKeptByCheck += 1
                        case .nothing:
                            break
                        }
                    }
                    if droppedAny {
                        let floor = max(try hubLog.mark(HubLog.floorKey), UInt64(clamping: highest))
                        try hubLog.setMark(HubLog.floorKey, floor)
                        try hubLog.setMark(HubLog.compactionsKey, try hubLog.mark(HubLog.compactionsKey) + 1)
                        report.floor = floor
                    }
                    return (instances.last, instances.count < batch)
                }
            }
            remaining -= batch
            resume = last ?? resume
            if done { resume = nil; break }
        }
        report.resumeAfter = resume
        if !stateCache.isEmpty { stateCache.removeAll() }
        return report
    }

    private enum InstanceCompaction { case nothing, keptByCheck, dropped(Int, highestPosition: Int64, positionsForgotten: Int) }

    /// Drops the candidates of one instance (inside `compactLog`'s transaction).
    private func compact(_ instance: InstanceRef, through limit: Int64) throws -> InstanceCompaction {
        switch instance.kind {
        case .tag, .tagGroup, .store, .order: return .nothing
        case .staff, .customer, .groupChat: break
        }
        let ops = try opLog.ops(of: instance)
        guard ops.count > 2 else { return .nothing }
        let positions = try hubLog.positions(of: ops)
        let candidates = Replica.compactionCandidates(ops, positions: positions, through: limit)
        guard !candidates.isEmpty else { return .nothing }
        let catalog = try catalog()
        let whole = InstanceState.merge(instance, ops: ops, catalog: catalog)
        let held = Set(whole.conflicts.flatMap { c in [c.loser.stamp] + [c.winner?.stamp, c.closedBy?.stamp].compactMap { $0 } })
        let dropping = held.isDisjoint(with: candidates.map(\.stamp))
            ? candidates : Replica.compactionCandidates(ops, positions: positions, through: limit, keeping: held)
        guard !dropping.isEmpty else { return .nothing }
        let gone = Set(dropping.map(\.stamp))
        let without = InstanceState.merge(instance, ops: ops.filter { !gone.contains($0.stamp) }, catalog: catalog)
        guard without.rows == whole.rows, without.conflicts == whole.conflicts else { return .keptByCheck }
        var highest: Int64 = 0, forgotten = 0
        if let first = ops.min(by: { $0.stamp < $1.stamp }), gone.contains(first.stamp) {
            try hubLog.keepFirstClock(first.hlc, of: instance)   // the restore grace reads it
        }
        for op in dropping {
            try opLog.delete(op)
            try hubLog.recordDropped(origin: op.origin, seq: op.seq, hlc: Int64(bitPattern: op.hlc.raw), digest: Replica.contentDigest(op))
            if try hubLog.forgetPosition(origin: op.origin, seq: op.seq) { forgotten += 1 }
            highest = max(highest, positions[OpKey(op)] ?? 0)
        }
        return .dropped(dropping.count, highestPosition: highest, positionsForgotten: forgotten)
    }

    /// The field writes of one instance's `ops` that compaction may drop, before the merge check
    /// (see the extension's summary): overwritten by exactly one later write that names only
    /// them, both logged at or before `limit`, named by nothing else, and going only with every
    /// held write they overwrote; never a write of the field that decides the instance's home
    /// (a transfer: few, and the history an operator asks about). A removed tag (its adds with the
    /// remove) does not go: tried, and the simulator found seed 3443 failing with it (not traced).
    /// No op whose stamp is in `keeping` (held by a conflict entry) is a candidate, nor what would
    /// leave it named by nothing or removed by nothing.
    static func compactionCandidates(_ ops: [Op], positions: [OpKey: Int64], through limit: Int64, keeping: Set<Stamp> = []) -> [Op] {
        var namedBy: [Stamp: [Op]] = [:]
        for op in ops {
            for stamp in op.body.namedStamps { namedBy[stamp, default: []].append(op) }
        }
        let held = Set(ops.map(\.stamp))
        func stable(_ op: Op) -> Bool { positions[OpKey(op)].map { $0 <= limit } ?? false }
        var candidates = ops.filter { op in
            guard case let .write(target, field, _, _) = op.body,
                  field != InstanceHome.decidingFieldName(of: target.entity),
                  stable(op), !keeping.contains(op.stamp),
                  let namers = namedBy[op.stamp], namers.count == 1, let namer = namers.first,
                  case let .write(namerTarget, namerField, _, overwrites) = namer.body,
                  namerTarget == target, namerField == field, overwrites == [op.stamp],
                  stable(namer) else { return false }
            return true
        }
        // Closed downwards: a write goes only with every write it overwrote (that is held), or the
        // one kept would be named by nothing and be a head again (w1 ← w2 ← w3 without w2).
        while true {
            let going = Set(candidates.map(\.stamp))
            let closed = candidates.filter { op in op.body.namedStamps.allSatisfy { !held.contains($0) || going.contains($0) } }
            if closed.count == candidates.count { return candidates }
            candidates = closed
        }
    }

    /// The first 8 bytes of the SHA-256 of an op's encoding with its number zeroed: the same op
    /// under another number (renumbered by own-ops recovery) has the same digest. It is compared
    /// with one op pushed under that number or stamp, never searched for, so 64 bits rule out a
    /// chance match (2^-64), at a quarter of a tombstone's bytes.
    static func contentDigest(_ op: Op) -> [UInt8] {
        var unnumbered = op
        unnumbered.seq = 0
        return Array(SHA256.hash(OpCoding.encode(unnumbered)).prefix(8))
    }
}
