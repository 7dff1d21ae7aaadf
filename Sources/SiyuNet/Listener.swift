import CSiyuNet
import Glibc

/// A listening TCP socket on an event loop that accepts connections and hands each to `onAccept`
/// (not started: the receiver calls `start` on it, or wraps it in a `FrameConnection`).
///
/// Guarantees: the socket is bound with SO_REUSEADDR (a restarted hub can listen again at once),
/// accepted sockets are non-blocking and close-on-exec (accept4) with TCP_NODELAY; `address` is the
/// address actually bound (port 0 becomes the port the system chose). A peer that disconnects before
/// it is accepted is skipped; when the process is out of descriptors the listener reports
/// `.tooManyOpenFiles` to `onError` and pauses accepting for `retryDelay` instead of spinning. The
/// socket is closed exactly once: by `close()` or when the loop stops.
///
/// **Threads:** create, use and close it on the loop's thread (or before the loop runs, see
/// `EventLoop`); `address` and `loop` from anywhere.
public final class Listener: @unchecked Sendable {
    public let loop: EventLoop
    /// The bound address.
    public let address: SocketAddress
    /// How long accepting pauses after running out of descriptors.
    public let retryDelay: Duration

    private let descriptor: OwnedDescriptor
    private let connectionOptions: ConnectionOptions
    private var registration: Registration?
    private var onAccept: ((TCPConnection) -> Void)?
    private var onError: ((NetError) -> Void)?
    private var retryTimer: TimerHandle?
    /// Accepts per readable event: with `.background` priority, about what one turn's budget holds.
    private let maxAcceptsPerEvent = 16

    /// Binds `address`, listens and starts accepting. Errors name the address and say what to do:
    /// `.addressInUse`, `.addressNotAvailable`, `.permissionDenied`, or a `.systemCall` error.
    /// `priority`: when the loop accepts within a turn (`.background`: after the connections it
    /// already serves, for at most the loop's background budget a turn).
    public init(bindingTo address: SocketAddress, on loop: EventLoop, backlog: Int32 = 511,
                connectionOptions: ConnectionOptions = ConnectionOptions(), retryDelay: Duration = .milliseconds(100),
                priority: Priority = .normal, onError: ((NetError) -> Void)? = nil, onAccept: @escaping (TCPConnection) -> Void) throws(NetError) {
        loop.preconditionInEventLoop()
        self.loop = loop
        self.connectionOptions = connectionOptions
        self.retryDelay = retryDelay
        let socket = try makeStreamSocket(for: address)
        let fd = try socket.get("listening socket")
        try setSocketOption(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, label: "SO_REUSEADDR", context: "listen on \(address)")
        do {
            _ = try address.withSockaddr { pointer, length throws(NetError) in
                try syscall("bind", context: "to \(address)") { bind(fd, pointer, length) }
            }
        } catch {
            throw NetError.bindFailed(error, address: address)
        }
        _ = try syscall("listen", context: "on \(address)") { listen(fd, backlog) }
        self.address = SocketAddress.filled { getsockname(fd, $0, $1) }.address ?? address
        descriptor = socket
        self.onAccept = onAccept
        self.onError = onError
        registration = try loop.register(descriptor: fd, interest: .read,
                                         onLoopStop: { [self] in self.close() },
                                         handler: { [self] _ in self.acceptAvailable() })
        registration?.priority = priority
    }

    /// Whether the listener still accepts (or pauses after running out of descriptors).
    public var isOpen: Bool {
        loop.preconditionInEventLoop()
        return descriptor.isOpen
    }

    /// Stops listening and closes the socket. Connections already accepted stay open. Idempotent.
    public func close() {
        loop.preconditionInEventLoop()
        if let registration { loop.deregister(registration) }
        registration = nil
        if let retryTimer { loop.cancelTimer(retryTimer) }
        retryTimer = nil
        descriptor.close()
        onAccept = nil
        onError = nil
    }

    private func acceptAvailable() {
        for _ in 0 ..< maxAcceptsPerEvent {
            guard let fd = descriptor.rawValue else { return }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let flags = LinuxConstants.socketNonBlock | LinuxConstants.socketCloexec
            let result: SyscallResult<Int32>
            do {
                result = try withUnsafeMutablePointer(to: &storage) { pointer throws(NetError) in
                    try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(NetError) in
                        try syscall("accept4", context: "on \(self.address)") { siyu_accept4(fd, address, &length, flags) }
                    }
                }
            } catch {
                switch error.errno {
                case ECONNABORTED, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH:
                    continue  // the peer is gone already (accept(2): treat like EAGAIN and retry)
                default:
                    // Out of descriptors or memory, or worse: pause instead of spinning on a ready socket.
                    onError?(NetError.creationFailed(error))
                    pauseAccepting()
                    return
                }
            }
            guard let accepted = result.value else { return }
            let socket = OwnedDescriptor(accepted)
            let remote = SocketAddress(storage: storage, length: length) ?? address
            let local = SocketAddress.filled { getsockname(accepted, $0, $1) }.address ?? address
            do {
                try setSocketOption(accepted, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1, label: "TCP_NODELAY", context: "connection from \(remote)")
            } catch {
                onError?(error)  // a slower connection, not a broken one
            }
            onAccept?(TCPConnection(descriptor: socket, loop: loop, localAddress: local, remoteAddress: remote, options: connectionOptions))
        }
    }

    private func pauseAccepting() {
        guard let registration, retryTimer == nil else { return }
        do {
            try loop.setInterest([], for: registration)
        } catch {
            onError?(error)
        }
        retryTimer = loop.scheduleTimer(after: retryDelay) { [weak self] in
            guard let self, let registration = self.registration else { return }
            self.retryTimer = nil
            do throws(NetError) { try self.loop.setInterest(.read, for: registration) } catch { self.onError?(error) }
        }
    }
}
