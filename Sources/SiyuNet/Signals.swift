import Dispatch
import Foundation
import Glibc

/// A POSIX signal, named so that modules which do not import Glibc can ask for one.
public struct ProcessSignal: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Ctrl-C in a terminal.
    public static let interrupt = ProcessSignal(rawValue: SIGINT)
    /// `kill PID`, systemd stopping a service.
    public static let terminate = ProcessSignal(rawValue: SIGTERM)
    /// The terminal went away; daemons often take it as "reload".
    public static let hangup = ProcessSignal(rawValue: SIGHUP)
    /// Free for the program's own use (tests).
    public static let user1 = ProcessSignal(rawValue: SIGUSR1)
    public static let user2 = ProcessSignal(rawValue: SIGUSR2)

    public var description: String {
        switch rawValue {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGHUP: return "SIGHUP"
        case SIGUSR1: return "SIGUSR1"
        case SIGUSR2: return "SIGUSR2"
        default: return "signal \(rawValue)"
        }
    }
}

/// Turns signals into a clean stop of an event loop: while it exists, each of its signals no longer
/// kills the process; instead `willStop` runs on the loop thread (close connections, say goodbye,
/// checkpoint) and then the loop stops as by `EventLoop.stop()`. Dropping or `cancel()`ing the
/// watcher leaves the signals ignored (their default action is not restored: a second Ctrl-C during
/// shutdown should not kill a process that is writing its replica). Any thread.
///
/// Dispatch hooks the signal a moment after `init` returns (on its own thread); a signal arriving
/// in between is ignored, not fatal. On Linux Dispatch takes over the signal's handler for good.
public final class SignalWatcher: @unchecked Sendable {
    private let lock = NSLock()
    private var sources: [any DispatchSourceSignal]

    /// Watches `signals` for `loop`. `willStop` gets the signal that arrived, once, on the loop thread.
    public init(_ signals: [ProcessSignal] = [.interrupt, .terminate], loop: EventLoop,
                willStop: (@Sendable (ProcessSignal) -> Void)? = nil) {
        let queue = DispatchQueue(label: "siyu-net.signals")
        let once = Once()
        sources = signals.map { signal in
            // Ignored first, so the signal reaches the dispatch source instead of killing the process.
            _ = Glibc.signal(signal.rawValue, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal.rawValue, queue: queue)
            source.setEventHandler {
                guard once.claim() else { return }
                if let willStop { try? loop.execute { willStop(signal) } }
                loop.stop()
            }
            source.resume()
            return source
        }
    }

    deinit { cancel() }

    /// Stops watching.
    public func cancel() {
        let current = lock.withLock { () -> [any DispatchSourceSignal] in
            defer { sources = [] }
            return sources
        }
        for source in current { source.cancel() }
    }
}

/// True for the first `claim()` only. Any thread.
private final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false

    func claim() -> Bool {
        lock.withLock {
            defer { claimed = true }
            return !claimed
        }
    }
}
