/// The message types of the sync protocol (Protocol/SPEC.md, section 5) and their type bytes.
///
/// Guarantees: exactly one case per message of protocol version 1; `rawValue` is the frame's type
/// byte on the wire; every other byte is either ignorable (0x80–0xFF, `isIgnorable`) or an unknown
/// type (0x00–0x7F, refused with `unknown_message_type`). This is the only place the codes are
/// written: the codec, the descriptions, the session layer and the tests all go through it.
public enum MessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 0x01
    case challenge = 0x02
    case auth = 0x03
    case welcome = 0x04
    case push = 0x10
    case pushAck = 0x11
    case pull = 0x12
    case changes = 0x13
    case digestRequest = 0x14
    case digest = 0x15
    case snapshotBegin = 0x20
    case snapshotChunk = 0x21
    case snapshotEnd = 0x22
    case ping = 0x30
    case pong = 0x31
    case error = 0x3E
    case bye = 0x3F

    /// Who may send a message of this type (SPEC section 5, "sent by").
    public enum Sender: Sendable {
        case node, hub, either
    }

    /// The message's name as Protocol/SPEC.md writes it ("PUSH_ACK").
    public var specName: String {
        switch self {
        case .hello: return "HELLO"
        case .challenge: return "CHALLENGE"
        case .auth: return "AUTH"
        case .welcome: return "WELCOME"
        case .push: return "PUSH"
        case .pushAck: return "PUSH_ACK"
        case .pull: return "PULL"
        case .changes: return "CHANGES"
        case .digestRequest: return "DIGEST_REQUEST"
        case .digest: return "DIGEST"
        case .snapshotBegin: return "SNAPSHOT_BEGIN"
        case .snapshotChunk: return "SNAPSHOT_CHUNK"
        case .snapshotEnd: return "SNAPSHOT_END"
        case .ping: return "PING"
        case .pong: return "PONG"
        case .error: return "ERROR"
        case .bye: return "BYE"
        }
    }

    /// Who sends it.
    public var sender: Sender {
        switch self {
        case .hello, .auth, .push, .pull, .digestRequest: return .node
        case .challenge, .welcome, .pushAck, .changes, .digest, .snapshotBegin, .snapshotChunk, .snapshotEnd: return .hub
        case .ping, .pong, .error, .bye: return .either
        }
    }

    /// Whether a message of this type carries a change set (and so uses the connection's
    /// string dictionary for its direction).
    public var carriesChangeSet: Bool { self == .push || self == .changes || self == .snapshotChunk }

    /// "PUSH_ACK (0x11)".
    public var description: String { "\(specName) (0x\([rawValue].hexString))" }

    /// Whether a frame type byte is one a receiver skips when it does not know it (0x80–0xFF).
    public static func isIgnorable(_ code: UInt8) -> Bool { code >= 0x80 }
}

extension Frame {
    /// A frame of a known message type.
    public init(version: UInt8 = 1, type: MessageType, payload: [UInt8]) {
        self.init(version: version, type: type.rawValue, payload: payload)
    }

    /// The frame's message type, or nil for a type byte this version does not define.
    public var messageType: MessageType? { MessageType(rawValue: type) }
}
