import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu status --db FILE [--json]`: who the replica belongs to and where it stands.
struct StatusCommand: Command {
    static let spec = CommandSpec(
        name: "status",
        summary: "node, role, store, clock, ops, outbox, sync cursors, conflicts and digest",
        options: [ReplicaAccess.dbOption, ReplicaAccess.jsonOption])

    var path: String
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        json = arguments.flag("json")
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        let report = try ReplicaAccess.perform("reading the status", path: path) { try StatusReport(replica) }
        if json {
            try JSONOutput.write(report, to: context.io.output)
            return .success
        }
        let out = context.io.output
        let scope = report.role == "hq" ? "all stores" : report.store.map { "store \(Render.text($0))" } ?? "no store recorded"
        out.line("node \(Render.text(report.node)) (\(report.role)), \(scope)")
        out.line("file layout \(report.fileLayout), data model \(report.dataModel), clock \(report.clock.millis).\(report.clock.logical)"
                 + (report.clock.millis > 0 ? " (\(Render.time(HLC(millis: report.clock.millis, logical: UInt16(report.clock.logical)))))" : ""))
        out.line("ops \(report.ops) (\(report.ownOps) own), outbox \(report.outbox)")
        let c = report.scope
        out.line("scope \(c.store.map { "store \(Render.text($0))" } ?? (report.role == "hq" ? "all stores" : "no store recorded")): "
                 + "\(Render.count(c.customers, "customer")), \(Render.count(c.groups, "group")), \(Render.count(c.orders, "order")) in this file")
        if let log = report.hubLog {
            out.line("hub file: log head \(log.head), \(log.nodes) node\(log.nodes == 1 ? "" : "s") registered (list them with siyu-hub nodes --db FILE)")
        } else {
            out.line(report.hub.map { "hub \(Render.text($0)) (recorded by siyu-node init)" } ?? "hub: none recorded (set one up with siyu-node init)")
            if report.syncPeers.isEmpty {
                out.line("sync: never synced (no hub cursor yet)")
            } else {
                for p in report.syncPeers {
                    out.line("sync with \(Render.text(p.peer)): received up to position \(p.position), own ops acknowledged up to #\(p.acked)")
                }
            }
            if report.hub == nil && report.syncDaemon == nil {
                // No hub: no daemon can sync this file.
            } else if let daemon = report.syncDaemon {
                out.line("sync daemon: \(Render.text(daemon.holder))\(daemon.pid.map { ", pid \($0)" } ?? "") holds \(Render.text(SyncLock.lockPath(for: path)))")
            } else {
                out.line("sync daemon: none running (nothing holds \(Render.text(SyncLock.lockPath(for: path))))")
            }
            if let contact = report.lastContact {
                let when = Render.date(unixMillis: Int64(clamping: contact.atMillis))
                out.line("last contact \(when): hub log head \(contact.hubHead), this node now at position \(contact.position): "
                         + (contact.behind > 0 ? "behind by \(Render.count(contact.behind, "op")) as of \(when)" : "caught up as of \(when)"))
            } else if report.hub != nil {
                out.line("last contact: never (the daemon has not reached the hub yet)")
            }
            if let last = report.lastSync {
                out.line("last sync \(Render.date(unixMillis: Int64(clamping: last.atMillis))): \(last.ok ? "ok" : "FAILED"), \(Render.text(String(last.result.prefix(300))))")
            }
            if !report.quarantined.isEmpty {
                out.line("quarantined ops \(report.quarantined.count) (the hub refused them for good; they stay here, out of the outbox):")
                for q in report.quarantined.prefix(20) {
                    out.line("  #\(q.seq) \(Render.date(unixMillis: Int64(clamping: q.atMillis))) code \(q.code): \(Render.text(String(q.reason.prefix(300))))")
                }
                if report.quarantined.count > 20 { out.line("  … and \(report.quarantined.count - 20) more (status --json lists them all)") }
            }
        }
        out.line("open conflicts \(report.conflicts.open) (\(report.conflicts.acknowledged) acknowledged, \(report.conflicts.overridden) overridden)")
        out.line("digest \(report.digest)")
        return .success
    }
}

/// What `siyu status --json` prints.
/// Fields: `node`, `role` (hq/store), `store` (null for HQ or when not recorded), `file_layout`,
/// `data_model`, `clock` (clock object), `ops`, `own_ops`, `outbox` (own ops no hub has
/// acknowledged), `sync_peers` ([{`peer`, `position`, `acked`}]), `hub` (the address `siyu-node
/// init` recorded, or null), `last_sync` ({`at` (ISO 8601 UTC), `at_millis`, `ok`, `result`} as the
/// node daemon last recorded it, or null), `hub_log` ({`head`, `nodes`} for a hub's own file, else
/// null), `conflicts` ({`open`, `acknowledged`, `overridden`}), `digest` (hex SHA-256 of the
/// merged state), `scope` ({`store`, `customers`, `groups`, `orders`}: what this file holds),
/// `sync_daemon` ({`holder`, `pid`} of the process holding FILE-sync-lock, or null),
/// `last_contact` ({`at`, `at_millis`, `hub_head`, `position`, `behind`}, or null before the
/// first), `quarantined` ([{`seq`, `code`, `reason`, `at`, `at_millis`}]).
struct StatusReport: Encodable {
    struct Peer: Encodable { var peer: String; var position: Int64; var acked: Int64 }
    struct Counts: Encodable { var open = 0, acknowledged = 0, overridden = 0 }
    struct LastSync: Encodable { var at: String; var atMillis: UInt64; var ok: Bool; var result: String }
    struct HubLog: Encodable { var head: UInt64; var nodes: Int }

    var node: String
    var role: String
    var store: String?
    var fileLayout: Int
    var dataModel: Int
    var clock: ClockJSON
    var ops: Int
    var ownOps: Int
    var outbox: Int
    var syncPeers: [Peer]
    var hub: String?
    var lastSync: LastSync?
    var hubLog: HubLog?
    var conflicts: Counts
    var digest: String
    var scope: Scope
    var syncDaemon: SyncDaemon?
    var lastContact: LastContact?
    var quarantined: [Quarantined]

    struct Scope: Encodable { var store: String?; var customers: Int; var groups: Int; var orders: Int }
    struct SyncDaemon: Encodable { var holder: String; var pid: Int? }
    struct LastContact: Encodable { var at: String; var atMillis: UInt64; var hubHead: UInt64; var position: UInt64; var behind: UInt64 }
    struct Quarantined: Encodable { var seq: UInt64; var code: UInt64; var reason: String; var at: String; var atMillis: UInt64 }

    private enum CodingKeys: String, CodingKey {
        case node, role, store, fileLayout, dataModel, clock, ops, ownOps, outbox, syncPeers, hub, lastSync, hubLog, conflicts, digest
        case scope, syncDaemon, lastContact, quarantined
    }

    /// Every field, the optional ones as null when absent (the documented shape).
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(node, forKey: .node)
        try c.encode(role, forKey: .role)
        try c.encode(store, forKey: .store)
        try c.encode(fileLayout, forKey: .fileLayout)
        try c.encode(dataModel, forKey: .dataModel)
        try c.encode(clock, forKey: .clock)
        try c.encode(ops, forKey: .ops)
        try c.encode(ownOps, forKey: .ownOps)
        try c.encode(outbox, forKey: .outbox)
        try c.encode(syncPeers, forKey: .syncPeers)
        try c.encode(hub, forKey: .hub)
        try c.encode(lastSync, forKey: .lastSync)
        try c.encode(hubLog, forKey: .hubLog)
        try c.encode(conflicts, forKey: .conflicts)
        try c.encode(digest, forKey: .digest)
        try c.encode(scope, forKey: .scope)
        try c.encode(syncDaemon, forKey: .syncDaemon)
        try c.encode(lastContact, forKey: .lastContact)
        try c.encode(quarantined, forKey: .quarantined)
    }

    init(_ r: Replica) throws {
        node = r.node
        role = r.role.description
        store = try r.recordedStore()
        fileLayout = try r.schemaVersion()
        dataModel = currentSchemaVersion
        clock = ClockJSON(r.lastClock)
        let counts = try r.opCounts()
        ops = counts.total
        ownOps = counts.own
        syncPeers = try r.storedCursors().map { Peer(peer: $0.peer, position: $0.position, acked: $0.acked) }
        let acked = Int(syncPeers.map(\.acked).max() ?? 0)
        outbox = max(0, ownOps - acked)
        hub = try r.recordedHub()
        lastSync = try r.lastSyncRecord().map { LastSync(at: ClockJSON.iso($0.at), atMillis: $0.at, ok: $0.ok, result: $0.result) }
        let registered = try r.registeredNodes().count
        hubLog = registered > 0 ? HubLog(head: try r.logHead(), nodes: registered) : nil
        conflicts = Counts()
        for c in try r.conflicts() {
            switch c.state {
            case .open: conflicts.open += 1
            case .acknowledged: conflicts.acknowledged += 1
            case .overridden: conflicts.overridden += 1
            }
        }
        digest = try r.digest().hexString
        scope = Scope(store: store, customers: try r.rowCount(of: .customers), groups: try r.rowCount(of: .groupChats),
                      orders: try r.rowCount(of: .orders))
        syncDaemon = SyncLock.holder(replicaPath: r.path).map { text in
            // The holder wrote "siyu-node run, pid 4242".
            guard let cut = text.range(of: ", pid ", options: .backwards), let pid = Int(text[cut.upperBound...]) else {
                return SyncDaemon(holder: text, pid: nil)
            }
            return SyncDaemon(holder: String(text[..<cut.lowerBound]), pid: pid)
        }
        let position = UInt64(clamping: syncPeers.map(\.position).max() ?? 0)
        lastContact = try r.lastHubHead().map { seen in
            LastContact(at: ClockJSON.iso(seen.at), atMillis: seen.at, hubHead: seen.head, position: position,
                        behind: seen.head > position ? seen.head - position : 0)
        }
        quarantined = try r.quarantinedOps().map { Quarantined(seq: $0.seq, code: $0.code, reason: $0.message, at: ClockJSON.iso($0.at), atMillis: $0.at) }
    }
}
