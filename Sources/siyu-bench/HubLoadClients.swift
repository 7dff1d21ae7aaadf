// The nodes of the hub-load section: many `NodeSession`s over `TCPConnection`s on a few SiyuNet
// event loops, their store effects served from memory (an outbox of synthesized ops; pulled ops
// are counted, not stored), since what is measured is the hub. Measures one thing: sync rounds.

import Foundation
import SiyuCore
import SiyuNet
import SiyuSession
import SiyuWire

/// Counters every loop adds to and the main thread reads while it waits (one lock).
final class HubLoadProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var _authenticated = 0, _caughtUp = 0, _failed = 0, _roundsInFlight = 0

    func add(authenticated: Int = 0, caughtUp: Int = 0, failed: Int = 0, roundsInFlight: Int = 0) {
        lock.lock(); defer { lock.unlock() }
        _authenticated += authenticated; _caughtUp += caughtUp; _failed += failed; _roundsInFlight += roundsInFlight
    }

    var snapshot: (authenticated: Int, caughtUp: Int, failed: Int, roundsInFlight: Int) {
        lock.lock(); defer { lock.unlock() }
        return (_authenticated, _caughtUp, _failed, _roundsInFlight)
    }
}

/// When each store op was acknowledged (its PUSH_ACK reached the store: the op is in the log),
/// until HQ's node receives it; shared by every loop (one lock). An op HQ receives before its
/// PUSH_ACK reached the store counts as no lag.
final class HubLoadAcknowledgements: @unchecked Sendable {
    private struct Key: Hashable { let origin: NodeID; let seq: UInt64 }
    private let lock = NSLock()
    private var acknowledged: [Key: UInt64] = [:]
    private var receivedEarly: Set<Key> = []

    /// Ops `seqs` of `origin` acknowledged at `nanos` (monotonic).
    func acknowledged(_ origin: NodeID, _ seqs: ClosedRange<UInt64>, at nanos: UInt64) {
        lock.lock(); defer { lock.unlock() }
        for seq in seqs {
            let key = Key(origin: origin, seq: seq)
            if receivedEarly.remove(key) == nil { acknowledged[key] = nanos }
        }
    }

    /// HQ received op `seq` of `origin` at `nanos`: nanoseconds since its acknowledgement (0 if
    /// it is not acknowledged yet).
    func received(_ origin: NodeID, _ seq: UInt64, at nanos: UInt64) -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        let key = Key(origin: origin, seq: seq)
        guard let at = acknowledged.removeValue(forKey: key) else {
            receivedEarly.insert(key)
            return 0
        }
        return nanos > at ? nanos - at : 0
    }

    /// Acknowledged ops HQ has not received.
    var pending: Int {
        lock.lock(); defer { lock.unlock() }
        return acknowledged.count
    }
}

/// What the nodes of one loop measured. Written on that loop's thread only; read by the main
/// thread after the loop stopped (`EventLoop.waitForStop` orders the two).
final class HubLoadTally: @unchecked Sendable {
    /// Nanoseconds of every completed sync round.
    var latencies: [UInt64] = []
    /// Of each completed round: nanoseconds from its PUSH to the PUSH_ACK, and from then to the
    /// last CHANGES (the PULL).
    var pushLatencies: [UInt64] = []
    var pullLatencies: [UInt64] = []
    /// When each completed round started (the loop clock's nanoseconds), in the order above.
    var roundStarts: [UInt64] = []
    /// The bootstrapping node (`--hub-busy`): nanoseconds from its connect to caught up, and the
    /// ops its snapshot brought.
    var bootNanos: UInt64?
    var bootOps = 0
    var opsPushed = 0
    var opsAcknowledged = 0
    var opsPulled = 0
    /// PUSHes answered `busy` (ERROR 12): the node pushes again 1–2 s later, inside the same round.
    var busy = 0
    var errors = 0
    var firstErrors: [String] = []
    /// Nanoseconds from the connect call to WELCOME, per node.
    var authenticationTimes: [UInt64] = []
    /// Per store op HQ's node received: nanoseconds since the store had its PUSH_ACK.
    var hqLags: [UInt64] = []

    func error(_ text: String) {
        errors += 1
        if firstErrors.count < 5 { firstErrors.append(text) }
    }
}

/// Everything a loop's nodes share: the hub's address, the clock, the randomness, the window.
final class HubLoadLane: @unchecked Sendable {
    let loop: EventLoop
    let hub: SocketAddress
    let tally = HubLoadTally()
    let progress: HubLoadProgress
    let acknowledgements: HubLoadAcknowledgements
    var random: SplitMix
    var nodes: [HubLoadNode] = []
    /// No round starts at or after this instant (nanoseconds of the loop's clock); nil before the rounds.
    var roundsEnd: UInt64?
    /// Seconds between a node's rounds, drawn uniformly.
    let gap: ClosedRange<Double>
    var stopping = false

    init(loop: EventLoop, hub: SocketAddress, progress: HubLoadProgress, acknowledgements: HubLoadAcknowledgements,
         seed: UInt64, gap: ClosedRange<Double>) {
        self.loop = loop
        self.hub = hub
        self.progress = progress
        self.acknowledgements = acknowledgements
        self.random = SplitMix(seed: seed)
        self.gap = gap
    }

    var nowNanos: UInt64 { loop.clock.now().nanoseconds }

    /// Starts the rounds: every node's first round at a random moment within the first gap.
    func startRounds(seconds: Double) {
        roundsEnd = nowNanos + UInt64(seconds * 1e9)
        for node in nodes where node.isReady && !node.isHQ { node.scheduleRound(after: random.uniform(0 ... gap.upperBound)) }
    }

    /// Says BYE on every connection.
    func closeAll() {
        stopping = true
        for node in nodes { node.close() }
    }
}

/// A small deterministic generator (SplitMix64), seeded and printed by the section.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * Double(next() >> 11) / Double(1 << 53)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// One node: a `NodeSession` on a `TCPConnection` of its lane's loop (loop thread only). A store
/// node's sync round starts when its outbox grows by a few ops of its own and the session sends
/// PUSH; it ends when the PUSH_ACK came and the PULL sent after it was answered by CHANGES saying
/// `more = false`. HQ's node does no rounds: it pulls on its session's timer and records the lag of
/// every store op it receives.
final class HubLoadNode {
    unowned let lane: HubLoadLane
    let id: NodeID
    let isHQ: Bool
    /// A store that joins during the rounds at cursor 0 and bootstraps from a snapshot.
    let isBoot: Bool
    let configuration: NodeSession.Configuration
    let cursor: UInt64
    let customers: [String]
    let tags: [String]
    private var synthesizer: OpSynthesizer
    /// The session on its connection (the one session host the hub and the node daemon use).
    private var link: TCPSessionHost<NodeSession>?
    private var session: NodeSession? { link?.host.session }
    private var roundTimer: TimerHandle?
    private var outbox: [Op] = []
    private var connectStarted: UInt64 = 0
    private var caughtUp = false

    private enum Phase: Equatable { case idle, pushing(last: UInt64), pulling(sent: Bool) }
    private var phase = Phase.idle
    private var roundStarted: UInt64 = 0
    private var pushAcknowledgedAt: UInt64 = 0
    private var pullWanted = false
    private var roundOps = 0

    init(lane: HubLoadLane, id: NodeID, secret: [UInt8], keys: NodeSession.SaltedKeys?, cursor: UInt64, customers: [String], tags: [String]) {
        self.lane = lane
        self.id = id
        self.isHQ = false
        self.isBoot = cursor == 0
        self.cursor = cursor
        self.customers = customers
        self.tags = tags
        // No pull on a timer: the rounds are the load (a running node also pulls every 5 s).
        let policy = KeepalivePolicy(pollIntervalMillis: 3_600_000)
        var configuration = NodeSession.Configuration(node: id, role: .store, secret: secret, policy: policy)
        configuration.saltedKeys = keys
        self.configuration = configuration
        synthesizer = OpSynthesizer(origin: id, role: .store, author: "clerk-" + id)
    }

    /// HQ's node `id`: pushes nothing, pulls every `pollMillis`.
    init(lane: HubLoadLane, hq id: NodeID, secret: [UInt8], cursor: UInt64, pollMillis: UInt64) {
        self.lane = lane
        self.id = id
        self.isHQ = true
        self.isBoot = false
        self.cursor = cursor
        self.customers = []
        self.tags = []
        configuration = NodeSession.Configuration(node: id, role: .hq, secret: secret, policy: KeepalivePolicy(pollIntervalMillis: pollMillis))
        synthesizer = OpSynthesizer(origin: id, role: .hq, author: "hq-admin")
    }

    var isReady: Bool { caughtUp && session?.state == .ready }

    private var now: SessionInstant { SessionInstant(milliseconds: lane.nowNanos / 1_000_000) }

    func connect() {
        connectStarted = lane.nowNanos
        TCPConnection.connect(to: lane.hub, on: lane.loop, timeout: .seconds(60)) { [self] result in
            switch result {
            case let .success(connection):
                var handlers = SessionHost<NodeSession>.Handlers(perform: { [unowned self] effect, _ in self.perform(effect) })
                handlers.report = { [unowned self] event in self.report(event) }
                handlers.sent = { [unowned self] message in
                    if case .pull = message, case .pulling(false) = self.phase { self.phase = .pulling(sent: true) }
                }
                handlers.sendFailed = { [unowned self] error in self.lane.tally.error("\(self.id): write failed: \(error)") }
                handlers.closing = { [unowned self] reason in
                    if !self.lane.stopping { self.lane.tally.error("\(self.id): session closed: \(reason)") }
                }
                handlers.afterActions = { [unowned self] in
                    // A PUSH_ACK ended the push half of a round: the pull half starts at once.
                    guard self.pullWanted else { return }
                    self.pullWanted = false
                    self.drive { $0.pullNow(now: $1) }
                }
                let link = TCPSessionHost(connection: connection, session: NodeSession(configuration, cursor: cursor, lastOwnSeq: 0, now: now),
                                          handlers: handlers)
                link.disconnected = { [unowned self] reason in
                    if !self.lane.stopping { self.fail("disconnected: \(reason)") }
                    self.link = nil
                }
                self.link = link
                do {
                    try link.start()
                } catch {
                    fail("cannot start the connection: \(error)")
                    return
                }
                drive { $0.start(now: $1) }
            case let .failure(error):
                fail("cannot connect: \(error)")
            }
        }
    }

    func close() {
        if let roundTimer { lane.loop.cancelTimer(roundTimer) }
        roundTimer = nil
        drive { $0.close(reason: "benchmark over", now: $1) }
    }

    private func fail(_ why: String) {
        lane.tally.error("\(id): \(why)")
        lane.progress.add(failed: 1)
        if phase != .idle { lane.progress.add(roundsInFlight: -1) }
        phase = .idle
    }

    func scheduleRound(after seconds: Double) {
        roundTimer = lane.loop.scheduleTimer(after: .nanoseconds(Int64(seconds * 1e9))) { [weak self] in
            guard let self else { return }
            self.roundTimer = nil
            self.startRound()
        }
    }

    /// A few ops of this node's own, numbered on and stamped near now: two tags added to
    /// customers, one points award.
    private func startRound() {
        guard !lane.stopping, let end = lane.roundsEnd, lane.nowNanos < end, isReady, phase == .idle else { return }
        synthesizer = OpSynthesizer(origin: id, role: .store, author: synthesizer.author, after: synthesizer.seq, clock: synthesizer.clock)
        let customer = customers[lane.random.below(customers.count)]
        let ops = [synthesizer.addTag(tags[lane.random.below(tags.count)], to: customer),
                   synthesizer.make(.points(customerID: customer, delta: Int64(1 + lane.random.below(50)))),
                   synthesizer.addTag(tags[lane.random.below(tags.count)], to: customers[lane.random.below(customers.count)])]
        outbox += ops
        roundOps = ops.count
        lane.tally.opsPushed += ops.count
        phase = .pushing(last: synthesizer.seq)
        roundStarted = lane.nowNanos
        lane.progress.add(roundsInFlight: 1)
        drive { $0.outboxGrew(now: $1) }
    }

    /// HQ's node moves `tag` into a new group (every customer holding it is re-merged, in slices,
    /// on the hub's writer). `overwrites`: the library's write of the tag's group.
    func moveTag(_ tag: String, overwrites: [Stamp]) {
        guard isHQ, isReady else { lane.tally.error("\(id): not ready to change the tag library"); return }
        synthesizer = OpSynthesizer(origin: id, role: .hq, author: synthesizer.author, after: synthesizer.seq, clock: synthesizer.clock)
        outbox += [synthesizer.make(.write(Target(.tagGroup, "moved"), field: "name", value: .text("迁移"), overwrites: [])),
                   synthesizer.make(.write(Target(.tag, tag), field: "group_id", value: .text("moved"), overwrites: overwrites))]
        drive { $0.outboxGrew(now: $1) }
    }

    private func roundEnded() {
        let end = lane.nowNanos
        lane.tally.roundStarts.append(roundStarted)
        lane.tally.latencies.append(end - roundStarted)
        lane.tally.pushLatencies.append(pushAcknowledgedAt - roundStarted)
        lane.tally.pullLatencies.append(end - pushAcknowledgedAt)
        phase = .idle
        lane.progress.add(roundsInFlight: -1)
        scheduleRound(after: lane.random.uniform(lane.gap))
    }

    /// Calls into the session and carries out what it asks (nothing without a connection).
    private func drive(_ call: (inout NodeSession, SessionInstant) -> [NodeSession.Action]) {
        let now = now
        link?.host.drive(now: now) { call(&$0, now) }
    }

    private func perform(_ effect: NodeEffect) -> NodeEffectResult? {
        switch effect {
        case let .readOutbox(after, maxOps):
            outbox.removeAll { $0.seq <= after }
            return .outbox(Array(outbox.prefix(maxOps)))
        case let .applyChanges(changeSet, _, _, _):
            if isHQ {
                let at = lane.nowNanos
                for op in changeSet.ops { lane.tally.hqLags.append(lane.acknowledgements.received(op.origin, op.seq, at: at)) }
            } else {
                lane.tally.opsPulled += changeSet.ops.count
            }
            return .done
        case let .quarantine(seq, code, message):
            lane.tally.error("\(id): op #\(seq) refused with code \(code): \(message)")
            outbox.removeAll { $0.seq == seq }
            return .done
        case let .applySnapshotChunk(_, _, changeSet):
            lane.tally.bootOps += changeSet.ops.count
            return .done
        case .beginSnapshot, .finishSnapshot, .prepareSync, .finishOwnOpsRecovery:
            return .done
        case .abandonSnapshot:
            return nil
        }
    }

    private func report(_ event: SessionEvent) {
        switch event {
        case .authenticated:
            lane.tally.authenticationTimes.append(lane.nowNanos - connectStarted)
            lane.progress.add(authenticated: 1)
        case let .pushAcknowledged(acked):
            if case let .pushing(last) = phase, acked >= last {
                lane.tally.opsAcknowledged += roundOps
                pushAcknowledgedAt = lane.nowNanos
                lane.acknowledgements.acknowledged(id, (last - UInt64(roundOps) + 1) ... last, at: pushAcknowledgedAt)
                phase = .pulling(sent: false)
                pullWanted = true
            }
        case let .pulled(_, _, more):
            if !caughtUp, !more {
                caughtUp = true
                if isBoot { lane.tally.bootNanos = lane.nowNanos - connectStarted; return }
                lane.progress.add(caughtUp: 1)
            } else if case .pulling(true) = phase, !more {
                roundEnded()
            }
        case let .errorReceived(code, _, message):
            if code == ErrorCode.busy.rawValue { lane.tally.busy += 1 } else { lane.tally.error("\(id): hub sent ERROR \(code): \(message)") }
        case let .opRefused(seq, code, message):
            lane.tally.error("\(id): op \(seq.map(String.init) ?? "?") refused (\(code)): \(message)")
        case let .identityConflict(why), let .upgradeNeeded(why):
            lane.tally.error("\(id): \(why)")
        case let .authenticationRefused(_, why):
            lane.tally.error("\(id): authentication refused: \(why)")
        case .snapshotStarted where isBoot:
            break
        case .snapshotStarted:
            lane.tally.error("\(id): the hub sent a snapshot (not expected: the node starts at the log head)")
        default:
            break
        }
    }

}
