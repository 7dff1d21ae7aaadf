import SiyuCore
import SiyuStore
import SiyuNode
import SiyuCommandLine

/// `siyu verify --db FILE [--timeout SECONDS] [--json]`: a full sync round, then this replica's
/// state digest next to the hub's digest of the node's scope at the same log position.
struct VerifyCommand: Command {
    /// DIGEST_REQUESTs asked at most while the hub's log keeps moving on between a pull and the answer.
    static let maxAttempts = 5

    static let spec = CommandSpec(
        name: "verify",
        summary: "sync, then compare this replica's state digest with the hub's at the same log position (exit 0 equal, 1 differ)",
        options: [ReplicaAccess.dbOption, HubSync.timeoutOption, HubSync.logLevelOption, ReplicaAccess.jsonOption],
        discussion: """
        Runs the round of siyu sync --now (push everything, pull to the hub's head), then asks the hub for its
        state digest of this node's scope (DIGEST_REQUEST) and prints both digests with the hub's log position.
        If the hub's log moves on before it answers, the node pulls again and asks again (at most 5 times; then
        "hub busy, try again"). Exit 0 when the digests are equal, 1 when they differ (with what to do) or the
        check could not be made (message on standard error), 2 on wrong usage. A hub too old to answer is
        reported as "hub does not support verify".
        """)

    var path: String
    var settings: HubSync.Settings
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        settings = try HubSync.Settings(parsing: arguments)
        json = arguments.flag("json")
    }

    /// What `siyu verify --json` prints.
    struct Report: Encodable {
        var node: String
        var hub: String
        var position: UInt64
        var hubDigest: String
        var localDigest: String
        var equal: Bool
        var attempts: Int
        var moved: HubSync.Moved
        var hint: String?
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let report = try HubSync.run(path, mode: .verify(maxAttempts: VerifyCommand.maxAttempts), holder: "siyu verify",
                                     settings: settings, context: context)
        let comparison: DigestComparison
        switch report.outcome {
        case let .verified(c):
            comparison = c
        case .synced, .stopped:
            throw CLIError("verify interrupted before the digests were compared", hint: "run it again: siyu verify --db \(path)")
        case let .failed(why):
            if report.hubLacksDigests {
                throw CLIError("hub does not support verify: it does not know DIGEST_REQUEST (\(why))",
                               hint: "upgrade siyu-hub on the hub; until then, with both synced, compare the digests of siyu status --db FILE; and, on the hub's machine, of siyu status --db HUB.db")
            }
            if why.hasPrefix("hub busy") {
                throw CLIError(why, hint: "other nodes keep pushing; in a moment, run again: siyu verify --db \(path)")
            }
            if why.contains(NodeDaemon.replicaFailedPrefix) {
                throw CLIError("verify did not finish: \(why)", hint: HubSync.repairHint(path))
            }
            throw CLIError("verify did not finish: \(why)",
                           hint: "check that the hub runs and knows this node (siyu-hub nodes --db HUB.db); then run again: siyu verify --db \(path)")
        }
        let hint = comparison.isEqual ? nil : differHint(report)
        if json {
            try JSONOutput.write(Report(node: report.node, hub: report.hub, position: comparison.position,
                                        hubDigest: comparison.hubDigest.hexString, localDigest: comparison.localDigest.hexString,
                                        equal: comparison.isEqual, attempts: comparison.attempts, moved: HubSync.Moved(report), hint: hint),
                                 to: context.io.output)
        } else {
            let out = context.io.output
            out.line("hub \(Render.text(report.hub)) at log position \(comparison.position)")
            out.line("  hub   \(comparison.hubDigest.hexString)")
            out.line("  here  \(comparison.localDigest.hexString)")
            if comparison.isEqual {
                out.line("equal: \(Render.text(path)) holds the hub's state of this node's scope at position \(comparison.position)")
            } else {
                out.line("DIFFER: \(Render.text(path)) does not hold the hub's state at position \(comparison.position)")
                out.line("hint: \(hint ?? "")")
            }
            out.line("sync round:")
            HubSync.lines(report).forEach(out.line)
        }
        return comparison.isEqual ? .success : .failure
    }

    /// What to do about digests that differ.
    func differHint(_ report: SyncRound.Report) -> String {
        var hint = ""
        if report.quarantinedTotal > 0 {
            hint = "this replica holds \(report.quarantinedTotal) own op(s) the hub refused for good (quarantined): they stay in its state, so the digests differ until new edits correct those records. Otherwise: "
        }
        return hint + "if the tables were edited by hand, recompute them from the op log (siyu rebuild --db \(path)) and verify again; if the digests still differ, this replica lacks ops the hub has: write them on the hub's machine (siyu export-changes --db HUB.db --out CHANGES), load them here (siyu import-changes --db \(path) CHANGES) and verify again, or set up a fresh replica (siyu-node init) that loads a snapshot"
    }
}
