import Foundation
import SiyuCore
import SiyuSQLite

/// Where a node stands with one hub (SPEC section 7): the hub log position it has applied up to,
/// and the node's acked_seq there (every own op up to it is held or settled by the hub).
public struct HubSyncState: Equatable, Sendable {
    public var position: UInt64
    public var ackedSeq: UInt64

    public init(position: UInt64, ackedSeq: UInt64) {
        self.position = position
        self.ackedSeq = ackedSeq
    }
}

/// An own op a hub refused for good (ERROR 8 or 14): kept in the node's history, never pushed again.
public struct QuarantinedOp: Equatable, Sendable {
    public var seq: UInt64
    /// The SPEC section 8 code the hub refused it with.
    public var code: UInt64
    /// The hub's message, for people.
    public var message: String
    /// Wall time (ms since the Unix epoch) it was quarantined.
    public var at: UInt64
}

/// The node side of sync (SPEC section 7): the hub cursor stored with the ops it brought, the
/// outbox, quarantined own ops, and snapshots. A node syncs with one hub, recorded in `cursors`
/// under a peer name (`Replica.defaultHubPeer` unless the driver names it).
///
/// Guarantees: `applyChanges` stores the ops and the cursor in one transaction (a crash between
/// them cannot happen: both or neither are durable); a cursor never moves past an op this replica
/// refused; a quarantined op never leaves the outbox's reading again; every number from the wire
/// is range-checked (a position or seq past 2^63 − 1 is refused, never trapped on).
extension Replica {
    /// The peer name of the hub in `cursors` when the driver gives none.
    public static let defaultHubPeer = "hub"

    /// The node's position and acked_seq at `hub` (0 and 0 before the first sync).
    public func syncState(with hub: String = Replica.defaultHubPeer) throws -> HubSyncState {
        try ReplicaError.wrap("reading the sync cursor") {
            try nodeSync.state(at: hub)
        }
    }

    /// The highest sequence number this node gave its own ops (0 if none).
    public func lastIssuedSeq() throws -> UInt64 {
        try ReplicaError.wrap("reading the replica's own numbering") {
            try dropCachesIfChangedElsewhere()
            return nextSeq - 1
        }
    }

    /// Records that `hub` holds (or has settled) every own op up to `seq` (for status output; the
    /// hub's WELCOME is the authority). Writes only when it changed.
    public func recordAcknowledged(_ seq: UInt64, by hub: String = Replica.defaultHubPeer) throws {
        let value = try Replica.storable(seq, "an acked_seq")
        try ReplicaError.wrap("recording the hub's acknowledgement") {
            guard try syncState(with: hub).ackedSeq != seq else { return }
            try transaction { try nodeSync.setAcked(value, at: hub) }
        }
    }

    /// The outbox: own ops numbered above `seq` (the hub's acknowledgement), ascending, leaving
    /// out quarantined ones, at most `limit`. The one reader of a node's own ops to send.
    public func outbox(after seq: UInt64, limit: Int = .max) throws -> [Op] {
        try ReplicaError.wrap("reading the outbox") {
            let held = try opLog.ops(of: node, after: seq, limit: limit, skippingQuarantined: true)
            // Own ops a replacing snapshot set aside (the hub had dropped them): pushed again only
            // to a hub whose acked_seq is below them (one restored from an older backup).
            var aside: [Op] = []
            try db.cached("SELECT body FROM own_set_aside WHERE seq > ? ORDER BY seq LIMIT ?")
                .query([.integer(Int64(clamping: seq)), .integer(Int64(max(0, limit)))]) { row in aside.append(try OpCoding.decode(row.blob(0))) }
            guard !aside.isEmpty else { return held }
            return Array((held + aside).sorted { $0.seq < $1.seq }.prefix(max(0, limit)))
        }
    }

    /// Records durably that the hub refused own op `seq` for good (`code` 8 or 14): it leaves the
    /// outbox and is listed by `quarantinedOps`. Its effect on this replica stays (an operator
    /// corrects the record with a new edit). Quarantining an op twice keeps the first record;
    /// a number this node never issued is refused.
    public func quarantine(seq: UInt64, code: UInt64, message: String) throws {
        let value = try Replica.storable(seq, "a quarantined op's number")
        try ReplicaError.wrap("quarantining op \(seq)") {
            try dropCachesIfChangedElsewhere()
            guard seq < nextSeq else {
                throw ReplicaError.invalid("the hub refused op #\(seq), but this node has issued only \(nextSeq - 1) ops",
                                           "the hub is confused about this node's numbering; check the hub")
            }
            try transaction { try nodeSync.quarantine(value, code: code, message: message, at: wallClock()) }
        }
    }

    /// Own ops a hub refused for good, by number.
    public func quarantinedOps() throws -> [QuarantinedOp] {
        try ReplicaError.wrap("reading quarantined ops") {
            try nodeSync.quarantined()
        }
    }

    /// Applies a hub's CHANGES and stores `nextCursor` as the position at `hub`, in one
    /// transaction. If an op is refused for the clock window (`ApplyReport.refused`), the rest are
    /// stored but the cursor stays where it was — before the refused op — so the node pulls it
    /// again. Any other refusal throws and stores nothing (cursor included).
    ///
    /// On a store node, instances that left its scope are dropped (SPEC section 7, "Transfers"):
    /// once it has caught up (`caughtUp`: the CHANGES said `more = false`), every instance it holds
    /// outside its scope; before that — its state may be partial, a CHANGES cut by the byte budget
    /// between an instance's creation and its transfer — only those it held in its scope that an op
    /// of this change set moved out. The rest waits for the catch-up.
    ///
    /// The commit that stores the cursor is synced (`committingDurably`), with `ackedSeq` (the hub's
    /// acked_seq as the node knows it), when given and no recovery of own ops is open: a cursor the
    /// node reports is never lost to a power cut, nor the acknowledgement of its own ops logged
    /// before it.
    @discardableResult
    public func applyChanges(_ changeSet: ChangeSet, nextCursor: UInt64, from hub: String = Replica.defaultHubPeer,
                             caughtUp: Bool = true, ackedSeq: UInt64? = nil) throws -> ApplyReport {
        let position = try Replica.storable(nextCursor, "a hub cursor")
        let acked = try ackedSeq.map { try Replica.storable($0, "an acked_seq") }
        let heldInScope: Set<InstanceRef>
        if role == .store, let store {
            heldInScope = Set(try homes(of: changeSet.ops).filter { $0.value == .store(store) }.keys)
        } else {
            heldInScope = []
        }
        let touched = role == .store ? scopeTouched.union(changeSet.ops.lazy.map(\.instance)) : []
        let report = try committingDurably {
            try apply(changeSet) { report in
                if caughtUp, !changeSet.ops.isEmpty || scopeJudgementPending {
                    try dropInstancesOutOfScope(nil, rowless: touched)
                } else {
                    try dropInstancesOutOfScope(heldInScope)
                }
                guard report.refused.isEmpty else { return }
                try storeCursor(position, hub: hub)
                // Not while own ops are recovered: the acked_seq recorded before the loss says which
                // of this file's own ops were made after it (Replica+OwnOpsRecovery.swift).
                if let acked, ownOpsRecovery == nil { try nodeSync.setAcked(acked, at: hub) }
            }
        }
        if caughtUp {
            scopeJudgementPending = false
            scopeTouched = []
        } else if !changeSet.ops.isEmpty {
            scopeJudgementPending = true
            scopeTouched = touched
        }
        return report
    }

    /// Applies one chunk of the snapshot load in progress (`beginSnapshotLoad`). An op refused for
    /// the clock window fails the chunk (`ReplicaError.refused`, code 9) — a snapshot must bring
    /// every op before its cursor — and with it the load.
    @discardableResult
    public func applySnapshotChunk(_ changeSet: ChangeSet) throws -> ApplyReport {
        guard isLoadingSnapshot else {
            throw ReplicaError.invalid("no snapshot load is open", "start one with beginSnapshotLoad")
        }
        noteBrought(changeSet.ops)
        let report = try apply(changeSet)
        if let first = report.refused.first {
            let error = ReplicaError.refused(first)
            if bulk?.failure == nil { bulk?.failure = error }
            throw error
        }
        return report
    }

    /// Commits the snapshot load in progress with `cursor` stored as the position at `hub` (and
    /// `ackedSeq`, when given and no recovery of own ops is open); a snapshot load's commit is
    /// synced (`beginSnapshotLoad`), as `applyChanges` syncs its cursor.
    public func finishSnapshot(cursor: UInt64, from hub: String = Replica.defaultHubPeer, ackedSeq: UInt64? = nil) throws {
        let position = try Replica.storable(cursor, "a snapshot cursor")
        let acked = try ackedSeq.map { try Replica.storable($0, "an acked_seq") }
        try finishSnapshotLoad {
            try dropInstancesOutOfScope(nil)
            try storeCursor(position, hub: hub)
            if let acked, ownOpsRecovery == nil { try nodeSync.setAcked(acked, at: hub) }
        }
    }

    private func storeCursor(_ position: Int64, hub: String) throws {
        try nodeSync.setPosition(position, at: hub)
    }

    /// A number from the wire as an SQLite integer, refused past 2^63 − 1.
    static func storable(_ value: UInt64, _ what: String) throws -> Int64 {
        guard let v = Int64(exactly: value) else {
            throw ReplicaError.invalid("\(what) of \(value) is past 2^63 - 1", "the peer is faulty")
        }
        return v
    }
}

/// How a node's last sync went, as its daemon recorded it (for `siyu status`).
public struct SyncRecord: Equatable, Sendable {
    /// Wall time (ms since the Unix epoch) it was recorded.
    public var at: UInt64
    /// Whether the node was caught up (nothing left to push or pull) — else the sync failed.
    public var ok: Bool
    /// What happened, for people.
    public var result: String
}

/// The node's recorded hub and the outcome of its last sync, kept in `siyu_meta` beside the
/// settings of `siyu-node init` (`NodeSettings`).
///
/// Guarantees: reading never writes; a record replaces the previous one in one transaction; the
/// result text is cut to 500 characters.
extension Replica {
    static let lastSyncAtKey = "node.last_sync_at"
    static let lastSyncOKKey = "node.last_sync_ok"
    static let lastSyncResultKey = "node.last_sync_result"

    /// The hub address `siyu-node init` recorded (nil if none: the replica never joined a network).
    public func recordedHub() throws -> String? {
        try ReplicaError.wrap("reading the recorded hub") {
            try db.cached("SELECT value FROM siyu_meta WHERE key = ?").scalar([.text(NodeSettings.hubKey)])?.stringValue
        }
    }

    /// Records how a sync round went (the node daemon calls it when it catches up or fails).
    public func recordSyncResult(ok: Bool, _ result: String) throws {
        try ReplicaError.wrap("recording the last sync") {
            try transaction {
                try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?), (?, ?), (?, ?)")
                    .run([.text(Replica.lastSyncAtKey), .integer(Int64(clamping: wallClock())),
                          .text(Replica.lastSyncOKKey), .integer(ok ? 1 : 0),
                          .text(Replica.lastSyncResultKey), .text(String(result.prefix(500)))])
            }
        }
    }

    static let hubHeadKey = "node.hub_head"
    static let hubHeadAtKey = "node.hub_head_at"

    /// Records the hub's log head as the node last heard it (its WELCOME, or the position it had
    /// caught up to), and when: what `siyu status` compares the node's position with.
    public func recordHubHead(_ head: UInt64) throws {
        let value = try Replica.storable(head, "a hub log head")
        try ReplicaError.wrap("recording the hub's head") {
            try transaction {
                try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?), (?, ?)")
                    .run([.text(Replica.hubHeadKey), .integer(value),
                          .text(Replica.hubHeadAtKey), .integer(Int64(clamping: wallClock()))])
            }
        }
    }

    /// The hub's log head the node last heard, and the wall time (ms) it heard it; nil before the
    /// first contact.
    public func lastHubHead() throws -> (head: UInt64, at: UInt64)? {
        try ReplicaError.wrap("reading the hub's head") {
            var values: [String: SQLiteValue] = [:]
            try db.cached("SELECT key, value FROM siyu_meta WHERE key IN (?, ?)")
                .query([.text(Replica.hubHeadKey), .text(Replica.hubHeadAtKey)]) { row in values[row.text(0) ?? ""] = row[1] }
            guard let head = values[Replica.hubHeadKey]?.int64Value, let at = values[Replica.hubHeadAtKey]?.int64Value else { return nil }
            return (UInt64(clamping: head), UInt64(clamping: at))
        }
    }

    /// The last recorded sync (nil before the first).
    public func lastSyncRecord() throws -> SyncRecord? {
        try ReplicaError.wrap("reading the last sync") {
            var values: [String: SQLiteValue] = [:]
            try db.cached("SELECT key, value FROM siyu_meta WHERE key IN (?, ?, ?)")
                .query([.text(Replica.lastSyncAtKey), .text(Replica.lastSyncOKKey), .text(Replica.lastSyncResultKey)]) { row in
                    values[row.text(0) ?? ""] = row[1]
                }
            guard let at = values[Replica.lastSyncAtKey]?.int64Value, let ok = values[Replica.lastSyncOKKey]?.int64Value else { return nil }
            return SyncRecord(at: UInt64(clamping: at), ok: ok == 1, result: values[Replica.lastSyncResultKey]?.stringValue ?? "")
        }
    }
}
