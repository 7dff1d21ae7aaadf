import Foundation
import SiyuCLI
import SiyuCommandLine
import SiyuCore
import SiyuNet
import SiyuNode
import SiyuSession
import SiyuStore

/// What every `siyu-node` command runs with: its streams and the environment (for `SIYU_NODE_SECRET`).
struct NodeContext: CommandContext {
    var io: CommandIO
    var environment: [String: String] = ProcessInfo.processInfo.environment
}

/// A failure of `siyu-node` a person can act on.
struct NodeToolError: ActionableError {
    var message: String
    var hint: String
}

/// The `siyu-node` command line.
enum NodeProgram {
    static let secretVariable = "SIYU_NODE_SECRET"

    static let program = CommandLineProgram<NodeContext>(
        name: "siyu-node",
        summary: "Siyu node daemon: syncs a store's (or HQ's) replica with the hub. Local edits (siyu) never wait for it.",
        commands: [NodeInitCommand.self, NodeRunCommand.self, NodeSyncCommand.self],
        footer: """
        Typical use: siyu-node init --db store.db --node xihu --role store --hub 127.0.0.1:7400 --secret-file xihu.secret;
        siyu-node run --db store.db (continuous), or siyu-node sync --once --db store.db (one round).
        Exit codes: 0 ok, 1 failure (message and hint on stderr), 2 usage error.
        """,
        version: SiyuVersion.line,
        describeFailure: describe)

    static func describe(_ error: Error) -> ActionableError? {
        if let e = error as? NodeToolError { return e }
        if let e = error as? NodeError { return NodeToolError(message: e.message, hint: e.hint) }
        if let e = error as? NetError { return NodeToolError(message: e.message, hint: e.hint ?? "check the hub's address and the network") }
        return CLIError.from(error)
    }

    static let dbOption = OptionSpec.value("db", "FILE", required: true, "the node's replica file")
    static let logLevelOption = OptionSpec.value("log-level", "LEVEL", "error, warn, info (default) or debug; logs go to standard error")
    static let pullBudgetOption = OptionSpec.value("pull-budget", "BYTES", "the most bytes asked for per CHANGES (default 262144)")
    static let pushBatchOption = OptionSpec.value("push-batch", "OPS", "the most ops per PUSH (default 10000; a PUSH also stays within one frame)")

    static func parseLevel(_ arguments: ParsedArguments) throws -> OperatorLog.Level {
        guard let text = arguments.value("log-level") else { return .info }
        guard let level = OperatorLog.Level(name: text) else {
            throw CommandLineError.usage("--log-level must be error, warn, info or debug; got '\(TerminalText.escaped(text))'", hint: nil)
        }
        return level
    }

    static func positiveInt(_ arguments: ParsedArguments, _ name: String, default value: Int) throws -> Int {
        let v = try arguments.value(name, as: Int.self) ?? value
        guard v >= 1 else { throw CommandLineError.usage("--\(name) must be 1 or more; got \(v)", hint: nil) }
        return v
    }

    /// Runs a daemon over the replica on this thread (`SyncRound`) until it finishes or a signal stops it.
    static func runDaemon(_ path: String, mode: NodeDaemon.Mode, level: OperatorLog.Level, pullBudget: Int, pushBatch: Int,
                          maxBackoff: Duration, onceTimeout: Duration, pullIntervalMillis: UInt64? = nil,
                          stopWhenInputCloses: Bool = false) throws -> SyncRound.Report {
        let holder = mode == .continuous ? "siyu-node run" : "siyu-node sync --once"
        do {
            return try SyncRound.run(path: path, mode: mode,
                                     options: .init(holder: holder, logLevel: level, pullBudget: pullBudget, pushBatch: pushBatch,
                                                    maxBackoff: maxBackoff, timeout: onceTimeout, pullIntervalMillis: pullIntervalMillis,
                                                    stopWhenInputCloses: stopWhenInputCloses))
        } catch let e as NodeError {
            throw NodeToolError(message: e.message, hint: e.hint)
        } catch let e as NodeToolError {
            throw e
        } catch {
            throw CLIError.from(error, doing: "syncing the node's replica", path: path)
        }
    }
}

/// `siyu-node init --db FILE --node NODE --role hq|store [--store STORE] --hub HOST:PORT [--secret-file F]`.
struct NodeInitCommand: Command {
    static let spec = CommandSpec(
        name: "init",
        summary: "set a replica up to sync with a hub: its address and the node's secret",
        options: [
            NodeProgram.dbOption,
            .value("node", "NODE", required: true, "the node's id, as registered at the hub"),
            .value("role", "ROLE", required: true, "hq or store, as registered at the hub"),
            .value("store", "STORE", "for a store node: the store it serves (new replicas only)"),
            .value("hub", "HOST:PORT", required: true, "the hub's address"),
            .value("secret-file", "FILE", "a file holding the secret siyu-hub add-node printed (else $SIYU_NODE_SECRET)"),
        ],
        discussion: """
        Creates the replica if FILE does not exist; an existing replica must belong to NODE with ROLE (a node that
        worked offline with siyu joins the network this way). The secret comes from --secret-file or the
        environment variable SIYU_NODE_SECRET, never from the command line; leading and trailing white space is
        ignored. The hub address and the secret are kept in the replica (siyu_meta), so run and sync need no
        flags: the file becomes a credential and is made readable by its owner only. Run init again to change them.
        """)

    var path: String
    var node: String
    var role: Role
    var store: String?
    var hub: String
    var secretFile: String?

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        node = try arguments.required("node")
        switch try arguments.required("role") {
        case "hq": role = .hq
        case "store": role = .store
        case let other: throw CommandLineError.usage("--role must be hq or store; got '\(TerminalText.escaped(other))'", hint: nil)
        }
        store = arguments.value("store")
        hub = try arguments.required("hub")
        do { _ = try SocketAddress(parsing: hub) } catch {
            throw CommandLineError.usage("--hub: \(error.message)", hint: error.hint)
        }
        secretFile = arguments.value("secret-file")
    }

    func readSecret(_ context: NodeContext) throws -> [UInt8] {
        let raw: String
        if let secretFile {
            guard let data = FileManager.default.contents(atPath: secretFile) else {
                throw NodeToolError(message: "cannot read the secret file \(secretFile)", hint: "check the path and its permissions")
            }
            raw = String(decoding: data, as: UTF8.self)
        } else if let env = context.environment[NodeProgram.secretVariable] {
            raw = env
        } else {
            throw NodeToolError(message: "no secret given", hint: "give --secret-file FILE, or set \(NodeProgram.secretVariable)")
        }
        let secret = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard secret.utf8.count >= 16 else {
            throw NodeToolError(message: "the secret is \(secret.utf8.count) bytes; at least 16 are needed",
                                hint: "use the secret siyu-hub add-node printed for this node")
        }
        return Array(secret.utf8)
    }

    func run(in context: NodeContext) throws -> ExitCode {
        let secret = try readSecret(context)
        let replica: Replica
        var created = false
        do {
            if FileManager.default.fileExists(atPath: path) {
                let damage = try Replica.check(path: path)
                guard damage.isHealthy else {
                    let all = damage.problems + damage.beyondRepair.map { "\($0) (beyond repair)" }
                    throw NodeToolError(message: "\(path) is damaged (\(all.prefix(3).joined(separator: "; "))\(all.count > 3 ? "; …" : "")); nothing was written",
                                        hint: damage.beyondRepair.isEmpty ? "repair it from its op log first: siyu rebuild --db \(path)"
                                                                          : "restore it from a backup, or move it aside and run siyu-node init again (its unpushed edits are lost)")
                }
                replica = try Replica(existing: path)
                guard replica.node == node, replica.role == role else {
                    let found = "\(replica.node) (\(replica.role))"
                    replica.close()
                    throw NodeToolError(message: "\(path) belongs to node \(TerminalText.escaped(found)), not \(TerminalText.escaped(node)) (\(role)); nothing was written",
                                        hint: "give the node id and role the replica has, or another --db")
                }
            } else {
                replica = try Replica.create(at: path, node: node, role: role, store: store)
                created = true
            }
        } catch let e as NodeToolError {
            throw e
        } catch {
            throw CLIError.from(error, doing: "preparing the node's replica", path: path)
        }
        replica.close()
        try NodeSettings(hub: hub, secret: secret).write(path: path)
        context.io.output.line("\(created ? "created" : "set up") \(TerminalText.escaped(path)): node \(TerminalText.escaped(node)) (\(role)) syncs with hub \(hub)")
        return .success
    }
}

/// `siyu-node run --db FILE`.
struct NodeRunCommand: Command {
    static let spec = CommandSpec(
        name: "run",
        summary: "sync continuously until SIGTERM or SIGINT: push the outbox as it grows, pull, keep the connection",
        options: [
            NodeProgram.dbOption,
            NodeProgram.logLevelOption,
            NodeProgram.pullBudgetOption,
            NodeProgram.pushBatchOption,
            .value("max-backoff", "SECONDS", "the longest wait between reconnection attempts (default 30; they start at 0.5 s and double, with jitter)"),
            .flag("stop-when-input-closes", "stop cleanly when standard input (a pipe from a supervisor) reaches end of file"),
            .value("pull-interval", "SECONDS", "how long to wait before pulling again once caught up (default 5; 1 to 3600, decimals allowed; SPEC section 7 asks for no more than one pull a second)"),
        ],
        discussion: """
        Exits 0 after SIGTERM or SIGINT (BYE sent), 1 when the hub refuses the node in a way retrying cannot fix
        (authentication, protocol version, data model, identity conflict). An unreachable hub is retried forever.
        """)

    var path: String
    var level: OperatorLog.Level
    var pullBudget: Int
    var pushBatch: Int
    var maxBackoff: Int
    var pullIntervalMillis: UInt64?
    var stopWhenInputCloses: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        level = try NodeProgram.parseLevel(arguments)
        pullBudget = try NodeProgram.positiveInt(arguments, "pull-budget", default: 256 * 1024)
        pushBatch = try NodeProgram.positiveInt(arguments, "push-batch", default: 10_000)
        maxBackoff = try NodeProgram.positiveInt(arguments, "max-backoff", default: 30)
        if let text = arguments.value("pull-interval") {
            guard let seconds = Double(text), seconds.isFinite, seconds >= 1, seconds <= 3_600 else {
                throw CommandLineError.usage("--pull-interval must be a number of seconds from 1 to 3600; got '\(TerminalText.escaped(text))'", hint: nil)
            }
            pullIntervalMillis = UInt64((seconds * 1_000).rounded())
        }
        stopWhenInputCloses = arguments.flag("stop-when-input-closes")
    }

    func run(in context: NodeContext) throws -> ExitCode {
        let report = try NodeProgram.runDaemon(path, mode: .continuous, level: level, pullBudget: pullBudget, pushBatch: pushBatch,
                                               maxBackoff: .seconds(maxBackoff), onceTimeout: .seconds(60), pullIntervalMillis: pullIntervalMillis,
                                               stopWhenInputCloses: stopWhenInputCloses)
        if case let .failed(why) = report.outcome {
            throw NodeToolError(message: "stopped syncing: \(why)", hint: "fix what the message says (secret, registration, versions), then run again")
        }
        return .success
    }
}

/// `siyu-node sync --once --db FILE`.
struct NodeSyncCommand: Command {
    static let spec = CommandSpec(
        name: "sync",
        summary: "one full round with the hub: exit 0 only when nothing is left to push or pull",
        options: [
            .flag("once", "one round (required; continuous sync is siyu-node run)"),
            NodeProgram.dbOption,
            .value("timeout", "SECONDS", "give up (exit 1) when not caught up after this long (default 60)"),
            NodeProgram.logLevelOption,
            NodeProgram.pullBudgetOption,
            NodeProgram.pushBatchOption,
        ])

    var path: String
    var timeout: Int
    var level: OperatorLog.Level
    var pullBudget: Int
    var pushBatch: Int

    init(parsing arguments: ParsedArguments) throws {
        guard arguments.flag("once") else {
            throw CommandLineError.usage("sync runs one round and needs --once", hint: "siyu-node sync --once --db FILE; for continuous sync: siyu-node run --db FILE")
        }
        path = try arguments.required("db")
        timeout = try NodeProgram.positiveInt(arguments, "timeout", default: 60)
        level = try NodeProgram.parseLevel(arguments)
        pullBudget = try NodeProgram.positiveInt(arguments, "pull-budget", default: 256 * 1024)
        pushBatch = try NodeProgram.positiveInt(arguments, "push-batch", default: 10_000)
    }

    func run(in context: NodeContext) throws -> ExitCode {
        let report = try NodeProgram.runDaemon(path, mode: .once, level: level, pullBudget: pullBudget, pushBatch: pushBatch,
                                               maxBackoff: .seconds(max(1, min(30, timeout / 4))), onceTimeout: .seconds(timeout))
        switch report.outcome {
        case .synced, .verified:
            let quarantined = report.quarantinedTotal
            context.io.output.line("synced: nothing left to push or pull (hub position \(report.position), own ops acknowledged up to #\(report.ackedSeq)"
                                   + (quarantined > 0 ? ", \(quarantined) quarantined op(s) the hub refused" : "") + ")")
            return .success
        case .stopped:
            throw NodeToolError(message: "sync interrupted before it finished", hint: "run it again")
        case let .failed(why):
            throw NodeToolError(message: "sync did not finish: \(why)", hint: "check that the hub runs and knows this node (siyu-hub nodes), then run again")
        }
    }
}
