import SiyuCore
import SiyuSession
import SiyuStore
import SiyuWire

/// Carries out a `HubSession`'s store effects against the hub's replica: the single writer (PUSH
/// admission and merge, the writes reads ask for, re-merge slices), and — alone, as in tests and
/// the simulator — the reads too, through a `HubReader` over the same connection. A serving hub
/// (`HubServer`) gives the reads to a `HubReader` over a read-only connection of its own on
/// another thread instead, and applies the `HubWrite`s they ask for here (`apply`).
///
/// Guarantees (one thread or serial queue at a time):
/// - every effect gets exactly one `HubEffectResult`; no error escapes and nothing traps, whatever
///   the node sent: a refused op is `.pushRefused` naming it with its SPEC section 8 code, a store
///   failure `.failed(.internalError, …)` (retryable), a change set of a newer data model
///   `.failed(.schemaUnsupported, …)`;
/// - a PUSH is stored by `Replica.acceptPush`: durable, with log positions, before `.pushStored`;
/// - a PULL is answered from the log in log order within the byte budget (`.changes`), leaving out
///   the pulling node's own ops (it holds them; SPEC section 7, "Download"), or with a
///   snapshot (`.startSnapshot`) when the cursor is past the log head or below a compacted log's
///   floor (reason 2) or, for a
///   cursor of 0, when the log holds at least `Options.bootstrapSnapshotOps` ops (reason 0);
///   snapshot parts come in SPEC order (tag library first, instances whole) of at most about
///   `Options.opsPerSnapshotPart` ops, the last with the hub's state digest; a snapshot carries
///   the node's own ops (it replaces the node's state), CHANGES only when the PULL asked for them
///   (`ownOps`: a node recovering its own acknowledged ops after its file lost them);
/// - every commit is durable when it returns (`synchronous = FULL`), so a PUSH_ACK survives a
///   power cut; WELCOME carries the log epoch, new after any start not preceded by a clean stop.
/// - a DIGEST_REQUEST is answered with the state digest of the node's scope and the log head it
///   describes, read together (`Replica.scopeDigest`).
public final class HubStoreExecutor: @unchecked Sendable {
    /// How the hub answers pulls.
    public struct Options: Sendable {
        /// A PULL from cursor 0 gets a snapshot once the log holds this many ops (nil: never).
        public var bootstrapSnapshotOps: UInt64?
        /// About how many ops one snapshot part holds (SPEC: about 10,000 or fewer).
        public var opsPerSnapshotPart: Int
        /// How many customers holding a changed tag one writer turn re-merges (`settleRemergeSlice`);
        /// nil: all of them in the commit of the change (SPEC section 10: slices of 2,000).
        public var tagHolderSlice: Int?
        /// How long the restore grace lasts after a new log epoch (`RestoreGrace`; SPEC section 7,
        /// "Log epochs"): one hour, time for every node — HQ's first — to push again what the hub
        /// lost. Nil: no grace.
        public var restoreGraceMillis: UInt64?
        /// About how long one re-merge slice may hold the writer (`settleRemergeSlice`): 10 ms,
        /// so a PUSH waits at most about that long behind one. Nil: bounded by `tagHolderSlice` only.
        public var remergeSliceMillis: UInt64?

        public init(bootstrapSnapshotOps: UInt64? = 10_000, opsPerSnapshotPart: Int = 10_000, tagHolderSlice: Int? = 2_000,
                    restoreGraceMillis: UInt64? = 3_600_000, remergeSliceMillis: UInt64? = 10) {
            self.bootstrapSnapshotOps = bootstrapSnapshotOps
            self.opsPerSnapshotPart = max(1, opsPerSnapshotPart)
            self.tagHolderSlice = tagHolderSlice.map { max(1, $0) }
            self.restoreGraceMillis = restoreGraceMillis
            self.remergeSliceMillis = remergeSliceMillis
        }
    }

    public let replica: Replica
    public let options: Options
    /// The hub log's identity sent in WELCOME (SPEC section 7, "Log epochs"): kept from the last
    /// run only if that run stopped cleanly (`HubServer` marks it), else new.
    public let logEpoch: [UInt8]
    /// Whether `logEpoch` is new with this start (a first start, a crash, a restored backup).
    public let logEpochRenewed: Bool
    /// The reads, over this executor's own connection (`execute`).
    public let reader: HubReader

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
        try replica.setPageCache(megabytes: HubStoreExecutor.writerCacheMegabytes)
        (logEpoch, logEpochRenewed) = try replica.startHubLogEpoch(fresh: freshEpoch)
        if let grace = options.restoreGraceMillis, let started = try replica.hubLogEpochStartedMillis() {
            replica.restoreGrace = RestoreGrace(epochStartedMillis: started, graceMillis: grace)
        }
        try replica.logUnpositionedOps()
        reader = HubReader(replica: replica, options: options, logEpoch: logEpoch)
    }

    /// The writer connection's page cache, in MiB. Small on purpose: every group commit ends with
    /// SQLite dropping from the cache the pages past the file's end (`sqlite3PcacheTruncate`), a
    /// walk whose cost grows with the cache, and the operating system's page cache holds the file
    /// anyway. At 4,000 stores (siyu-bench section `hub`, docs/BENCHMARKS.md) a 64 MiB writer cache
    /// spent 7 % of the hub's CPU in that walk (perf), and 4 MiB cut a group commit's mean time from
    /// about 3.5 ms to 1.2 ms.
    public static let writerCacheMegabytes = 4

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
        try replica.settlePendingRemerges(limit: options.tagHolderSlice, timeBudgetMillis: options.remergeSliceMillis)
    }

    /// The scope of a node's pulls (SPEC section 7, "Scope"), from its registration alone.
    public func scope(of node: NodeID) throws -> SyncScope { try reader.scope(of: node) }

    /// Each registered node's StoredKey, by node id (`HubReader.storedKeys`).
    public func storedKeys() throws -> [NodeID: [UInt8]] { try reader.storedKeys() }

    /// Carries out one effect, reads included (on this executor's connection): a read that finds
    /// customers waiting to be re-merged settles them first; the writes a read asks for are made
    /// before the answer is returned.
    public func execute(_ effect: HubEffect) -> HubEffectResult {
        guard HubReader.reads(effect) else { return write(effect) }
        for _ in 0..<2 {
            switch reader.read(effect) {
            case let .answered(result, writes):
                if let failure = apply(writes) { return failure }
                return result
            case .notYet:
                do { try replica.settlePendingRemerges(limit: nil) } catch {
                    return .failed(.internalError, "the hub's store failed: \(error)")
                }
            }
        }
        return .failed(.busy, "the hub is re-merging customers holding a changed tag; ask again shortly")
    }

    /// Carries out a write effect (a PUSH); a read is answered `.failed(.internalError, …)`.
    public func write(_ effect: HubEffect) -> HubEffectResult {
        guard case let .storePush(node, changeSet) = effect else {
            return .failed(.internalError, "a read reached the hub's writer")
        }
        return HubStoreExecutor.result(of: Result { try replica.acceptPush(from: node, changeSet) })
    }

    /// The answer to a PUSH from what `acceptPush` gave.
    static func result(of outcome: Result<PushOutcome, any Error>) -> HubEffectResult {
        switch outcome {
        case let .success(.stored(acked, _)):
            return .pushStored(ackedSeq: acked)
        case let .success(.refused(refusal, _)):
            return .pushRefused(seq: refusal.seq, code: HubStoreExecutor.code(of: refusal), message: refusal.protocolMessage)
        case let .success(.deferred(message, _)):
            return .pushBusy(message)
        case let .failure(ReplicaError.refused(refusal)):
            return .failed(HubStoreExecutor.code(of: refusal), refusal.protocolMessage)
        case let .failure(ReplicaError.unsupportedSchema(found, supported)):
            return .failed(.schemaUnsupported, "a change set of data model \(found); this hub accepts up to \(supported)")
        case let .failure(error):
            return .failed(.internalError, "the hub's store failed: \(error)")
        }
    }

    /// Carries out several PUSHes (of different connections) as one transaction: one commit and
    /// one WAL sync for all (`Replica.acceptPushes`). Each gets the result `write` would give it
    /// alone; if the commit fails, every one gets `.failed(.internalError, …)` and none was stored.
    /// An effect that is not a PUSH gets `.failed(.internalError, …)` and takes no part.
    /// `cursors` — PULL cursors gathered since the last commit (`HubWrite.cursor`) — are recorded
    /// in the same transaction.
    public func writeBatch(_ effects: [HubEffect], recordingCursors cursors: [NodeID: UInt64] = [:]) -> [HubEffectResult] {
        var pushes: [(node: NodeID, changeSet: ChangeSet)] = []
        var slots: [Int?] = []
        for effect in effects {
            if case let .storePush(node, changeSet) = effect {
                slots.append(pushes.count)
                pushes.append((node, changeSet))
            } else {
                slots.append(nil)
            }
        }
        let outcomes: [Result<PushOutcome, any Error>]
        do { outcomes = try replica.acceptPushes(pushes, recordingCursors: cursors) } catch {
            return effects.map { _ in .failed(.internalError, "the hub's store failed: \(error)") }
        }
        return slots.map { slot in
            guard let slot else { return .failed(.internalError, "a read reached the hub's writer") }
            return HubStoreExecutor.result(of: outcomes[slot])
        }
    }

    /// Makes the writes reads asked for; the failure to answer with if one failed (nil: done).
    @discardableResult
    public func apply(_ writes: [HubWrite]) -> HubEffectResult? {
        do {
            var cursors: [NodeID: UInt64] = [:]
            for write in writes {
                switch write {
                case let .cursor(node, cursor): cursors[node] = cursor
                case let .scopeSeen(store, upTo, at): try replica.recordScopeSeen(of: store, upTo: upTo, at: at)
                }
            }
            try replica.recordCursors(cursors)
            return nil
        } catch {
            return .failed(.internalError, "the hub's store failed: \(error)")
        }
    }

    /// The connection that read snapshot `id` closed: forget where it was.
    public func forgetSnapshot(_ id: UInt64) { reader.forgetSnapshot(id) }

    /// The ERROR code of a refusal.
    static func code(of refusal: OpRefusal) -> ErrorCode {
        ErrorCode(rawValue: refusal.reason.protocolCode) ?? .invalidOp
    }
}
