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
    /// The version CHALLENGE chose; the handshake's transcript; the session's frame keys (SPEC 3, 6).
    private var version: UInt8?
    private var helloPayload: [UInt8] = []
    private var challengePayload: [UInt8] = []
    private var sendMAC: FrameAuthenticator?
    private var receiveMAC: FrameAuthenticator?
    private var sentSealed: UInt64 = 0
    private var receivedSealed: UInt64 = 0
    private var receivingSealed = false

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

    /// `frame` as this client sends it now: sealed with the next sequence number once AUTH is sent.
    func bytes(_ frame: Frame) -> [UInt8] {
        guard let sendMAC else { return frame.encoded() }
        defer { sentSealed += 1 }
        return sendMAC.seal(frame, sequence: sentSealed).encoded()
    }

    func send(_ message: Message, version: UInt8? = nil) {
        let frame = message.frame(version: version ?? self.version ?? 1, dictionary: &outgoing)
        if message.type == .hello { helloPayload = frame.payload }
        send(bytes(frame))
    }

    /// Half-closes: the hub reads end of stream.
    func finish() { shutdown(fd, Int32(SHUT_WR)) }

    /// The next message, or nil when the hub closed the connection or `timeout` seconds passed.
    func receive(timeout: Double = 10) -> Message? {
        let end = Date().addingTimeInterval(timeout)
        while true {
            let keyed = receiveMAC != nil
            if let frame = try? reader.next(tagSize: { type in
                if keyed && type == MessageType.welcome.rawValue { self.receivingSealed = true }
                return keyed && self.receivingSealed ? Authentication.tagSize : 0
            }) {
                if !frame.tag.isEmpty {
                    guard receiveMAC?.verify(frame, sequence: receivedSealed) == true else { closedByPeer = true; return nil }
                    receivedSealed += 1
                }
                if let message = try? Message(frame: frame, dictionary: &incoming) {
                    if frame.type == MessageType.challenge.rawValue { challengePayload = frame.payload }
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

    /// HELLO, CHALLENGE, AUTH with `secret` (protocol version 2): the WELCOME, or what came
    /// instead. `proof` replaces the proof computed; `sent` gets the proof sent (to replay it elsewhere).
    func handshake(node: String, role: Role = .store, secret: [UInt8], schema: UInt64 = 1, proof: [UInt8]? = nil,
                   sent: (([UInt8]) -> Void)? = nil) -> Message? {
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<32).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        send(.hello(node: node, role: role, versions: [2], schemaVersion: schema, nonce: nonce), version: 1)
        guard let first = receive() else { return nil }
        guard case let .challenge(chosen, _, _, salt, iterations) = first else { return first }
        version = chosen
        let keys = Authentication.nodeKeys(secret: secret, salt: salt, iterations: Int(iterations))
        let transcript = Authentication.transcript(hello: helloPayload, challenge: challengePayload)
        let mine = proof ?? Authentication.proof(keys, transcript: transcript)
        sent?(mine)
        send(.auth(mac: mine))
        let session = Authentication.sessionKeys(clientKey: keys.clientKey, serverKey: keys.serverKey, transcript: transcript)
        sendMAC = FrameAuthenticator(key: session.nodeToHub)
        receiveMAC = FrameAuthenticator(key: session.hubToNode)
        return receive()
    }
}

extension Message {
    /// The ERROR's code, nil for any other message.
    var errorCode: UInt64? { if case let .error(code, _, _) = self { return code }; return nil }
}
