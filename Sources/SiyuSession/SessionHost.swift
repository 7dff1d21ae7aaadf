import SiyuWire

/// A session as a `SessionHost` drives it: `HubSession` and `NodeSession`. Every entry point
/// returns the actions the host carries out, in order.
public protocol HostedSession {
    associatedtype Effect: Sendable
    associatedtype EffectResult

    mutating func receive(_ bytes: [UInt8], now: SessionInstant) -> [SessionAction<Effect>]
    mutating func complete(_ result: EffectResult, now: SessionInstant) -> [SessionAction<Effect>]
    mutating func tick(now: SessionInstant) -> [SessionAction<Effect>]
    mutating func transportClosed() -> [SessionAction<Effect>]
    /// Whether the session reads more frames now (false while it waits for a store effect).
    var wantsInput: Bool { get }
    /// When `tick(now:)` is next due, if ever.
    var nextDeadline: SessionInstant? { get }
    /// Whether the session waits for this effect's result (false: it is carried out at once, even
    /// while the peer is not reading, and nothing is fed back).
    static func expectsResult(_ effect: Effect) -> Bool
}

extension HubSession: HostedSession {
    public static func expectsResult(_ effect: HubEffect) -> Bool { true }
}

extension NodeSession: HostedSession {
    public static func expectsResult(_ effect: NodeEffect) -> Bool {
        if case .abandonSnapshot = effect { return false }
        return true
    }
}

/// The byte stream under a hosted session: a TCP connection (`SiyuNet`), or an in-memory pipe in
/// tests and the simulator.
public protocol SessionTransport: AnyObject {
    /// Queues one whole frame. A throw means the transport cannot take it: the host closes it.
    func sendFrame(_ bytes: [UInt8]) throws
    /// False while the peer is not reading what was sent: the host runs no store effect until the
    /// transport calls `SessionHost.writable(now:)`.
    var isWritable: Bool { get }
    /// Stops reading, sends what was queued, then closes.
    func closeAfterSending()
    /// Closes at once (a write failed).
    func closeNow()
    /// Reads from the peer (true) or leaves its bytes waiting (false).
    func setReading(_ reading: Bool)
}

/// The one loop that carries out a session's actions over a transport (issue 20, "one session
/// host"): frames to the transport, store effects to the owner's performer, events and the close
/// to the owner's handlers. The hub, the node daemon, the bench's clients, the tests and the
/// simulator all drive their sessions through it.
///
/// Guarantees:
/// - actions are carried out in the order the session gives them; after the session's `.close`
///   (or `detach()`, or the transport's close) nothing more is carried out and every input is ignored;
/// - a store effect runs only while the transport is writable (else it waits for `writable(now:)`),
///   except effects the session does not wait for; while an effect is outstanding the host reads no
///   input (`setReading(false)`): a slow peer or a slow store costs bounded memory;
/// - the performer answers an effect at once (returns its result) or later, through
///   `complete(_:now:)`, exactly once — so the store may run on another thread, answered on the
///   host's;
/// - after every batch of actions the transport's reading follows the session's `wantsInput`, and
///   `deadlineChanged` hears the session's next deadline.
///
/// Not thread-safe: every call on the thread (event loop) that owns the transport.
public final class SessionHost<Session: HostedSession> {
    public typealias Action = SessionAction<Session.Effect>

    /// What the owner does for the host.
    public struct Handlers {
        /// Carries out a store effect: its result now, or nil to answer later with
        /// `complete(_:now:)` (or, for an effect the session does not wait for, never).
        public var perform: (Session.Effect, SessionInstant) -> Session.EffectResult?
        /// A session event worth a log line.
        public var report: (SessionEvent) -> Void = { _ in }
        /// The session closes the connection, for this reason (called before the transport closes).
        public var closing: (CloseReason) -> Void = { _ in }
        /// A frame goes out (tests and traces record it).
        public var sent: (Message) -> Void = { _ in }
        /// The transport refused a frame (it is then closed at once).
        public var sendFailed: (any Error) -> Void = { _ in }
        /// After every batch of actions: the session's next deadline (nil: none).
        public var deadlineChanged: (SessionInstant?) -> Void = { _ in }
        /// After every batch of actions, once reading and the deadline are updated.
        public var afterActions: () -> Void = {}

        public init(perform: @escaping (Session.Effect, SessionInstant) -> Session.EffectResult?) {
            self.perform = perform
        }
    }

    public private(set) var session: Session
    public let transport: any SessionTransport
    public var handlers: Handlers
    /// Why the session closed the connection, once it did.
    public private(set) var closeReason: CloseReason?
    /// Whether the host stopped carrying out actions (closed, transport gone, or detached).
    public private(set) var isFinished = false
    /// An effect waiting for the transport to become writable.
    private var deferred: Session.Effect?
    /// An effect handed to the performer and not yet answered.
    private var outstanding = false
    /// Depth of nested `act` calls: the after-batch work runs once, at the outermost.
    private var depth = 0

    public init(session: Session, transport: any SessionTransport, handlers: Handlers) {
        self.session = session
        self.transport = transport
        self.handlers = handlers
    }

    /// Calls into the session (start, outboxGrew, pullNow, close, revoke, …) and carries out
    /// what it asks. Ignored once finished.
    public func drive(now: SessionInstant, _ call: (inout Session) -> [Action]) {
        guard !isFinished else { return }
        act(call(&session), now: now)
    }

    /// The peer's bytes.
    public func received(_ bytes: [UInt8], now: SessionInstant) {
        guard !isFinished else { return }
        act(session.receive(bytes, now: now), now: now)
    }

    /// The session's deadline passed.
    public func tick(now: SessionInstant) {
        guard !isFinished else { return }
        act(session.tick(now: now), now: now)
    }

    /// The transport drained below its high-water mark: a waiting effect runs.
    public func writable(now: SessionInstant) {
        guard !isFinished, let effect = deferred, transport.isWritable else { return }
        deferred = nil
        act([.perform(effect)], now: now)
    }

    /// The performer's late answer to the outstanding effect.
    public func complete(_ result: Session.EffectResult, now: SessionInstant) {
        guard !isFinished, outstanding else { return }
        outstanding = false
        act(session.complete(result, now: now), now: now)
    }

    /// The transport closed under the session (peer gone, reset, loop stopped).
    public func transportClosed(now: SessionInstant) {
        if !isFinished { act(session.transportClosed(), now: now) }
        finish()
    }

    /// Stops carrying out anything (the process "crashed" in the simulator, or the owner gave the
    /// connection up). The transport is left as it is.
    public func detach() { finish() }

    private func finish() {
        isFinished = true
        deferred = nil
        outstanding = false
    }

    private func act(_ actions: [Action], now: SessionInstant) {
        depth += 1
        for action in actions {
            guard !isFinished else { break }
            switch action {
            case let .send(message, bytes):
                handlers.sent(message)
                do { try transport.sendFrame(bytes) } catch {
                    handlers.sendFailed(error)
                    transport.closeNow()
                }
            case let .perform(effect):
                if !Session.expectsResult(effect) {
                    _ = handlers.perform(effect, now)
                } else if transport.isWritable {
                    outstanding = true
                    if let result = handlers.perform(effect, now), outstanding, !isFinished {
                        outstanding = false
                        act(session.complete(result, now: now), now: now)
                    }
                } else {
                    deferred = effect
                }
            case let .report(event):
                handlers.report(event)
            case let .close(reason):
                closeReason = reason
                handlers.closing(reason)
                finish()
                transport.closeAfterSending()
            }
        }
        depth -= 1
        guard depth == 0 else { return }
        if !isFinished {
            transport.setReading(session.wantsInput && deferred == nil && !outstanding)
            handlers.deadlineChanged(session.nextDeadline)
        } else {
            handlers.deadlineChanged(nil)
        }
        handlers.afterActions()
    }
}
