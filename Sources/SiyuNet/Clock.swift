import Foundation
import Glibc

/// A point in time on a monotonic clock: nanoseconds from an arbitrary origin (for the system
/// clock, the boot). Only differences between deadlines of one clock mean anything.
public struct Deadline: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func < (a: Deadline, b: Deadline) -> Bool { a.nanoseconds < b.nanoseconds }

    /// This deadline moved by `duration` (saturating: never wraps; negative durations count as 0).
    public func advanced(by duration: Duration) -> Deadline {
        let (sum, overflow) = nanoseconds.addingReportingOverflow(UInt64(duration.nanosecondsClamped))
        return Deadline(nanoseconds: overflow ? .max : sum)
    }

    /// Nanoseconds from `self` until `later`, or 0 if `later` is not after `self`.
    public func nanoseconds(until later: Deadline) -> UInt64 {
        later.nanoseconds > nanoseconds ? later.nanoseconds - nanoseconds : 0
    }

    public var description: String { "\(nanoseconds) ns" }
}

/// The clock an event loop reads for its timers. Injected, so tests can drive time by hand
/// (`ManualClock`); the real one is `SystemClock` (CLOCK_MONOTONIC). Must be safe to read from any
/// thread and never go backwards.
public protocol MonotonicClock: Sendable {
    func now() -> Deadline
}

/// CLOCK_MONOTONIC: unaffected by changes of the wall clock (NTP steps, a clerk fixing the time).
public struct SystemClock: MonotonicClock {
    public init() {}

    public func now() -> Deadline {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        // tv_sec and tv_nsec are never negative for CLOCK_MONOTONIC.
        return Deadline(nanoseconds: UInt64(max(0, time.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, time.tv_nsec)))
    }
}

/// A clock that moves only when told to, for tests. Any thread may read or advance it. An event
/// loop does not notice that the clock moved until it next wakes up: after `advance(by:)`, call
/// `EventLoop.execute { }` (or `wakeUp()`) so it runs the timers that became due.
public final class ManualClock: MonotonicClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Deadline

    public init(start: Deadline = Deadline(nanoseconds: 1_000_000_000)) { current = start }

    public func now() -> Deadline { lock.withLock { current } }

    /// Moves the clock forward (a negative duration does nothing).
    public func advance(by duration: Duration) {
        lock.withLock { current = current.advanced(by: duration) }
    }
}
