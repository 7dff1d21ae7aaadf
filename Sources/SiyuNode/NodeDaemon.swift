import Foundation
import SiyuCore
import SiyuNet
import SiyuSession
import SiyuStore
import SiyuWire

/// A store node on the network: connects to the hub, runs a `NodeSession` over the `TCPConnection`
/// with a `NodeStoreExecutor` carrying out its effects on the node's replica, and keeps at it.
///
/// Guarantees:
/// - everything runs on the loop thread (or before the loop runs); the replica is used only there;
/// - local edits never wait on the network: they are made by other processes (`siyu`) on the same
///   file; the daemon notices them by polling the replica's last issued number (a cheap
///   `PRAGMA data_version` check) every `outboxPollInterval` and tells the session the outbox grew;
/// - a connection that fails or closes is retried after an exponential backoff with jitter
///   (`initialBackoff` doubling up to `maxBackoff`, each delay drawn from its upper half); the
///   backoff resets once a connection authenticates. A close the protocol marks as not retryable
///   (authentication refused, an unsupported version or data model, an identity conflict) ends
///   the daemon with `.failed`: retrying cannot help until someone changes something;
/// - `.once` mode ends `.synced` only when the session is caught up (last PULL said `more = false`,
///   nothing outstanding) and the replica's outbox (quarantined ops aside) is empty, after saying
///   BYE; it ends `.failed` if that is not reached within `onceTimeout`;
/// - `.verify` mode gets there too, then asks the hub for its digest (DIGEST_REQUEST) and ends
///   `.verified` with both digests only when the hub's position is the node's cursor and no local
///   edit came in meanwhile (the two digests then describe the same ops); otherwise it pulls
///   (and pushes) again and asks again, at most `maxAttempts` times, then ends `.failed` (the hub
///   is busy). A hub that predates digests ends it `.failed` with `hubLacksDigests` set;
/// - `tally` counts what moved (acknowledged pushes, pulled ops, snapshots, quarantines, problems);
/// - while the session waits for a store effect or the hub is not reading (`isWritable` false) the
///   socket is not read and no effect runs;
/// - `finish` is called exactly once, on the loop thread, with the outcome; the caller stops the loop.
public final class NodeDaemon: @unchecked Sendable {
    public enum Mode: Sendable, Equatable {
        /// Sync for as long as the process runs.
        case continuous
        /// One full round: push everything, pull until nothing more is pending, then stop.
        case once
        /// One full round, then compare this replica's state digest with the hub's (asking again,
        /// after pulling, at most `maxAttempts` times while the hub's log moves on).
        case verify(maxAttempts: Int)
    }

    public struct Configuration: Sendable {
        public var hub: SocketAddress
        public var session: NodeSession.Configuration
        public var mode: Mode
        public var initialBackoff: Duration
        public var maxBackoff: Duration
        public var outboxPollInterval: Duration
        public var connectTimeout: Duration
        public var onceTimeout: Duration

        public init(hub: SocketAddress, session: NodeSession.Configuration, mode: Mode = .continuous,
                    initialBackoff: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(30),
                    outboxPollInterval: Duration = .milliseconds(200), connectTimeout: Duration = .seconds(10),
                    onceTimeout: Duration = .seconds(60)) {
            self.hub = hub
            self.session = session
            self.mode = mode
            self.initialBackoff = initialBackoff
            self.maxBackoff = max(initialBackoff, maxBackoff)
            self.outboxPollInterval = outboxPollInterval
            self.connectTimeout = connectTimeout
            self.onceTimeout = onceTimeout
        }
    }

    /// How a daemon ended.
    public enum Outcome: Sendable, Equatable {
        /// `.once`: nothing is left to push or pull.
        case synced
        /// Shut down on request (a signal).
        case stopped
        /// `.verify`: caught up, and the hub's digest at the node's cursor compared with the replica's.
        case verified(DigestComparison)
        /// Gave up: why, for people.
        case failed(String)
    }

    public let loop: EventLoop
    public let executor: NodeStoreExecutor
    public let configuration: Configuration
    public let log: OperatorLog
    public private(set) var outcome: Outcome?
    /// What moved so far.
    public private(set) var tally = SyncTally()
    /// The hub answered DIGEST_REQUEST with `unknown_message_type`: it predates digests.
    public private(set) var hubLacksDigests = false
    private let finish: (Outcome) -> Void

    /// The session on the current connection, if any.
    private var link: TCPSessionHost<NodeSession>?
    private var session: NodeSession? { link?.host.session }
    private var connection: TCPConnection? { link?.connection }
    private var connectedAt: SessionInstant = .zero
    private var reconnectTimer: TimerHandle?
    private var pollTimer: TimerHandle?
    private var onceTimer: TimerHandle?
    private var attempt = 0
    private var lastSeenSeq: UInt64 = 0
    private var lastProblem = "no connection made yet"
    /// The last sync outcome written to the replica (for `siyu status`), and when.
    private var lastRecorded: (ok: Bool, result: String, at: SessionInstant)?
    /// Set when the session ended in a way reconnecting cannot fix.
    private var fatal: String?
    /// The replica itself failed (a store effect, or reading its sync state): an error retrying
    /// will not fix until an operator repairs the file. While set, a successful WELCOME does not
    /// reset the backoff (it keeps doubling, as for a missing hub), and the advice is logged once
    /// per distinct failure; catching up clears it.
    private var localFault: String?

    /// How an outcome that failed because of the replica itself (not the hub or the network) begins.
    public static let replicaFailedPrefix = "the replica failed: "

    /// Notes a failure of the replica: says once, plainly, what to do; later repeats go to debug.
    private func noteLocalFault(_ message: String) {
        let first = localFault != message
        localFault = message
        if configuration.mode != .continuous, fatal == nil {
            // One round (sync --once, siyu sync/verify): give up at once rather than retry until the timeout.
            fatal = "\(NodeDaemon.replicaFailedPrefix)\(message)"
            connection?.close()
        }
        if first {
            log.write(.error, "\(who) the replica failed: \(message). Retrying will not fix this: stop this daemon, "
                      + "run siyu check --db \(replica.path) to see what is wrong and siyu rebuild --db \(replica.path) to repair it, "
                      + "then start the daemon again. Until then it retries with growing waits (up to \(Int(NodeDaemon.seconds(configuration.maxBackoff))) s).")
        } else {
            log.write(.debug, "\(who) the replica failed again: \(message)")
        }
    }
    private var stopping = false
    private var sayingGoodbye = false
    /// `.verify`: a DIGEST_REQUEST is outstanding on this connection; the answer, read with the
    /// replica's digest at that moment (nil if that failed); how many were asked.
    private var digestRequested = false
    private var digestAnswer: (position: UInt64, hub: [UInt8], cursor: UInt64, local: [UInt8]?)?
    private var digestAttempts = 0
    /// `.verify`: the PULL after the last PUSH of this connection has been sent.
    private var pulledAfterPushing = false

    public init(loop: EventLoop, executor: NodeStoreExecutor, configuration: Configuration, log: OperatorLog,
                finish: @escaping (Outcome) -> Void) {
        self.loop = loop
        self.executor = executor
        self.configuration = configuration
        self.log = log
        self.finish = finish
    }

    private var replica: Replica { executor.replica }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    private func now() -> SessionInstant { loop.sessionNow }

    /// Calls into the current session and carries out what it asks (nothing without a session).
    private func drive(_ call: (inout NodeSession, SessionInstant) -> [NodeSession.Action]) {
        let now = now()
        link?.host.drive(now: now) { call(&$0, now) }
    }

    private var who: String {
        let t = connection == nil ? "" : " t=\(OperatorLog.seconds(now().milliseconds(since: connectedAt)))"
        return "node=\(IdentifierRule.printable(configuration.session.node, limit: 64)) hub=\(configuration.hub)\(t)"
    }

    /// Starts: connects, and polls the outbox. Loop thread (or before the loop runs).
    public func start() {
        lastSeenSeq = (try? replica.lastIssuedSeq()) ?? 0
        if configuration.mode != .continuous {
            onceTimer = loop.scheduleTimer(after: configuration.onceTimeout) { [weak self] in
                guard let self else { return }
                self.onceTimer = nil
                self.end(.failed("not caught up within \(configuration.onceTimeout): \(self.lastProblem)"))
            }
        }
        schedulePoll()
        connect()
    }

    /// Says BYE (if connected) and ends with `.stopped`. Loop thread.
    public func shutdown(reason: String) {
        guard outcome == nil else { return }
        log.write(.info, "\(who) shutting down (\(reason))")
        end(.stopped)
    }

    // MARK: - Connecting

    private func connect() {
        guard outcome == nil else { return }
        log.write(.debug, "\(who) connecting")
        TCPConnection.connect(to: configuration.hub, on: loop, timeout: configuration.connectTimeout) { [weak self] result in
            guard let self else { return }
            switch result {
            case let .success(connection):
                guard self.outcome == nil else { connection.close(); return }
                self.connected(connection)
            case let .failure(error):
                self.lastProblem = "cannot reach the hub: \(error)"
                self.tally.note(self.lastProblem)
                self.recordSync(ok: false, self.lastProblem)
                self.log.write(.warn, "\(self.who) \(self.lastProblem)")
                self.scheduleReconnect()
            }
        }
    }

    private func connected(_ connection: TCPConnection) {
        let start: NodeStoreExecutor.SessionStart
        do { start = try executor.sessionStart() } catch {
            connection.close()
            lastProblem = "cannot read the replica's sync state: \(error)"
            noteLocalFault(lastProblem)
            scheduleReconnect()
            return
        }
        connectedAt = now()
        lastSeenSeq = start.lastOwnSeq
        let session = NodeSession(configuration.session, cursor: start.cursor, lastOwnSeq: start.lastOwnSeq, logEpoch: start.logEpoch,
                                  recordedAckedSeq: start.recordedAckedSeq, now: connectedAt)
        var handlers = SessionHost<NodeSession>.Handlers(perform: { [unowned self] effect, _ in self.perform(effect) })
        handlers.report = { [unowned self] event in self.report(event) }
        handlers.closing = { [unowned self] reason in self.closing(reason) }
        handlers.sendFailed = { [unowned self] error in self.log.write(.warn, "\(self.who) write failed: \(error)") }
        handlers.afterActions = { [unowned self] in self.afterActions() }
        let link = TCPSessionHost(connection: connection, session: session, handlers: handlers)
        link.disconnected = { [unowned self] reason in self.disconnected(reason) }
        self.link = link
        log.write(.info, "\(who) connected from \(connection.localAddress) (cursor \(start.cursor), own ops up to #\(start.lastOwnSeq))")
        do {
            try link.start()
        } catch {
            self.link = nil
            lastProblem = "cannot start the connection: \(error)"
            scheduleReconnect()
            return
        }
        tally.connections += 1
        drive { session, now in session.start(now: now) }
    }

    private func scheduleReconnect() {
        guard outcome == nil, reconnectTimer == nil else { return }
        if let fatal {
            end(.failed(fatal))
            return
        }
        let initial = NodeDaemon.seconds(configuration.initialBackoff)
        let cap = NodeDaemon.seconds(configuration.maxBackoff)
        let ceiling = min(cap, initial * pow(2, Double(min(attempt, 30))))
        let delay = ceiling / 2 + Double.random(in: 0 ... ceiling / 2)
        attempt += 1
        log.write(.info, "\(who) reconnecting in \(String(format: "%.2f", delay))s (attempt \(attempt))")
        reconnectTimer = loop.scheduleTimer(after: .nanoseconds(Int64(delay * 1e9))) { [weak self] in
            guard let self else { return }
            self.reconnectTimer = nil
            self.connect()
        }
    }

    // MARK: - Driving the session

    /// The connection closed (the session has heard it): reconnect, or finish if ending.
    private func disconnected(_ reason: DisconnectReason) {
        log.write(.info, "\(who) disconnected (\(reason))")
        link = nil
        digestRequested = false
        digestAnswer = nil
        pulledAfterPushing = false
        if sayingGoodbye, let outcome {
            finishOnce(outcome)
        } else {
            scheduleReconnect()
        }
    }

    private func perform(_ effect: NodeEffect) -> NodeEffectResult? {
        let result = executor.execute(effect)
        if case let .failed(code, message)? = result {
            tally.note("store effect failed: \(code.specName) (\(code.rawValue)): \(IdentifierRule.printable(message, limit: 300))")
            noteLocalFault("store effect failed: \(code.specName) (\(code.rawValue)): \(IdentifierRule.printable(message, limit: 300))")
        }
        return result
    }

    private func closing(_ reason: CloseReason) {
        if !reason.isRetryable, fatal == nil, !sayingGoodbye {
            fatal = "the connection ended and retrying cannot help: \(reason)"
        }
        if !sayingGoodbye {
            lastProblem = "\(reason)"
            tally.note(lastProblem)
            recordSync(ok: false, "connection closed: \(reason)")
        }
        log.write(reason.isRetryable || sayingGoodbye ? .info : .error, "\(who) closing: \(reason)")
    }

    /// After every batch of actions (the host has set reading and the session's timer): whether
    /// the replica works again, the sync outcome worth recording, and whether a round is done.
    private func afterActions() {
        guard let link, !link.host.isFinished, let session, link.connection.isOpen else { return }
        if session.isCaughtUp, localFault != nil, nothingLeftToPush(session) {
            log.write(.info, "\(who) the replica works again (caught up)")
            localFault = nil
            attempt = 0
        }
        if session.isCaughtUp, shouldRecord(ok: true), nothingLeftToPush(session) {
            recordSync(ok: true, "caught up: nothing left to push or pull")
            do { try replica.recordHubHead(session.cursor) } catch { log.write(.warn, "\(who) cannot record the hub's head: \(error)") }
        }
        if configuration.mode == .once, outcome == nil, session.isCaughtUp, nothingLeftToPush(session) {
            log.write(.info, "\(who) caught up: nothing left to push or pull (cursor \(session.cursor), acked_seq \(session.ackedSeq))")
            end(.synced)
            return
        }
        if case let .verify(maxAttempts) = configuration.mode, outcome == nil, verifyStep(session, maxAttempts: maxAttempts) {
            return
        }
    }

    /// Whether an outcome is worth writing to the replica: it changed from the last one written,
    /// or the same one was written more than a minute ago (a continuous daemon catches up every
    /// few seconds: it writes once a minute, not at every pull).
    private func shouldRecord(ok: Bool) -> Bool {
        guard let last = lastRecorded, last.ok == ok else { return true }
        return now().milliseconds(since: last.at) >= 60_000
    }

    /// Writes the outcome of syncing for `siyu status` (throttled by `shouldRecord`; a failure to
    /// write is logged, never fatal: syncing matters more than its record).
    private func recordSync(ok: Bool, _ result: String) {
        // Within a minute of the last write of the same kind: a success is not written again, a
        // failure only when it says something new.
        if let last = lastRecorded, last.ok == ok, !shouldRecord(ok: ok), ok || last.result == result { return }
        do {
            try replica.recordSyncResult(ok: ok, result)
            lastRecorded = (ok, result, now())
        } catch {
            log.write(.warn, "\(who) cannot record the sync outcome: \(error)")
        }
    }

    /// The replica's outbox (quarantined ops aside) is empty and no edit came in since the last poll.
    private func nothingLeftToPush(_ session: NodeSession) -> Bool {
        let empty = (try? replica.outbox(after: session.ackedSeq, limit: 1).isEmpty) ?? false
        let seq = (try? replica.lastIssuedSeq()) ?? 0
        return empty && seq == lastSeenSeq
    }

    /// `.verify`: asks for the digest once caught up, and judges the answer. True when it acted
    /// (the caller stops: `act` ran again, or the daemon ended).
    private func verifyStep(_ session: NodeSession, maxAttempts: Int) -> Bool {
        if let answer = digestAnswer {
            digestAnswer = nil
            digestRequested = false
            guard let local = answer.local else {
                end(.failed("cannot compute this replica's state digest: \(lastProblem)"))
                return true
            }
            let caughtUp = answer.position == answer.cursor
            let untouched = nothingLeftToPush(session)
            if caughtUp && untouched {
                let comparison = DigestComparison(position: answer.position, hubDigest: answer.hub, localDigest: local, attempts: digestAttempts)
                log.write(.info, "\(who) digests at position \(answer.position): hub \(answer.hub.hexString), here \(local.hexString): \(comparison.isEqual ? "equal" : "DIFFER")")
                end(.verified(comparison))
                return true
            }
            lastProblem = caughtUp ? "a local edit came in while the digest was asked for"
                : "the hub's log moved on to position \(answer.position) while this node was at \(answer.cursor)"
            log.write(.info, "\(who) digest not comparable (\(lastProblem)); attempt \(digestAttempts) of \(maxAttempts)")
            guard digestAttempts < maxAttempts else {
                end(.failed("hub busy: \(lastProblem), \(digestAttempts) times in a row; try again"))
                return true
            }
            drive { session, now in session.pullNow(now: now) + (untouched ? [] : session.outboxGrew(now: now)) }
            return true
        }
        guard !digestRequested, session.isCaughtUp, nothingLeftToPush(session) else { return false }
        if !pulledAfterPushing {
            // The first PULL went out before the PUSHes: their ops have log positions after it.
            pulledAfterPushing = true
            drive { session, now in session.pullNow(now: now) }
            return true
        }
        digestRequested = true
        digestAttempts += 1
        log.write(.info, "\(who) caught up at position \(session.cursor); asking the hub for its digest (attempt \(digestAttempts))")
        drive { session, now in session.requestDigest(now: now) }
        return true
    }

    private func schedulePoll() {
        pollTimer = loop.scheduleTimer(after: configuration.outboxPollInterval) { [weak self] in
            guard let self, self.outcome == nil else { return }
            self.pollOutbox()
            self.schedulePoll()
        }
    }

    private func pollOutbox() {
        do {
            let seq = try replica.lastIssuedSeq()
            guard seq > lastSeenSeq else { return }
            log.write(.debug, "\(who) outbox grew: own ops up to #\(seq)")
            lastSeenSeq = seq
            if let session, session.state != .closed { drive { session, now in session.outboxGrew(now: now) } }
        } catch {
            log.write(.warn, "\(who) cannot read the replica: \(error)")
        }
    }

    private func report(_ event: SessionEvent) {
        switch event {
        case let .authenticated(_, hub, acked, head):
            if localFault == nil { attempt = 0 }
            tally.acknowledged(upTo: acked)
            do { try replica.recordHubHead(head) } catch { log.write(.warn, "\(who) cannot record the hub's head: \(error)") }
            log.write(.info, "\(who) auth ok with hub \(IdentifierRule.printable(hub, limit: 64)): acked_seq \(acked), log head \(head)")
        case let .authenticationRefused(_, why):
            log.write(.error, "\(who) auth refused: \(why)")
        case let .pushed(ops, first, last):
            log.write(.info, "\(who) pushed \(ops) ops #\(first)…#\(last)")
        case let .pushAcknowledged(acked):
            tally.acknowledged(upTo: acked)
            log.write(.info, "\(who) push acknowledged up to #\(acked)")
        case let .opRefused(seq, code, message):
            log.write(.warn, "\(who) op \(seq.map { "#\($0)" } ?? "?") refused with code \(code): \(IdentifierRule.printable(message, limit: 300))")
        case let .opQuarantined(seq, code, message):
            tally.quarantined.append(seq)
            log.write(.warn, "\(who) op #\(seq) quarantined: the hub refused it for good (code \(code)): \(IdentifierRule.printable(message, limit: 300))")
        case let .pulled(ops, cursor, more):
            tally.pulledOps += ops
            log.write(ops > 0 ? .info : .debug, "\(who) pulled \(ops) ops up to position \(cursor)\(more ? ", more pending" : "")")
        case let .snapshotStarted(id, cursor, reason):
            log.write(.info, "\(who) snapshot \(id) started (position \(cursor), \(reason))")
        case let .snapshotFinished(id, chunks, cursor):
            tally.snapshots += 1
            log.write(.info, "\(who) snapshot \(id) loaded: \(chunks) chunks, position \(cursor)")
        case let .identityConflict(why):
            fatal = "identity conflict: \(IdentifierRule.printable(why, limit: 300))"
            log.write(.error, "\(who) \(fatal!)")
        case let .upgradeNeeded(why):
            log.write(.warn, "\(who) upgrade needed (pushing only): \(IdentifierRule.printable(why, limit: 300))")
        case let .logEpochChanged(cursor):
            log.write(.warn, "\(who) the hub's log epoch changed (restored from a backup, or it lost its last commits): pulling again from position 0 (was \(cursor)), pushing again after its acked_seq")
        case let .recoveringOwnOps(through, lastOwnSeq):
            log.write(.warn, "\(who) the hub holds this node's ops up to #\(through); the replica knows them up to #\(lastOwnSeq): taking them back from the hub before pushing")
        case let .errorSent(error):
            tally.note("sent ERROR \(error)")
            log.write(.warn, "\(who) error sent: \(error)")
        case let .errorReceived(code, retryable, message):
            let name = ErrorCode(rawValue: code)?.specName ?? "unknown"
            tally.note("the hub sent ERROR \(name) (\(code)): \(IdentifierRule.printable(message, limit: 300))")
            log.write(retryable ? .warn : .error, "\(who) error from the hub: \(name) (\(code))\(retryable ? ", retryable" : ""): \(IdentifierRule.printable(message, limit: 300))")
        case let .skippedFrame(type):
            log.write(.debug, "\(who) skipped a frame of ignorable type 0x\(String(type, radix: 16))")
        case let .digest(position, digest, cursor):
            // Read now: the replica holds exactly what the session had applied when the answer came.
            var local: [UInt8]?
            do { local = try replica.digest() } catch { lastProblem = "\(error)" }
            digestAnswer = (position, digest, cursor, local)
            log.write(.debug, "\(who) the hub's digest at position \(position): \(digest.hexString) (this node at \(cursor))")
        case let .digestUnsupported(message):
            hubLacksDigests = true
            fatal = "the hub does not support verify: it answered DIGEST_REQUEST with unknown_message_type (\(IdentifierRule.printable(message, limit: 200))); upgrade siyu-hub"
            log.write(.error, "\(who) \(fatal!)")
        }
    }

    // MARK: - Ending

    private func end(_ result: Outcome) {
        guard outcome == nil else { return }
        outcome = result
        for t in [pollTimer, reconnectTimer, onceTimer].compactMap({ $0 }) { loop.cancelTimer(t) }
        pollTimer = nil
        reconnectTimer = nil
        onceTimer = nil
        if let session, session.state != .closed, link != nil {
            sayingGoodbye = true
            let reason: String
            switch result {
            case .synced, .verified: reason = "sync done"
            case .stopped: reason = "node shutting down"
            case .failed: reason = "node giving up"
            }
            drive { session, now in session.close(reason: reason, now: now) }
            // `.closed` follows once BYE is flushed; finish then.
            if link != nil { return }
        }
        connection?.close()
        finishOnce(result)
    }

    private var finished = false
    private func finishOnce(_ result: Outcome) {
        guard !finished else { return }
        finished = true
        finish(result)
    }
}
