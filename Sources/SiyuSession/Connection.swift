import SiyuCore
import SiyuWire

/// Which end of a connection this is.
public enum ConnectionSide: Sendable, Equatable {
    case node, hub

    /// The other end.
    public var peer: ConnectionSide { self == .node ? .hub : .node }
}

/// The states of a connection (Protocol/SPEC.md, section 7), the same for both sides:
/// `hello` → `challenged` → `ready` → `closed`. The hub enters `challenged` when it sends
/// CHALLENGE and `ready` when it sends WELCOME; the node when it receives them.
public enum ConnectionState: Sendable, Equatable {
    case hello, challenged, ready, closed
}

/// The legal-message table of SPEC section 7: which message types a side may receive (and so its
/// peer may send) in each state.
///
/// Guarantees: ERROR and BYE are legal in every state but `closed`; before `ready` only the
/// handshake message of the state is; in `closed` nothing is. A type this table refuses is answered
/// with ERROR `unexpected_message` (10) and close; a type the receiver does not know is
/// `unknown_message_type` (11) instead, in every state; an ignorable type (0x80–0xFF) is skipped in
/// every state.
public enum LegalMessages {
    /// Whether `side` may receive a message of `type` while in `state`.
    public static func mayReceive(_ type: MessageType, as side: ConnectionSide, in state: ConnectionState) -> Bool {
        if state == .closed { return false }
        if type == .error || type == .bye { return true }
        switch (side, state) {
        case (.hub, .hello): return type == .hello
        case (.hub, .challenged): return type == .auth
        case (.hub, .ready): return [.push, .pull, .digestRequest, .ping, .pong].contains(type)
        case (.node, .hello): return type == .challenge
        case (.node, .challenged): return type == .welcome
        case (.node, .ready):
            return [.pushAck, .changes, .digest, .snapshotBegin, .snapshotChunk, .snapshotEnd, .ping, .pong].contains(type)
        case (_, .closed): return false
        }
    }

    /// Whether `side` may send a message of `type` while in `state` (what its peer may receive).
    public static func maySend(_ type: MessageType, as side: ConnectionSide, in state: ConnectionState) -> Bool {
        mayReceive(type, as: side.peer, in: state)
    }
}

/// One end of one connection, below the node and hub logic: bytes in, legal messages out;
/// messages in, frames out. It owns what SPEC section 7 ties to a connection — the state, the
/// negotiated version, the two string dictionaries, the keepalive clocks — and nothing else.
///
/// Guarantees:
/// - the result of feeding bytes does not depend on how they were split;
/// - a frame is decoded only when the caller asks for the next message, so a caller that is busy
///   leaves later frames (and the incoming dictionary) untouched; undecoded input is bounded by
///   `maxBufferedBytes`;
/// - every failure of the peer becomes one `SessionError` with the code SPEC section 8 names, after
///   which the connection is closed: nothing from the wire traps;
/// - the outgoing dictionary changes only for a change set that is actually sent;
/// - once keys are installed (`installKeys`), every frame SPEC section 3 says is sealed is sent
///   with its MAC and sequence number, and a received one whose MAC does not verify is refused
///   (`auth_failed`) before its payload is read.
public struct Connection: Sendable {
    public let side: ConnectionSide
    public let policy: KeepalivePolicy
    public private(set) var state: ConnectionState = .hello
    /// The protocol version chosen by CHALLENGE (nil before it).
    public private(set) var version: UInt8?
    /// The strings the peer's change sets have defined on this connection.
    public private(set) var incoming = StringDictionary()
    /// The strings this side's change sets have defined on this connection.
    public private(set) var outgoing = StringDictionary()
    /// How many frames this side has sent: a `PreparedMessage` is good only while it is unchanged.
    private var framesSent = 0
    /// The newest data model a change set received on this connection may have; a newer one is
    /// refused with `schema_unsupported` before the rest of it is decoded.
    public var acceptedSchemaVersion: UInt64

    private var reader = FrameReader()
    /// The payloads of HELLO and CHALLENGE as sent or received: the transcript of SPEC section 6.
    public private(set) var helloPayload: [UInt8] = []
    public private(set) var challengePayload: [UInt8] = []
    private var sendMAC: FrameAuthenticator?
    private var receiveMAC: FrameAuthenticator?
    private var sealedSent: UInt64 = 0
    private var sealedReceived: UInt64 = 0
    let openedAt: SessionInstant
    private(set) var lastReceived: SessionInstant
    private(set) var lastSent: SessionInstant
    private var lastBusyEnd: SessionInstant

    /// Undecoded input beyond this (two whole frames of the largest size and some) is refused
    /// with `busy`: a peer that keeps sending while this side is busy is not followed.
    public static let maxBufferedBytes = 2 * (Frame.headerSize + Frame.maxPayload + Frame.trailerSize) + 65_536

    public init(side: ConnectionSide, policy: KeepalivePolicy = .standard, acceptedSchemaVersion: UInt64, now: SessionInstant) {
        self.side = side
        self.policy = policy
        self.acceptedSchemaVersion = acceptedSchemaVersion
        openedAt = now
        lastReceived = now
        lastSent = now
        lastBusyEnd = now
    }

    /// What the next frame held.
    enum Incoming {
        case message(Message)
        case skipped(type: UInt8)
        case failure(SessionError)
    }

    var isClosed: Bool { state == .closed }

    /// The handshake transcript (SPEC section 6) of this connection so far.
    public var transcript: [UInt8] { Authentication.transcript(hello: helloPayload, challenge: challengePayload) }

    /// Installs the session's frame keys: the node when it sends AUTH, the hub when AUTH verified.
    mutating func installKeys(_ keys: SessionKeys) {
        sendMAC = FrameAuthenticator(key: side == .node ? keys.nodeToHub : keys.hubToNode)
        receiveMAC = FrameAuthenticator(key: side == .node ? keys.hubToNode : keys.nodeToHub)
    }

    /// Whether a frame of `type` sent by `sender` now is sealed (SPEC section 3): every frame
    /// the node sends after AUTH; every frame the hub sends from WELCOME on.
    static func isSealed(type: UInt8, sentBy sender: ConnectionSide, keysInstalled: Bool, state: ConnectionState) -> Bool {
        keysInstalled && (sender == .node || state == .ready || type == MessageType.welcome.rawValue)
    }
    var bufferedByteCount: Int { reader.bufferedByteCount }

    /// Before `ready`, a hub takes frames of at most this many payload bytes and holds at most
    /// this many undecoded bytes (HELLO and AUTH are far smaller): an unauthenticated peer costs
    /// bounded memory (SPEC section 10).
    public static let maxPayloadBeforeReady = 4_096

    /// Takes bytes from the transport. Returns an error if too much is waiting undecoded, or (a
    /// hub before `ready`) a frame declares more than `maxPayloadBeforeReady` bytes.
    ///
    /// What counts as hearing from the peer for the idle timer: any byte for a node, and for a
    /// hub before `ready`; in `ready` a hub counts only whole requests and PINGs (`heardRequest`),
    /// so a peer that trickles bytes of a frame it never finishes is closed after the idle timeout.
    mutating func feed(_ bytes: [UInt8], now: SessionInstant) -> SessionError? {
        guard !isClosed, !bytes.isEmpty else { return nil }
        if side == .node || state != .ready { lastReceived = max(lastReceived, now) }
        reader.feed(bytes)
        // (A header with a bad magic or version is left to `next()`, which reports it first.)
        if side == .hub, state != .ready, let declared = reader.nextDeclaredPayloadLength {
            if declared > Connection.maxPayloadBeforeReady || reader.bufferedByteCount > Frame.headerSize + Connection.maxPayloadBeforeReady + Frame.trailerSize {
                return SessionError(.frameTooLarge, "before authentication a frame holds at most \(Connection.maxPayloadBeforeReady) bytes of payload; this one declares \(declared)")
            }
        }
        if reader.bufferedByteCount > Connection.maxBufferedBytes {
            return SessionError(.busy, "more than \(Connection.maxBufferedBytes) bytes sent while this side was busy; send at most one PUSH and one PULL at a time")
        }
        return nil
    }

    /// The next frame as a legal message (nil: more bytes are needed). Checks, in order: framing,
    /// the frame's version, an unknown or ignorable type, the legal-message table, a change set's
    /// schema version, then decodes with the incoming dictionary.
    mutating func next() -> Incoming? {
        guard !isClosed else { return nil }
        let frame: Frame
        let keysInstalled = receiveMAC != nil, peer = side.peer, current = state
        do {
            guard let f = try reader.next(tagSize: { type in
                Connection.isSealed(type: type, sentBy: peer, keysInstalled: keysInstalled, state: current) ? Authentication.tagSize : 0
            }) else { return nil }
            frame = f
        } catch let e as WireError {
            return .failure(SessionError(e))
        } catch {
            return .failure(SessionError(.internalError, "\(error)"))
        }
        let expected = version ?? 1
        guard frame.version == expected else {
            return .failure(SessionError(.unsupportedVersion, "a frame of protocol version \(frame.version) on a connection that uses version \(expected)"))
        }
        if let receiveMAC, !frame.tag.isEmpty {
            guard receiveMAC.verify(frame, sequence: sealedReceived) else {
                if frame.type == MessageType.welcome.rawValue, side == .node {
                    return .failure(SessionError(.authFailed,
                        "the hub could not prove it holds this node's verifiers (WELCOME's MAC does not verify): not the hub this node was registered with, or someone in between; check the hub address"))
                }
                return .failure(SessionError(.authFailed,
                    "the MAC of sealed frame #\(sealedReceived) from the \(side.peer) does not verify: the connection was altered on the way (or the peer's keys differ); reconnect"))
            }
            sealedReceived &+= 1
        }
        guard let type = frame.messageType else {
            if MessageType.isIgnorable(frame.type) { return .skipped(type: frame.type) }
            return .failure(SessionError(WireError.unknownMessageType(frame.type)))
        }
        guard LegalMessages.mayReceive(type, as: side, in: state) else {
            return .failure(SessionError(.unexpectedMessage, "\(type.specName) is not allowed from the \(side.peer) in state \(state)"))
        }
        if type.carriesChangeSet, let schema = Connection.changeSetSchemaVersion(in: frame), schema > acceptedSchemaVersion {
            return .failure(SessionError(.schemaUnsupported,
                "a \(type.specName) change set of data model version \(schema); this side accepts up to \(acceptedSchemaVersion): upgrade it"))
        }
        do {
            let message = try Message(frame: frame, dictionary: &incoming)
            if type == .hello { helloPayload = frame.payload }
            if type == .challenge { challengePayload = frame.payload }
            return .message(message)
        } catch let e as WireError {
            return .failure(SessionError(e))
        } catch {
            return .failure(SessionError(.internalError, "\(error)"))
        }
    }

    /// The schema_version of the change set a frame carries, read without decoding the rest (SPEC
    /// section 9: it is the change set's first field). Nil if the frame holds no change set or
    /// ends before it (the decoder then reports what is wrong).
    public static func changeSetSchemaVersion(in frame: Frame) -> UInt64? {
        guard let type = frame.messageType, type.carriesChangeSet else { return nil }
        var r = PayloadReader(frame.payload)
        do {
            switch type {
            case .changes: _ = try r.varint("next cursor"); _ = try r.u8("more")
            case .snapshotChunk: _ = try r.varint("snapshot id"); _ = try r.varint("index")
            default: break
            }
            return try r.varint("schema version")
        } catch {
            return nil
        }
    }

    /// Encodes a message for sending (with the outgoing dictionary and the chosen version).
    mutating func send<E>(_ message: Message, now: SessionInstant) -> SessionAction<E> {
        send(prepare(message), now: now)
    }

    /// A message encoded for this connection but not sent: its size can be checked first, and
    /// sending it then costs no second encoding (a CHANGES of a thousand ops is encoded once).
    struct PreparedMessage {
        let message: Message
        let frame: Frame
        fileprivate let dictionaryAfter: StringDictionary
        fileprivate let framesSentBefore: Int
        var payloadSize: Int { frame.payload.count }
    }

    /// Encodes `message` against the outgoing dictionary as it is now (which is not changed).
    func prepare(_ message: Message) -> PreparedMessage {
        let frameVersion: UInt8 = (message.type == .hello || message.type == .challenge) ? 1 : (version ?? 1)
        var dictionary = outgoing
        let frame = message.frame(version: frameVersion, dictionary: &dictionary)
        return PreparedMessage(message: message, frame: frame, dictionaryAfter: dictionary, framesSentBefore: framesSent)
    }

    /// Sends a prepared message (encoded again if another frame was sent since it was prepared).
    mutating func send<E>(_ prepared: PreparedMessage, now: SessionInstant) -> SessionAction<E> {
        let message = prepared.message
        assert(LegalMessages.maySend(message.type, as: side, in: state), "\(side) sending \(message.type) in \(state)")
        let current = prepared.framesSentBefore == framesSent ? prepared : prepare(message)
        outgoing = current.dictionaryAfter
        framesSent += 1
        lastSent = max(lastSent, now)
        if message.type == .hello { helloPayload = current.frame.payload }
        if message.type == .challenge { challengePayload = current.frame.payload }
        var frame = current.frame
        if let sendMAC, Connection.isSealed(type: frame.type, sentBy: side, keysInstalled: true, state: state) {
            frame = sendMAC.seal(frame, sequence: sealedSent)
            sealedSent &+= 1
        }
        return .send(message, bytes: frame.encoded())
    }

    mutating func enter(_ next: ConnectionState) { if state != .closed { state = next } }

    mutating func choose(version v: UInt8) { version = v }

    /// Sends ERROR for `error` and closes.
    mutating func fail<E>(_ error: SessionError, now: SessionInstant) -> [SessionAction<E>] {
        guard !isClosed else { return [] }
        let sent: SessionAction<E> = send(error.asMessage, now: now)
        state = .closed
        return [sent, .close(.errorSent(error))]
    }

    /// Sends BYE and closes.
    mutating func bye<E>(_ reason: String, closing: CloseReason? = nil, now: SessionInstant) -> [SessionAction<E>] {
        guard !isClosed else { return [] }
        let sent: SessionAction<E> = send(.bye(reason: reason), now: now)
        state = .closed
        return [sent, .close(closing ?? .byeSent(reason))]
    }

    /// Closes without sending anything (the peer ended it, or the transport is gone).
    mutating func closeQuietly<E>(_ reason: CloseReason) -> [SessionAction<E>] {
        guard !isClosed else { return [] }
        state = .closed
        return [.close(reason)]
    }

    /// A whole request or PING arrived (a hub in `ready`: what its idle timer counts).
    mutating func heardRequest(now: SessionInstant) { lastReceived = max(lastReceived, now) }

    /// Records that this side's store work ended (time spent on it is not the peer's silence).
    mutating func busyEnded(now: SessionInstant) { lastBusyEnd = max(lastBusyEnd, now) }

    /// When the handshake or idle timer next fires (nil when closed). While `busy`, the idle timer
    /// does not run.
    func timerDeadline(busy: Bool) -> SessionInstant? {
        guard !isClosed else { return nil }
        var deadlines: [SessionInstant] = []
        if state != .ready { deadlines.append(openedAt.adding(milliseconds: policy.handshakeTimeoutMillis)) }
        if !busy { deadlines.append(max(lastReceived, lastBusyEnd).adding(milliseconds: policy.idleTimeoutMillis)) }
        return deadlines.min()
    }

    /// When this side should send PING (a node in `ready`).
    var pingDeadline: SessionInstant { lastSent.adding(milliseconds: policy.pingAfterMillis) }

    /// Closes the connection if the handshake or idle timer has fired.
    mutating func checkTimers<E>(now: SessionInstant, busy: Bool) -> [SessionAction<E>] {
        guard !isClosed else { return [] }
        if state != .ready, now >= openedAt.adding(milliseconds: policy.handshakeTimeoutMillis) {
            return bye("the handshake did not finish within \(policy.handshakeTimeoutMillis / 1000) s", closing: .handshakeTimeout, now: now)
        }
        if !busy, now >= max(lastReceived, lastBusyEnd).adding(milliseconds: policy.idleTimeoutMillis) {
            return bye("nothing heard for \(policy.idleTimeoutMillis / 1000) s", closing: .idleTimeout, now: now)
        }
        return []
    }
}
