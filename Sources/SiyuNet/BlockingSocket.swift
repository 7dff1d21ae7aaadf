import Glibc

/// A blocking TCP client socket whose every wait is bounded: for tools that put hand-made bytes
/// to a hub and read its answer in order — the hostile-input tests (`SiyuProbe.RawClient`) and
/// `siyu-bench --only attack`. The hub and the node never use it (they run on `EventLoop`).
///
/// Guarantees: the descriptor is closed exactly once (on `close()` or when the object goes away);
/// `send` never raises SIGPIPE and gives up after `sendTimeout`; `receive` waits at most the time
/// it is given. Not thread-safe: one thread uses it.
public final class BlockingSocket {
    private let descriptor: OwnedDescriptor
    public let remoteAddress: SocketAddress

    /// How long one `send` may block on a peer that does not read, in seconds.
    public static let sendTimeout = 5

    /// Connects to `address`, from `source` (say another loopback address, 127.0.0.2) when given.
    /// The connect itself blocks; on loopback it returns at once.
    public init(connectingTo address: SocketAddress, from source: SocketAddress.Host? = nil) throws(NetError) {
        remoteAddress = address
        let type = LinuxConstants.socketStream | LinuxConstants.socketCloexec
        guard let raw = try syscall("socket", context: "for \(address)", { socket(address.family, type, 0) }).value else {
            throw NetError.systemCall(call: "socket", errno: EAGAIN, context: "for \(address)")
        }
        descriptor = OwnedDescriptor(raw)
        try setSocketOption(raw, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1, label: "TCP_NODELAY", context: "connect to \(address)")
        var limit = timeval(tv_sec: BlockingSocket.sendTimeout, tv_usec: 0)
        _ = setsockopt(raw, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        if let source {
            let local = SocketAddress(host: source, port: 0)
            _ = try local.withSockaddr { pointer, length throws(NetError) in
                try syscall("bind", context: "to \(local)") { Glibc.bind(raw, pointer, length) }
            }
        }
        do throws(NetError) {
            _ = try address.withSockaddr { pointer, length throws(NetError) in
                try syscall("connect", context: "to \(address)") { Glibc.connect(raw, pointer, length) }
            }
        } catch {
            throw NetError.connectFailed(errno: error.errno ?? EIO, call: "connect", address: address, timeout: .seconds(0))
        }
    }

    /// Whether the socket is still open (not closed by `close()`).
    public var isOpen: Bool { descriptor.isOpen }

    /// Sends all of `bytes`; false when the peer is gone or did not read for `sendTimeout` seconds.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        guard let fd = descriptor.rawValue else { return false }
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { buffer in
                Glibc.send(fd, buffer.baseAddress! + sent, buffer.count - sent, LinuxConstants.sendNoSignal)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    /// What the peer sent next: bytes, `[]` when it closed (end of stream or reset), or nil when
    /// nothing came within `timeout` seconds.
    public func receive(timeout: Double, maxBytes: Int = 65_536) -> [UInt8]? {
        guard let fd = descriptor.rawValue else { return [] }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let millis = Int32(max(0, min(timeout * 1000, Double(Int32.max))))
        var ready: Int32
        repeat { ready = poll(&p, 1, millis) } while ready < 0 && errno == EINTR
        guard ready > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: maxBytes)
        var n: Int
        repeat { n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } } while n < 0 && errno == EINTR
        lastReceiveErrno = n < 0 ? errno : nil
        return n > 0 ? Array(buffer[0..<n]) : []
    }

    /// Why the last `receive` that returned no bytes failed (ECONNRESET: the peer reset the
    /// connection); nil after an orderly end of stream or bytes.
    public private(set) var lastReceiveErrno: Int32?

    /// Half-closes: the peer reads end of stream, and can still answer.
    public func shutdownWrite() {
        guard let fd = descriptor.rawValue else { return }
        _ = shutdown(fd, Int32(SHUT_WR))
    }

    public func close() { descriptor.close() }
}
