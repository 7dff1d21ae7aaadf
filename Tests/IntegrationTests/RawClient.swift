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
    /// The session's frame keys once AUTH is sent (SPEC section 6), and the sequence numbers of the
    /// sealed frames of each direction.
    private var keys: SessionKeys?
    /// The version CHALLENGE chose: every frame after HELLO uses it (SPEC section 4).
    private var chosenVersion: UInt8?
    private var welcomed = false
    private var sealedSent: UInt64 = 0
    private var sealedReceived: UInt64 = 0
    /// The payload of the last frame received (CHALLENGE's goes into the transcript).
    private(set) var lastPayload: [UInt8] = []

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

    /// Sends `message`: HELLO as a version 1 frame, AUTH as a version 2 frame, and every later
    /// frame sealed with the session's node-to-hub key and the next sequence number (SPEC section 3).
    func send(_ message: Message, version: UInt8? = nil) {
        var frame = message.frame(version: version ?? chosenVersion ?? 1, dictionary: &outgoing)
        if let keys {
            frame = FrameAuthenticator(key: keys.nodeToHub).seal(frame, sequence: sealedSent)
            sealedSent += 1
        }
        send(frame.encoded())
    }

    /// The bytes of `frame` as this client would send it next (sealed once AUTH is sent), counting
    /// it as sent: for damaging or cutting a frame by hand.
    func bytes(of frame: Frame) -> [UInt8] {
        guard let keys else { return frame.encoded() }
        defer { sealedSent += 1 }
        return FrameAuthenticator(key: keys.nodeToHub).seal(frame, sequence: sealedSent).encoded()
    }

    /// Half-closes: the hub reads end of stream.
    func finish() { shutdown(fd, Int32(SHUT_WR)) }

    /// The next message, or nil when the hub closed the connection or `timeout` seconds passed.
    func receive(timeout: Double = 10) -> Message? {
        let end = Date().addingTimeInterval(timeout)
        while true {
            let sealed = keys != nil
            let welcomed = self.welcomed
            if let frame = try? reader.next(tagSize: { sealed && (welcomed || $0 == MessageType.welcome.rawValue) ? Authentication.tagSize : 0 }) {
                if let keys, !frame.tag.isEmpty {
                    guard FrameAuthenticator(key: keys.hubToNode).verify(frame, sequence: sealedReceived) else { return nil }
                    sealedReceived += 1
                }
                lastPayload = frame.payload
                if let message = try? Message(frame: frame, dictionary: &incoming) {
                    if case .welcome = message { self.welcomed = true }
                    return message
                }
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

    /// HELLO, CHALLENGE, AUTH with `secret` (protocol version 2, SPEC section 6): the WELCOME, or
    /// what came instead. `proof` replaces the proof computed from the secret; `computed` gets the
    /// one computed (to replay it on another connection).
    func handshake(node: String, role: Role = .store, secret: [UInt8], schema: UInt64 = 1, proof: [UInt8]? = nil,
                   computed: (([UInt8]) -> Void)? = nil) -> Message? {
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<Message.nonceSize).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let hello = Message.hello(node: node, role: role, versions: Frame.supportedVersions, schemaVersion: schema, nonce: nonce)
        let helloPayload = hello.frame(version: 1).payload
        send(hello)
        guard let first = receive() else { return nil }
        guard case let .challenge(version, _, _, salt, iterations) = first else { return first }
        chosenVersion = version
        let transcript = Authentication.transcript(hello: helloPayload, challenge: lastPayload)
        let nodeKeys = Authentication.nodeKeys(secret: secret, salt: salt, iterations: Int(clamping: iterations))
        let real = Authentication.proof(nodeKeys, transcript: transcript)
        computed?(real)
        send(.auth(mac: proof ?? real))
        keys = Authentication.sessionKeys(clientKey: nodeKeys.clientKey, serverKey: nodeKeys.serverKey, transcript: transcript)
        return receive()
    }
}

extension Message {
    /// The ERROR's code, nil for any other message.
    var errorCode: UInt64? { if case let .error(code, _, _) = self { return code }; return nil }
}
