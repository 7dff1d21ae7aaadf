/// An order's status. The chain draft < placed < paid < fulfilled < completed merges by taking the
/// greatest; `cancelled` beats draft and placed; `refunded` beats everything and needs a payment first.
public enum OrderStatus: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case draft = 0, placed, paid, fulfilled, completed, cancelled, refunded

    public var name: String {
        switch self {
        case .draft: return "draft"
        case .placed: return "placed"
        case .paid: return "paid"
        case .fulfilled: return "fulfilled"
        case .completed: return "completed"
        case .cancelled: return "cancelled"
        case .refunded: return "refunded"
        }
    }

    public var description: String { name }

    public init?(name: String) {
        guard let s = OrderStatus.allCases.first(where: { $0.name == name }) else { return nil }
        self = s
    }

    /// Position on the main chain; nil for cancelled and refunded.
    public var chainRank: Int? { rawValue <= OrderStatus.completed.rawValue ? Int(rawValue) : nil }

    /// Whether money has been taken: paid, fulfilled, completed (and refunded, which follows a payment).
    public var isPaidOrLater: Bool { self != .draft && self != .placed && self != .cancelled }

    /// Whether a local edit may move an order from `self` to `next`. Forward along the chain
    /// (never past `paid` without paying), cancel before payment, refund after payment.
    public func canMove(to next: OrderStatus) -> Bool {
        switch (self, next) {
        case (.cancelled, _), (.refunded, _): return false
        case (_, .cancelled): return self == .draft || self == .placed
        case (_, .refunded): return isPaidOrLater
        default:
            guard let from = chainRank, let to = next.chainRank, to > from else { return false }
            return from >= OrderStatus.paid.rawValue.asInt || to <= OrderStatus.paid.rawValue.asInt
        }
    }

    /// The legal next statuses from this one, for error hints.
    public var legalMoves: [OrderStatus] { OrderStatus.allCases.filter { canMove(to: $0) } }

    /// The merged status of a set of status moves (a join; order-independent).
    public static func merge(_ statuses: some Sequence<OrderStatus>) -> OrderStatus? {
        var chainMax: OrderStatus?
        var cancelled = false, refunded = false
        for s in statuses {
            switch s {
            case .cancelled: cancelled = true
            case .refunded: refunded = true
            default: if chainMax == nil || s.rawValue > chainMax!.rawValue { chainMax = s }
            }
        }
        if refunded { return .refunded }
        if let c = chainMax, c.isPaidOrLater { return c }
        if cancelled { return .cancelled }
        return chainMax
    }
}

extension UInt8 { var asInt: Int { Int(self) } }
