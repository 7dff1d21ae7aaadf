import Foundation
import SiyuCore

/// The operator log of `siyu-hub` and `siyu-node`: one line per session event, to a sink
/// (standard error in the executables).
///
/// Line shape: `2026-11-26T13:47:27.123Z INFO  hub node=xihu peer=127.0.0.1:51234 t=1.204s pushed 12 ops …`
/// — UTC time, level, who, then what happened. Callers escape node ids and peer text
/// (`IdentifierRule.printable`), so a hostile peer cannot write control characters into the log.
///
/// Guarantees: lines below `level` are not formatted at all; each call writes exactly one line.
/// Thread-safe (a lock around the sink).
public final class OperatorLog: @unchecked Sendable {
    /// How much to log. Ordered: `error` < `warn` < `info` < `debug`.
    public enum Level: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
        case error = 0, warn, info, debug

        public init?(name: String) {
            guard let l = Level.allCases.first(where: { $0.description == name }) else { return nil }
            self = l
        }

        public var description: String {
            switch self {
            case .error: return "error"
            case .warn: return "warn"
            case .info: return "info"
            case .debug: return "debug"
            }
        }

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public let level: Level
    private let lock = NSLock()
    private let sink: (String) -> Void

    public init(level: Level = .info, sink: @escaping (String) -> Void) {
        self.level = level
        self.sink = sink
    }

    /// A log that writes nothing.
    public static let silent = OperatorLog(level: .error) { _ in }

    /// Writes `text()` as one line if `at` is enabled.
    public func write(_ at: Level, _ text: @autoclosure () -> String) {
        guard at <= level else { return }
        let line = "\(OperatorLog.timestamp()) \(at.description.uppercased().padding(toLength: 5, withPad: " ", startingAt: 0)) \(text())\n"
        lock.lock()
        defer { lock.unlock() }
        sink(line)
    }

    /// ISO 8601 UTC with milliseconds.
    public static func timestamp() -> String {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        var seconds = time_t(t.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = Int(t.tv_nsec / 1_000_000)
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(msText)Z"
    }

    /// Seconds with milliseconds: `1.204s`.
    public static func seconds(_ millis: UInt64) -> String {
        let ms = millis % 1000
        return "\(millis / 1000).\(ms < 10 ? "00" : ms < 100 ? "0" : "")\(ms)s"
    }
}
