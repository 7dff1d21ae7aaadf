import SiyuCore
import SiyuStore
import SiyuNode
import SiyuCommandLine

/// `siyu sync --now --db FILE [--timeout SECONDS] [--json]`: one full sync round with the hub the
/// replica is set up for (`siyu-node init`), the engine of `siyu-node sync --once`.
struct SyncCommand: Command {
    static let spec = CommandSpec(
        name: "sync",
        summary: "one full sync round with the replica's hub now: push everything, pull to the head; exit 0 only when nothing is left",
        options: [
            .flag("now", "sync now, once (required; continuous sync is siyu-node run)"),
            ReplicaAccess.dbOption,
            HubSync.timeoutOption,
            HubSync.logLevelOption,
            ReplicaAccess.jsonOption,
        ],
        discussion: """
        The replica must have been set up with siyu-node init (the hub's address and the node's secret are kept in
        it). Prints what moved: own ops pushed (acknowledged by the hub), ops pulled, snapshots loaded, own ops the
        hub refused for good (quarantined), problems met on the way. Exit 0 only when nothing is left to push or
        pull; 1 otherwise, with the reason. A replica a siyu-node run daemon is syncing is refused at once (the
        daemon already syncs it). Reconnects with backoff until --timeout.
        """)

    var path: String
    var settings: HubSync.Settings
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        guard arguments.flag("now") else {
            throw CommandLineError.usage("sync runs one round now and needs --now",
                                         hint: "siyu sync --now --db FILE; for continuous sync: siyu-node run --db FILE")
        }
        path = try arguments.required("db")
        settings = try HubSync.Settings(parsing: arguments)
        json = arguments.flag("json")
    }

    /// What `siyu sync --now --json` prints.
    struct Report: Encodable {
        var node: String
        var hub: String
        var synced: Bool
        var moved: HubSync.Moved
        var error: String?
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let report = try HubSync.run(path, mode: .once, holder: "siyu sync --now", settings: settings, context: context)
        var failure: String?
        switch report.outcome {
        case .synced, .verified: failure = nil
        case .stopped: failure = "sync interrupted before it finished"
        case let .failed(why): failure = "sync did not finish: \(why)"
        }
        if json {
            try JSONOutput.write(Report(node: report.node, hub: report.hub, synced: failure == nil, moved: HubSync.Moved(report), error: failure),
                                 to: context.io.output)
        } else {
            let out = context.io.output
            out.line(failure == nil
                     ? "synced \(Render.text(path)) with hub \(Render.text(report.hub)): nothing left to push or pull"
                     : "not synced: \(Render.text(path)) with hub \(Render.text(report.hub))")
            HubSync.lines(report).forEach(out.line)
        }
        if let failure, failure.contains(NodeDaemon.replicaFailedPrefix) {
            throw CLIError(failure, hint: HubSync.repairHint(path))
        }
        if let failure {
            throw CLIError(failure, hint: "check that the hub runs and knows this node (siyu-hub nodes --db HUB.db); then run again: siyu sync --now --db \(path)")
        }
        return .success
    }
}
