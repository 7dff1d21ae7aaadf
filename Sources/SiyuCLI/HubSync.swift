import Foundation
import SiyuCore
import SiyuStore
import SiyuNet
import SiyuNode
import SiyuCommandLine

/// What `siyu sync` and `siyu verify` share: their network options, running the node's sync
/// engine (`SiyuNode.SyncRound`, the same one `siyu-node sync --once` runs) on a replica that
/// `siyu-node init` set up, and the report of what moved.
///
/// Guarantees: a replica that is not set up, is being synced by another process (a `siyu-node
/// run` daemon) or is not a replica is refused with a `CLIError` naming what to do, before any
/// connection is made; log lines go to standard error, below `--log-level` (default error).
enum HubSync {
    /// The hint when the replica itself failed during a round: it is not the hub's fault.
    static func repairHint(_ path: String) -> String {
        "the replica, not the hub, is the problem: see what is wrong with siyu check --db \(path), repair it with siyu rebuild --db \(path), then run again"
    }

    static let timeoutOption = OptionSpec.value("timeout", "SECONDS", "give up (exit 1) when not done after this long (default 60)")
    static let logLevelOption = OptionSpec.value("log-level", "LEVEL", "error (default), warn, info or debug: the sync's log lines, on standard error")

    /// The parsed network options.
    struct Settings {
        var timeout: Int
        var level: OperatorLog.Level

        init(parsing arguments: ParsedArguments) throws {
            timeout = try arguments.value("timeout", as: Int.self) ?? 60
            guard timeout >= 1 else { throw CommandLineError.usage("--timeout must be 1 or more; got \(timeout)", hint: nil) }
            if let text = arguments.value("log-level") {
                guard let level = OperatorLog.Level(name: text) else {
                    throw CommandLineError.usage("--log-level must be error, warn, info or debug; got '\(TerminalText.escaped(text))'", hint: nil)
                }
                self.level = level
            } else {
                level = .error
            }
        }
    }

    /// Runs one round in `mode` over the replica at `path`.
    static func run(_ path: String, mode: NodeDaemon.Mode, holder: String, settings: Settings, context: CLIContext) throws -> SyncRound.Report {
        _ = try ReplicaAccess.inspect(path)
        let errors = context.io.error
        let options = SyncRound.Options(holder: holder, logLevel: settings.level, logSink: { line in errors.write(line) },
                                        maxBackoff: .seconds(max(1, min(30, settings.timeout / 4))), timeout: .seconds(settings.timeout))
        do {
            return try SyncRound.run(path: path, mode: mode, options: options)
        } catch let e as NodeError {
            switch e {
            case .alreadySyncing:
                throw CLIError(e.message, hint: "a siyu-node run daemon already syncs it: it pushes edits within a second and pulls every 5 s (where it stands: siyu status --db \(path)); to run this command, stop the daemon (SIGTERM) first")
            default:
                throw CLIError(e.message, hint: e.hint)
            }
        } catch {
            throw CLIError.from(error, doing: "syncing with the hub", path: path)
        }
    }

    /// What moved, as `--json` prints it (fields in docs/CLI.md).
    struct Moved: Encodable {
        var pushedOps: Int
        var pulledOps: Int
        var snapshots: Int
        var quarantinedOps: [UInt64]
        var quarantinedTotal: Int
        var position: UInt64
        var ackedSeq: UInt64
        var connections: Int
        var problems: [String]

        init(_ r: SyncRound.Report) {
            pushedOps = r.tally.pushedOps
            pulledOps = r.tally.pulledOps
            snapshots = r.tally.snapshots
            quarantinedOps = r.tally.quarantined
            quarantinedTotal = r.quarantinedTotal
            position = r.position
            ackedSeq = r.ackedSeq
            connections = r.tally.connections
            problems = r.tally.problems
        }
    }

    /// The report's lines for people.
    static func lines(_ r: SyncRound.Report) -> [String] {
        let t = r.tally
        var out = ["  pushed \(t.pushedOps) op\(t.pushedOps == 1 ? "" : "s") (own ops acknowledged up to #\(r.ackedSeq))",
                   "  pulled \(t.pulledOps) op\(t.pulledOps == 1 ? "" : "s")"
                   + (t.snapshots > 0 ? ", loaded \(t.snapshots) snapshot\(t.snapshots == 1 ? "" : "s")" : "")
                   + " (hub position \(r.position))"]
        if !t.quarantined.isEmpty {
            out.append("  quarantined \(t.quarantined.count) own op\(t.quarantined.count == 1 ? "" : "s") the hub refused for good: "
                       + t.quarantined.prefix(10).map { "#\($0)" }.joined(separator: ", ") + (t.quarantined.count > 10 ? ", …" : ""))
        }
        if r.quarantinedTotal > t.quarantined.count {
            out.append("  \(r.quarantinedTotal) quarantined own ops in all (kept in this replica, never pushed)")
        }
        for p in t.problems { out.append("  problem: \(TerminalText.escaped(p))") }
        return out
    }
}
