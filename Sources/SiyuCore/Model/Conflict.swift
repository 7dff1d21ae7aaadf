/// The rule that discarded an intention.
public enum ConflictRule: String, Sendable, CaseIterable {
    /// Two concurrent writes of one field: the greater (hlc, node) won.
    case lastWriterWins = "lww"
    /// Concurrent adds of two tags of an exclusive group on one customer: the latest add won.
    case exclusiveTagGroup = "exclusive_tag_group"
    /// A store applied a tag that HQ deleted concurrently: the tag stays inactive.
    case deletedTag = "deleted_tag"
    /// A group roster went over capacity: the latest joins are marked overflow.
    case rosterOverflow = "roster_overflow"
    /// An order was cancelled concurrently with its payment: the payment stands.
    case cancelledAfterPayment = "cancelled_after_payment"
    /// An order line was edited concurrently with or after payment: the edit is not applied.
    case editAfterPayment = "edit_after_payment"
    /// The merged points balance went below zero.
    case overdraft = "overdraft"
    /// A customer was edited concurrently with its deletion: the customer stays deleted.
    case editOnDeleted = "edit_on_deleted"

    public var explanation: String {
        switch self {
        case .lastWriterWins: return "concurrent writes; the later (hlc, node) wins"
        case .exclusiveTagGroup: return "one tag per customer in an exclusive group; the latest add wins"
        case .deletedTag: return "HQ deleted the tag; a concurrent apply does not resurrect it"
        case .rosterOverflow: return "group over capacity; the earliest joins stay, later ones overflow"
        case .cancelledAfterPayment: return "cancelled concurrently with payment; the payment stands"
        case .editAfterPayment: return "order lines freeze at payment; this edit was not applied"
        case .overdraft: return "merged points balance is below zero"
        case .editOnDeleted: return "the customer was deleted concurrently; the edit is kept in history only"
        }
    }
}

/// Whether a conflict still wants attention.
public enum ConflictState: String, Sendable, CaseIterable {
    case open, acknowledged, overridden
}

/// One side of a conflict: which op, by which node and staff member, with which value.
public struct ConflictSide: Hashable, Sendable {
    public var stamp: Stamp
    public var author: String
    public var value: Value

    public init(stamp: Stamp, author: String, value: Value) {
        self.stamp = stamp
        self.author = author
        self.value = value
    }
}

/// One discarded intention. Derived from the set of ops alone, so every replica holding the same
/// ops holds the same entries (same ids, same states) whatever the order of arrival.
public struct ConflictEntry: Hashable, Sendable {
    public var id: String
    public var rule: ConflictRule
    public var target: Target
    /// The field, for LWW conflicts; empty otherwise.
    public var field: String
    public var winner: ConflictSide?
    public var loser: ConflictSide
    public var state: ConflictState
    /// The op that closed the conflict (a resolving write or an acknowledgement).
    public var closedBy: ConflictSide?

    public init(rule: ConflictRule, target: Target, field: String = "", winner: ConflictSide?, loser: ConflictSide,
                state: ConflictState = .open, closedBy: ConflictSide? = nil) {
        self.id = ConflictEntry.makeID(rule: rule, target: target, field: field, loser: loser.stamp)
        self.rule = rule
        self.target = target
        self.field = field
        self.winner = winner
        self.loser = loser
        self.state = state
        self.closedBy = closedBy
    }

    public var instance: InstanceRef { target.instance }

    /// A short stable id: the first 12 hex digits of SHA-256 over the rule, the target and the losing op.
    public static func makeID(rule: ConflictRule, target: Target, field: String, loser: Stamp) -> String {
        let key = "\(rule.rawValue)\u{1f}\(target.entity.name)\u{1f}\(target.id)\u{1f}\(target.sub)\u{1f}\(field)\u{1f}\(loser.hlc.raw)\u{1f}\(loser.node)"
        return String(SHA256.hash(key).hexString.prefix(12))
    }
}
