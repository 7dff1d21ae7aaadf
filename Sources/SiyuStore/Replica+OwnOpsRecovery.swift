import Foundation
import SiyuCore
import SiyuSQLite

/// What a node recovering its own acknowledged ops from a hub allows (SPEC section 7, "Identity").
struct OwnOpsRecovery {
    /// The hub's acked_seq for this node: own ops numbered up to it may come back from the hub.
    var through: UInt64
    /// The acked_seq this file recorded when the recovery began: an own op numbered above it that
    /// the hub holds with other content was made after the file lost its last commits, and is
    /// renumbered; one at or below it is a real identity conflict.
    var renumberAbove: UInt64
    /// The own numbers above `renumberAbove` the hub has sent back during the recovery (the same
    /// op, an op this file lacked, or the hub's op under a number this file's op gave up).
    var confirmed: Set<UInt64> = []
    /// The recovery pull was answered by a snapshot that replaced this replica's state (reason 2:
    /// its cursor was below the hub's compacted floor), which brings every own op the hub holds in
    /// the node's scope: an own op it did not bring, the hub dropped.
    var replaced = false
    /// The instances that snapshot brought (every op the hub holds of each).
    var brought: Set<InstanceRef> = []
}

/// A node whose file lost its own acknowledged ops (a power cut rolled back its last commits, or
/// it was restored from a backup) takes them back from the hub and numbers its next ops after them
/// (SPEC section 7, "Identity").
///
/// Guarantees:
/// - while a recovery is open, an own op the hub sends numbered up to the hub's acked_seq is
///   taken (outside one, an own op numbered past this node's last is refused: forged, or another
///   node uses the id);
/// - an own op the hub sends that this file holds with other content, numbered above the
///   acked_seq the file recorded, was made after the loss: this file's op moves to the next free
///   number past the hub's acked_seq (ops name each other by stamp, never by number, so nothing
///   else changes) and is pushed under it — with a fresh stamp too when it has the hub's op's
///   stamp (the file's clock went back with it and issued that stamp again), the own ops made
///   after the loss that named it naming the new one; numbered at or below, it is a real identity conflict
///   (`ReplicaError.refused` naming this node's own origin) and nothing is stored;
/// - when the recovery pull was answered by a snapshot of reason 2 (the file's cursor was below the
///   floor of a hub that compacted its log), `finishOwnOpsRecovery` gives every own op numbered
///   above the acked_seq the file recorded and up to the hub's, of an instance the snapshot brought,
///   that the snapshot itself did not bring (and that is not quarantined) the next free number past the
///   hub's acked_seq: the hub dropped the
///   op it holds under that number, so a clerk's edit made after the loss under it is pushed under
///   a new one (and an op the hub dropped is recognised under its new number: same stamp, same
///   content); then it numbers every later own op past the hub's acked_seq and records it, in one
///   transaction, so no number the hub holds is ever reused.
extension Replica {
    /// Opens a recovery up to the hub's acked_seq `hubAcked`. Idempotent; a new one replaces it.
    public func beginOwnOpsRecovery(through hubAcked: UInt64, hub: String = Replica.defaultHubPeer) throws {
        ownOpsRecovery = OwnOpsRecovery(through: hubAcked, renumberAbove: try syncState(with: hub).ackedSeq)
    }

    /// Whether a recovery is open.
    public var isRecoveringOwnOps: Bool { ownOpsRecovery != nil }

    /// Ends the recovery: the next own op is numbered past `hubAcked` (kept in the file, so other
    /// processes editing it follow), and `hubAcked` is recorded as the hub's acknowledgement.
    public func finishOwnOpsRecovery(through hubAcked: UInt64, hub: String = Replica.defaultHubPeer) throws {
        let acked = try Replica.storable(hubAcked, "an acked_seq")
        try ReplicaError.wrap("finishing the recovery of own ops") {
            let saved = nextSeq
            do {
                try transaction {
                    try dropCachesIfChangedElsewhere()
                    if nextSeq <= hubAcked { nextSeq = hubAcked + 1 }
                    if let recovery = ownOpsRecovery, recovery.replaced, recovery.renumberAbove < hubAcked {
                        let unconfirmed = try opLog.ops(of: node, after: recovery.renumberAbove, skippingQuarantined: true)
                            .filter { $0.seq <= hubAcked && !recovery.confirmed.contains($0.seq) && recovery.brought.contains($0.instance) }
                        for op in unconfirmed.sorted(by: { $0.seq < $1.seq }) {
                            guard nextSeq <= Op.maxSeq else {
                                throw ReplicaError.invalid("no sequence number is left to renumber op #\(op.seq)", "the node's numbering is exhausted")
                            }
                            try opLog.renumber(origin: node, seq: op.seq, to: nextSeq)
                            nextSeq += 1
                        }
                    }
                    try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES ('next_seq', ?)").run([.integer(Int64(clamping: nextSeq))])
                    try nodeSync.setAcked(acked, at: hub)
                }
            } catch {
                nextSeq = saved
                throw error
            }
        }
        ownOpsRecovery = nil
    }

    /// Whether `refusal(of:)` takes own op `seq` numbered past this node's last: only inside a recovery.
    func isRecoverableOwnOp(_ seq: UInt64) -> Bool {
        guard let recovery = ownOpsRecovery else { return false }
        return seq <= recovery.through
    }

    /// Inside apply's transaction, before the ops are committed: own ops the hub sends that this
    /// file holds with other content (see the extension's guarantees).
    func reconcileOwnOps(_ ops: [Op]) throws {
        guard let recovery = ownOpsRecovery, ops.contains(where: { $0.origin == node }) else { return }
        for op in ops where op.origin == node {
            if op.seq > recovery.renumberAbove { ownOpsRecovery?.confirmed.insert(op.seq) }
            guard let stored = try opLog.op(origin: node, seq: op.seq) else { continue }
            if OpCoding.encode(stored) == OpCoding.encode(op) { continue }
            guard op.seq > recovery.renumberAbove else {
                throw ReplicaError.refused(OpRefusal(.permission, origin: node, seq: op.seq,
                    message: "identity conflict: the hub holds another op numbered \(op.seq) of this node, which the hub had acknowledged as this node's own",
                    hint: "another node uses the id \(IdentifierRule.printable(node)); give one of them a new node id"))
            }
            let fresh = max(nextSeq, recovery.through + 1)
            guard fresh <= Op.maxSeq else {
                throw ReplicaError.invalid("no sequence number is left to renumber op #\(op.seq)", "the node's numbering is exhausted")
            }
            if stored.stamp == op.stamp {
                // The same stamp too: the file's clock went back with it and, running ahead of the
                // wall clock, issued the lost op's stamp again (simulator seed 5417).
                try restamp(stored, as: fresh, after: ops, renumberedAbove: recovery.renumberAbove)
            } else {
                try opLog.renumber(origin: node, seq: op.seq, to: fresh)
            }
            nextSeq = fresh + 1
        }
    }

    /// Gives `op` (an own op made after the file lost its last commits, whose stamp the hub holds
    /// on another op) number `seq` and a fresh stamp past every clock in `incoming` and this
    /// file's, and makes the own ops made after the loss that name its old stamp name the new one
    /// (only they can: the op was never sent). Its instance is merged again.
    private func restamp(_ op: Op, as seq: UInt64, after incoming: [Op], renumberedAbove: UInt64) throws {
        clock.observe(incoming.map(\.hlc).max() ?? op.hlc)
        let stamp = Stamp(hlc: clock.tick(wallMillis: wallClock()), node: node)
        var moved = op
        moved.seq = seq
        moved.stamp = stamp
        try opLog.delete(op)
        _ = try opLog.insertUnlessHeld(moved)
        for later in try opLog.ops(of: node, after: renumberedAbove, skippingQuarantined: false)
            where later.instance == op.instance && later.body.namedStamps.contains(op.stamp) {
            var named = later
            named.body = later.body.naming(stamp, insteadOf: op.stamp)
            try opLog.delete(later)
            _ = try opLog.insertUnlessHeld(named)
        }
        _ = try remerge(op.instance, onlyOps: nil)
        forgetCaches()
    }
}
