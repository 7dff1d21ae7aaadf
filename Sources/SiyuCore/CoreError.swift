/// The single error type of the pure core. Every case carries what is needed to act on it:
/// which op or field was wrong, what was expected, and a hint for the person who sees it.
public enum CoreError: Error, Equatable, CustomStringConvertible {
    /// A remote clock is further ahead of local time than the configured drift allows; nothing was applied.
    case clockTooFarAhead(node: NodeID, remoteMillis: UInt64, localMillis: UInt64, maxDriftMillis: UInt64)
    /// A value or an edit breaks one of the data model's rules.
    case invalidEdit(what: String, hint: String)
    /// Encoded bytes could not be decoded.
    case malformed(what: String)

    public var description: String {
        switch self {
        case let .clockTooFarAhead(node, remote, local, drift):
            let ahead = remote > local ? remote - local : 0
            return "clock of node '\(node)' is \(ahead / 1000) s ahead of local time (limit \(drift / 1000) s); "
                + "nothing was applied. Hint: check the clock (NTP) of node '\(node)' or raise the allowed drift."
        case let .invalidEdit(what, hint):
            return "\(what). Hint: \(hint)"
        case let .malformed(what):
            return "malformed data: \(what)"
        }
    }
}
