import Foundation

/// Wall time (milliseconds since the Unix epoch) shared by the replicas of a test: it moves only
/// when the test moves it, so a test's stamps are the same on every run. Reading and setting are
/// safe from any thread.
public final class WallClock: @unchecked Sendable {
    /// 2025-11-24 16:00 UTC, where every test's wall time starts unless it says otherwise.
    public static let start: UInt64 = 1_764_000_000_000

    private let lock = NSLock()
    private var milliseconds: UInt64

    public init(now: UInt64 = WallClock.start) { milliseconds = now }

    /// The time now; a test may set it.
    public var now: UInt64 {
        get { lock.withLock { milliseconds } }
        set { lock.withLock { milliseconds = newValue } }
    }

    /// Moves the time on by `ms` milliseconds.
    public func advance(_ ms: UInt64 = 1) { lock.withLock { milliseconds += ms } }
}
