import SiyuWire

/// A TCP connection that speaks frames (SPEC §3): received bytes go through SiyuWire's incremental
/// `FrameReader` and come out as whole frames; frames to send are encoded into the connection's
/// outbound buffer. It knows nothing of the session (HELLO, AUTH, …): a driver feeds the frames to
/// the session layer and sends the messages it returns. (A session that is fed raw bytes and frames
/// them itself, like `SiyuSession`'s, sits on `TCPConnection` directly.) For example:
///
///     connection.start { connection, event in
///         switch event {
///         case .frame(let frame):     for reply in session.receive(frame) { try? connection.send(reply) }
///         case .protocolError(let e): try? connection.send(session.errorFrame(for: e))  // then it closes
///         case .writable:             session.resumeSending()
///         case .closed(let reason):   session.connectionClosed(reason)
///         }
///     }
///
/// Guarantees: frames are delivered in order, whole, however the bytes were split; the declared
/// payload length is checked as soon as a frame's 8-byte header is in (`Frame.maxPayload`), so a
/// frame that is too large is refused before its payload is read, and what the connection buffers
/// is bounded by one frame plus one read (`ConnectionOptions.readChunkSize`). On a framing error
/// (bad magic, unsupported version, too large, bad checksum) reading stops for good, the handler
/// gets `.protocolError` — it may still send, e.g. an ERROR frame — and the connection then closes
/// once that is sent (or after `lingerTimeout`), reported as `.closed(.protocolError(…))`. Bytes
/// after the error are never looked at. `pauseReading()` also holds back frames already decoded.
///
/// **Threads:** like `TCPConnection`: every method on the loop's thread.
public final class FrameConnection: @unchecked Sendable {
    /// What a frame connection reports to its handler, on the loop thread.
    public enum Event {
        /// One whole, checksummed frame (any type: the message layer decides what it means).
        case frame(Frame)
        /// The peer's byte stream broke framing; the connection closes after this.
        case protocolError(WireError)
        /// The outbound buffer drained (see `TCPConnection.Event.writable`).
        case writable
        /// Closed; nothing follows.
        case closed(DisconnectReason)
    }

    /// The byte stream underneath (addresses, buffer sizes).
    public let connection: TCPConnection
    /// How long a connection that broke framing may take to send what is queued before it closes.
    public let lingerTimeout: Duration

    private var reader = FrameReader()
    private var handler: ((FrameConnection, Event) -> Void)?
    private var broken = false
    private var paused = false
    private var deliveryScheduled = false

    public init(_ connection: TCPConnection, lingerTimeout: Duration = .seconds(2)) {
        self.connection = connection
        self.lingerTimeout = lingerTimeout
    }

    public var loop: EventLoop { connection.loop }
    public var remoteAddress: SocketAddress { connection.remoteAddress }
    public var localAddress: SocketAddress { connection.localAddress }

    /// Starts reading; frames and other events go to `handler`. Once per connection.
    public func start(_ handler: @escaping (FrameConnection, Event) -> Void) throws(NetError) {
        loop.preconditionInEventLoop()
        self.handler = handler
        do {
            try connection.start { [self] _, event in self.handle(event) }
        } catch {
            self.handler = nil
            throw error
        }
    }

    /// Queues a frame for sending (see `TCPConnection.write` for what it throws and when it fails).
    public func send(_ frame: Frame) throws(NetError) {
        try connection.write(frame.encoded())
    }

    public var isOpen: Bool { connection.isOpen }
    public var isWritable: Bool { connection.isWritable }
    public var bufferedOutboundBytes: Int { connection.bufferedOutboundBytes }
    /// Received bytes not yet delivered as frames (a partial frame, or frames held while paused).
    public var bufferedInboundBytes: Int {
        loop.preconditionInEventLoop()
        return reader.bufferedByteCount
    }

    /// Holds back frames (decoded ones too) and stops reading until `resumeReading()`.
    public func pauseReading() {
        loop.preconditionInEventLoop()
        paused = true
        connection.pauseReading()
    }

    /// Delivers held frames (later in the loop's turn, not from inside this call) and reads again.
    public func resumeReading() {
        loop.preconditionInEventLoop()
        guard paused else { return }
        paused = false
        guard !broken else { return }
        connection.resumeReading()
        scheduleDelivery()
    }

    /// Closes now; unsent frames are dropped.
    public func close() { connection.close() }

    /// Sends what is queued, then closes (or after `timeout`).
    public func closeAfterFlush(timeout: Duration = .seconds(5)) { connection.closeAfterFlush(timeout: timeout) }

    // MARK: internals

    private func handle(_ event: TCPConnection.Event) {
        switch event {
        case let .received(bytes):
            guard !broken else { return }
            reader.feed(bytes)
            deliverFrames()
        case .writable:
            handler?(self, .writable)
        case let .closed(reason):
            let handler = self.handler
            self.handler = nil
            reader = FrameReader()  // an incomplete frame is discarded (SPEC §3)
            handler?(self, .closed(reason))
        }
    }

    private func deliverFrames() {
        while !broken, !paused, handler != nil, connection.isOpen {
            let frame: Frame?
            do {
                frame = try reader.next()
            } catch {
                fail(error as? WireError ?? .invalidValue(field: "frame", detail: "\(error)"))
                return
            }
            guard let frame else { return }
            handler?(self, .frame(frame))
        }
    }

    private func scheduleDelivery() {
        guard !deliveryScheduled else { return }
        deliveryScheduled = true
        loop.deferWork { [weak self] in
            guard let self else { return }
            self.deliveryScheduled = false
            self.deliverFrames()
        }
    }

    private func fail(_ error: WireError) {
        broken = true
        connection.pauseReading()
        reader = FrameReader()
        handler?(self, .protocolError(error))
        connection.closeAfterFlush(timeout: lingerTimeout, reason: .protocolError(error))
    }
}
