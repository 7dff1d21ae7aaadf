import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SiyuCore
import SiyuWire

/// A blocking TCP client that speaks frames by hand, for putting bad input to a real hub:
/// loopback only, every read bounded by a timeout.
final class RawClient {
    let fd: Int32
    var outgoing = StringDictionary()
    var incoming = StringDictionary()
    private var reader = FrameReader()
    private(set) var closedByPeer = false

    /// Connects to 127.0.0.1:`port`, from `source` (another loopback address) if given.
    init(port: Int, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket failed") }
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, source, &local.sin_addr)
            let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0 else { Glibc.close(fd); throw Failure("bind \(source) failed") }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { Glibc.close(fd); throw Failure("connect to port \(port) failed") }
    }

    deinit { Glibc.close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func send(_ message: Message, version: UInt8 = 1) { send(message.encoded(version: version, dictionary: &outgoing)) }

    /// Half-closes: the hub reads end of stream.
    func finish() { shutdown(fd, Int32(SHUT_WR)) }

    /// The next message, or nil when the hub closed the connection or `timeout` seconds passed.
    func receive(timeout: Double = 10) -> Message? {
        let end = Date().addingTimeInterval(timeout)
        while true {
            if let frame = try? reader.next() {
                if let message = try? Message(frame: frame, dictionary: &incoming) { return message }
                continue
            }
            let left = end.timeIntervalSinceNow
            guard left > 0, !closedByPeer else { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(max(1, left * 1000))) > 0 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { closedByPeer = true; continue }
            reader.feed(Array(buffer[0..<n]))
        }
    }

    /// Whether the hub closes the connection within `timeout` seconds (messages before it are read).
    func closes(within timeout: Double = 10) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if receive(timeout: end.timeIntervalSinceNow) == nil, closedByPeer { return true }
        }
        return closedByPeer
    }

    /// HELLO, CHALLENGE, AUTH with `secret`: the WELCOME, or what came instead. `challenge` gets the
    /// nonce (to replay an AUTH elsewhere).
    func handshake(node: String, role: Role = .store, secret: [UInt8], schema: UInt64 = 1, mac: [UInt8]? = nil,
                   challenge: (([UInt8]) -> Void)? = nil) -> Message? {
        send(.hello(node: node, role: role, versions: [1], schemaVersion: schema))
        guard let first = receive() else { return nil }
        guard case let .challenge(_, hub, nonce) = first else { return first }
        challenge?(nonce)
        send(.auth(mac: mac ?? Authentication.mac(secret: secret, nonce: nonce, node: node, hub: hub)))
        return receive()
    }
}

extension Message {
    /// The ERROR's code, nil for any other message.
    var errorCode: UInt64? { if case let .error(code, _, _) = self { return code }; return nil }
}
