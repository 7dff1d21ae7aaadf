import SiyuSession

extension TCPConnection: SessionTransport {
    public func sendFrame(_ bytes: [UInt8]) throws { try write(bytes) }
    public func closeAfterSending() { closeAfterFlush() }
    public func closeNow() { close() }
    public func setReading(_ reading: Bool) {
        guard isOpen else { return }
        if reading { resumeReading() } else { pauseReading() }
    }
}

extension EventLoop {
    /// The loop's monotonic clock as a session instant (milliseconds).
    public var sessionNow: SessionInstant { SessionInstant(milliseconds: clock.now().nanoseconds / 1_000_000) }
}

/// A session hosted on one TCP connection of an event loop: the connection's events feed the
/// `SessionHost`, and the session's deadline is one timer on the loop. The hub's connections, the
/// node daemon's and the bench's clients are each one of these.
///
/// Guarantees: loop thread only; at most one timer pending, always the session's current
/// deadline; `disconnected` is called exactly once, after the session heard the transport close,
/// and nothing is called after it.
public final class TCPSessionHost<Session: HostedSession> {
    public let connection: TCPConnection
    public let host: SessionHost<Session>
    /// Called once when the connection has closed, for whatever reason.
    public var disconnected: (DisconnectReason) -> Void = { _ in }
    /// Bytes that come before the session's first frame (a PROXY protocol header from a TLS
    /// terminator), read before the session sees any: given every byte received so far, it returns
    /// how many it took (the rest go to the session), nil while it needs more, or throws to close
    /// the connection at once. Set before `start`; cleared once it took its bytes. The session's
    /// own deadlines (its handshake timeout) run meanwhile.
    public var preamble: (([UInt8]) throws -> Int?)?
    private var preambleBytes: [UInt8] = []
    private var timer: TimerHandle?
    private var loop: EventLoop { connection.loop }

    /// Hosts `session` on `connection` (not started yet). `handlers.deadlineChanged` is kept and
    /// called besides the host's own timer.
    public init(connection: TCPConnection, session: Session, handlers: SessionHost<Session>.Handlers) {
        self.connection = connection
        host = SessionHost(session: session, transport: connection, handlers: handlers)
        let owners = handlers.deadlineChanged
        host.handlers.deadlineChanged = { [unowned self] deadline in
            self.schedule(deadline)
            owners(deadline)
        }
    }

    /// The loop's clock as a session instant.
    public var now: SessionInstant { loop.sessionNow }

    /// Starts reading the connection and arms the session's first deadline.
    public func start() throws(NetError) {
        try connection.start { [weak self] _, event in self?.handle(event) }
        schedule(host.session.nextDeadline)
    }

    private func handle(_ event: TCPConnection.Event) {
        switch event {
        case let .received(bytes):
            guard let preamble else { return host.received(bytes, now: now) }
            preambleBytes += bytes
            do {
                guard let taken = try preamble(preambleBytes), taken >= 0, taken <= preambleBytes.count else { return }
                self.preamble = nil
                let rest = Array(preambleBytes[taken...])
                preambleBytes = []
                if !rest.isEmpty { host.received(rest, now: now) }
            } catch {
                self.preamble = nil
                preambleBytes = []
                connection.close()
            }
        case .writable: host.writable(now: now)
        case let .closed(reason):
            host.transportClosed(now: now)
            schedule(nil)
            disconnected(reason)
            disconnected = { _ in }
        }
    }

    private func schedule(_ deadline: SessionInstant?) {
        if let timer { loop.cancelTimer(timer) }
        timer = nil
        guard let deadline, !host.isFinished else { return }
        timer = loop.scheduleTimer(at: Deadline(nanoseconds: deadline.milliseconds &* 1_000_000)) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.host.tick(now: self.now)
        }
    }
}
