import Foundation
import SiyuCore
import SiyuSession
import SiyuStore
import SiyuWire

/// A write a hub's read asks for, carried out by the writer after the answer went out: cheap,
/// idempotent, and never needed for the answer itself.
public enum HubWrite: Sendable, Equatable {
    /// A node's PULL cursor, for operators (`siyu-hub nodes`).
    case cursor(node: NodeID, UInt64)
    /// A node of `store` pulled from `upTo` at hub wall time `at`: the moves out of its scope up to
    /// there are seen (`Replica.recordScopeSeen`).
    case scopeSeen(store: String, upTo: UInt64, at: UInt64)
}

/// The hub's reads — AUTH's registration, PULL (CHANGES or the start of a snapshot), snapshot
/// parts, DIGEST — answered from a replica connection that it never writes to. On a serving hub it
/// is a read-only connection of its own on another thread (`HubServer`), so a long read never
/// delays a PUSH's commit; alone (`HubStoreExecutor.execute`) it reads the writer's connection.
///
/// Guarantees:
/// - nothing is written through `replica`: what a read needs written comes back as `HubWrite`s;
/// - a PULL is answered from the log in log order within the byte budget, leaving out the pulling
///   node's own ops unless it asked for them; or with a snapshot, which always carries them (it
///   replaces the node's state): reason 2 when the cursor is past the log head or below the floor
///   of a compacted log, reason 0 for a cursor of 0 once the log holds `bootstrapSnapshotOps`,
///   reason 1 when an instance entered a store's scope after its cursor (SPEC section 7);
/// - a snapshot read across a compaction is abandoned (`busy`): its parts would mix an instance
///   before and after;
/// - snapshot parts come in SPEC order, at most about `opsPerSnapshotPart` ops and (when set)
///   about `snapshotPartMillis` of reading each, instances whole, the last with the state digest
///   of the node's scope;
/// - a digest is never computed while customers holding a changed tag wait to be re-merged (the
///   tables are not yet the merge of the ops): a DIGEST's answer is then `.notYet`, and the caller
///   asks again once the writer settled them; the last snapshot part carries `unsettledDigest`;
/// - not thread-safe: one thread (or serial queue) at a time.
public final class HubReader: @unchecked Sendable {
    /// What a read gives.
    public enum Outcome: Sendable, Equatable {
        /// The answer, and the writes it asks for.
        case answered(HubEffectResult, writes: [HubWrite])
        /// Customers holding a changed tag are still to be re-merged: ask again after the writer
        /// settled them (`Replica.settlePendingRemerges`).
        case notYet
    }

    public let replica: Replica
    public let options: HubStoreExecutor.Options
    /// The hub log's identity sent in WELCOME.
    public let logEpoch: [UInt8]
    /// About how long one snapshot part reads (`Replica.snapshotPart`'s time budget); nil: parts
    /// bounded by `options.opsPerSnapshotPart` only. A serving hub sets it (`HubServer`,
    /// `Configuration.snapshotPartMillis`); alone (`HubStoreExecutor.execute`) and in the simulator parts
    /// depend on the ops only, so a seeded run replays the same.
    public let snapshotPartMillis: UInt64?
    /// The snapshots being read (shared with the readers of the same hub that read their parts).
    public let snapshots: SnapshotTable

    public init(replica: Replica, options: HubStoreExecutor.Options, logEpoch: [UInt8], snapshotPartMillis: UInt64? = nil,
                snapshots: SnapshotTable = SnapshotTable()) {
        self.replica = replica
        self.options = options
        self.logEpoch = logEpoch
        self.snapshotPartMillis = snapshotPartMillis
        self.snapshots = snapshots
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

    /// Whether `effect` is a read (this type answers it) rather than a write.
    public static func reads(_ effect: HubEffect) -> Bool {
        switch effect {
        case .authorize, .readChanges, .readSnapshotPart, .readDigest: return true
        case .storePush: return false
        }
    }

    /// Answers one read; `.failed(.internalError, …)` for a write (not this type's). Everything one
    /// read reads comes from one snapshot of the file (`Replica.readingOneSnapshot`).
    public func read(_ effect: HubEffect) -> Outcome {
        do {
            return try replica.readingOneSnapshot { try answer(effect) }
        } catch let ReplicaError.refused(refusal) {
            return .answered(.failed(HubStoreExecutor.code(of: refusal), refusal.protocolMessage), writes: [])
        } catch let ReplicaError.unsupportedSchema(found, supported) {
            return .answered(.failed(.schemaUnsupported, "a change set of data model \(found); this hub accepts up to \(supported)"), writes: [])
        } catch {
            return .answered(.failed(.internalError, "the hub's store failed: \(error)"), writes: [])
        }
    }

    private func answer(_ effect: HubEffect) throws -> Outcome {
        switch effect {
        case let .authorize(node):
            guard let record = try replica.registeredNode(node) else { return .answered(.registration(nil), writes: []) }
            return .answered(.registration(NodeRegistration(verifiers: record.verifiers, role: record.role, ackedSeq: record.ackedSeq,
                                                            logHead: try replica.logHead(), logEpoch: logEpoch)), writes: [])

        case .storePush:
            return .answered(.failed(.internalError, "a PUSH reached the hub's reader"), writes: [])

        case let .readChanges(node, cursor, budget, schemaVersion, ownOps):
            guard schemaVersion >= UInt64(currentSchemaVersion) else {
                return .answered(.schemaTooNew("the hub's ops are of data model \(currentSchemaVersion); this node speaks \(schemaVersion): upgrade the node"), writes: [])
            }
            let head = try replica.logHead()
            let leavingOut: NodeID? = ownOps ? nil : node
            // Every snapshot replaces what the node holds, and so carries its own ops too (SPEC
            // section 7, "Snapshots"). A cursor past the head names no position of this log: it is
            // not recorded as the node's (`siyu-hub nodes` would show it), the node gets a snapshot.
            if cursor > head {
                return .answered(try startSnapshot(cursor: head, reason: .cursorTooOld), writes: [])
            }
            var writes: [HubWrite] = [.cursor(node: node, cursor)]
            if cursor == 0, let threshold = options.bootstrapSnapshotOps, head >= threshold {
                return .answered(try startSnapshot(cursor: head, reason: .bootstrap), writes: writes)
            }
            let scope = try scope(of: node)
            var entered = false
            if case let .store(store) = scope {
                let found = try replica.scopeChanges(of: store, from: cursor)
                if found.unseenExits { writes.append(.scopeSeen(store: store, upTo: cursor, at: replica.wallTime)) }
                entered = found.entered
            }
            // Compaction dropped ops after this cursor: the log cannot serve it (SPEC section 7,
            // "Compaction"), a snapshot does.
            if cursor < (try replica.logFloor()) {
                return .answered(try startSnapshot(cursor: head, reason: .cursorTooOld), writes: writes)
            }
            // An instance with a history elsewhere entered the store's scope since its cursor: the
            // whole scope, by a snapshot of reason 1 (SPEC section 7, "Transfers").
            if entered {
                return .answered(try startSnapshot(cursor: head, reason: .scopeChange), writes: writes)
            }
            let read = try replica.changes(after: cursor, byteBudget: budget, scope: scope, leavingOut: leavingOut)
            return .answered(.changes(read.ops.map { LoggedOp(position: $0.position, op: $0.op) }, nextCursor: read.nextCursor,
                                      more: read.more, schemaVersion: currentSchemaVersion), writes: writes)

        case let .readSnapshotPart(node, id, _):
            guard let reading = snapshots.reading(id) else {
                return .answered(.failed(.internalError, "snapshot \(id) is not being read"), writes: [])
            }
            // An instance's ops read partly before and partly after a compaction would not merge to
            // its state: the node pulls again and gets a new snapshot.
            guard try replica.logCompactions() == reading.compactions else {
                snapshots.forget(id)
                return .answered(.failed(.busy, "the hub compacted its log while this snapshot was read; pull again"), writes: [])
            }
            let scope = try scope(of: node)
            let part = try replica.snapshotPart(after: reading.position, maxOps: options.opsPerSnapshotPart, scope: scope,
                                                  leavingOut: nil, timeBudgetMillis: snapshotPartMillis)
            if let next = part.next {
                snapshots.record(id, position: next, compactions: reading.compactions)
                return .answered(.snapshotPart(part.ops, isLast: false, digest: [], schemaVersion: currentSchemaVersion), writes: [])
            }
            // While customers holding a changed tag wait to be re-merged the tables are not the
            // merge of the ops: the snapshot ends without a digest rather than wait for them all.
            let digest = try replica.settledScopeDigest(scope)?.digest ?? HubReader.unsettledDigest
            snapshots.forget(id)
            return .answered(.snapshotPart(part.ops, isLast: true, digest: digest, schemaVersion: currentSchemaVersion), writes: [])

        case let .readDigest(node):
            guard let scoped = try replica.settledScopeDigest(try scope(of: node)) else { return .notYet }
            return .answered(.digest(position: scoped.position, digest: scoped.digest), writes: [])
        }
    }

    /// SNAPSHOT_END's digest when the hub's state is not settled (SPEC section 7): 32 zero bytes,
    /// which a node never compares.
    public static let unsettledDigest = [UInt8](repeating: 0, count: 32)

    /// The connection that read snapshot `id` closed (or the snapshot was refused): forget it.
    public func forgetSnapshot(_ id: UInt64) { snapshots.forget(id) }

    private func startSnapshot(cursor: UInt64, reason: SnapshotReason) throws -> HubEffectResult {
        let id = snapshots.begin(compactions: try replica.logCompactions())
        return .startSnapshot(id: id, cursor: cursor, reason: reason)
    }
}

/// The snapshots a hub is reading: where each one's next part starts, and the hub's compaction
/// count when it began (a compaction in between abandons it). Shared by the reader that starts
/// them (a PULL's) and the one that reads their parts, on other threads: thread-safe (a lock).
public final class SnapshotTable: @unchecked Sendable {
    private let lock = NSLock()
    private var reads: [UInt64: (position: SnapshotPosition?, compactions: UInt64)] = [:]
    private var nextID: UInt64 = 1

    public init() {}

    /// A new snapshot, from the start; its id.
    func begin(compactions: UInt64) -> UInt64 {
        lock.withLock {
            let id = nextID
            nextID += 1
            reads[id] = (nil, compactions)
            return id
        }
    }

    func reading(_ id: UInt64) -> (position: SnapshotPosition?, compactions: UInt64)? { lock.withLock { reads[id] } }

    func record(_ id: UInt64, position: SnapshotPosition?, compactions: UInt64) { lock.withLock { reads[id] = (position, compactions) } }

    func forget(_ id: UInt64) { _ = lock.withLock { reads.removeValue(forKey: id) } }

    /// How many snapshots are being read.
    public var count: Int { lock.withLock { reads.count } }
}
