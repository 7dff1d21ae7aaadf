import SiyuCore
import SiyuWire

/// A point in time as the driver's monotonic clock gives it, in milliseconds. The session layer
/// never reads a clock: every entry point takes `now`, so a run is a function of its inputs (the
/// simulator drives it with a virtual clock).
///
/// Guarantees: plain value, totally ordered; arithmetic saturates instead of trapping.
public struct SessionInstant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var milliseconds: UInt64

    public init(milliseconds: UInt64) { self.milliseconds = milliseconds }

    public static let zero = SessionInstant(milliseconds: 0)

    /// This instant moved `ms` milliseconds later (saturating).
    public func adding(milliseconds ms: UInt64) -> SessionInstant {
        SessionInstant(milliseconds: milliseconds.addingReportingOverflow(ms).overflow ? .max : milliseconds + ms)
    }

    /// Milliseconds from `earlier` to this instant, 0 if `earlier` is later.
    public func milliseconds(since earlier: SessionInstant) -> UInt64 {
        milliseconds >= earlier.milliseconds ? milliseconds - earlier.milliseconds : 0
    }

    public static func < (a: SessionInstant, b: SessionInstant) -> Bool { a.milliseconds < b.milliseconds }

    public var description: String { "t+\(milliseconds)ms" }
}

/// The timing rules of a connection (Protocol/SPEC.md, section 7, "Keepalive").
///
/// Guarantees: the defaults are the values the spec names: a node sends PING after 20 s without
/// sending anything, either side closes after 60 s without receiving anything (not counting time
/// its own store work took), and a hub closes a connection that is not `ready` 10 s after it opened.
public struct KeepalivePolicy: Sendable, Equatable {
    /// A node sends PING when it has sent no frame for this long (ready only).
    public var pingAfterMillis: UInt64
    /// Either side closes when it has received no bytes for this long while waiting on its peer.
    public var idleTimeoutMillis: UInt64
    /// Either side closes a connection that has not reached `ready` this long after it opened.
    public var handshakeTimeoutMillis: UInt64
    /// A node pulls again this long after a CHANGES that said `more = false`.
    public var pollIntervalMillis: UInt64
    /// A node pushes again this long after a `clock_skew` refusal or an ack that fell short.
    public var pushRetryMillis: UInt64
    /// A node gives the connection up when its oldest PUSH or PULL has had no answer for this long
    /// (a frame of the answer — CHANGES, a snapshot frame, PUSH_ACK, ERROR — restarts the wait;
    /// time the node spends on its own store work does not count). PING/PONG do not count: a
    /// hub that answers PINGs but never a request would otherwise hold the node for ever.
    public var requestTimeoutMillis: UInt64
    /// A node pushes again between this long and twice this long after a `busy` refusal
    /// (`busyRetryDelay`).
    public var busyRetryMillis: UInt64

    public init(pingAfterMillis: UInt64 = 20_000, idleTimeoutMillis: UInt64 = 60_000,
                handshakeTimeoutMillis: UInt64 = 10_000, pollIntervalMillis: UInt64 = 5_000,
                pushRetryMillis: UInt64 = 30_000, requestTimeoutMillis: UInt64 = 120_000, busyRetryMillis: UInt64 = 1_000) {
        self.pingAfterMillis = pingAfterMillis
        self.idleTimeoutMillis = idleTimeoutMillis
        self.handshakeTimeoutMillis = handshakeTimeoutMillis
        self.pollIntervalMillis = pollIntervalMillis
        self.pushRetryMillis = pushRetryMillis
        self.requestTimeoutMillis = requestTimeoutMillis
        self.busyRetryMillis = busyRetryMillis
    }

    public static let standard = KeepalivePolicy()
}

/// The single error type of the session layer: a breach of the protocol by the peer (or a failure
/// of this side) that ends in an ERROR frame. It carries exactly what that frame says.
///
/// Guarantees: `code` is a SPEC section 8 code; `retryable` is the code's column of the table
/// unless a case says otherwise; `message` is for people and never holds unescaped peer data.
public struct SessionError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var retryable: Bool
    public var message: String

    public init(_ code: ErrorCode, _ message: String, retryable: Bool? = nil) {
        self.code = code
        self.message = message
        self.retryable = retryable ?? code.isRetryableBySpec
    }

    /// The ERROR frame for a wire decoding failure (SPEC section 1, "Decoding errors").
    public init(_ wire: WireError) {
        switch wire {
        case .unsupportedVersion: self.init(.unsupportedVersion, wire.description)
        case .frameTooLarge: self.init(.frameTooLarge, wire.description)
        case .badChecksum: self.init(.badChecksum, wire.description)
        case .unknownMessageType: self.init(.unknownMessageType, wire.description)
        default: self.init(.malformedFrame, wire.description)
        }
    }

    /// The ERROR message that carries it.
    public var asMessage: Message { .error(code: code.rawValue, retryable: retryable, message: message) }

    public var description: String { "\(code.specName) (\(code.rawValue)): \(message)" }
}

extension ErrorCode {
    /// The "retryable" column of SPEC section 8.
    public var isRetryableBySpec: Bool {
        switch self {
        case .badChecksum, .clockSkew, .busy, .cursorTooOld, .internalError: return true
        default: return false
        }
    }
}

/// Why a connection ended, for the driver (reconnect or not) and the log.
///
/// Guarantees: every session ends with exactly one `.close` action carrying one of these.
public enum CloseReason: Sendable, Equatable, CustomStringConvertible {
    /// This side said goodbye (BYE) — shutdown, or a condition it cannot sync under (`reason`).
    case byeSent(String)
    /// The peer said goodbye.
    case byeReceived(String)
    /// This side refused something and sent this ERROR.
    case errorSent(SessionError)
    /// The peer sent an ERROR that ends the connection.
    case errorReceived(code: UInt64, retryable: Bool, message: String)
    /// Nothing received for the policy's idle timeout.
    case idleTimeout
    /// The handshake did not reach `ready` in time.
    case handshakeTimeout
    /// A PUSH or PULL went unanswered for the policy's request timeout (node side).
    case requestTimeout
    /// The transport closed under the session (the driver called `transportClosed`).
    case transportClosed

    /// Whether reconnecting (with backoff) may succeed without anyone changing anything.
    public var isRetryable: Bool {
        switch self {
        case .byeSent, .byeReceived, .idleTimeout, .handshakeTimeout, .requestTimeout, .transportClosed: return true
        case let .errorSent(e): return e.retryable
        case let .errorReceived(_, retryable, _): return retryable
        }
    }

    public var description: String {
        switch self {
        case let .byeSent(r): return "sent BYE: \(r)"
        case let .byeReceived(r): return "peer said BYE: \(IdentifierRule.printable(r, limit: 200))"
        case let .errorSent(e): return "sent ERROR \(e)"
        case let .errorReceived(code, _, message):
            return "peer sent ERROR \(ErrorCode(rawValue: code)?.specName ?? "unknown") (\(code)): \(IdentifierRule.printable(message, limit: 200))"
        case .idleTimeout: return "nothing heard for the idle timeout"
        case .handshakeTimeout: return "the handshake did not finish in time"
        case .requestTimeout: return "a request went unanswered for the request timeout"
        case .transportClosed: return "the connection was closed"
        }
    }
}

/// Things worth a log line (issue 12, item 7), reported as they happen.
public enum SessionEvent: Sendable, Equatable {
    /// The hub accepted the node (node side: WELCOME received; hub side: WELCOME sent).
    case authenticated(node: NodeID, hub: String, ackedSeq: UInt64, logHead: UInt64)
    /// The hub refused the node's AUTH (hub side), without saying why on the wire.
    case authenticationRefused(node: NodeID, why: String)
    /// A PUSH went out (node) with ops numbered `firstSeq…lastSeq`.
    case pushed(ops: Int, firstSeq: UInt64, lastSeq: UInt64)
    /// A PUSH_ACK: the hub holds every op of the node up to `ackedSeq` (sent or received).
    case pushAcknowledged(ackedSeq: UInt64)
    /// The hub refused op `seq` of a PUSH (sent or received).
    case opRefused(seq: UInt64?, code: UInt64, message: String)
    /// The node set op `seq` aside: the hub will never take it, and the node syncs without it.
    case opQuarantined(seq: UInt64, code: UInt64, message: String)
    /// CHANGES applied by the node (or sent by the hub) up to `cursor`.
    case pulled(ops: Int, cursor: UInt64, more: Bool)
    case snapshotStarted(id: UInt64, cursor: UInt64, reason: SnapshotReason)
    case snapshotFinished(id: UInt64, chunks: UInt64, cursor: UInt64)
    /// A DIGEST (sent or received): the hub's SHA-256 state digest of the node's scope at its log
    /// position `position`. `cursor` is the node's: as its DIGEST_REQUEST said (hub side), or where
    /// the node stands when the answer is read (node side: its replica holds the log up to there).
    case digest(position: UInt64, digest: [UInt8], cursor: UInt64)
    /// The hub answered DIGEST_REQUEST with `unknown_message_type` (11): it predates digests and
    /// cannot be verified against (it closes the connection; upgrade the hub).
    case digestUnsupported(String)
    /// Another node uses this node's id (the hub holds another op under a number it acknowledged
    /// as this node's): the node stops syncing under this id.
    case identityConflict(String)
    /// The hub's log epoch changed (it was restored from a backup or lost its last commits): the
    /// node pulls again from position 0, and pushes again whatever the hub's acked_seq lacks.
    /// `cursor` is where it stood.
    case logEpochChanged(cursor: UInt64)
    /// The hub holds this node's ops up to `through` and the replica numbered its own only up to
    /// `lastOwnSeq` (or recorded a lower acknowledgement): it takes its own ops back from the hub
    /// before it pushes (SPEC section 7, "Identity").
    case recoveringOwnOps(through: UInt64, lastOwnSeq: UInt64)
    /// Ops in the node's scope need a newer data model than the node's: it keeps pushing but pulls
    /// no more on this connection.
    case upgradeNeeded(String)
    /// An ERROR this side sent or received that leaves the connection open.
    case errorSent(SessionError)
    case errorReceived(code: UInt64, retryable: Bool, message: String)
    /// A frame of an ignorable type (0x80–0xFF) was skipped.
    case skippedFrame(type: UInt8)
}

/// What a session asks its driver to do, in order.
///
/// Guarantees: actions are to be carried out in the order given; `send` bytes are a whole frame
/// already encoded with the connection's dictionary and version; after `.close` the session emits
/// nothing more and ignores everything fed to it.
public enum SessionAction<Effect: Sendable>: Sendable {
    /// Write these bytes (the frame of `message`).
    case send(Message, bytes: [UInt8])
    /// Carry out this store effect and feed its result back with `complete(_:now:)`. The session
    /// reads no further frames until then.
    case perform(Effect)
    /// Log this.
    case report(SessionEvent)
    /// Close the transport after writing what was sent before.
    case close(CloseReason)
}

extension SessionAction {
    /// The message, if this action sends one.
    public var sentMessage: Message? { if case let .send(m, _) = self { return m }; return nil }
    /// The effect, if this action asks for one.
    public var effect: Effect? { if case let .perform(e) = self { return e }; return nil }
    /// The close reason, if this action closes.
    public var closeReason: CloseReason? { if case let .close(r) = self { return r }; return nil }
}

/// The ERROR message convention for a refused PUSH (SPEC section 8): a refusal that concerns one
/// op of the sending node starts with `op <seq>: `, the sequence number in decimal digits.
public enum OpRefusalText {
    /// "op 17: <text>".
    public static func message(seq: UInt64, _ text: String) -> String { "op \(seq): \(text)" }

    /// The op a refusal names, if its message follows the convention.
    public static func seq(in message: String) -> UInt64? {
        let bytes = Array(message.utf8)
        guard bytes.count > 3, bytes[0] == UInt8(ascii: "o"), bytes[1] == UInt8(ascii: "p"), bytes[2] == UInt8(ascii: " ") else { return nil }
        var i = 3
        var value: UInt64 = 0
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
            if i - 3 >= 20 { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(bytes[i] - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            value = a
            i += 1
        }
        guard i > 3, i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
        if bytes[3] == UInt8(ascii: "0") && i > 4 { return nil }   // no leading zeros
        return value >= 1 ? value : nil
    }
}
