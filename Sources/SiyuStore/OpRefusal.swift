import SiyuCore

/// One op a replica refused, and why, in a form a sync session can act on: `reason.protocolCode`
/// is the SPEC section 8 code of the ERROR that reports it, naming the op by `seq`.
///
/// Guarantees: `message` and `hint` are for people and show ids escaped
/// (`IdentifierRule.printable`); `message` does not start with the "op N: " prefix (the session
/// adds it).
public struct OpRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    /// Why an op is refused; each maps to one SPEC section 8 code.
    public enum Reason: String, Sendable, Equatable {
        /// The op's clock is beyond the receiver's clock window (`clock_skew`, 9, retryable): it is
        /// refused on its own, and may be sent again once the receiver's wall clock has caught up.
        case clockSkew = "clock_skew"
        /// The op is outside its origin's rights (`permission_denied`, 8): a store writing the tag
        /// library, redeeming points or deleting a tag; an op of the receiver's own origin it never
        /// issued; a number the receiver holds with other content.
        case permission = "permission_denied"
        /// The op breaks a data rule of SPEC section 9 (`invalid_op`, 14).
        case invalidOp = "invalid_op"

        /// The SPEC section 8 error code.
        public var protocolCode: UInt64 {
            switch self {
            case .clockSkew: return 9
            case .permission: return 8
            case .invalidOp: return 14
            }
        }

        /// Whether sending the same op again may succeed without anyone changing anything.
        public var isRetryable: Bool { self == .clockSkew }
    }

    public var reason: Reason
    /// The op's origin node and its sequence number there.
    public var origin: NodeID
    public var seq: UInt64
    /// What was wrong.
    public var message: String
    /// What to do about it.
    public var hint: String

    public init(_ reason: Reason, origin: NodeID, seq: UInt64, message: String, hint: String) {
        self.reason = reason
        self.origin = origin
        self.seq = seq
        self.message = message
        self.hint = hint
    }

    /// The text of the ERROR that reports it (after the session's "op N: " prefix).
    public var protocolMessage: String { "\(message); hint: \(hint)" }

    public var description: String {
        "op \(IdentifierRule.printable(origin))#\(seq) refused (\(reason.rawValue)): \(message). Hint: \(hint)"
    }
}

extension Replica {
    /// Why this replica refuses a peer's op at wall time `now`, or nil if it takes it: the data
    /// rights (`Op.permissionBreach`), the other data rules (`Op.validate`), this node's own
    /// numbering, and the clock window, in that order.
    func refusal(of op: Op, now: UInt64) -> OpRefusal? {
        if case let .invalidEdit(what, hint)? = op.permissionBreach {
            return OpRefusal(.permission, origin: op.origin, seq: op.seq, message: what, hint: hint)
        }
        do {
            try op.validate()
        } catch {
            let (what, hint): (String, String)
            if case let CoreError.invalidEdit(w, h)? = error as? CoreError { (what, hint) = (w, h) } else {
                (what, hint) = ("\(error)", "fix the sending node")
            }
            return OpRefusal(.invalidOp, origin: op.origin, seq: op.seq, message: what, hint: hint)
        }
        if op.origin == node && op.seq >= nextSeq && !isRecoverableOwnOp(op.seq) {
            return OpRefusal(.permission, origin: op.origin, seq: op.seq,
                             message: "op \(IdentifierRule.printable(node))#\(op.seq) claims this node's own origin, but this node has issued only \(nextSeq - 1) ops",
                             hint: "a hub relays a node's own ops back only up to what the node holds: check the hub, and that no other node uses the id \(IdentifierRule.printable(node)) (a node restored from an old backup must rejoin under a new id)")
        }
        if let beyond = clock.millisBeyondWindow(op.hlc, wallMillis: now) {
            let ahead = clock.maxDriftMillis.addingReportingOverflow(beyond)
            let seconds = ahead.overflow ? UInt64.max / 1000 : ahead.partialValue / 1000
            return OpRefusal(.clockSkew, origin: op.origin, seq: op.seq,
                             message: "its clock is \(seconds) s ahead of this node's wall clock, beyond the window of \(clock.maxDriftMillis / 1000) s",
                             hint: "check the clock (NTP) of node \(IdentifierRule.printable(op.origin)) and of this node; the op is taken once this node's clock is within the window of it")
        }
        return nil
    }
}
