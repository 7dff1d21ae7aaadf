import Glibc
import SiyuWire

/// Why a connection closed. Reported once, as the last event of a connection.
public enum DisconnectReason: Equatable, Sendable, CustomStringConvertible {
    /// The peer closed the connection (end of stream).
    case closedByPeer
    /// `close()` or `closeAfterFlush()` was called on this side.
    case closedLocally
    /// The event loop stopped.
    case loopStopped
    /// The peer's bytes are not a valid frame stream (`FrameConnection` only); framing is lost.
    case protocolError(WireError)
    /// A socket error (reset by the peer, …) or the outbound limit.
    case failed(NetError)

    public var description: String {
        switch self {
        case .closedByPeer: return "closed by the peer"
        case .closedLocally: return "closed locally"
        case .loopStopped: return "the event loop stopped"
        case let .protocolError(error): return "protocol error: \(error)"
        case let .failed(error): return "failed: \(error)"
        }
    }
}

/// Sizes that bound what a connection holds in memory.
public struct ConnectionOptions: Sendable {
    /// Above this many waiting outbound bytes `isWritable` is false: stop writing.
    public var highWaterMark = 1 << 20
    /// At or below this many the connection reports `.writable` again (after being over the high mark).
    public var lowWaterMark = 256 << 10
    /// A write that would leave more than this waiting is refused (`NetError.outboundBufferFull`).
    public var maxBufferedBytes = 16 << 20
    /// Bytes read with one `recv`.
    public var readChunkSize = 64 << 10
    /// `recv` calls per readiness event, so one busy peer cannot starve the others.
    public var maxReadsPerEvent = 16

    public init() {}
}

/// A connected, non-blocking TCP socket on an event loop: a byte stream in both directions.
///
/// Guarantees: the socket is closed exactly once (by `close()`, an error, end of stream or the loop
/// stopping) and `.closed(reason)` is then the last event; events never arrive from inside a call
/// of yours (a failure found while you write is reported later in the loop's turn); bytes are sent
/// in the order written; a peer that is gone never raises SIGPIPE (sends use MSG_NOSIGNAL).
/// Outbound bytes wait in a buffer the kernel drains as the peer reads: `isWritable` turns false above
/// `highWaterMark`, `.writable` comes when the buffer is back at `lowWaterMark`, and writes beyond
/// `maxBufferedBytes` are refused, so a peer that does not read costs bounded memory. TCP_NODELAY is on.
///
/// **Threads:** every method only on the loop's thread (see `EventLoop`); `loop`, `localAddress` and
/// `remoteAddress` from anywhere.
public final class TCPConnection: @unchecked Sendable {
    /// What a connection reports to its handler, on the loop thread.
    public enum Event {
        /// Bytes from the peer, as they came (any split).
        case received([UInt8])
        /// The outbound buffer drained to the low-water mark after being over the high-water mark.
        case writable
        /// The connection is closed; nothing follows.
        case closed(DisconnectReason)
    }

    private enum State { case idle, open, draining, closed }

    public let loop: EventLoop
    public let localAddress: SocketAddress
    public let remoteAddress: SocketAddress
    public let options: ConnectionOptions

    private let descriptor: OwnedDescriptor
    private var registration: Registration?
    private var handler: ((TCPConnection, Event) -> Void)?
    private var state = State.idle
    private var outbound = OutboundBuffer()
    private var readingPaused = false
    private var overHighWaterMark = false
    private var drainReason = DisconnectReason.closedLocally
    private var drainTimer: TimerHandle?
    /// How many writable events the connection has handled (for tests of backpressure).
    private(set) var writableEventCount = 0

    init(descriptor: OwnedDescriptor, loop: EventLoop, localAddress: SocketAddress, remoteAddress: SocketAddress, options: ConnectionOptions) {
        self.descriptor = descriptor
        self.loop = loop
        self.localAddress = localAddress
        self.remoteAddress = remoteAddress
        self.options = options
    }

    /// Starts reading and delivering events to `handler`. Once per connection; a connection that is
    /// never started is closed when it goes away.
    public func start(_ handler: @escaping (TCPConnection, Event) -> Void) throws(NetError) {
        loop.preconditionInEventLoop()
        guard state == .idle else { throw NetError.closed("connection to \(remoteAddress) (already started)") }
        let fd = try descriptor.get("connection to \(remoteAddress)")
        self.handler = handler
        state = .open
        do {
            registration = try loop.register(descriptor: fd, interest: desiredInterest,
                                              onLoopStop: { [self] in self.finish(.loopStopped) },
                                              handler: { [self] events in self.handle(events) })
            registration?.priority = priority
        } catch {
            self.handler = nil
            state = .closed
            descriptor.close()
            throw error
        }
    }

    /// When the loop runs this connection's reads and writes within a turn (`Priority`): set it
    /// before or after `start`, on the loop thread.
    public var priority: Priority = .normal {
        didSet { registration?.priority = priority }
    }

    /// Whether the connection is open (not yet closed for any reason; true before `start`).
    public var isOpen: Bool {
        loop.preconditionInEventLoop()
        return state == .idle || state == .open
    }

    /// Outbound bytes not yet taken by the kernel.
    public var bufferedOutboundBytes: Int {
        loop.preconditionInEventLoop()
        return outbound.count
    }

    /// False while more than `highWaterMark` bytes wait: stop writing until `.writable`.
    public var isWritable: Bool {
        loop.preconditionInEventLoop()
        return state == .open && outbound.count <= options.highWaterMark
    }

    /// Queues `bytes` for sending and sends what the socket takes now. Throws `NetError.closed` on a
    /// closed (or closing) connection and `NetError.outboundBufferFull` if the buffer would exceed
    /// `maxBufferedBytes` (nothing is queued then; the connection stays open). A send error closes
    /// the connection; you hear of it as `.closed(.failed(…))`, after this call returned.
    public func write(_ bytes: [UInt8]) throws(NetError) {
        loop.preconditionInEventLoop()
        guard state == .open else { throw NetError.closed("connection to \(remoteAddress)") }
        let (total, overflow) = outbound.count.addingReportingOverflow(bytes.count)
        guard !overflow, total <= options.maxBufferedBytes else {
            throw NetError.outboundBufferFull(remoteAddress, buffered: outbound.count, limit: options.maxBufferedBytes)
        }
        let wasEmpty = outbound.isEmpty
        outbound.append(bytes)
        if wasEmpty { flush(reportWritable: false) }
        if outbound.count > options.highWaterMark { overHighWaterMark = true }
    }

    /// Stops reading from the peer (its bytes wait in the kernel, and TCP slows it down).
    public func pauseReading() {
        loop.preconditionInEventLoop()
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    /// Reads again after `pauseReading()`.
    public func resumeReading() {
        loop.preconditionInEventLoop()
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
    }

    /// Closes now: unsent bytes are dropped. Reported as `.closed(.closedLocally)`. Idempotent.
    public func close() {
        loop.preconditionInEventLoop()
        finish(.closedLocally)
    }

    /// Closes now with a TCP reset (SO_LINGER of zero) instead of the orderly end: unsent bytes are
    /// dropped, the peer reads "connection reset", and this side keeps no TIME_WAIT state for it —
    /// for a connection refused at once, where a flood of them would otherwise leave a minute of
    /// TIME_WAIT sockets each. Reported as `.closed(.closedLocally)`. Idempotent.
    public func reset() {
        loop.preconditionInEventLoop()
        if state != .closed, let fd = descriptor.rawValue {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        finish(.closedLocally)
    }

    /// Stops reading, sends what is buffered, then closes — or closes anyway after `timeout`.
    /// Reported as `.closed(.closedLocally)`. Writes are refused from now on.
    public func closeAfterFlush(timeout: Duration = .seconds(5)) {
        loop.preconditionInEventLoop()
        closeAfterFlush(timeout: timeout, reason: .closedLocally)
    }

    func closeAfterFlush(timeout: Duration, reason: DisconnectReason) {
        switch state {
        case .closed, .draining: return
        case .idle: finish(reason); return
        case .open: break
        }
        guard !outbound.isEmpty else { finish(reason); return }
        state = .draining
        drainReason = reason
        updateInterest()
        drainTimer = loop.scheduleTimer(after: timeout) { [weak self] in self?.finish(reason) }
    }

    // MARK: events

    private func handle(_ events: IOEvents) {
        if events.contains(.writable) || (!outbound.isEmpty && !events.isDisjoint(with: [.error, .hangup])) {
            writableEventCount += 1
            flush(reportWritable: true)
        }
        guard state == .open || state == .draining else { return }
        if state == .open && !readingPaused && !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) {
            readAvailable()
        } else if !events.isDisjoint(with: [.hangup, .error]) {
            // Not reading, yet the socket is dead: without reading there is nothing to wait for.
            let code = pendingSocketError(descriptor.rawValue ?? -1)
            finish(code == 0 ? .closedByPeer : .failed(.transferFailed(.systemCall(call: "socket", errno: code, context: "connection to \(remoteAddress)"), peer: remoteAddress)))
        }
    }

    private func readAvailable() {
        let scratch = loop.readScratch
        let size = max(1, min(options.readChunkSize, scratch.count))
        for _ in 0 ..< max(1, options.maxReadsPerEvent) {
            guard state == .open, !readingPaused, let fd = descriptor.rawValue else { return }
            do {
                switch try syscall("recv", context: "from \(remoteAddress)", { recv(fd, scratch.baseAddress, size, 0) }) {
                case .wouldBlock:
                    return
                case .completed(0):
                    finish(.closedByPeer)
                    return
                case let .completed(count):
                    let bytes = [UInt8](UnsafeRawBufferPointer(start: scratch.baseAddress, count: min(max(0, count), size)))
                    handler?(self, .received(bytes))
                }
            } catch {
                finish(.failed(.transferFailed(error, peer: remoteAddress)))
                return
            }
        }
    }

    /// Sends buffered bytes until the socket is full or the buffer empty.
    private func flush(reportWritable: Bool) {
        while !outbound.isEmpty, state == .open || state == .draining, let fd = descriptor.rawValue {
            do {
                let result = try outbound.withFirstChunk { chunk throws(NetError) in
                    try syscall("send", context: "to \(remoteAddress)") {
                        send(fd, chunk.baseAddress, chunk.count, LinuxConstants.sendNoSignal)
                    }
                }
                guard let sent = result.value else { break }
                outbound.consume(sent)
            } catch {
                // Not reported from inside the caller's write: finish defers the report.
                finish(.failed(.transferFailed(error, peer: remoteAddress)))
                return
            }
        }
        if state == .draining && outbound.isEmpty {
            finish(drainReason)
            return
        }
        guard state == .open || state == .draining else { return }
        updateInterest()
        if reportWritable && overHighWaterMark && outbound.count <= options.lowWaterMark && state == .open {
            overHighWaterMark = false
            handler?(self, .writable)
        }
    }

    private var desiredInterest: Interest {
        var interest: Interest = []
        if state == .open && !readingPaused { interest.insert(.read) }
        if !outbound.isEmpty { interest.insert(.write) }
        return interest
    }

    private func updateInterest() {
        guard let registration, state == .open || state == .draining else { return }
        do {
            try loop.setInterest(desiredInterest, for: registration)
        } catch {
            finish(.failed(error))
        }
    }

    /// Closes the socket (once) and reports `.closed(reason)` later in the loop's turn.
    private func finish(_ reason: DisconnectReason) {
        guard state != .closed else { return }
        let wasStarted = state != .idle
        state = .closed
        if let registration { loop.deregister(registration) }
        registration = nil
        if let drainTimer { loop.cancelTimer(drainTimer) }
        drainTimer = nil
        descriptor.close()
        outbound.removeAll()
        guard wasStarted, let handler else { return }
        self.handler = nil
        loop.deferWork { [self] in handler(self, .closed(reason)) }
    }
}

// MARK: - Connecting

extension TCPConnection {
    /// Connects to `address` without blocking. `completion` runs once, on the loop thread and never
    /// from inside this call, with the connection (not started yet: call `start`) or the error:
    /// `.connectionRefused` (nothing listens there), `.connectTimedOut` (no answer within `timeout`),
    /// `.unreachable`, `.loopStopped` (the loop stopped first), or another `NetError`.
    /// Loop thread only.
    public static func connect(to address: SocketAddress, on loop: EventLoop, timeout: Duration = .seconds(10),
                               options: ConnectionOptions = ConnectionOptions(),
                               completion: @escaping (Result<TCPConnection, NetError>) -> Void) {
        loop.preconditionInEventLoop()
        let attempt = ConnectAttempt(address: address, loop: loop, timeout: timeout, options: options, completion: completion)
        attempt.begin()
    }
}

/// One connect in flight: the socket, its registration and timer, and the completion to call once.
private final class ConnectAttempt {
    let address: SocketAddress
    let loop: EventLoop
    let timeout: Duration
    let options: ConnectionOptions
    var completion: ((Result<TCPConnection, NetError>) -> Void)?
    var descriptor: OwnedDescriptor?
    var registration: Registration?
    var timer: TimerHandle?

    init(address: SocketAddress, loop: EventLoop, timeout: Duration, options: ConnectionOptions,
         completion: @escaping (Result<TCPConnection, NetError>) -> Void) {
        self.address = address
        self.loop = loop
        self.timeout = timeout
        self.options = options
        self.completion = completion
    }

    func begin() {
        guard address.port != 0 else {
            complete(.failure(.invalidAddress(input: address.description, reason: "cannot connect to port 0")))
            return
        }
        do throws(NetError) {
            let socket = try makeStreamSocket(for: address)
            descriptor = socket
            let fd = try socket.get("socket")
            try setSocketOption(fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1, label: "TCP_NODELAY", context: "connect to \(address)")
            let address = address
            do throws(NetError) {
                let result = try address.withSockaddr { pointer, length throws(NetError) in
                    try syscall("connect", context: "to \(address)") { Glibc.connect(fd, pointer, length) }
                }
                if result.value != nil {  // connected at once (can happen on loopback)
                    succeed()
                    return
                }
                // EAGAIN from connect means no free local port, not "try later".
                complete(.failure(.connectFailed(errno: EAGAIN, call: "connect", address: address, timeout: timeout)))
                return
            } catch let error where error.errno == EINPROGRESS {
                registration = try loop.register(descriptor: fd, interest: .write,
                                                 onLoopStop: { [self] in self.complete(.failure(.loopStopped)) },
                                                 handler: { [self] _ in self.finishConnect() })
                timer = loop.scheduleTimer(after: timeout) { [self] in
                    self.complete(.failure(.connectTimedOut(self.address, after: self.timeout)))
                }
            } catch let error {
                guard let code = error.errno else { throw error }
                complete(.failure(.connectFailed(errno: code, call: "connect", address: address, timeout: timeout)))
            }
        } catch {
            complete(.failure(NetError.creationFailed(error)))
        }
    }

    /// The socket became writable (or failed): the connect finished one way or the other.
    private func finishConnect() {
        guard let fd = descriptor?.rawValue else { return }
        let code = pendingSocketError(fd)
        if code == 0 {
            succeed()
        } else {
            complete(.failure(.connectFailed(errno: code, call: "connect", address: address, timeout: timeout)))
        }
    }

    private func succeed() {
        guard let socket = descriptor, let fd = socket.rawValue else { return }
        let local = SocketAddress.filled { getsockname(fd, $0, $1) }.address ?? address
        let remote = SocketAddress.filled { getpeername(fd, $0, $1) }.address ?? address
        descriptor = nil  // now the connection's
        let connection = TCPConnection(descriptor: socket, loop: loop, localAddress: local, remoteAddress: remote, options: options)
        complete(.success(connection))
    }

    /// Cleans up and reports the result, once, later in the loop's turn.
    private func complete(_ result: Result<TCPConnection, NetError>) {
        if let registration { loop.deregister(registration) }
        registration = nil
        if let timer { loop.cancelTimer(timer) }
        timer = nil
        descriptor?.close()
        descriptor = nil
        guard let completion else { return }
        self.completion = nil
        loop.deferWork { completion(result) }
    }
}
