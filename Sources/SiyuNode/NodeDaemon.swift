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
/// - while the session waits for a store effect or the hub is not reading (`isWritable` false) the
///   socket is not read and no effect runs;
/// - `finish` is called exactly once, on the loop thread, with the outcome; the caller stops the loop.
public final class NodeDaemon: @unchecked Sendable {
    public enum Mode: Sendable, Equatable {
        /// Sync for as long as the process runs.
        case continuous
        /// One full round: push everything, pull until nothing more is pending, then stop.
        case once
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
        /// Gave up: why, for people.
        case failed(String)
    }

    public let loop: EventLoop
    public let executor: NodeStoreExecutor
    public let configuration: Configuration
    public let log: OperatorLog
    public private(set) var outcome: Outcome?
    private let finish: (Outcome) -> Void

    private var session: NodeSession?
    private var connection: TCPConnection?
    private var connectedAt: SessionInstant = .zero
    private var sessionTimer: TimerHandle?
    private var reconnectTimer: TimerHandle?
    private var pollTimer: TimerHandle?
    private var onceTimer: TimerHandle?
    private var deferred: NodeEffect?
    private var attempt = 0
    private var lastSeenSeq: UInt64 = 0
    private var lastProblem = "no connection made yet"
    /// Set when the session ended in a way reconnecting cannot fix.
    private var fatal: String?
    private var stopping = false
    private var sayingGoodbye = false

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

    private func now() -> SessionInstant { SessionInstant(milliseconds: loop.clock.now().nanoseconds / 1_000_000) }

    private var who: String {
        let t = connection == nil ? "" : " t=\(OperatorLog.seconds(now().milliseconds(since: connectedAt)))"
        return "node=\(IdentifierRule.printable(configuration.session.node, limit: 64)) hub=\(configuration.hub)\(t)"
    }

    /// Starts: connects, and polls the outbox. Loop thread (or before the loop runs).
    public func start() {
        lastSeenSeq = (try? replica.lastIssuedSeq()) ?? 0
        if configuration.mode == .once {
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
                self.log.write(.warn, "\(self.who) \(self.lastProblem)")
                self.scheduleReconnect()
            }
        }
    }

    private func connected(_ connection: TCPConnection) {
        let start: (cursor: UInt64, lastOwnSeq: UInt64)
        do { start = try executor.sessionStart() } catch {
            connection.close()
            lastProblem = "cannot read the replica's sync state: \(error)"
            log.write(.error, "\(who) \(lastProblem)")
            scheduleReconnect()
            return
        }
        self.connection = connection
        connectedAt = now()
        deferred = nil
        lastSeenSeq = start.lastOwnSeq
        session = NodeSession(configuration.session, cursor: start.cursor, lastOwnSeq: start.lastOwnSeq, now: connectedAt)
        log.write(.info, "\(who) connected from \(connection.localAddress) (cursor \(start.cursor), own ops up to #\(start.lastOwnSeq))")
        do {
            try connection.start { [weak self] _, event in self?.handle(event) }
        } catch {
            self.connection = nil
            session = nil
            lastProblem = "cannot start the connection: \(error)"
            scheduleReconnect()
            return
        }
        act(session!.start(now: now()))
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

    private func handle(_ event: TCPConnection.Event) {
        switch event {
        case let .received(bytes):
            guard session != nil else { return }
            act(session!.receive(bytes, now: now()))
        case .writable:
            if let effect = deferred, connection?.isWritable == true {
                deferred = nil
                perform(effect)
            }
        case let .closed(reason):
            if let s = session, s.state != .closed { act(session!.transportClosed()) }
            log.write(.info, "\(who) disconnected (\(reason))")
            connection = nil
            session = nil
            deferred = nil
            if let t = sessionTimer { loop.cancelTimer(t) }
            sessionTimer = nil
            if sayingGoodbye, let outcome {
                finishOnce(outcome)
            } else {
                scheduleReconnect()
            }
            return
        }
        afterActions()
    }

    private func act(_ actions: [NodeSession.Action]) {
        for action in actions {
            switch action {
            case let .send(_, bytes):
                do { try connection?.write(bytes) } catch {
                    log.write(.warn, "\(who) write failed: \(error)")
                    connection?.close()
                }
            case let .perform(effect):
                if case .abandonSnapshot = effect {
                    _ = executor.execute(effect)
                } else if connection?.isWritable ?? true {
                    perform(effect)
                } else {
                    deferred = effect
                }
            case let .report(event):
                report(event)
            case let .close(reason):
                closing(reason)
                connection?.closeAfterFlush()
            }
        }
        afterActions()
    }

    private func perform(_ effect: NodeEffect) {
        guard let result = executor.execute(effect) else { return }
        if case let .failed(code, message) = result {
            log.write(.error, "\(who) store effect failed: \(code.specName) (\(code.rawValue)): \(IdentifierRule.printable(message, limit: 300))")
        }
        guard session != nil else { return }
        act(session!.complete(result, now: now()))
    }

    private func closing(_ reason: CloseReason) {
        if !reason.isRetryable, fatal == nil, !sayingGoodbye {
            fatal = "the connection ended and retrying cannot help: \(reason)"
        }
        if !sayingGoodbye { lastProblem = "\(reason)" }
        log.write(reason.isRetryable || sayingGoodbye ? .info : .error, "\(who) closing: \(reason)")
    }

    /// After every batch of actions: reading, timers, and whether a `.once` round is done.
    private func afterActions() {
        guard let session, let connection, connection.isOpen else { return }
        if session.wantsInput && deferred == nil { connection.resumeReading() } else { connection.pauseReading() }
        if configuration.mode == .once, outcome == nil, session.isCaughtUp {
            let empty = (try? replica.outbox(after: session.ackedSeq, limit: 1).isEmpty) ?? false
            let seq = (try? replica.lastIssuedSeq()) ?? 0
            if empty && seq == lastSeenSeq {
                log.write(.info, "\(who) caught up: nothing left to push or pull (cursor \(session.cursor), acked_seq \(session.ackedSeq))")
                end(.synced)
                return
            }
        }
        if let t = sessionTimer { loop.cancelTimer(t) }
        sessionTimer = nil
        if let deadline = session.nextDeadline {
            sessionTimer = loop.scheduleTimer(at: Deadline(nanoseconds: deadline.milliseconds &* 1_000_000)) { [weak self] in
                guard let self, self.session != nil else { return }
                self.sessionTimer = nil
                self.act(self.session!.tick(now: self.now()))
            }
        }
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
            if session != nil, session!.state != .closed { act(session!.outboxGrew(now: now())) }
        } catch {
            log.write(.warn, "\(who) cannot read the replica: \(error)")
        }
    }

    private func report(_ event: SessionEvent) {
        switch event {
        case let .authenticated(_, hub, acked, head):
            attempt = 0
            log.write(.info, "\(who) auth ok with hub \(IdentifierRule.printable(hub, limit: 64)): acked_seq \(acked), log head \(head)")
        case let .authenticationRefused(_, why):
            log.write(.error, "\(who) auth refused: \(why)")
        case let .pushed(ops, first, last):
            log.write(.info, "\(who) pushed \(ops) ops #\(first)…#\(last)")
        case let .pushAcknowledged(acked):
            log.write(.info, "\(who) push acknowledged up to #\(acked)")
        case let .opRefused(seq, code, message):
            log.write(.warn, "\(who) op \(seq.map { "#\($0)" } ?? "?") refused with code \(code): \(IdentifierRule.printable(message, limit: 300))")
        case let .opQuarantined(seq, code, message):
            log.write(.warn, "\(who) op #\(seq) quarantined: the hub refused it for good (code \(code)): \(IdentifierRule.printable(message, limit: 300))")
        case let .pulled(ops, cursor, more):
            log.write(ops > 0 ? .info : .debug, "\(who) pulled \(ops) ops up to position \(cursor)\(more ? ", more pending" : "")")
        case let .snapshotStarted(id, cursor, reason):
            log.write(.info, "\(who) snapshot \(id) started (position \(cursor), \(reason))")
        case let .snapshotFinished(id, chunks, cursor):
            log.write(.info, "\(who) snapshot \(id) loaded: \(chunks) chunks, position \(cursor)")
        case let .identityConflict(why):
            fatal = "identity conflict: \(IdentifierRule.printable(why, limit: 300))"
            log.write(.error, "\(who) \(fatal!)")
        case let .upgradeNeeded(why):
            log.write(.warn, "\(who) upgrade needed (pushing only): \(IdentifierRule.printable(why, limit: 300))")
        case let .errorSent(error):
            log.write(.warn, "\(who) error sent: \(error)")
        case let .errorReceived(code, retryable, message):
            let name = ErrorCode(rawValue: code)?.specName ?? "unknown"
            log.write(retryable ? .warn : .error, "\(who) error from the hub: \(name) (\(code))\(retryable ? ", retryable" : ""): \(IdentifierRule.printable(message, limit: 300))")
        case let .skippedFrame(type):
            log.write(.debug, "\(who) skipped a frame of ignorable type 0x\(String(type, radix: 16))")
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
        if session != nil, session!.state != .closed, connection != nil {
            sayingGoodbye = true
            let reason: String
            switch result {
            case .synced: reason = "sync done"
            case .stopped: reason = "node shutting down"
            case .failed: reason = "node giving up"
            }
            act(session!.close(reason: reason, now: now()))
            // `.closed` follows once BYE is flushed; finish then.
            if connection != nil { return }
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
