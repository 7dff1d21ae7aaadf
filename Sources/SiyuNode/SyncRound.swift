import Foundation
import SiyuCore
import SiyuNet
import SiyuSession
import SiyuStore

/// What moved while a `NodeDaemon` ran, counted from its session's events.
///
/// Guarantees: `pushedOps` counts own ops the hub newly acknowledged during the run (from the
/// first WELCOME's acked_seq to the last acknowledgement, quarantined ones left out), so a PUSH
/// sent twice over a lost connection counts once; `pulledOps` counts ops of CHANGES applied;
/// `problems` keeps at most `maxProblems` texts, in order, without immediate repeats.
public struct SyncTally: Sendable, Equatable {
    public static let maxProblems = 20

    /// acked_seq at the first WELCOME of the run, and the highest heard since.
    public private(set) var firstAcked: UInt64?
    public private(set) var lastAcked: UInt64 = 0
    /// Ops of CHANGES applied (snapshot ops are not counted here; see `snapshots`).
    public var pulledOps = 0
    /// Snapshots loaded.
    public var snapshots = 0
    /// Own ops the hub refused for good during the run, set aside (quarantined).
    public var quarantined: [UInt64] = []
    /// Connections made (authenticated or not).
    public var connections = 0
    /// What went wrong on the way (connection failures, ERRORs sent or received, store failures).
    public private(set) var problems: [String] = []

    public init() {}

    /// Own ops the hub newly acknowledged during the run.
    public var pushedOps: Int {
        guard let first = firstAcked, lastAcked > first else { return 0 }
        let settled = quarantined.filter { $0 > first && $0 <= lastAcked }.count
        return max(0, Int(clamping: lastAcked - first) - settled)
    }

    mutating func acknowledged(upTo acked: UInt64) {
        if firstAcked == nil { firstAcked = acked }
        lastAcked = max(lastAcked, acked)
    }

    mutating func note(_ problem: String) {
        guard problems.last != problem, problems.count < SyncTally.maxProblems else { return }
        problems.append(problem)
    }
}

/// The hub's state digest of a node's scope next to the node's own, at one log position.
///
/// Guarantees: both describe the same ops of the hub's log (the node's cursor was `position`
/// and it had nothing left to push when the answer arrived); `attempts` is how many
/// DIGEST_REQUESTs it took (the hub's log may move on between a pull and the answer).
public struct DigestComparison: Sendable, Equatable {
    public var position: UInt64
    public var hubDigest: [UInt8]
    public var localDigest: [UInt8]
    public var attempts: Int

    public init(position: UInt64, hubDigest: [UInt8], localDigest: [UInt8], attempts: Int) {
        self.position = position
        self.hubDigest = hubDigest
        self.localDigest = localDigest
        self.attempts = attempts
    }

    public var isEqual: Bool { hubDigest == localDigest }
}

/// The single error type of SiyuNode: why a sync could not start, with a hint naming a command.
///
/// Guarantees: `message` says what was wrong with which file; `hint` what to do. Failures of the
/// replica file itself are thrown as the store's `ReplicaError` instead (callers translate them).
public enum NodeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The replica has no hub address and secret: `siyu-node init` was not run on it.
    case notSetUp(path: String)
    /// The file is a hub's (it has registered nodes), not a node's replica.
    case hubFile(path: String, nodes: Int)
    /// The recorded hub address does not parse.
    case invalidHubAddress(path: String, reason: String)
    /// Another process syncs the replica (`holder` as it described itself, may be empty).
    case alreadySyncing(path: String, holder: String)
    /// The lock file beside the replica cannot be opened.
    case lockUnavailable(path: String, reason: String)
    /// The event loop could not be set up.
    case network(String)
    /// `stopWhenInputCloses` was asked for, but standard input is not a pipe.
    case inputNotWatchable(String)

    public var message: String {
        switch self {
        case let .notSetUp(path): return "\(path) has no hub recorded: siyu-node init was not run on it"
        case let .hubFile(path, nodes):
            return "\(path) is a hub's file (\(nodes) node\(nodes == 1 ? "" : "s") registered), not a node's replica"
        case let .invalidHubAddress(path, reason): return "the hub address recorded in \(path) is not valid: \(reason)"
        case let .alreadySyncing(path, holder):
            return "\(path) is being synced by another process (\(holder.isEmpty ? "holder unknown" : holder)); nothing was done"
        case let .lockUnavailable(path, reason): return "cannot open the sync lock file \(path): \(reason)"
        case let .network(reason): return "cannot set up networking: \(reason)"
        case let .inputNotWatchable(reason): return reason
        }
    }

    public var hint: String {
        switch self {
        case .notSetUp:
            return "run: siyu-node init --db FILE --node NODE --role store --hub HOST:PORT --secret-file FILE"
        case .hubFile:
            return "serve it with siyu-hub serve --db FILE; a node syncs its own replica, made with siyu-node init --db NODE.db"
        case .invalidHubAddress:
            return "record it again with siyu-node init"
        case .alreadySyncing:
            return "a siyu-node run daemon pushes edits within a second and pulls every 5 s (see siyu status --db FILE); to sync by hand, stop it (SIGTERM) first"
        case .lockUnavailable:
            return "check the permissions of the replica's directory (the lock file sits beside the replica)"
        case .network:
            return "check the system's limits on open files, then try again"
        case .inputNotWatchable:
            return "give the daemon a pipe as standard input, or leave out --stop-when-input-closes"
        }
    }

    public var description: String { "\(message) (hint: \(hint))" }
}

/// Runs a `NodeDaemon` over a replica file until it finishes: what `siyu-node run`, `siyu-node
/// sync --once`, `siyu sync --now` and `siyu verify` share.
///
/// Guarantees:
/// - the replica must be one `siyu-node init` set up (hub address and secret in `siyu_meta`);
/// - it holds the replica's `SyncLock` for the whole run, so two syncs of one file never run at
///   once (the second is refused with `NodeError.alreadySyncing`, before anything is touched);
/// - the event loop runs on the calling thread; SIGINT and SIGTERM (if `handleSignals`) end the run
///   with BYE (`.stopped`);
/// - the replica is closed and the lock released before it returns, whatever happened.
public enum SyncRound {
    /// How to run.
    public struct Options: Sendable {
        /// Who is syncing, for the lock file and another process's message ("siyu sync --now").
        public var holder: String
        public var logLevel: OperatorLog.Level
        /// Where log lines go (standard error by default).
        public var logSink: @Sendable (String) -> Void
        public var pullBudget: Int
        public var pushBatch: Int
        public var maxBackoff: Duration
        /// `.once` and `.verify`: give up (`.failed`) when not done after this long.
        public var timeout: Duration
        public var handleSignals: Bool
        /// How long to wait before pulling again once caught up (nil: the session's default, 5 s).
        public var pullIntervalMillis: UInt64?
        /// Stop cleanly when standard input reaches end of file (a supervisor's pipe; `InputClosedWatcher`).
        public var stopWhenInputCloses: Bool

        public init(holder: String, logLevel: OperatorLog.Level = .info,
                    logSink: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) },
                    pullBudget: Int = 256 * 1024, pushBatch: Int = 10_000, maxBackoff: Duration = .seconds(30),
                    timeout: Duration = .seconds(60), handleSignals: Bool = true, pullIntervalMillis: UInt64? = nil,
                    stopWhenInputCloses: Bool = false) {
            self.holder = holder
            self.logLevel = logLevel
            self.logSink = logSink
            self.pullBudget = max(1, pullBudget)
            self.pushBatch = max(1, pushBatch)
            self.maxBackoff = maxBackoff
            self.timeout = timeout
            self.handleSignals = handleSignals
            self.pullIntervalMillis = pullIntervalMillis
            self.stopWhenInputCloses = stopWhenInputCloses
        }
    }

    /// How a run ended and where the replica stands afterwards.
    public struct Report: Sendable, Equatable {
        public var outcome: NodeDaemon.Outcome
        public var tally: SyncTally
        public var node: NodeID
        public var role: Role
        /// The hub's address as recorded.
        public var hub: String
        /// The hub log position the replica holds and its acked_seq there, after the run.
        public var position: UInt64
        public var ackedSeq: UInt64
        /// Own ops set aside because the hub refused them, all told (not only this run's).
        public var quarantinedTotal: Int
        /// The hub answered DIGEST_REQUEST with `unknown_message_type`.
        public var hubLacksDigests: Bool
    }

    /// The replica's recorded hub settings and address, checked (the replica is not opened).
    public static func settings(of path: String) throws -> (NodeSettings, SocketAddress) {
        let info = try Replica.inspect(path: path)
        guard let settings = try? NodeSettings.read(path: path) else {
            if info.registeredNodes > 0 { throw NodeError.hubFile(path: path, nodes: info.registeredNodes) }
            throw NodeError.notSetUp(path: path)
        }
        do {
            return (settings, try SocketAddress(parsing: settings.hub))
        } catch {
            throw NodeError.invalidHubAddress(path: path, reason: error.message)
        }
    }

    /// Runs a daemon in `mode` over the replica at `path`.
    public static func run(path: String, mode: NodeDaemon.Mode, options: Options) throws -> Report {
        let (settings, hub) = try settings(of: path)
        let lock: SyncLock
        do {
            lock = try SyncLock.acquire(replicaPath: path, holder: options.holder)
        } catch let SyncLock.Failure.held(_, holder) {
            throw NodeError.alreadySyncing(path: path, holder: holder)
        } catch let SyncLock.Failure.unavailable(lockPath, reason) {
            throw NodeError.lockUnavailable(path: lockPath, reason: reason)
        }
        defer { lock.release() }
        let replica = try Replica(existing: path)
        defer { replica.close() }
        let log = OperatorLog(level: options.logLevel, sink: options.logSink)
        let loop: EventLoop
        do { loop = try EventLoop() } catch { throw NodeError.network(error.message) }
        var session = NodeSession.Configuration(node: replica.node, role: replica.role, secret: settings.secret,
                                                byteBudget: UInt64(options.pullBudget), maxOpsPerPush: options.pushBatch)
        if let interval = options.pullIntervalMillis { session.policy.pollIntervalMillis = interval }
        let daemon = NodeDaemon(loop: loop, executor: NodeStoreExecutor(replica: replica),
                                configuration: .init(hub: hub, session: session, mode: mode, maxBackoff: options.maxBackoff,
                                                     onceTimeout: options.timeout),
                                log: log, finish: { _ in loop.stop() })
        let watcher = options.handleSignals
            ? SignalWatcher([.interrupt, .terminate], loop: loop) { signal in daemon.shutdown(reason: "\(signal)") } : nil
        defer { watcher?.cancel() }
        let inputWatcher = InputClosedWatcher(loop: loop) { daemon.shutdown(reason: "standard input closed"); loop.stop() }
        if options.stopWhenInputCloses {
            do { try inputWatcher.start() } catch {
                if case .inputNotWatchable = error { throw NodeError.inputNotWatchable(error.message) }
                throw NodeError.network("cannot watch standard input: \(error.message)")
            }
        }
        let what: String
        switch mode {
        case .continuous: what = ""
        case .once: what = " once"
        case .verify: what = " once, then verifying"
        }
        log.write(.info, "node \(IdentifierRule.printable(replica.node, limit: 64)) (\(replica.role)) syncing \(path) with hub \(hub)\(what)")
        daemon.start()
        do { try loop.run() } catch { throw NodeError.network(error.message) }
        let state = try replica.syncState()
        return Report(outcome: daemon.outcome ?? .stopped, tally: daemon.tally, node: replica.node, role: replica.role,
                      hub: settings.hub, position: state.position, ackedSeq: state.ackedSeq,
                      quarantinedTotal: try replica.quarantinedOps().count, hubLacksDigests: daemon.hubLacksDigests)
    }
}
