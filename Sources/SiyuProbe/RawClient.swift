import Foundation
import SiyuCore
import SiyuNet
import SiyuWire

/// A blocking client that speaks frames by hand, for putting bad input to a real hub (the
/// hostile-input tests and `siyu-bench --only attack`): every read bounded by a timeout, every
/// frame after AUTH sealed with the session's keys as SPEC section 3 says, unless the caller sends
/// bytes of its own making. Not a node: it keeps no replica and follows no retry rule.
public final class RawClient {
    private let socket: BlockingSocket
    public var outgoing = StringDictionary()
    public var incoming = StringDictionary()
    private var reader = FrameReader()
    public private(set) var closedByPeer = false
    /// The version CHALLENGE chose; the handshake's transcript; the session's frame keys (SPEC 3, 6).
    private var version: UInt8?
    private var helloPayload: [UInt8] = []
    private var challengePayload: [UInt8] = []
    private var sendMAC: FrameAuthenticator?
    private var receiveMAC: FrameAuthenticator?
    private var sentSealed: UInt64 = 0
    private var receivedSealed: UInt64 = 0
    private var receivingSealed = false

    /// Connects to `hub`, from `source` (another loopback address) if given.
    public init(hub: SocketAddress, source: SocketAddress.Host? = nil) throws {
        socket = try BlockingSocket(connectingTo: hub, from: source)
    }

    /// Connects to 127.0.0.1:`port`, from `source` (another loopback address, dotted) if given.
    public convenience init(port: Int, source: String? = nil) throws {
        let from = try source.map { try SocketAddress(parsing: "\($0):0").host }
        try self.init(hub: .loopbackIPv4(port: UInt16(clamping: port)), source: from)
    }

    /// Sends `bytes` as they are.
    public func send(_ bytes: [UInt8]) { socket.send(bytes) }

    /// `frame` as this client sends it now: sealed with the next sequence number once AUTH is sent.
    public func bytes(_ frame: Frame) -> [UInt8] {
        guard let sendMAC else { return frame.encoded() }
        defer { sentSealed += 1 }
        return sendMAC.seal(frame, sequence: sentSealed).encoded()
    }

    /// The frame of `message` in the session's version (1 before CHALLENGE), with this client's dictionary.
    public func frame(_ message: Message, version: UInt8? = nil) -> Frame {
        message.frame(version: version ?? self.version ?? 1, dictionary: &outgoing)
    }

    public func send(_ message: Message, version: UInt8? = nil) {
        let frame = frame(message, version: version)
        if message.type == .hello { helloPayload = frame.payload }
        send(bytes(frame))
    }

    /// Half-closes: the hub reads end of stream.
    public func finish() { socket.shutdownWrite() }

    /// Closes the connection from this side.
    public func close() { socket.close() }

    /// The next message, or nil when the hub closed the connection or `timeout` seconds passed.
    public func receive(timeout: Double = 10) -> Message? {
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
            guard let bytes = socket.receive(timeout: max(0.001, left)) else { return nil }
            if bytes.isEmpty { closedByPeer = true; continue }
            reader.feed(bytes)
        }
    }

    /// Whether the hub closes the connection within `timeout` seconds (messages before it are read).
    public func closes(within timeout: Double = 10) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if receive(timeout: end.timeIntervalSinceNow) == nil, closedByPeer { return true }
        }
        return closedByPeer
    }

    /// HELLO, CHALLENGE, AUTH with `secret` (protocol version 2): the WELCOME, or what came
    /// instead. `proof` replaces the proof computed; `sent` gets the proof sent (to replay it elsewhere).
    public func handshake(node: String, role: Role = .store, secret: [UInt8], schema: UInt64 = 1, proof: [UInt8]? = nil,
                          sent: (([UInt8]) -> Void)? = nil) -> Message? {
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<32).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        send(.hello(node: node, role: role, versions: [2], schemaVersion: schema, nonce: nonce), version: 1)
        guard let first = receive() else { return nil }
        guard case let .challenge(chosen, _, _, salt, iterations) = first else { return first }
        version = chosen
        let keys = RawClient.nodeKeys(secret: secret, salt: salt, iterations: Int(iterations))
        let transcript = Authentication.transcript(hello: helloPayload, challenge: challengePayload)
        let mine = proof ?? Authentication.proof(keys, transcript: transcript)
        sent?(mine)
        send(.auth(mac: mine))
        let session = Authentication.sessionKeys(clientKey: keys.clientKey, serverKey: keys.serverKey, transcript: transcript)
        sendMAC = FrameAuthenticator(key: session.nodeToHub)
        receiveMAC = FrameAuthenticator(key: session.hubToNode)
        return receive()
    }

    /// PBKDF2 of a secret under a salt, remembered: an attacker repeating a handshake pays it once
    /// (a real node keeps it in memory too), so a loop of handshakes presses the hub, not this client.
    private static func nodeKeys(secret: [UInt8], salt: [UInt8], iterations: Int) -> Authentication.NodeKeys {
        let key = secret + [0xff] + salt + withUnsafeBytes(of: iterations) { Array($0) }
        keyLock.lock()
        defer { keyLock.unlock() }
        if let known = keyCache[key] { return known }
        let keys = Authentication.nodeKeys(secret: secret, salt: salt, iterations: iterations)
        if keyCache.count > 64 { keyCache.removeAll() }
        keyCache[key] = keys
        return keys
    }
    private static let keyLock = NSLock()
    nonisolated(unsafe) private static var keyCache: [[UInt8]: Authentication.NodeKeys] = [:]
}

extension Message {
    /// The ERROR's code, nil for any other message.
    public var errorCode: UInt64? { if case let .error(code, _, _) = self { return code }; return nil }
}
