import SiyuCore
import SiyuSession
import SiyuStore
import SiyuWire

/// Carries out a `NodeSession`'s store effects against the node's replica (call it on the thread
/// that owns the replica, one effect at a time, as the session asks).
///
/// Guarantees:
/// - every effect but `abandonSnapshot` gets exactly one `NodeEffectResult`; no error escapes and
///   nothing traps, whatever the hub sent;
/// - CHANGES: the ops and the cursor are stored in one transaction (`Replica.applyChanges`): a
///   crash between them cannot lose or skip anything. If an op is beyond the clock window, the
///   rest are stored, the cursor stays before it, and the answer is `.failed(.clockSkew, …)`
///   naming it (the session sends ERROR 9 — retryable — and closes; the node pulls it again after
///   reconnecting). An op the replica refuses otherwise stores nothing: `.failed(.invalidOp, …)`;
///   a store failure `.failed(.internalError, …)`;
/// - a snapshot's chunks are staged outside the replica (`Replica.stageSnapshotChunk`) while they
///   arrive, so local edits never wait on the network, and loaded in one local transaction with
///   its cursor at SNAPSHOT_END; abandoned, failed or interrupted, nothing of it is kept;
/// - the outbox leaves out quarantined ops; a quarantine is durable before `.done`.
public final class NodeStoreExecutor {
    public let replica: Replica
    /// The name the hub's cursor is stored under in the replica's `cursors`.
    public let hubPeer: String
    /// The last snapshot's digest from the hub, for a driver that compares it (Siyu state digest
    /// of the scope; equal to this replica's when the scope is everything and nothing else changed);
    /// nil before any, or when the hub sent none (32 zero bytes: its state was not settled).
    public private(set) var lastSnapshotDigest: [UInt8]?

    public init(replica: Replica, hubPeer: String = Replica.defaultHubPeer) {
        self.replica = replica
        self.hubPeer = hubPeer
    }

    /// What a new `NodeSession` starts from.
    public struct SessionStart: Equatable, Sendable {
        /// The stored cursor at the hub.
        public var cursor: UInt64
        /// The last number this node issued.
        public var lastOwnSeq: UInt64
        /// The hub log epoch the cursor refers to (empty: none recorded).
        public var logEpoch: [UInt8]
        /// The hub's acked_seq as the replica recorded it.
        public var recordedAckedSeq: UInt64
    }

    /// The stored cursor, epoch and acknowledgement at the hub and the last number this node issued.
    public func sessionStart() throws -> SessionStart {
        let state = try replica.syncState(with: hubPeer)
        return SessionStart(cursor: state.position, lastOwnSeq: try replica.lastIssuedSeq(),
                            logEpoch: try replica.recordedLogEpoch(of: hubPeer) ?? [], recordedAckedSeq: state.ackedSeq)
    }

    /// Carries out one effect; nil only for `abandonSnapshot`, which expects no answer.
    public func execute(_ effect: NodeEffect) -> NodeEffectResult? {
        do {
            switch effect {
            case let .readOutbox(after, maxOps):
                try replica.recordAcknowledged(after, by: hubPeer)
                return .outbox(try replica.outbox(after: after, limit: maxOps))
            case let .quarantine(seq, code, message):
                try replica.quarantine(seq: seq, code: code, message: message)
                return .done
            case let .applyChanges(changeSet, next, more, acked):
                let report = try replica.applyChanges(changeSet, nextCursor: next, from: hubPeer, caughtUp: !more, ackedSeq: acked)
                if let first = report.refused.first {
                    return .failed(.clockSkew, NodeStoreExecutor.text(first, more: report.refused.count - 1)
                                   + "; the other ops were applied and the cursor kept before it")
                }
                return .done
            case .beginSnapshot:
                replica.discardStagedSnapshot()   // a stale one, never finished
                return .done
            case let .applySnapshotChunk(_, index, changeSet):
                try replica.stageSnapshotChunk(changeSet, first: index == 0)
                return .done
            case let .finishSnapshot(_, cursor, digest, replacingAbove):
                try replica.loadStagedSnapshot(cursor: cursor, from: hubPeer, replacingAbove: replacingAbove)
                lastSnapshotDigest = digest.allSatisfy { $0 == 0 } ? nil : digest   // all zero: none (SPEC section 7)
                return .done
            case .abandonSnapshot:
                replica.discardStagedSnapshot()
                return nil
            case let .prepareSync(epoch, acked, through):
                if let epoch { try replica.adoptLogEpoch(epoch, of: hubPeer, ackedSeq: acked) }
                if let through { try replica.beginOwnOpsRecovery(through: through, hub: hubPeer) }
                return .done
            case let .finishOwnOpsRecovery(through):
                try replica.finishOwnOpsRecovery(through: through, hub: hubPeer)
                return .done
            }
        } catch let ReplicaError.refused(refusal) where refusal.origin == replica.node && refusal.reason != .clockSkew {
            // The hub sent an own op this replica cannot take: another node uses this id.
            return .identityConflict(NodeStoreExecutor.text(refusal, more: 0))
        } catch let ReplicaError.refused(refusal) {
            return .failed(refusal.reason == .clockSkew ? .clockSkew : .invalidOp, NodeStoreExecutor.text(refusal, more: 0))
        } catch let ReplicaError.unsupportedSchema(found, supported) {
            return .failed(.schemaUnsupported, "a change set of data model \(found); this node reads up to \(supported): upgrade it")
        } catch {
            return .failed(.internalError, "the node's store failed: \(error)")
        }
    }

    static func text(_ refusal: OpRefusal, more: Int) -> String {
        "op \(IdentifierRule.printable(refusal.origin))#\(refusal.seq) refused (\(refusal.reason.rawValue)): \(refusal.protocolMessage)"
            + (more > 0 ? " (and \(more) more)" : "")
    }
}
