/// A hybrid logical clock reading: physical milliseconds since the Unix epoch in the upper 48 bits,
/// a logical counter in the lower 16. Readings from one node strictly increase, and a node that has
/// seen a reading always issues greater ones afterwards, so the order respects causality.
public struct HLC: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: UInt64

    public init(raw: UInt64) { self.raw = raw }

    public init(millis: UInt64, logical: UInt16) {
        raw = (millis << 16) | UInt64(logical)
    }

    public static let zero = HLC(raw: 0)

    public var millis: UInt64 { raw >> 16 }
    public var logical: UInt16 { UInt16(truncatingIfNeeded: raw) }

    public static func < (a: HLC, b: HLC) -> Bool { a.raw < b.raw }

    public var description: String { "\(millis).\(logical)" }
}

/// A node's hybrid logical clock. Wall time is injected, so the clock is deterministic in tests.
/// Guarantees: `tick` returns strictly increasing readings; `check` refuses (and `millisBeyondWindow`
/// reports) a remote reading more than `maxDriftMillis` ahead of local wall time, so an op that
/// passed them moves the clock at most that far ahead of wall time.
public struct HybridClock: Sendable {
    /// The default window for remote clocks running ahead: 30 seconds (docs/RELIABILITY.md,
    /// "Clocks", says why). A remote op beyond it is refused on its own and may come again later.
    public static let defaultMaxDriftMillis: UInt64 = 30 * 1000

    public private(set) var last: HLC
    public let maxDriftMillis: UInt64

    public init(last: HLC = .zero, maxDriftMillis: UInt64 = HybridClock.defaultMaxDriftMillis) {
        self.last = last
        self.maxDriftMillis = maxDriftMillis
    }

    /// A new reading for a local event at wall time `wallMillis`.
    public mutating func tick(wallMillis: UInt64) -> HLC {
        if wallMillis > last.millis {
            last = HLC(millis: wallMillis, logical: 0)
        } else if last.logical == UInt16.max {
            last = HLC(millis: last.millis + 1, logical: 0)
        } else {
            last = HLC(raw: last.raw + 1)
        }
        return last
    }

    /// Checks a remote reading against local wall time without changing the clock.
    public func check(_ remote: HLC, from node: NodeID, wallMillis: UInt64) throws {
        if millisBeyondWindow(remote, wallMillis: wallMillis) != nil {
            throw CoreError.clockTooFarAhead(node: node, remoteMillis: remote.millis,
                                             localMillis: wallMillis, maxDriftMillis: maxDriftMillis)
        }
    }

    /// How many milliseconds a remote reading is beyond the window (more than `maxDriftMillis`
    /// ahead of `wallMillis`); nil when it is within it. Saturating: never traps.
    public func millisBeyondWindow(_ remote: HLC, wallMillis: UInt64) -> UInt64? {
        let limit = wallMillis.addingReportingOverflow(maxDriftMillis)
        if limit.overflow || remote.millis <= limit.partialValue { return nil }
        return remote.millis - limit.partialValue
    }

    /// Moves the clock past a remote reading (after `check` accepted it), so later local
    /// readings order after everything this node has seen.
    public mutating func observe(_ remote: HLC) {
        if remote > last { last = remote }
    }
}
