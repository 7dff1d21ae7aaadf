import Foundation
import SiyuCore
import SiyuNet
import SiyuSession
import SiyuStore
import SiyuWire

/// The hub on the network: a `Listener` on one `EventLoop`, and for every accepted `TCPConnection`
/// a `HubSession` hosted by a `TCPSessionHost`, driven by its bytes and the loop's clock. Store work
/// runs off the loop, on two serial queues with a connection each: the writer (`HubStoreExecutor`:
/// PUSHes, the writes reads ask for, re-merge slices) and the reader (`HubReader` over a read-only
/// connection to the same file: registrations, CHANGES, snapshot parts, digests). A snapshot or a
/// digest being read never delays a PUSH's commit, and sockets are served while both work.
///
/// Guarantees:
/// - every method runs on the loop thread (or before the loop runs); no thread per connection;
///   each connection has at most one store effect outstanding (its session waits for it), and
///   the answer is fed back on the loop thread;
/// - PUSHes that arrive while the writer commits are committed together next, in one
///   transaction and one WAL sync (group commit); each is taken or refused as it would be alone,
///   and answered only after its batch is durable;
/// - a read sees every PUSH acknowledged before it was asked (the writer commits before the
///   PUSH_ACK goes out; the reader starts a read transaction per read); the writes a read asks
///   for (`HubWrite`) follow it on the writer, in order with that node's later PUSHes;
/// - a digest is never read while customers holding a changed tag wait to be re-merged: the read
///   waits (asked again every `notYetRetry`) while the writer settles them slice by slice;
/// - each connection gets 32 fresh bytes from the system's CSPRNG as its nonce (getrandom via
///   `SystemRandomNumberGenerator`, unless a test injects a source);
/// - a session's frames are written in the order it gives them; while it waits for a store effect
///   (or the peer is not reading: `isWritable` false) the socket is not read and no effect runs, so a
///   slow peer costs bounded memory; timers follow `nextDeadline` (handshake, idle and keepalive
///   timeouts close connections; the session decides);
/// - a node removed from the registry, or given a new secret, by another process (`siyu-hub
///   remove-node`, `rotate-secret`) has its open sessions closed with `auth_failed` within
///   `revocationCheckInterval` (the registry is read once per interval while any session is open);
/// - `shutdown(reason:)` says BYE on every connection, stops accepting, and the caller stops the loop;
/// - one log line per session event: connect, auth ok/refused, push stored, changes sent, snapshot,
///   errors with their code, disconnect with the duration;
/// - when a node's connection reaches `ready`, its older connections are closed (`supersede`).
public final class HubServer: @unchecked Sendable {
    /// `Configuration.acceptsPerSecond`'s default: 128 new connections a second per address.
    public static let defaultAcceptsPerSecond = 128
    public struct Configuration: Sendable {
        public var session: HubSession.Configuration
        public var listen: SocketAddress
        public var connectionOptions: ConnectionOptions
        /// The limits every PUSH is checked against before its ops reach the store.
        public var pushLimits: PushLimits
        /// Connections that have not reached `ready` (not authenticated yet), in all and from one
        /// address: a new one beyond either is closed at once. Authenticated connections are not
        /// capped here: a node has at most one (`supersede`), so they are bounded by the registry,
        /// and a flood of unauthenticated connections from a few addresses never keeps a known
        /// node from another address out.
        public var maxPendingConnections: Int
        public var maxPendingPerAddress: Int
        /// Per node: snapshots and state digests (requests that read the node's whole scope).
        public var snapshotBudget: RequestBudget
        public var digestBudget: RequestBudget
        /// About how long the reader reads one snapshot part: 5 ms (nil: parts bounded by ops
        /// only). A snapshot then holds the reader — and, on a hub held to one core, the core —
        /// in short runs, between which other nodes' PULLs are answered and their PUSHes
        /// committed, and the loop encodes a small part at a time; it costs the same in all and
        /// comes in more, smaller SNAPSHOT_CHUNKs.
        public var snapshotPartMillis: UInt64?
        /// Every connection starts with a PROXY protocol v1 header (`ProxyHeader`) from the TLS
        /// terminator in front (stunnel's `protocol = proxy`, haproxy's `send-proxy`): the client's
        /// address it names is the connection's address in the log and for
        /// `maxPendingPerAddress`, checked once the header arrived. A connection without a valid
        /// header is closed. Off: the TCP peer is the address (a hub listening publicly itself).
        public var proxyProtocol = false
        /// New connections per client address (the TCP peer's, or the PROXY header's): a token
        /// bucket, `acceptsPerSecond` a second with bursts of twice that (0: no limit). Beyond it a
        /// connection is closed before anything is drawn or allocated for it, so opening and
        /// closing connections in a loop costs the hub an accept and a close. A store connects
        /// once and keeps its connection; many stores behind one NAT share the budget.
        public var acceptsPerSecond = HubServer.defaultAcceptsPerSecond

        public init(session: HubSession.Configuration, listen: SocketAddress, connectionOptions: ConnectionOptions = ConnectionOptions(),
                    pushLimits: PushLimits = .standard, maxPendingConnections: Int = 256, maxPendingPerAddress: Int = 8,
                    snapshotBudget: RequestBudget = .snapshots, digestBudget: RequestBudget = .digests, snapshotPartMillis: UInt64? = 5) {
            self.session = session
            self.listen = listen
            self.connectionOptions = connectionOptions
            self.pushLimits = pushLimits
            self.maxPendingConnections = max(1, maxPendingConnections)
            self.maxPendingPerAddress = max(1, maxPendingPerAddress)
            self.snapshotBudget = snapshotBudget
            self.digestBudget = digestBudget
            self.snapshotPartMillis = snapshotPartMillis
        }
    }

    public let loop: EventLoop
    /// The writer: used only on `writerQueue`.
    public let executor: HubStoreExecutor
    /// The reads, on a read-only connection of their own: used only on `readerQueue`.
    public let reader: HubReader
    private let writerQueue = DispatchQueue(label: "siyu.hub.writer")
    private let readerQueue = DispatchQueue(label: "siyu.hub.reader")
    /// AUTH's registration reads, on a read-only connection and a queue of their own: a flood of
    /// handshakes (anyone can start one) never queues ahead of an authenticated node's PULL on
    /// `readerQueue`, and its answers are background work of the loop (`Priority.background`).
    private let handshakeReader: HubReader
    private let handshakeQueue = DispatchQueue(label: "siyu.hub.handshakes")
    /// Snapshot parts, on a read-only connection and a queue of their own (the snapshots' table
    /// shared with `reader`, which starts them): a snapshot read a part at a time never queues
    /// ahead of another node's PULL on `readerQueue` — the reads share the core, not a queue.
    private let snapshotReader: HubReader
    private let snapshotQueue = DispatchQueue(label: "siyu.hub.snapshots")
    /// Copies the WAL into the file off the writer (`checkpointPassively`), on a connection of its
    /// own: used only on `checkpointQueue`.
    private let checkpointer: Replica
    private let checkpointQueue = DispatchQueue(label: "siyu.hub.checkpoint")
    private var checkpointTimer: TimerHandle?
    private var checkpointRunning = false
    private var checkpointFailureLogged = false
    /// How often the checkpointer copies the WAL into the file.
    public static let checkpointInterval: Duration = .milliseconds(100)
    /// After how many WAL pages the writer checkpoints itself (`setAutomaticCheckpoint`): only when
    /// the checkpointer falls that far behind, and to let the WAL start over from its beginning
    /// (SQLite restarts it only once every page in it was copied), so it stays about this size.
    /// SQLite's default, 1,000 pages, made the writer copy about 4 MB into the file some twenty
    /// times a second at 4,000 stores (10 % of the hub's CPU in a perf profile, on the PUSHes' path).
    public static let writerCheckpointPages = 8_192
    /// PUSHes waiting for the writer (loop thread), and whether a batch of them is being committed.
    private var pendingPushes: [(HubEffect, UncheckedSendable<(HubEffectResult) -> Void>)] = []
    private var pushBatchRunning = false
    /// PULL cursors not yet recorded (loop thread): the writer records them with its next group
    /// commit, or — when no PUSH comes — all together about once a `cursorFlushInterval`, so a
    /// PULL costs the writer no commit of its own.
    private var pendingCursors: [NodeID: UInt64] = [:]
    private var cursorFlushTimer: TimerHandle?
    public static let cursorFlushInterval: Duration = .seconds(1)
    /// Bounds of one group commit.
    public static let maxPushesPerCommit = 128
    public static let maxOpsPerCommit = 20_000
    /// How long a read that found customers waiting to be re-merged waits before it is asked again.
    public static let notYetRetry: Duration = .milliseconds(20)
    public let configuration: Configuration
    public let log: OperatorLog
    private let nonceSource: () -> [UInt8]
    private var listener: Listener?
    private var drivers: [ObjectIdentifier: HubConnectionDriver] = [:]
    private var nextConnectionNumber: UInt64 = 1
    private var stopping = false
    /// Per-node buckets and tag-library pacing, kept across connections.
    private var rateLimits: NodeRateLimits
    /// Per-node budgets of snapshots and digests, kept across connections.
    private var snapshotBudget: RequestBudget
    private var digestBudget: RequestBudget
    /// New connections per client address (`Configuration.acceptsPerSecond`).
    private var acceptBudget: RequestBudget
    /// Connections not authenticated yet, in all and per client address: counted as a connection
    /// starts, and no more once it authenticates, its session closes or it is gone
    /// (`countPending`, `uncountPending`), so admitting one costs the same at 4,000 stores as at 4.
    private var pendingCount = 0
    private var pendingByHost: [String: Int] = [:]
    /// Connections refused for the accept budget since the last log line about each address.
    private var refusedAccepts: [String: (count: Int, loggedAt: SessionInstant?)] = [:]
    /// A slice of re-merging customers that hold a changed tag is scheduled or running.
    private var remergeTimer: TimerHandle?
    private var remergeRunning = false
    private var remergeAgain = false
    /// The order of the writer's turns: PUSH batches ahead of re-merge slices.
    private var turns = WriterTurnPolicy(starvation: HubServer.remergeStarvation)
    private var revocationTimer: TimerHandle?
    /// How often the registry is read to close the sessions of removed or re-keyed nodes.
    public static let revocationCheckInterval: Duration = .seconds(1)

    /// A server for `executor`'s replica on `loop`: opens a second, read-only connection to the
    /// same file for the reads. Nothing is bound until `start()`. From here on, use `executor` only
    /// through the server (its queue owns it).
    public init(loop: EventLoop, executor: HubStoreExecutor, configuration: Configuration, log: OperatorLog,
                nonceSource: @escaping () -> [UInt8] = HubServer.randomNonce) throws {
        self.loop = loop
        self.executor = executor
        var options = ReplicaOptions()
        options.readOnly = true
        options.cacheMegabytes = HubServer.readerCacheMegabytes
        reader = HubReader(replica: try Replica(path: executor.replica.path, options: options), options: executor.options,
                           logEpoch: executor.logEpoch, snapshotPartMillis: configuration.snapshotPartMillis)
        snapshotReader = HubReader(replica: try Replica(path: executor.replica.path, options: options), options: executor.options,
                                   logEpoch: executor.logEpoch, snapshotPartMillis: configuration.snapshotPartMillis, snapshots: reader.snapshots)
        options.cacheMegabytes = 1
        handshakeReader = HubReader(replica: try Replica(path: executor.replica.path, options: options), options: executor.options,
                                    logEpoch: executor.logEpoch)
        checkpointer = try Replica(path: executor.replica.path, options: ReplicaOptions(cacheMegabytes: 1))
        try executor.replica.setAutomaticCheckpoint(afterPages: HubServer.writerCheckpointPages)
        self.log = log
        self.nonceSource = nonceSource
        var configuration = configuration
        if configuration.session.decoyKey.isEmpty { configuration.session.decoyKey = HubServer.randomNonce() }
        self.configuration = configuration
        rateLimits = NodeRateLimits(configuration.pushLimits)
        snapshotBudget = configuration.snapshotBudget
        digestBudget = configuration.digestBudget
        let perSecond = max(0, configuration.acceptsPerSecond)
        acceptBudget = RequestBudget(burst: UInt64(max(1, perSecond * 2)), refillMillis: perSecond == 0 ? 0 : UInt64(max(1, 1_000 / perSecond)))
    }

    /// The read-only connection's page cache, in MiB. Small on purpose: SQLite discards a WAL
    /// connection's whole page cache at the start of a read whenever another connection has
    /// committed since its last one, and the writer commits hundreds of times a second — so the
    /// reader's cache holds little more than one read's pages, and a large one only costs the walk
    /// over its hash table at every discard. The operating system's page cache holds the file.
    public static let readerCacheMegabytes = 2

    /// 32 bytes from the system's cryptographically secure generator (getrandom on Linux), drawn
    /// 8 at a time (`NodeSession.freshNonce`): one per accepted connection.
    public static func randomNonce() -> [UInt8] { NodeSession.freshNonce() }

    /// Binds and starts accepting; returns the address bound (port 0 becomes the chosen port).
    /// Loop thread, or before the loop runs.
    @discardableResult
    public func start() throws(NetError) -> SocketAddress {
        // Accepting and the handshakes before authentication are background work of the loop
        // (`Priority.background`): a flood of connections never sits between a known node and its
        // answers for more than the loop's background budget a turn.
        let listener = try Listener(bindingTo: configuration.listen, on: loop, connectionOptions: configuration.connectionOptions,
                                    priority: .background,
                                    onError: { [log] error in log.write(.error, "hub accept failed: \(error)") },
                                    onAccept: { [weak self] connection in self?.accept(connection) })
        self.listener = listener
        scheduleRemergeSlice()   // what a previous run left pending
        scheduleRevocationCheck()
        scheduleCheckpoint()
        return listener.address
    }

    /// Copies the WAL into the file every `checkpointInterval` on `checkpointQueue`, one pass at a
    /// time, so the writer's commits rarely do it themselves. Loop thread.
    private func scheduleCheckpoint() {
        guard !stopping else { return }
        checkpointTimer = loop.scheduleTimer(after: HubServer.checkpointInterval) { [weak self] in
            guard let self else { return }
            self.checkpointTimer = nil
            defer { self.scheduleCheckpoint() }
            guard !self.checkpointRunning else { return }
            self.checkpointRunning = true
            let checkpointer = UncheckedSendable(self.checkpointer)
            self.checkpointQueue.async {
                let failure: (any Error)?
                do { try checkpointer.value.checkpointPassively(); failure = nil } catch { failure = error }
                self.onLoop {
                    self.checkpointRunning = false
                    if let failure, !self.checkpointFailureLogged {
                        self.checkpointFailureLogged = true
                        self.log.write(.warn, "hub could not checkpoint its WAL from the checkpointer (the writer's commits still do): \(failure)")
                    } else if failure == nil {
                        self.checkpointFailureLogged = false
                    }
                }
            }
        }
    }

    /// Re-merges the customers holding a changed tag one slice at a time on the writer, between
    /// PUSHes, while any are pending (SPEC section 10), in the order `turns` decides: a slice
    /// never goes ahead of PUSHes that wait. Loop thread.
    fileprivate func scheduleRemergeSlice(after delay: Duration = .zero) {
        guard !stopping else { return }
        if remergeRunning { remergeAgain = true; return }
        guard remergeTimer == nil else { return }
        remergeTimer = loop.scheduleTimer(after: delay) { [weak self] in
            guard let self else { return }
            self.remergeTimer = nil
            if self.turns.sliceDue(pushesPending: self.pushBatchRunning || !self.pendingPushes.isEmpty) { self.runRemergeSlice() }
        }
    }

    /// How long a re-merge slice that is owed may wait behind back-to-back PUSH batches.
    public static let remergeStarvation: Duration = .milliseconds(50)

    /// Sends one re-merge slice to the writer. Loop thread.
    private func runRemergeSlice() {
        turns.sliceStarted()
        remergeRunning = true
        remergeAgain = false
        let executor = self.executor
        writerQueue.async {
            let outcome: Result<Bool?, any Error>
            do { outcome = .success(executor.hasPendingRemerges ? try executor.settleRemergeSlice() : nil) } catch { outcome = .failure(error) }
            self.onLoop {
                self.remergeRunning = false
                self.turns.sliceEnded(at: self.loop.clock.now())
                switch outcome {
                case .success(true?):
                    self.log.write(.debug, "hub re-merged a slice of the customers holding changed tags; more pending")
                    self.scheduleRemergeSlice()
                case .success(false?):
                    self.log.write(.info, "hub re-merged every customer holding the changed tags")
                    if self.remergeAgain { self.scheduleRemergeSlice() }
                case .success(nil):
                    if self.remergeAgain { self.scheduleRemergeSlice() }
                case let .failure(error):
                    self.log.write(.error, "hub re-merging customers holding changed tags failed (retrying in 1 s): \(error)")
                    self.scheduleRemergeSlice(after: .seconds(1))
                }
            }
        }
    }

    /// Runs `work` on the loop thread (dropped if the loop stopped).
    fileprivate func onLoop(_ work: @escaping @Sendable () -> Void) {
        try? loop.execute(work)
    }

    /// Carries out a store effect off the loop — AUTH's registration read on the handshake
    /// reader, a snapshot part on the snapshot reader, another read on the reader, a PUSH on the
    /// writer — and hands its result to `done`
    /// on the loop thread (AUTH's and snapshot parts' in the background part of a turn).
    fileprivate func perform(_ effect: HubEffect, _ done: @escaping (HubEffectResult) -> Void) {
        let done = UncheckedSendable(done)
        if case .authorize = effect {
            let reader = handshakeReader, loop = loop
            handshakeQueue.async {
                let result: HubEffectResult
                switch reader.read(effect) {
                case let .answered(answer, _): result = answer
                case .notYet: result = .failed(.internalError, "the hub's registration read was not answered")   // AUTH's never waits
                }
                try? loop.executeInBackground { done.value(result) }
            }
        } else if HubReader.reads(effect) {
            let snapshotPart = { if case .readSnapshotPart = effect { return true }; return false }()
            let reader = snapshotPart ? snapshotReader : reader, executor = executor, writerQueue = writerQueue
            (snapshotPart ? snapshotQueue : readerQueue).async {
                switch reader.read(effect) {
                case let .answered(result, writes):
                    let others = writes.filter { if case .cursor = $0 { return false }; return true }
                    let cursors = Dictionary(writes.compactMap { write -> (NodeID, UInt64)? in
                        if case let .cursor(node, cursor) = write { return (node, cursor) }; return nil
                    }, uniquingKeysWith: { _, new in new })
                    if !others.isEmpty { writerQueue.async { _ = executor.apply(others) } }
                    let finish: @Sendable () -> Void = {
                        if !cursors.isEmpty {
                            self.pendingCursors.merge(cursors) { _, new in new }
                            self.scheduleCursorFlush()
                        }
                        done.value(result)
                    }
                    // A snapshot part is encoded and sent as background work: a bulk transfer,
                    // never between a PUSH and its ack (or a PULL and its CHANGES) for longer
                    // than the loop's background budget.
                    if case .readSnapshotPart = effect { try? self.loop.executeInBackground(finish) } else { self.onLoop(finish) }
                case .notYet:
                    self.onLoop {
                        self.scheduleRemergeSlice()
                        _ = self.loop.scheduleTimer(after: HubServer.notYetRetry) { [weak self] in self?.perform(effect, done.value) }
                    }
                }
            }
        } else {
            pendingPushes.append((effect, done))
            dispatchPushes()
        }
    }

    /// Sends the PUSHes waiting on the loop to the writer as one batch — one transaction and one
    /// WAL sync for all of them (group commit) — unless a batch is being committed: those that
    /// come meanwhile wait for it and go together in the next. Each is answered after its batch
    /// committed. At most `maxPushesPerCommit` PUSHes and about `maxOpsPerCommit` ops a batch.
    private func dispatchPushes() {
        guard !pushBatchRunning, !pendingPushes.isEmpty else { return }
        var count = 0, ops = 0
        for (effect, _) in pendingPushes {
            guard count < HubServer.maxPushesPerCommit else { break }
            let size = { if case let .storePush(_, changeSet) = effect { return changeSet.ops.count }; return 0 }()
            if count > 0 && ops + size > HubServer.maxOpsPerCommit { break }
            count += 1
            ops += size
        }
        let batch = Array(pendingPushes.prefix(count))
        pendingPushes.removeFirst(count)
        pushBatchRunning = true
        let executor = executor
        let effects = batch.map(\.0)
        let completions = UncheckedSendable(batch.map(\.1))
        let cursors = pendingCursors
        pendingCursors = [:]
        writerQueue.async {
            let results = executor.writeBatch(effects, recordingCursors: cursors)
            self.onLoop {
                self.pushBatchRunning = false
                for (done, result) in zip(completions.value, results) { done.value(result) }
                // The writer's queue is FIFO: an owed slice handed over now runs before the next batch.
                if !self.stopping, self.turns.batchCommitted(pushesWaiting: !self.pendingPushes.isEmpty, now: self.loop.clock.now()) {
                    self.runRemergeSlice()
                }
                self.dispatchPushes()
            }
        }
    }

    /// Records the gathered PULL cursors in one transaction once `cursorFlushInterval` has passed,
    /// unless a group commit took them meanwhile. Loop thread.
    private func scheduleCursorFlush() {
        guard cursorFlushTimer == nil, !stopping else { return }
        cursorFlushTimer = loop.scheduleTimer(after: HubServer.cursorFlushInterval) { [weak self] in
            guard let self else { return }
            self.cursorFlushTimer = nil
            self.flushCursors()
        }
    }

    /// Hands the gathered PULL cursors to the writer now. Loop thread.
    private func flushCursors() {
        guard !pendingCursors.isEmpty else { return }
        let writes = pendingCursors.map { HubWrite.cursor(node: $0.key, $0.value) }
        pendingCursors = [:]
        let executor = executor
        writerQueue.async {
            if case let .failed(_, message)? = executor.apply(writes) {
                self.onLoop {
                    self.log.write(.error, "hub could not record \(writes.count) node cursor(s) (trying again in 1 s): \(message)")
                    for case let .cursor(node, cursor) in writes where self.pendingCursors[node] == nil { self.pendingCursors[node] = cursor }
                    self.scheduleCursorFlush()
                }
            }
        }
    }

    /// Forgets snapshot `id` on the reader (its connection closed, or it was refused).
    fileprivate func forgetSnapshot(_ id: UInt64) {
        reader.forgetSnapshot(id)   // the table is thread-safe
    }

    /// Waits until the store work queued so far is done (call after the loop stopped, before the
    /// replica is closed or marked stopped cleanly).
    public func waitForStoreWork() {
        handshakeQueue.sync {}
        snapshotQueue.sync {}
        readerQueue.sync {}
        writerQueue.sync {}
        let checkpointer = UncheckedSendable(self.checkpointer)
        checkpointQueue.sync { checkpointer.value.close() }
    }

    /// Every `revocationCheckInterval`: closes the sessions of nodes whose registration is gone or
    /// whose StoredKey changed since they authenticated (SPEC section 6, "Revocation"). Loop thread.
    private func scheduleRevocationCheck() {
        guard !stopping else { return }
        revocationTimer = loop.scheduleTimer(after: HubServer.revocationCheckInterval) { [weak self] in
            guard let self else { return }
            self.revocationTimer = nil
            guard self.drivers.values.contains(where: { $0.session.registration != nil }) else {
                self.scheduleRevocationCheck()
                return
            }
            let reader = self.reader
            self.readerQueue.async {
                let keys: Result<[NodeID: [UInt8]], any Error>
                do { keys = .success(try reader.storedKeys()) } catch { keys = .failure(error) }
                self.onLoop {
                    switch keys {
                    case let .success(current):
                        for driver in self.drivers.values {
                            guard let node = driver.session.node, let registration = driver.session.registration else { continue }
                            if current[node] != registration.verifiers.storedKey { driver.revoke() }
                        }
                    case let .failure(error):
                        self.log.write(.error, "hub could not read the registry to check for removed nodes (retrying): \(error)")
                    }
                    self.scheduleRevocationCheck()
                }
            }
        }
    }

    /// The connections open now.
    public var connectionCount: Int { drivers.count }

    /// Says BYE on every connection and stops accepting. Loop thread. The caller then stops the loop.
    public func shutdown(reason: String) {
        guard !stopping else { return }
        stopping = true
        listener?.close()
        if let remergeTimer { loop.cancelTimer(remergeTimer) }
        remergeTimer = nil
        if let revocationTimer { loop.cancelTimer(revocationTimer) }
        revocationTimer = nil
        if let cursorFlushTimer { loop.cancelTimer(cursorFlushTimer) }
        cursorFlushTimer = nil
        if let checkpointTimer { loop.cancelTimer(checkpointTimer) }
        checkpointTimer = nil
        flushCursors()
        log.write(.info, "hub shutting down (\(reason)): \(drivers.count) connection(s) open")
        for driver in Array(drivers.values) { driver.shutdown(reason: reason) }
    }

    private func accept(_ connection: TCPConnection) {
        guard !stopping else { connection.close(); return }
        let pending = pendingCount
        if pending >= configuration.maxPendingConnections {
            log.write(.warn, "hub refused a connection from \(connection.remoteAddress): too many unauthenticated connections, "
                      + "\(pending) in all (at most \(configuration.maxPendingConnections))")
            connection.reset()
            return
        }
        // Behind a terminator the TCP peer is the terminator: the client is judged once the PROXY
        // header names it (`HubConnectionDriver.readProxyHeader`).
        if !configuration.proxyProtocol,
           !admitsClient(connection.remoteAddress.hostDescription, peer: connection.remoteAddress.description) {
            connection.reset()
            return
        }
        let number = nextConnectionNumber
        nextConnectionNumber += 1
        let driver = HubConnectionDriver(server: self, connection: connection, number: number,
                                         session: HubSession(configuration.session, nonce: nonceSource(), now: now()))
        drivers[ObjectIdentifier(driver)] = driver
        countPending(driver)
        connection.priority = .background
        if configuration.proxyProtocol { driver.readProxyHeader() }
        driver.start()
    }

    /// Whether a new connection of client `host` may go on: its address's accept budget
    /// (`admitConnection`) and the cap on its unauthenticated connections, not counting `driver`,
    /// the connection itself once it has one (a client a PROXY header named). A refusal is logged;
    /// the caller closes the connection.
    fileprivate func admitsClient(_ host: String, peer: String, excluding driver: HubConnectionDriver? = nil) -> Bool {
        guard admitConnection(from: host, peer: peer) else { return false }
        let fromHost = pendingByHost[host, default: 0] - (driver?.pendingHost == host ? 1 : 0)
        guard fromHost >= configuration.maxPendingPerAddress else { return true }
        log.write(.warn, "hub refused a connection from \(peer)\(driver == nil ? "" : " (PROXY header)"): too many unauthenticated connections, "
                  + "\(fromHost) from \(host) (at most \(configuration.maxPendingPerAddress) per address)")
        return false
    }

    /// Charges one new connection from `host` to its accept budget: false when the budget is spent
    /// (the caller closes the connection). Refusals are logged at most once a second per address,
    /// with how many there were.
    private func admitConnection(from host: String, peer: String) -> Bool {
        let at = now()
        guard !acceptBudget.admit(host, now: at).admitted else { return true }
        var entry = refusedAccepts[host] ?? (0, nil)
        entry.count += 1
        if entry.loggedAt.map({ at.milliseconds(since: $0) >= 1_000 }) ?? true {
            log.write(.warn, "hub refused a connection from \(peer): more than \(configuration.acceptsPerSecond) new connections a second from \(host) (\(entry.count) refused since the last such line)")
            entry = (0, at)
        }
        refusedAccepts[host] = entry
        if refusedAccepts.count > 4_096 { refusedAccepts = refusedAccepts.filter { $0.value.loggedAt.map { at.milliseconds(since: $0) < 1_000 } ?? false } }
        return false
    }

    /// Checks a PUSH against the limits (SPEC section 10) before its ops reach the store: nil if
    /// admitted, else the text of the ERROR 12 to answer. Only an HQ node's PUSH counts as a
    /// tag-library change (a store's library write is refused with 8 by the store).
    fileprivate func admit(_ changeSet: ChangeSet, of node: NodeID, role: Role?) -> String? {
        let library = role == .hq && PushLimits.changesTagLibraryReads(changeSet.ops)
        switch rateLimits.admit(node: node, ops: changeSet.ops.count, changesTagLibraryReads: library, now: now()) {
        case .admitted: return nil
        case let .busy(message, _): return message
        }
    }

    /// A connection of `node` reached `ready`: every older connection of the same node is closed
    /// (BYE), so nothing it still carries — a PUSH sent before a power cut, say — is taken after
    /// the newer connection's WELCOME told the node its acked_seq (SPEC section 7, "Identity").
    fileprivate func supersede(_ node: NodeID, by newer: HubConnectionDriver) {
        for driver in Array(drivers.values) where driver !== newer && driver.session.node == node && driver.session.state == .ready {
            log.write(.info, "\(driver.who) superseded by conn=\(newer.number) of the same node: closing")
            driver.shutdown(reason: "a newer connection of this node")
        }
    }

    /// Whether `node` may have one more snapshot (`snapshot`) or state digest now; nil if so,
    /// else the text of the ERROR 12 to answer.
    fileprivate func budget(_ node: NodeID, snapshot: Bool) -> String? {
        let verdict = snapshot ? snapshotBudget.admit(node, now: now()) : digestBudget.admit(node, now: now())
        guard !verdict.admitted else { return nil }
        let budget = snapshot ? configuration.snapshotBudget : configuration.digestBudget
        return "node \(IdentifierRule.printable(node, limit: 64)) asked for too many \(snapshot ? "snapshots" : "state digests") (\(budget.burst) at once, then one every \(budget.refillMillis / 1000) s); try again in \(NodeRateLimits.seconds(verdict.retryAfterMillis))"
    }

    fileprivate func finished(_ driver: HubConnectionDriver) {
        uncountPending(driver)
        drivers[ObjectIdentifier(driver)] = nil
    }

    /// Counts `driver` as not authenticated yet, under its client address now (once).
    fileprivate func countPending(_ driver: HubConnectionDriver) {
        guard driver.pendingHost == nil else { return }
        driver.pendingHost = driver.host
        pendingCount += 1
        pendingByHost[driver.host, default: 0] += 1
    }

    /// `driver` authenticated, closed, or is about to be counted under another address.
    fileprivate func uncountPending(_ driver: HubConnectionDriver) {
        guard let host = driver.pendingHost else { return }
        driver.pendingHost = nil
        pendingCount -= 1
        let left = pendingByHost[host, default: 1] - 1
        pendingByHost[host] = left > 0 ? left : nil
    }

    /// Connections counted as not authenticated: (in all, per address) — for tests.
    var pendingCounts: (total: Int, byHost: [String: Int]) { (pendingCount, pendingByHost) }

    /// The loop's clock as a session instant.
    fileprivate func now() -> SessionInstant { loop.sessionNow }
}

/// One accepted connection and its session (loop thread only): a `TCPSessionHost` whose store
/// effects pass the server's admission and budgets, and whose events become log lines.
private final class HubConnectionDriver {
    unowned let server: HubServer
    let connection: TCPConnection
    let number: UInt64
    private(set) var tcp: TCPSessionHost<HubSession>!
    let opened: SessionInstant
    var snapshotID: UInt64?
    /// The client's address: the TCP peer's, or the one a PROXY header names.
    private(set) var peer: String
    /// The client's address without the port.
    private(set) var host: String
    /// The address this connection is counted under as not authenticated yet (nil: not counted).
    var pendingHost: String?

    init(server: HubServer, connection: TCPConnection, number: UInt64, session: HubSession) {
        self.server = server
        self.connection = connection
        self.number = number
        opened = server.now()
        peer = connection.remoteAddress.description
        host = connection.remoteAddress.hostDescription
        var handlers = SessionHost<HubSession>.Handlers(perform: { [unowned self] effect, _ in self.perform(effect) })
        handlers.report = { [unowned self] event in self.report(event) }
        handlers.closing = { [unowned self] reason in
            self.server.uncountPending(self)
            self.server.log.write(reason.isRetryable ? .info : .warn, "\(self.who) closing: \(reason)")
        }
        handlers.sendFailed = { [unowned self] error in self.server.log.write(.warn, "\(self.who) write failed: \(error)") }
        tcp = TCPSessionHost(connection: connection, session: session, handlers: handlers)
        tcp.disconnected = { [unowned self] reason in
            if let id = self.snapshotID { self.server.forgetSnapshot(id) }
            self.server.log.write(.info, "\(self.who) disconnected (\(reason))")
            self.server.finished(self)
        }
    }

    var session: HubSession { tcp.host.session }
    /// Whether the session ended (it closed the connection, or the connection closed under it).
    var closed: Bool { tcp.host.isFinished }

    var who: String {
        "hub conn=\(number) node=\(session.node.map { IdentifierRule.printable($0, limit: 64) } ?? "-") peer=\(peer) t=\(OperatorLog.seconds(server.now().milliseconds(since: opened)))"
    }

    func start() {
        server.log.write(.info, "\(who) connected")
        do {
            try tcp.start()
        } catch {
            server.log.write(.warn, "\(who) could not start the connection: \(error)")
            tcp.host.detach()
            server.finished(self)
        }
    }

    func shutdown(reason: String) {
        tcp.host.drive(now: server.now()) { $0.close(reason: reason, now: server.now()) }
    }

    /// The connection starts with a PROXY v1 header (`HubServer.Configuration.proxyProtocol`):
    /// read before the session sees a byte; the client it names becomes this connection's
    /// address, checked against the per-address cap. A missing or malformed header closes the
    /// connection at once.
    func readProxyHeader() {
        struct Refused: Error {}
        tcp.preamble = { [unowned self] bytes in
            switch ProxyHeader.parse(bytes) {
            case .needsMore:
                return nil
            case let .invalid(reason):
                self.server.log.write(.warn, "\(self.who) closed: \(reason) (the hub runs with --proxy-protocol and expects a PROXY v1 header from its TLS terminator first)")
                throw Refused()
            case let .header(source, length):
                if let source {
                    self.server.log.write(.info, "\(self.who) is the client \(source) (PROXY header)")
                    self.server.uncountPending(self)
                    self.peer = source.description
                    self.host = source.hostDescription
                }
                guard self.server.admitsClient(self.host, peer: self.peer, excluding: self) else { throw Refused() }
                self.server.countPending(self)
                return length
            }
        }
    }

    /// The node was removed or re-keyed: ERROR 5 and close.
    func revoke() {
        guard !closed else { return }
        server.log.write(.warn, "\(who) registration removed or secret rotated: closing the session")
        tcp.host.drive(now: server.now()) { $0.revoke(now: server.now()) }
    }

    /// Admission and budgets on the loop thread (answered at once when they refuse), the store
    /// work off it (answered later through the host).
    private func perform(_ effect: HubEffect) -> HubEffectResult? {
        if case let .storePush(node, changeSet) = effect, let busy = server.admit(changeSet, of: node, role: session.registration?.role) {
            return finished(effect, .pushBusy(busy))
        }
        if case let .readDigest(node) = effect, let busy = server.budget(node, snapshot: false) {
            return finished(effect, .failed(.busy, busy))
        }
        server.perform(effect) { [weak self] result in
            guard let self, !self.closed else {
                if case let .startSnapshot(id, _, _) = result { self?.server.forgetSnapshot(id) }
                return
            }
            var result = result
            if case let .startSnapshot(id, _, _) = result, case let .readChanges(node, _, _, _, _) = effect,
               let busy = self.server.budget(node, snapshot: true) {
                self.server.forgetSnapshot(id)
                result = .failed(.busy, busy)
            }
            self.tcp.host.complete(self.finished(effect, result), now: self.server.now())
        }
        return nil
    }

    /// Logs what an effect came to, and passes its result on. A refusal is logged once, by the
    /// session event that sends its ERROR (`errorSent`, `opRefused`, or the `closing` line): the
    /// lines here add only what those lack.
    private func finished(_ effect: HubEffect, _ result: HubEffectResult) -> HubEffectResult {
        switch (effect, result) {
        case let (.storePush(_, changeSet), .pushBusy):
            server.log.write(.debug, "\(who) push of \(changeSet.ops.count) ops not taken (busy)")
        case let (.storePush(_, changeSet), .pushStored(acked)):
            server.log.write(.info, "\(who) push stored: \(changeSet.ops.count) ops, acked_seq \(acked)")
            server.scheduleRemergeSlice()
        case let (.storePush(_, changeSet), .pushRefused(seq, code, _)):
            server.log.write(.debug, "\(who) push of \(changeSet.ops.count) ops refused at op #\(seq) (\(code.specName))")
        case let (_, .failed(code, message)) where code != .busy:
            server.log.write(.error, "\(who) store effect failed: \(code.specName) (\(code.rawValue)): \(IdentifierRule.printable(message, limit: 300))")
        default:
            break
        }
        return result
    }

    private func report(_ event: SessionEvent) {
        let log = server.log
        switch event {
        case let .authenticated(node, _, acked, head):
            log.write(.info, "\(who) auth ok: acked_seq \(acked), log head \(head)")
            server.uncountPending(self)
            connection.priority = .normal
            server.supersede(node, by: self)
        case let .authenticationRefused(_, why):
            log.write(.warn, "\(who) auth refused: \(why)")
        case let .pushed(ops, first, last):
            log.write(.debug, "\(who) pushed \(ops) ops #\(first)…#\(last)")
        case let .pushAcknowledged(acked):
            log.write(.debug, "\(who) push acknowledged up to #\(acked)")
        case let .opRefused(seq, code, message):
            log.write(.warn, "\(who) op \(seq.map { "#\($0)" } ?? "?") refused with code \(code): \(IdentifierRule.printable(message, limit: 300))")
        case let .opQuarantined(seq, code, _):
            log.write(.warn, "\(who) op #\(seq) quarantined (code \(code))")
        case let .pulled(ops, cursor, more):
            log.write(ops > 0 ? .info : .debug, "\(who) sent \(ops) ops up to position \(cursor)\(more ? ", more pending" : "")")
        case let .snapshotStarted(id, cursor, reason):
            snapshotID = id
            log.write(.info, "\(who) snapshot \(id) started at position \(cursor) (\(reason))")
        case let .snapshotFinished(id, chunks, cursor):
            snapshotID = nil
            log.write(.info, "\(who) snapshot \(id) finished: \(chunks) chunks, position \(cursor)")
        case let .identityConflict(why):
            log.write(.error, "\(who) identity conflict: \(IdentifierRule.printable(why, limit: 300))")
        case let .upgradeNeeded(why):
            log.write(.warn, "\(who) upgrade needed: \(IdentifierRule.printable(why, limit: 300))")
        case let .errorSent(error):
            log.write(.warn, "\(who) error sent: \(error)")
        case let .errorReceived(code, retryable, message):
            log.write(.warn, "\(who) error received: code \(code)\(retryable ? " (retryable)" : ""): \(IdentifierRule.printable(message, limit: 300))")
        case let .digest(position, _, cursor):
            log.write(.info, "\(who) digest sent at position \(position) (the node has pulled up to \(cursor))")
        case .digestUnsupported, .logEpochChanged, .recoveringOwnOps:
            break   // node side only
        case let .skippedFrame(type):
            log.write(.debug, "\(who) skipped a frame of ignorable type 0x\(String(type, radix: 16))")
        }
    }
}

/// A value handed between the loop thread and a store queue that only one of them uses at a time.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
