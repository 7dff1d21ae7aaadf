import Foundation
import SiyuCore
import SiyuNet
import SiyuSession
import SiyuStore
import SiyuWire

/// The hub on the network: a `Listener` on one `EventLoop` whose thread owns the hub's replica (the
/// single writer), and for every accepted `TCPConnection` a `HubSession` driven by its bytes and
/// the loop's clock, its store effects carried out by one `HubStoreExecutor` on that thread.
///
/// Guarantees:
/// - every method runs on the loop thread (or before the loop runs); no thread per connection and
///   no lock around the replica: effects of all connections are carried out one at a time;
/// - each connection gets 32 fresh bytes from the system's CSPRNG as its nonce (getrandom via
///   `SystemRandomNumberGenerator`, unless a test injects a source);
/// - a session's frames are written in the order it gives them; while it waits for a store effect
///   (or the peer is not reading: `isWritable` false) the socket is not read and no effect runs, so a
///   slow peer costs bounded memory; timers follow `nextDeadline` (handshake, idle and keepalive
///   timeouts close connections; the session decides);
/// - `shutdown(reason:)` says BYE on every connection, stops accepting, and the caller stops the loop;
/// - one log line per session event: connect, auth ok/refused, push stored, changes sent, snapshot,
///   errors with their code, disconnect with the duration.
public final class HubServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var session: HubSession.Configuration
        public var listen: SocketAddress
        public var connectionOptions: ConnectionOptions

        public init(session: HubSession.Configuration, listen: SocketAddress, connectionOptions: ConnectionOptions = ConnectionOptions()) {
            self.session = session
            self.listen = listen
            self.connectionOptions = connectionOptions
        }
    }

    public let loop: EventLoop
    public let executor: HubStoreExecutor
    public let configuration: Configuration
    public let log: OperatorLog
    private let nonceSource: () -> [UInt8]
    private var listener: Listener?
    private var drivers: [ObjectIdentifier: HubConnectionDriver] = [:]
    private var nextConnectionNumber: UInt64 = 1
    private var stopping = false

    /// A server for `executor`'s replica on `loop`. Nothing is bound until `start()`.
    public init(loop: EventLoop, executor: HubStoreExecutor, configuration: Configuration, log: OperatorLog,
                nonceSource: @escaping () -> [UInt8] = HubServer.randomNonce) {
        self.loop = loop
        self.executor = executor
        self.configuration = configuration
        self.log = log
        self.nonceSource = nonceSource
    }

    /// 32 bytes from the system's cryptographically secure generator (getrandom on Linux).
    public static func randomNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
    }

    /// Binds and starts accepting; returns the address bound (port 0 becomes the chosen port).
    /// Loop thread, or before the loop runs.
    @discardableResult
    public func start() throws(NetError) -> SocketAddress {
        let listener = try Listener(bindingTo: configuration.listen, on: loop, connectionOptions: configuration.connectionOptions,
                                    onError: { [log] error in log.write(.error, "hub accept failed: \(error)") },
                                    onAccept: { [weak self] connection in self?.accept(connection) })
        self.listener = listener
        return listener.address
    }

    /// The connections open now.
    public var connectionCount: Int { drivers.count }

    /// Says BYE on every connection and stops accepting. Loop thread. The caller then stops the loop.
    public func shutdown(reason: String) {
        guard !stopping else { return }
        stopping = true
        listener?.close()
        log.write(.info, "hub shutting down (\(reason)): \(drivers.count) connection(s) open")
        for driver in Array(drivers.values) { driver.shutdown(reason: reason) }
    }

    private func accept(_ connection: TCPConnection) {
        guard !stopping else { connection.close(); return }
        let number = nextConnectionNumber
        nextConnectionNumber += 1
        let driver = HubConnectionDriver(server: self, connection: connection, number: number,
                                         session: HubSession(configuration.session, nonce: nonceSource(), now: now()))
        drivers[ObjectIdentifier(driver)] = driver
        driver.start()
    }

    fileprivate func finished(_ driver: HubConnectionDriver) {
        drivers[ObjectIdentifier(driver)] = nil
    }

    /// The loop's clock as a session instant.
    fileprivate func now() -> SessionInstant { SessionInstant(milliseconds: loop.clock.now().nanoseconds / 1_000_000) }
}

/// One accepted connection and its session (loop thread only).
private final class HubConnectionDriver {
    unowned let server: HubServer
    let connection: TCPConnection
    let number: UInt64
    var session: HubSession
    let opened: SessionInstant
    var timer: TimerHandle?
    /// An effect waiting for the peer to read what was sent (`isWritable` false).
    var deferred: HubEffect?
    var snapshotID: UInt64?
    var closed = false
    let peer: String

    init(server: HubServer, connection: TCPConnection, number: UInt64, session: HubSession) {
        self.server = server
        self.connection = connection
        self.number = number
        self.session = session
        opened = server.now()
        peer = connection.remoteAddress.description
    }

    var who: String {
        "hub conn=\(number) node=\(session.node.map { IdentifierRule.printable($0, limit: 64) } ?? "-") peer=\(peer) t=\(OperatorLog.seconds(server.now().milliseconds(since: opened)))"
    }

    func start() {
        server.log.write(.info, "\(who) connected")
        do {
            try connection.start { [weak self] _, event in self?.handle(event) }
        } catch {
            server.log.write(.warn, "\(who) could not start the connection: \(error)")
            closed = true
            server.finished(self)
            return
        }
        rescheduleTimer()
    }

    func shutdown(reason: String) {
        guard !closed else { return }
        act(session.close(reason: reason, now: server.now()))
    }

    private func handle(_ event: TCPConnection.Event) {
        switch event {
        case let .received(bytes):
            guard !closed else { return }
            act(session.receive(bytes, now: server.now()))
        case .writable:
            if let effect = deferred, connection.isWritable {
                deferred = nil
                perform(effect)
            }
        case let .closed(reason):
            if !closed { act(session.transportClosed()) }
            closed = true
            if let id = snapshotID { server.executor.forgetSnapshot(id) }
            if let timer { server.loop.cancelTimer(timer) }
            timer = nil
            server.log.write(.info, "\(who) disconnected (\(reason))")
            server.finished(self)
        }
        updateReading()
    }

    /// Carries out the session's actions in order.
    private func act(_ actions: [HubSession.Action]) {
        for action in actions {
            switch action {
            case let .send(_, bytes):
                do { try connection.write(bytes) } catch {
                    server.log.write(.warn, "\(who) write failed: \(error)")
                    connection.close()
                }
            case let .perform(effect):
                if connection.isWritable { perform(effect) } else { deferred = effect }
            case let .report(event):
                report(event)
            case let .close(reason):
                closed = true
                let level: OperatorLog.Level = reason.isRetryable ? .info : .warn
                server.log.write(level, "\(who) closing: \(reason)")
                connection.closeAfterFlush()
            }
        }
        updateReading()
        rescheduleTimer()
    }

    private func perform(_ effect: HubEffect) {
        let result = server.executor.execute(effect)
        switch (effect, result) {
        case let (.storePush(_, changeSet), .pushStored(acked)):
            server.log.write(.info, "\(who) push stored: \(changeSet.ops.count) ops, acked_seq \(acked)")
        case let (.storePush, .pushRefused(seq, code, message)):
            server.log.write(.warn, "\(who) push refused at op #\(seq): \(code.specName) (\(code.rawValue)): \(IdentifierRule.printable(message, limit: 300))")
        case let (_, .failed(code, message)):
            server.log.write(.error, "\(who) store effect failed: \(code.specName) (\(code.rawValue)): \(IdentifierRule.printable(message, limit: 300))")
        default:
            break
        }
        act(session.complete(result, now: server.now()))
    }

    private func report(_ event: SessionEvent) {
        let log = server.log
        switch event {
        case let .authenticated(_, _, acked, head):
            log.write(.info, "\(who) auth ok: acked_seq \(acked), log head \(head)")
        case let .authenticationRefused(_, why):
            log.write(.warn, "\(who) auth refused: \(why)")
        case let .pushed(ops, first, last):
            log.write(.debug, "\(who) pushed \(ops) ops #\(first)…#\(last)")
        case let .pushAcknowledged(acked):
            log.write(.debug, "\(who) push acknowledged up to #\(acked)")
        case let .opRefused(seq, code, message):
            log.write(.warn, "\(who) op \(seq.map { "#\($0)" } ?? "?") refused with code \(code): \(IdentifierRule.printable(message, limit: 300))")
        case let .opQuarantined(seq, code, _):
            log.write(.warn, "\(who) op #\(seq) quarantined (code \(code))")
        case let .pulled(ops, cursor, more):
            log.write(ops > 0 ? .info : .debug, "\(who) sent \(ops) ops up to position \(cursor)\(more ? ", more pending" : "")")
        case let .snapshotStarted(id, cursor, reason):
            snapshotID = id
            log.write(.info, "\(who) snapshot \(id) started at position \(cursor) (\(reason))")
        case let .snapshotFinished(id, chunks, cursor):
            snapshotID = nil
            log.write(.info, "\(who) snapshot \(id) finished: \(chunks) chunks, position \(cursor)")
        case let .identityConflict(why):
            log.write(.error, "\(who) identity conflict: \(IdentifierRule.printable(why, limit: 300))")
        case let .upgradeNeeded(why):
            log.write(.warn, "\(who) upgrade needed: \(IdentifierRule.printable(why, limit: 300))")
        case let .errorSent(error):
            log.write(.warn, "\(who) error sent: \(error)")
        case let .errorReceived(code, retryable, message):
            log.write(.warn, "\(who) error received: code \(code)\(retryable ? " (retryable)" : ""): \(IdentifierRule.printable(message, limit: 300))")
        case let .digest(position, _, cursor):
            log.write(.info, "\(who) digest sent at position \(position) (the node has pulled up to \(cursor))")
        case .digestUnsupported:
            break   // node side only
        case let .skippedFrame(type):
            log.write(.debug, "\(who) skipped a frame of ignorable type 0x\(String(type, radix: 16))")
        }
    }

    /// Reads only while the session wants input and nothing waits for the peer.
    private func updateReading() {
        guard !closed, connection.isOpen else { return }
        if session.wantsInput && deferred == nil { connection.resumeReading() } else { connection.pauseReading() }
    }

    private func rescheduleTimer() {
        if let timer { server.loop.cancelTimer(timer) }
        timer = nil
        guard !closed, let deadline = session.nextDeadline else { return }
        timer = server.loop.scheduleTimer(at: Deadline(nanoseconds: deadline.milliseconds &* 1_000_000)) { [weak self] in
            guard let self, !self.closed else { return }
            self.timer = nil
            self.act(self.session.tick(now: self.server.now()))
        }
    }
}
