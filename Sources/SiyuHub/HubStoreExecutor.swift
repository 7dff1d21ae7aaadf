import SiyuCore
import SiyuSession
import SiyuStore
import SiyuWire

/// Carries out a `HubSession`'s store effects against the hub's replica (the single writer: call
/// it on the thread that owns the replica, one effect at a time, as the session asks).
///
/// Guarantees:
/// - every effect gets exactly one `HubEffectResult`; no error escapes and nothing traps, whatever
///   the node sent: a refused op is `.pushRefused` naming it with its SPEC section 8 code, a store
///   failure `.failed(.internalError, …)` (retryable), a change set of a newer data model
///   `.failed(.schemaUnsupported, …)`;
/// - a PUSH is stored by `Replica.acceptPush`: durable, with log positions, before `.pushStored`;
/// - a PULL is answered from the log in log order within the byte budget (`.changes`), leaving out
///   the pulling node's own ops (it holds them; SPEC section 7, "Download"), or with a
///   snapshot (`.startSnapshot`) when the cursor is past the log head (reason 2) or, for a
///   cursor of 0, when the log holds at least `Options.bootstrapSnapshotOps` ops (reason 0);
///   snapshot parts come in SPEC order (tag library first, instances whole) of at most about
///   `Options.opsPerSnapshotPart` ops, the last with the hub's state digest; a snapshot too
///   leaves out the node's own ops — unless the PULL asked for them (`ownOps`: a node recovering
///   its own acknowledged ops after its file lost them), then both include them;
/// - every commit is durable when it returns (`synchronous = FULL`), so a PUSH_ACK survives a
///   power cut; WELCOME carries the log epoch, new after any start not preceded by a clean stop.
/// - a DIGEST_REQUEST is answered with the state digest of the node's scope and the log head it
///   describes, read together (`Replica.scopeDigest`).
public final class HubStoreExecutor {
    /// How the hub answers pulls.
    public struct Options: Sendable {
        /// A PULL from cursor 0 gets a snapshot once the log holds this many ops (nil: never).
        public var bootstrapSnapshotOps: UInt64?
        /// About how many ops one snapshot part holds (SPEC: about 10,000 or fewer).
        public var opsPerSnapshotPart: Int
        /// How many customers holding a changed tag one writer turn re-merges (`settleRemergeSlice`);
        /// nil: all of them in the commit of the change (SPEC section 10: slices of 2,000).
        public var tagHolderSlice: Int?

        public init(bootstrapSnapshotOps: UInt64? = 10_000, opsPerSnapshotPart: Int = 10_000, tagHolderSlice: Int? = 2_000) {
            self.bootstrapSnapshotOps = bootstrapSnapshotOps
            self.opsPerSnapshotPart = max(1, opsPerSnapshotPart)
            self.tagHolderSlice = tagHolderSlice.map { max(1, $0) }
        }
    }

    public let replica: Replica
    public let options: Options
    /// The hub log's identity sent in WELCOME (SPEC section 7, "Log epochs"): kept from the last
    /// run only if that run stopped cleanly (`HubServer` marks it), else new.
    public let logEpoch: [UInt8]
    /// Whether `logEpoch` is new with this start (a first start, a crash, a restored backup).
    public let logEpochRenewed: Bool
    /// Snapshots being read: where each continues, and the node whose own ops it leaves out (nil:
    /// it includes them).
    private var snapshots: [UInt64: (position: SnapshotPosition?, leavingOut: NodeID?)] = [:]
    private var nextSnapshotID: UInt64 = 1

    /// An executor over `replica`, which must be a hub's (file layout 4 or later). Makes every
    /// commit durable before it returns (`CommitDurability.full`: a PUSH is acknowledged only once
    /// its ops survive a power cut), starts the log epoch (`Replica.startHubLogEpoch`; `freshEpoch`
    /// is used if a new one is needed), and gives a log position to every op held without one
    /// (`Replica.logUnpositionedOps`).
    public init(replica: Replica, options: Options = Options(), freshEpoch: [UInt8] = HubStoreExecutor.randomEpoch()) throws {
        self.replica = replica
        self.options = options
        replica.tagHolderSlice = options.tagHolderSlice
        try replica.setCommitDurability(.full)
        (logEpoch, logEpochRenewed) = try replica.startHubLogEpoch(fresh: freshEpoch)
        try replica.logUnpositionedOps()
    }

    /// 32 bytes from the system's cryptographically secure generator.
    public static func randomEpoch() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
    }

    /// Whether customers holding a changed tag are still to be re-merged (`settleRemergeSlice`).
    public var hasPendingRemerges: Bool { (try? replica.hasPendingRemerges) ?? false }

    /// Re-merges one slice of the customers holding a changed tag (one writer turn, between other
    /// effects). Returns whether more remain. On a failure nothing of the slice is kept and it is
    /// still pending.
    public func settleRemergeSlice() throws -> Bool {
        try replica.settlePendingRemerges(limit: options.tagHolderSlice)
    }

    /// The scope of a node's pulls (SPEC section 7, "Scope"), from its registration alone: a
    /// store node registered with a store that store's scope; any other node everything.
    public func scope(of node: NodeID) throws -> SyncScope {
        guard let record = try replica.registeredNode(node), record.role == .store, let store = record.store else { return .everything }
        return .store(store)
    }

    /// Each registered node's StoredKey, by node id: what `HubServer` compares open sessions with
    /// to close those of a node removed or given a new secret since they authenticated.
    public func storedKeys() throws -> [NodeID: [UInt8]] {
        Dictionary(try replica.registeredNodes().map { ($0.node, $0.verifiers.storedKey) }, uniquingKeysWith: { a, _ in a })
    }

    /// Carries out one effect.
    public func execute(_ effect: HubEffect) -> HubEffectResult {
        do {
            switch effect {
            case let .authorize(node):
                guard let record = try replica.registeredNode(node) else { return .registration(nil) }
                return .registration(NodeRegistration(verifiers: record.verifiers, role: record.role,
                                                      ackedSeq: record.ackedSeq, logHead: try replica.logHead(), logEpoch: logEpoch))

            case let .storePush(node, changeSet):
                switch try replica.acceptPush(from: node, changeSet) {
                case let .stored(acked, _):
                    return .pushStored(ackedSeq: acked)
                case let .refused(refusal, _):
                    return .pushRefused(seq: refusal.seq, code: HubStoreExecutor.code(of: refusal), message: refusal.protocolMessage)
                case let .deferred(message, _):
                    return .pushBusy(message)
                }

            case let .readChanges(node, cursor, budget, schemaVersion, ownOps):
                guard schemaVersion >= UInt64(currentSchemaVersion) else {
                    return .schemaTooNew("the hub's ops are of data model \(currentSchemaVersion); this node speaks \(schemaVersion): upgrade the node")
                }
                let head = try replica.logHead()
                let leavingOut: NodeID? = ownOps ? nil : node
                // A cursor past the head names no position of this log: it is not recorded as the
                // node's (`siyu-hub nodes` would show it), the node gets a snapshot instead.
                if cursor > head {
                    return startSnapshot(cursor: head, reason: .cursorTooOld, leavingOut: leavingOut)
                }
                try replica.recordCursor(cursor, of: node)
                if cursor == 0, let threshold = options.bootstrapSnapshotOps, head >= threshold {
                    return startSnapshot(cursor: head, reason: .bootstrap, leavingOut: leavingOut)
                }
                // An instance with a history elsewhere entered the store's scope since its cursor:
                // the whole scope, by a snapshot of reason 1 (SPEC section 7, "Transfers").
                if case let .store(store) = try scope(of: node), try replica.scopePull(of: store, from: cursor) {
                    return startSnapshot(cursor: head, reason: .scopeChange, leavingOut: leavingOut)
                }
                let read = try replica.changes(after: cursor, byteBudget: budget, scope: try scope(of: node), leavingOut: leavingOut)
                return .changes(read.ops.map { LoggedOp(position: $0.position, op: $0.op) }, nextCursor: read.nextCursor,
                                more: read.more, schemaVersion: currentSchemaVersion)

            case let .readSnapshotPart(node, id, _):
                guard let reading = snapshots[id] else {
                    return .failed(.internalError, "snapshot \(id) is not being read")
                }
                let part = try replica.snapshotPart(after: reading.position, maxOps: options.opsPerSnapshotPart, scope: try scope(of: node),
                                                      leavingOut: reading.leavingOut)
                if let next = part.next {
                    snapshots[id] = (next, reading.leavingOut)
                    return .snapshotPart(part.ops, isLast: false, digest: [], schemaVersion: currentSchemaVersion)
                }
                snapshots[id] = nil
                return .snapshotPart(part.ops, isLast: true, digest: try replica.scopeDigest(try scope(of: node)).digest,
                                     schemaVersion: currentSchemaVersion)

            case let .readDigest(node):
                let scoped = try replica.scopeDigest(try scope(of: node))
                return .digest(position: scoped.position, digest: scoped.digest)
            }
        } catch let ReplicaError.refused(refusal) {
            return .failed(HubStoreExecutor.code(of: refusal), refusal.protocolMessage)
        } catch let ReplicaError.unsupportedSchema(found, supported) {
            return .failed(.schemaUnsupported, "a change set of data model \(found); this hub accepts up to \(supported)")
        } catch {
            return .failed(.internalError, "the hub's store failed: \(error)")
        }
    }

    /// The connection that read snapshot `id` closed: forget where it was.
    public func forgetSnapshot(_ id: UInt64) { snapshots[id] = nil }

    private func startSnapshot(cursor: UInt64, reason: SnapshotReason, leavingOut: NodeID?) -> HubEffectResult {
        let id = nextSnapshotID
        nextSnapshotID += 1
        snapshots[id] = (nil, leavingOut)
        return .startSnapshot(id: id, cursor: cursor, reason: reason)
    }

    /// The ERROR code of a refusal.
    static func code(of refusal: OpRefusal) -> ErrorCode {
        ErrorCode(rawValue: refusal.reason.protocolCode) ?? .invalidOp
    }
}
