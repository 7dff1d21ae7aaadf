import SiyuCore
import SiyuSession
import SiyuWire

/// Ops for tests: tag adds by one node, numbered 1, 2, 3, …
func tagOps(_ node: NodeID, role: Role = .store, seqs: ClosedRange<UInt64>, customerPrefix: String = "wm_") -> [Op] {
    seqs.map { seq in
        Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000 + seq, logical: 0), node: node), seq: seq, role: role,
           author: "chenjing", body: .add(Target(.customerTag, "\(customerPrefix)\(seq)", "et_tea"), removes: []))
    }
}

/// A node replica as the session sees it: own ops, quarantine, applied ops and the hub cursor.
struct FakeNodeStore {
    var own: [Op] = []
    var quarantined: [UInt64: String] = [:]
    var applied: [Op] = []
    var cursor: UInt64 = 0
    var snapshotBuffer: [Op]? = nil
    var recordedAck: UInt64 = 0
    /// Refuse CHANGES holding an op of this origin.
    var refuseOrigin: NodeID? = nil
    var logEpoch: [UInt8] = []
    /// The hub's acked_seq a recovery of own ops is open up to.
    var recoveringThrough: UInt64? = nil
    var node: NodeID = "xihu"

    mutating func execute(_ effect: NodeEffect) -> NodeEffectResult? {
        switch effect {
        case let .readOutbox(after, maxOps):
            recordedAck = after
            return .outbox(Array(own.filter { $0.seq > after && quarantined[$0.seq] == nil }.prefix(maxOps)))
        case let .quarantine(seq, _, message):
            quarantined[seq] = message
            return .done
        case let .applyChanges(cs, next, _, _):
            if let bad = refuseOrigin, cs.ops.contains(where: { $0.origin == bad }) { return .failed(.invalidOp, "refused an op of \(bad)") }
            for op in cs.ops where op.origin == node {
                if let mine = own.first(where: { $0.seq == op.seq }) {
                    if mine != op { return .identityConflict("another op numbered \(op.seq)") }
                } else if let through = recoveringThrough, op.seq <= through {
                    own.append(op)
                    own.sort { $0.seq < $1.seq }
                } else {
                    return .failed(.invalidOp, "own op \(op.seq) past the last")
                }
            }
            applied += cs.ops.filter { $0.origin != node }
            cursor = next
            return .done
        case .beginSnapshot:
            snapshotBuffer = []
            return .done
        case let .applySnapshotChunk(_, _, cs):
            snapshotBuffer! += cs.ops
            return .done
        case let .finishSnapshot(_, cursor, _, _):
            applied += snapshotBuffer ?? []
            snapshotBuffer = nil
            self.cursor = cursor
            return .done
        case .abandonSnapshot:
            snapshotBuffer = nil
            return nil
        case let .prepareSync(epoch, _, through):
            if let epoch { logEpoch = epoch; cursor = 0 }
            recoveringThrough = through
            return .done
        case let .finishOwnOpsRecovery(through):
            recordedAck = through
            recoveringThrough = nil
            return .done
        }
    }
}

/// A hub replica as the session sees it: registrations, a log with positions, per-node held ops,
/// refusals settled once the node skips them (SPEC section 7, "Upload").
struct FakeHubStore {
    struct Refusal { var code: ErrorCode; var message: String; var settled = false }
    var registrations: [NodeID: (verifiers: Authentication.Verifiers, role: Role)] = [:]
    var log: [LoggedOp] = []
    var held: [NodeID: [UInt64: Op]] = [:]
    var refusals: [NodeID: [UInt64: Refusal]] = [:]
    /// Refuses matching ops with (code, message).
    var refuse: @Sendable (Op) -> (ErrorCode, String)? = { _ in nil }
    /// Answer a PULL from cursor 0 with a snapshot of this many ops per part (nil: CHANGES).
    var snapshotPartSize: Int? = nil
    var opsPerChanges = 1_000
    var snapshotsServed = 0
    /// Answer every PULL with "the next op needs a newer data model".
    var schemaTooNew = false
    /// Sent in WELCOME.
    var logEpoch: [UInt8] = []
    /// The `ownOps` flag of every PULL read.
    var pullsOwnOps: [Bool] = []
    /// Answer this many PUSHes with `busy` (as the hub's limits do) before storing any.
    var busyPushes = 0
    var digestsServed = 0
    /// Runs before a DIGEST_REQUEST is answered (say, another node's PUSH lands first).
    var beforeDigest: @Sendable (inout FakeHubStore) -> Void = { _ in }

    /// The fake "state digest" of a log of `count` ops.
    static func digest(ofLogCount count: Int) -> [UInt8] { Array(repeating: UInt8(truncatingIfNeeded: count), count: 32) }

    func acked(_ node: NodeID) -> UInt64 {
        var s: UInt64 = 0
        while held[node]?[s + 1] != nil || refusals[node]?[s + 1]?.settled == true { s += 1 }
        return s
    }

    mutating func execute(_ effect: HubEffect) -> HubEffectResult {
        switch effect {
        case let .authorize(node):
            guard let r = registrations[node] else { return .registration(nil) }
            return .registration(NodeRegistration(verifiers: r.verifiers, role: r.role, ackedSeq: acked(node), logHead: UInt64(log.count), logEpoch: logEpoch))
        case let .storePush(node, cs):
            if busyPushes > 0 { busyPushes -= 1; return .pushBusy("busy: push again later") }
            for op in cs.ops {
                if let old = held[node]?[op.seq] {
                    if old != op { return .pushRefused(seq: op.seq, code: .permissionDenied, message: "held with other content") }
                    continue
                }
                if let (code, message) = refuse(op) {
                    if code != .clockSkew { refusals[node, default: [:]][op.seq] = Refusal(code: code, message: message) }
                    return .pushRefused(seq: op.seq, code: code, message: message)
                }
            }
            let pushed = Set(cs.ops.map(\.seq))
            for (seq, r) in refusals[node] ?? [:] where !r.settled && !pushed.contains(seq) && pushed.contains(where: { $0 > seq }) {
                refusals[node]![seq]!.settled = true
            }
            for op in cs.ops where held[node]?[op.seq] == nil {
                held[node, default: [:]][op.seq] = op
                log.append(LoggedOp(position: UInt64(log.count + 1), op: op))
            }
            return .pushStored(ackedSeq: acked(node))
        case let .readChanges(_, after, _, _, own):
            pullsOwnOps.append(own)
            if schemaTooNew { return .schemaTooNew("the next op needs data model 2") }
            if after == 0, snapshotPartSize != nil, !log.isEmpty {
                snapshotsServed += 1
                return .startSnapshot(id: UInt64(snapshotsServed), cursor: UInt64(log.count), reason: .bootstrap)
            }
            let pending = log.filter { $0.position > after }
            let batch = Array(pending.prefix(opsPerChanges))
            return .changes(batch, nextCursor: batch.last?.position ?? max(after, UInt64(log.count)),
                            more: pending.count > batch.count, schemaVersion: 1)
        case let .readSnapshotPart(_, _, part):
            let size = snapshotPartSize ?? 1_000
            let start = Int(part) * size
            let ops = Array(log.dropFirst(start).prefix(size).map(\.op))
            return .snapshotPart(ops, isLast: start + size >= log.count, digest: Array(repeating: 7, count: 32), schemaVersion: 1)
        case .readDigest:
            digestsServed += 1
            beforeDigest(&self)
            return .digest(position: UInt64(log.count), digest: FakeHubStore.digest(ofLogCount: log.count))
        }
    }
}

/// The fake stores behind a `Harness`'s two sessions (a class: the pair's performers share them).
final class FakeStores {
    var node = FakeNodeStore()
    var hub = FakeHubStore()
}

/// A node and a hub session over a `MemoryTransport`, each driven by its `SessionHost` in a
/// `MemorySessionPair` with a virtual clock, fake stores executing their effects at once.
struct Harness {
    let pair: MemorySessionPair
    let stores = FakeStores()

    var now: SessionInstant { pair.now }
    var node: NodeSession { pair.node.session }
    var hub: HubSession { pair.hub.session }
    var transport: MemoryTransport {
        get { pair.transport }
        nonmutating set { pair.transport = newValue }
    }
    var nodeStore: FakeNodeStore {
        get { stores.node }
        nonmutating set { stores.node = newValue }
    }
    var hubStore: FakeHubStore {
        get { stores.hub }
        nonmutating set { stores.hub = newValue }
    }
    var nodeEvents: [SessionEvent] { pair.nodeEvents }
    var hubEvents: [SessionEvent] { pair.hubEvents }
    var nodeSent: [Message] { pair.nodeSent }
    var hubSent: [Message] { pair.hubSent }
    var nodeClosed: CloseReason? { pair.nodeClosed }
    var hubClosed: CloseReason? { pair.hubClosed }

    static let secret = Array("xihu-node-secret".utf8)
    static let nonce: [UInt8] = Array(0..<32)
    static let nodeNonce: [UInt8] = Array(32..<64)
    static let salt: [UInt8] = Array(64..<80)
    /// Few iterations: the same code as the default 4,096, cheap enough for every test.
    static let iterations = 8
    static func verifiers(_ secret: [UInt8]) -> Authentication.Verifiers {
        Authentication.verifiers(secret: secret, salt: salt, iterations: iterations)
    }
    static let registration = NodeRegistration(verifiers: verifiers(secret), role: .store, ackedSeq: 0, logHead: 0)

    init(nodeSecret: [UInt8] = Harness.secret, registeredSecret: [UInt8] = Harness.secret, own: [Op] = tagOps("xihu", seqs: 1...3),
         hubLog: [Op] = [], policy: KeepalivePolicy = .standard, byteBudget: UInt64 = 64 * 1024,
         nonce: [UInt8] = Harness.nonce, faults: MemoryTransport.FaultHook? = nil, lastOwnSeq: UInt64? = nil,
         cursor: UInt64 = 0, logEpoch: [UInt8]? = nil, recordedAckedSeq: UInt64? = nil, saltedKeys: NodeSession.SaltedKeys? = nil) {
        let start = SessionInstant(milliseconds: 1_000_000)
        var config = NodeSession.Configuration(node: "xihu", role: .store, secret: nodeSecret, byteBudget: byteBudget, policy: policy)
        config.saltedKeys = saltedKeys
        let stores = stores
        stores.node.own = own
        stores.node.cursor = cursor
        stores.node.logEpoch = logEpoch ?? []
        stores.hub.registrations["xihu"] = (Harness.verifiers(registeredSecret), .store)
        for (i, op) in hubLog.enumerated() {
            stores.hub.log.append(LoggedOp(position: UInt64(i + 1), op: op))
            stores.hub.held[op.origin, default: [:]][op.seq] = op
        }
        pair = MemorySessionPair(
            node: NodeSession(config, cursor: cursor, lastOwnSeq: lastOwnSeq ?? own.last?.seq ?? 0, logEpoch: logEpoch,
                              recordedAckedSeq: recordedAckedSeq, now: start, nonce: Harness.nodeNonce),
            hub: HubSession(HubSession.Configuration(hubID: "hub-hz", policy: policy), nonce: nonce, now: start),
            transport: MemoryTransport(latencyMillis: 1, faults: faults), now: start,
            nodeEffects: { stores.node.execute($0) }, hubEffects: { stores.hub.execute($0) })
    }

    func start() { nodeDo { $0.start(now: $1) } }

    /// Calls into the node's session (`$1` is the virtual now) and carries out what it asks.
    func nodeDo(_ call: (inout NodeSession, SessionInstant) -> [NodeSession.Action]) { pair.nodeDo(call) }

    /// Runs until `done` holds, both sides closed, or `limit` milliseconds of virtual time pass.
    func run(forMillis limit: UInt64 = 600_000, until done: (Harness) -> Bool = { _ in false }) {
        pair.run(forMillis: limit) { done(self) }
    }
}
