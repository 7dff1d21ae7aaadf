import Foundation
import SiyuCLI
import SiyuCommandLine
import SiyuCore
import SiyuHub
import SiyuNet
import SiyuSession
import SiyuStore

/// What every `siyu-hub` command runs with.
struct HubContext: CommandContext {
    var io: CommandIO
}

/// A failure of `siyu-hub` a person can act on.
struct HubToolError: ActionableError {
    var message: String
    var hint: String
}

/// The `siyu-hub` command line.
enum HubProgram {
    static let program = CommandLineProgram<HubContext>(
        name: "siyu-hub",
        summary: "Siyu hub: the server every store node and HQ syncs with (Protocol/SPEC.md).",
        commands: [HubInitCommand.self, HubAddNodeCommand.self, HubRotateSecretCommand.self, HubRemoveNodeCommand.self,
                   HubNodesCommand.self, HubCompactCommand.self, HubServeCommand.self, HubBackupCommand.self],
        footer: """
        Typical use: siyu-hub init --db hub.db --id HUB; siyu-hub add-node --db hub.db NODE --role store > NODE.secret;
        siyu-hub serve --db hub.db --listen 127.0.0.1:7400.
        Exit codes: 0 ok, 1 failure (message and hint on stderr), 2 usage error.
        """,
        version: SiyuVersion.line,
        describeFailure: describe)

    static func describe(_ error: Error) -> ActionableError? {
        if let e = error as? HubToolError { return e }
        if let e = error as? NetError { return HubToolError(message: e.message, hint: e.hint ?? "check the address and the network") }
        return CLIError.from(error)
    }

    static let dbOption = OptionSpec.value("db", "FILE", required: true, "the hub's replica file")

    static func parseRole(_ text: String) throws -> Role {
        switch text {
        case "hq": return .hq
        case "store": return .store
        default: throw CommandLineError.usage("--role must be hq or store; got '\(TerminalText.escaped(text))'", hint: nil)
        }
    }

    static func parseLevel(_ arguments: ParsedArguments) throws -> OperatorLog.Level {
        guard let text = arguments.value("log-level") else { return .info }
        guard let level = OperatorLog.Level(name: text) else {
            throw CommandLineError.usage("--log-level must be error, warn, info or debug; got '\(TerminalText.escaped(text))'", hint: nil)
        }
        return level
    }

    static func openHub(_ path: String) throws -> Replica {
        guard FileManager.default.fileExists(atPath: path) else {
            throw HubToolError(message: "\(path) does not exist; nothing was written",
                               hint: "make a hub with: siyu-hub init --db \(path) --id HUB (then register nodes with siyu-hub add-node)")
        }
        do {
            let info = try Replica.inspect(path: path)
            if info.role == .store {
                throw HubToolError(message: "\(path) is the replica of store node '\(info.node)', not a hub's file; nothing was served",
                                   hint: "give the hub's own file (made by siyu-hub init); this replica syncs with a hub through siyu-node run --db \(path)")
            }
            if let settings = try? NodeSettings.read(path: path) {
                throw HubToolError(message: "\(path) is the replica of node '\(info.node)', set up by siyu-node init to sync with hub \(settings.hub); not a hub's file",
                                   hint: "give the hub's own file (made by siyu-hub init); this replica syncs through siyu-node run --db \(path)")
            }
            guard info.fileLayout >= 4 else {
                throw HubToolError(message: "\(path) has file layout \(info.fileLayout); a hub needs layout 4 or later",
                                   hint: "open it once with this build's siyu (siyu status --db FILE) to migrate it, or make a new hub with siyu-hub init")
            }
            let replica = try Replica(existing: path)
            restrictToOwner(path)
            return replica
        } catch let e as HubToolError {
            throw e
        } catch {
            throw CLIError.from(error, doing: "opening the hub", path: path)
        }
    }

    /// The hub file holds every node's verifiers and every customer: owner-only, with its -wal and
    /// -shm (a file made by an older build may be 0644).
    static func restrictToOwner(_ path: String) {
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            chmod(file, 0o600)
        }
    }

    /// A new secret: 64 hex characters (32 bytes from the system's CSPRNG).
    static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            .map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// `siyu-hub init --db FILE --id HUB`.
struct HubInitCommand: Command {
    static let spec = CommandSpec(
        name: "init",
        summary: "make a new hub replica file",
        options: [
            .value("db", "FILE", required: true, "where to create the hub's replica (must not exist)"),
            .value("id", "HUB", required: true, "the hub's id, sent to nodes in CHALLENGE (at most 64 characters)"),
        ],
        discussion: "An existing file is never touched. Register nodes next with: siyu-hub add-node --db FILE NODE --role store")

    var path: String
    var id: String

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        id = try arguments.required("id")
    }

    func run(in context: HubContext) throws -> ExitCode {
        let replica: Replica
        do {
            replica = try Replica.create(at: path, node: id, role: .hq)
        } catch {
            throw CLIError.from(error, doing: "creating the hub", path: path)
        }
        replica.close()
        context.io.output.line("created hub \(TerminalText.escaped(id)) in \(TerminalText.escaped(path))")
        return .success
    }
}

/// `siyu-hub add-node --db FILE NODE --role hq|store [--store STORE]`.
struct HubAddNodeCommand: Command {
    static let spec = CommandSpec(
        name: "add-node",
        summary: "register a node and print its new secret (once)",
        options: [
            HubProgram.dbOption,
            .value("role", "ROLE", required: true, "hq or store: the role the node's HELLO and every op it pushes must carry"),
            .value("store", "STORE", "for a store node: the store it serves (one the hub holds: HQ creates stores)"),
            .flag("new-store", "accept a --store that HQ has not created yet"),
        ],
        arguments: [ArgumentSpec("NODE", "the node's id (at most 64 characters)")],
        discussion: """
        The secret (64 hex characters from the system's random generator) is printed on standard output, alone,
        and never again: the hub keeps only SCRAM verifiers (salt, StoredKey, ServerKey), which check the node's
        proof and prove the hub to it but cannot log in as it. Save the secret to a file for the node:
          siyu-hub add-node --db hub.db xihu --role store --store xihu > xihu.secret
        A store exists once HQ has created it and the hub holds HQ's ops; --new-store skips that check.
        A node's id is never given out again after remove-node; a lost secret is replaced with rotate-secret.
        """)

    var path: String
    var node: String
    var role: Role
    var store: String?
    var newStore: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        node = arguments.positional(0) ?? ""
        role = try HubProgram.parseRole(try arguments.required("role"))
        store = arguments.value("store")
        newStore = arguments.flag("new-store")
        if role == .hq && store != nil {
            throw CommandLineError.usage("--store is for store nodes; HQ holds every store", hint: "leave out --store, or use --role store")
        }
    }

    func run(in context: HubContext) throws -> ExitCode {
        let replica = try HubProgram.openHub(path)
        defer { replica.close() }
        let secret = HubProgram.newSecret()
        do {
            try replica.registerNode(node, role: role, store: store, newStore: newStore, secret: Array(secret.utf8))
        } catch {
            throw CLIError.from(error, doing: "registering the node", path: path)
        }
        context.io.output.line(secret)
        context.io.error.line("registered node \(TerminalText.escaped(node)) (\(role)\(store.map { ", store \(TerminalText.escaped($0))" } ?? "")); "
                              + "its secret is on standard output and is not shown again: give it to the node (siyu-node init --secret-file FILE)")
        return .success
    }
}

/// `siyu-hub rotate-secret --db FILE NODE`.
struct HubRotateSecretCommand: Command {
    static let spec = CommandSpec(
        name: "rotate-secret",
        summary: "give a registered node a new secret and print it (once); the old one stops working",
        options: [HubProgram.dbOption],
        arguments: [ArgumentSpec("NODE", "the node's id")],
        discussion: """
        For a lost or leaked secret. The node keeps its id, its ops and its acked_seq. A running hub closes the
        node's open sessions within a second; give the new secret to the node:
          siyu-hub rotate-secret --db hub.db xihu > xihu.secret; siyu-node init … --secret-file xihu.secret
        """)

    var path: String
    var node: String

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        node = arguments.positional(0) ?? ""
    }

    func run(in context: HubContext) throws -> ExitCode {
        let replica = try HubProgram.openHub(path)
        defer { replica.close() }
        let secret = HubProgram.newSecret()
        do {
            try replica.rotateSecret(of: node, secret: Array(secret.utf8))
        } catch {
            throw CLIError.from(error, doing: "rotating the secret", path: path)
        }
        context.io.output.line(secret)
        context.io.error.line("node \(TerminalText.escaped(node)) has a new secret (on standard output, not shown again); the old secret no longer works")
        return .success
    }
}

/// `siyu-hub remove-node --db FILE NODE`.
struct HubRemoveNodeCommand: Command {
    static let spec = CommandSpec(
        name: "remove-node",
        summary: "revoke a node: it can no longer connect, and a running hub closes its sessions",
        options: [HubProgram.dbOption],
        arguments: [ArgumentSpec("NODE", "the node's id")],
        discussion: """
        The node's ops stay in the hub's log (every other node keeps them). A running hub closes the node's open
        sessions within a second. The id is not given out again: a replacement node gets a new id.
        """)

    var path: String
    var node: String

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        node = arguments.positional(0) ?? ""
    }

    func run(in context: HubContext) throws -> ExitCode {
        let replica = try HubProgram.openHub(path)
        defer { replica.close() }
        do {
            try replica.removeNode(node)
        } catch {
            throw CLIError.from(error, doing: "removing the node", path: path)
        }
        context.io.output.line("removed node \(TerminalText.escaped(node)); its ops stay in the hub's log")
        return .success
    }
}

/// `siyu-hub nodes --db FILE`.
struct HubNodesCommand: Command {
    static let spec = CommandSpec(
        name: "nodes",
        summary: "list the registered nodes: role, store, acked_seq, last pull cursor, scope",
        options: [HubProgram.dbOption])

    var path: String

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
    }

    func run(in context: HubContext) throws -> ExitCode {
        let replica = try HubProgram.openHub(path)
        defer { replica.close() }
        let nodes = try replica.registeredNodes()
        let head = try replica.logHead()
        context.io.output.line("hub \(TerminalText.escaped(replica.node)): log head \(head), \(Render.count(nodes.count, "node"))")
        guard !nodes.isEmpty else { return .success }
        let counts = try replica.scopeCounts()
        let rows: [[String]] = nodes.map { n in
            // The scope the hub gives the node (SPEC section 7, "Scope"): from the registration alone.
            let scope: String
            if n.role == .store, let store = n.store {
                let c = counts[store] ?? ScopeCounts()
                scope = "store \(TerminalText.escaped(store)) and the tag library: \(Render.count(c.customers, "customer")), "
                    + "\(Render.count(c.groupChats, "group chat")), \(Render.count(c.orders, "order"))"
            } else {
                scope = n.role == .hq ? "everything" : "everything (a store registered without --store: re-register it with --store to scope it)"
            }
            return [TerminalText.escaped(n.node), n.role.description, n.store.map(TerminalText.escaped) ?? "-",
                    String(n.ackedSeq), String(n.cursor), scope]
        }
        let table = Render.table(["node", "role", "store", "acked_seq", "cursor", "scope"], rows)
        for line in table.split(separator: "\n", omittingEmptySubsequences: false) { context.io.output.line("  " + line) }
        return .success
    }
}

/// `siyu-hub compact --db FILE [--through POSITION]`.
struct HubCompactCommand: Command {
    static let spec = CommandSpec(
        name: "compact",
        summary: "drop the overwritten field writes every node has pulled past from the hub's log",
        options: [HubProgram.dbOption,
                  .value("through", "POSITION", "consider only ops logged up to this position (default: the stable point)")],
        discussion: """
        The stable point is the lowest pull cursor of the registered nodes (a node that never pulled nor pushed
        does not count: it bootstraps from a snapshot). A field write logged up to it goes when a later write of
        the same field, also logged up to it, overwrote it alone, nothing else names it, and the customer's (staff
        member's, group chat's) rows and conflict entries merge the same without it; its number stays held. A node
        whose cursor is below the highest position dropped gets a snapshot instead of changes. Works while the hub
        serves, in transactions of 500 instances; the tag library, stores and orders are left whole.
        """)

    var path: String
    var through: UInt64?

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        if let text = arguments.value("through") {
            guard let value = UInt64(text) else {
                throw CommandLineError.usage("--through must be a log position (a whole number); got '\(TerminalText.escaped(text))'", hint: nil)
            }
            through = value
        }
    }

    func run(in context: HubContext) throws -> ExitCode {
        let replica = try HubProgram.openHub(path)
        defer { replica.close() }
        let report: CompactionReport
        do {
            report = try replica.compactLog(through: through)
        } catch {
            throw CLIError.from(error, doing: "compacting the log", path: path)
        }
        let holder = report.heldBackBy.map { " (node \(TerminalText.escaped($0))'s cursor)" } ?? ""
        context.io.output.line("stable point \(report.stablePosition)\(holder); \(Render.count(report.instancesExamined, "instance")) examined, "
                               + "\(Render.count(report.opsDropped, "op")) dropped; \(try replica.droppedOpCount()) dropped in all; log floor \(report.floor)")
        if report.instancesKeptByCheck > 0 {
            context.io.error.line("warning: \(Render.count(report.instancesKeptByCheck, "instance")) kept whole: merging without the candidates differed (a defect: report it)")
        }
        return .success
    }
}

/// `siyu-hub serve --db FILE [--listen HOST:PORT] [--log-level L]`.
struct HubServeCommand: Command {
    static let spec = CommandSpec(
        name: "serve",
        summary: "serve nodes until SIGTERM or SIGINT",
        options: [
            HubProgram.dbOption,
            .value("listen", "HOST:PORT", "the address to listen on (default 127.0.0.1:7400; port 0: any free port)"),
            .value("log-level", "LEVEL", "error, warn, info (default) or debug; logs go to standard error"),
            .value("snapshot-after", "OPS", "a new node gets a snapshot instead of the log once the log holds this many ops (default 10000)"),
            .value("push-rate", "OPS", "ops a second each node may push, refilling its bucket; beyond it a PUSH is answered busy (default 20000; 0: no limit)"),
            .value("push-burst", "OPS", "the most ops a node may push in one burst (default 200000)"),
            .value("max-pending", "N", "unauthenticated connections at once, in all (default 256); beyond it a new connection is closed"),
            .value("max-pending-per-address", "N", "unauthenticated connections at once from one address (default 8)"),
            .value("accepts-per-second", "N", "new connections a second from one address, in bursts of twice that (default \(HubServer.defaultAcceptsPerSecond); 0: no limit); beyond it a new connection is closed at once"),
            .flag("proxy-protocol", "each connection starts with a PROXY v1 header from the TLS terminator in front (stunnel protocol = proxy); its client address is the one logged and capped per address"),
            .value("idle-timeout", "SECONDS", "close an authenticated connection that sent no whole request (PUSH, PULL, DIGEST_REQUEST, PING) for this long (default 60; 1 to 3600; nodes PING after 20 s without traffic, so keep it above 20)"),
            .flag("stop-when-input-closes", "stop cleanly when standard input (a pipe from a supervisor) reaches end of file"),
        ],
        discussion: """
        Prints 'listening on HOST:PORT' on standard output once the socket is bound, then one log line per
        session event on standard error. SIGTERM or SIGINT says BYE to every node and stops cleanly.
        """)

    var path: String
    var listen: SocketAddress
    var level: OperatorLog.Level
    var snapshotAfter: UInt64
    var pushLimits: PushLimits
    var stopWhenInputCloses: Bool
    var maxPending: Int
    var maxPendingPerAddress: Int
    var proxyProtocol: Bool
    var acceptsPerSecond: Int
    var idleTimeoutSeconds: Int

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        maxPending = try arguments.value("max-pending", as: Int.self) ?? 256
        maxPendingPerAddress = try arguments.value("max-pending-per-address", as: Int.self) ?? 8
        proxyProtocol = arguments.flag("proxy-protocol")
        acceptsPerSecond = try arguments.value("accepts-per-second", as: Int.self) ?? HubServer.defaultAcceptsPerSecond
        guard (0...1_000_000).contains(acceptsPerSecond) else {
            throw CommandLineError.usage("--accepts-per-second must be 0 (no limit) to 1000000; got \(acceptsPerSecond)", hint: nil)
        }
        guard maxPending >= 1, maxPendingPerAddress >= 1 else {
            throw CommandLineError.usage("--max-pending and --max-pending-per-address must be 1 or more", hint: nil)
        }
        idleTimeoutSeconds = try arguments.value("idle-timeout", as: Int.self) ?? 60
        guard (1...3600).contains(idleTimeoutSeconds) else {
            throw CommandLineError.usage("--idle-timeout must be 1 to 3600 seconds; got \(idleTimeoutSeconds)", hint: nil)
        }
        let text = arguments.value("listen") ?? "127.0.0.1:7400"
        do { listen = try SocketAddress(parsing: text) } catch {
            throw CommandLineError.usage("--listen: \(error.message)", hint: error.hint)
        }
        level = try HubProgram.parseLevel(arguments)
        let after = try arguments.value("snapshot-after", as: Int.self) ?? 10_000
        guard after >= 1 else { throw CommandLineError.usage("--snapshot-after must be 1 or more; got \(after)", hint: nil) }
        snapshotAfter = UInt64(after)
        let rate = try arguments.value("push-rate", as: Int.self) ?? 20_000
        guard rate >= 0 else { throw CommandLineError.usage("--push-rate must be 0 (no limit) or more; got \(rate)", hint: nil) }
        let burst = try arguments.value("push-burst", as: Int.self) ?? 200_000
        guard burst >= 1 else { throw CommandLineError.usage("--push-burst must be 1 or more; got \(burst)", hint: nil) }
        pushLimits = PushLimits(opsPerSecond: UInt64(rate), burstOps: UInt64(burst))
        stopWhenInputCloses = arguments.flag("stop-when-input-closes")
    }

    func run(in context: HubContext) throws -> ExitCode {
        let replica = try HubProgram.openHub(path)
        defer { replica.close() }
        let executor: HubStoreExecutor
        do {
            executor = try HubStoreExecutor(replica: replica, options: .init(bootstrapSnapshotOps: snapshotAfter))
        } catch {
            throw CLIError.from(error, doing: "preparing the hub's log", path: path)
        }
        let log = OperatorLog(level: level) { line in fputs(line, stderr) }
        let loop = try EventLoop()
        var configuration = HubServer.Configuration(session: .init(hubID: replica.node, policy: KeepalivePolicy(idleTimeoutMillis: UInt64(idleTimeoutSeconds) * 1_000)),
                                                    listen: listen, pushLimits: pushLimits,
                                                    maxPendingConnections: maxPending, maxPendingPerAddress: maxPendingPerAddress)
        configuration.proxyProtocol = proxyProtocol
        configuration.acceptsPerSecond = acceptsPerSecond
        let server = try HubServer(loop: loop, executor: executor, configuration: configuration, log: log)
        // Read before the server starts: from then on the writer's connection belongs to its queue.
        let head = (try? replica.logHead()) ?? 0
        let registered = (try? replica.registeredNodes().count) ?? 0
        let address = try server.start()
        let watcher = SignalWatcher([.interrupt, .terminate], loop: loop) { signal in server.shutdown(reason: "\(signal)") }
        defer { watcher.cancel() }
        let inputWatcher = InputClosedWatcher(loop: loop) { server.shutdown(reason: "standard input closed"); loop.stop() }
        if stopWhenInputCloses { try inputWatcher.start() }
        if executor.logEpochRenewed {
            log.write(.warn, "hub log epoch \(executor.logEpoch.prefix(8).map { String(format: "%02x", $0) }.joined()) is new: this file was not stopped cleanly last (a first start, a crash or power cut, or a restored backup); every node pulls again from position 0")
        }
        log.write(.info, "hub \(IdentifierRule.printable(replica.node, limit: 64)) serving \(path) on \(address): log head \(head), \(Render.count(registered, "node")) registered")
        context.io.output.line("listening on \(address)")
        context.io.output.flush()
        try loop.run()
        server.waitForStoreWork()
        // Every commit is durable (synchronous = FULL): the next start of this file keeps the log epoch.
        do { try replica.markCleanStop() } catch { log.write(.error, "hub could not mark its clean stop (the next start makes a new log epoch): \(error)") }
        log.write(.info, "hub stopped")
        return .success
    }
}

/// `siyu-hub backup --db FILE --out COPY`.
struct HubBackupCommand: Command {
    static let spec = CommandSpec(
        name: "backup",
        summary: "copy the hub's file while it serves (SQLite's online backup), readable by its owner only",
        options: [
            HubProgram.dbOption,
            .value("out", "COPY", required: true, "where to write the copy (must not exist; created with mode 0600)"),
        ],
        discussion: """
        The copy is one consistent snapshot of the hub, taken while 'siyu-hub serve' goes on. To restore: stop the
        hub, move the copy into place as its file (remove FILE-wal and FILE-shm), start it. A hub started from a copy
        makes a new log epoch: every node then pulls from the start and pushes again what the copy lacks
        (docs/OPERATIONS.md, "Backup and restore").
        """)

    var path: String
    var out: String

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        out = try arguments.required("out")
    }

    func run(in context: HubContext) throws -> ExitCode {
        let replica = try HubProgram.openHub(path)
        defer { replica.close() }
        do {
            try replica.backup(to: out)
        } catch {
            throw CLIError.from(error, doing: "backing up the hub", path: out)
        }
        let head = (try? replica.logHead()) ?? 0
        context.io.output.line("backed up hub \(TerminalText.escaped(replica.node)) (log head \(head)) to \(TerminalText.escaped(out)) (mode 0600)")
        return .success
    }
}
