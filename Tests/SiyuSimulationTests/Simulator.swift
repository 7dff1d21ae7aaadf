import Foundation
import SiyuCore
import SiyuHub
import SiyuNode
import SiyuSession
import SiyuSQLite
import SiyuStore
import SiyuPropertySupport
import SiyuWire
import SiyuTestSupport

/// A simulation's temporary directory, removed when the value goes away; SIYU_SIM_KEEP=1 keeps the
/// files of a run (with one seed) to look at with sqlite3.
func simulationDirectory() throws -> TemporaryDirectory {
    try TemporaryDirectory(prefix: "siyu-sim", keepingFiles: ProcessInfo.processInfo.environment["SIYU_SIM_KEEP"] == "1")
}

/// The one clock of a simulation: every session's `now` and (with a per-process skew) every
/// replica's wall clock.
final class VirtualClock {
    static let epoch: UInt64 = 1_764_000_000_000
    var now = SessionInstant(milliseconds: 1_000)
    func wall(skew: Int64) -> UInt64 { UInt64(Int64(VirtualClock.epoch + now.milliseconds) + skew) }
}

/// An injected crash inside a store effect or an edit.
struct SimulatedCrash: Error {}

/// A failure of the run's final checks (or of the run itself), with the seed that reproduces it.
struct SimulationFailure: Error, CustomStringConvertible {
    var seed: UInt64
    var problems: [String]
    var trace: [String]
    var description: String {
        "simulation seed \(seed) failed (rerun: SIYU_SIM_SEEDS=\(seed)-\(seed) swift test --filter SiyuSimulationTests, or tools/sim/run.sh \(seed)-\(seed)):\n  "
            + problems.joined(separator: "\n  ") + "\n  last events:\n    " + trace.suffix(40).joined(separator: "\n    ")
    }
}

/// One connection between a node and the hub: the transport and both sessions.
final class SimLink {
    let id: Int
    let nodeIndex: Int
    var transport: MemoryTransport
    var node: NodeSession
    var hub: HubSession
    var nodeClosed: CloseReason?
    var hubClosed: CloseReason?
    var hubSnapshots: [UInt64] = []
    /// A write on this connection was dropped: TCP cannot lose a segment and go on, so the
    /// connection is reset at this time (its retransmissions gave up).
    var resetAt: SessionInstant?

    init(id: Int, nodeIndex: Int, transport: MemoryTransport, node: NodeSession, hub: HubSession) {
        self.id = id
        self.nodeIndex = nodeIndex
        self.transport = transport
        self.node = node
        self.hub = hub
    }

    var isDead: Bool { nodeClosed != nil && hubClosed != nil }
}

/// A store node (or HQ) as a process: its replica file, whether it runs, its connection.
final class SimNode {
    let index: Int
    let name: String
    let role: Role
    /// The store a store node was registered with (its scope); nil for HQ.
    let store: String?
    let secret: [UInt8]
    var skew: Int64
    var replica: Replica?
    var executor: NodeStoreExecutor?
    /// Down (crashed) until this time.
    var restartAt: SessionInstant?
    var link: SimLink?
    var reconnectAt: SessionInstant?
    var attempts = 0
    var partitioned = false
    /// Chance in 1,000 that a write on this node's connection meets a fault.
    var faultRate = 0
    /// The highest own op number a committed edit of this node had (the hub must end up holding 1…this).
    var madeUpTo: UInt64 = 0
    var crashes = 0
    /// How many instances this node created (their ids are never given out again, even after a power loss).
    var created = 0
    /// Every PULL of this node the hub's store served, as the late-edit rule reads them.
    var pulls: [PullSeen] = []
    /// Own ops the hub refused as SPEC section 7 ("Transfers") says it may: late edits of a
    /// customer that had left the store's scope.
    var justified: Set<UInt64> = []
    /// The highest acked_seq the hub has answered this node's PUSHes with.
    var hubAcked: UInt64 = 0

    init(index: Int, name: String, role: Role, store: String? = nil, skew: Int64) {
        self.index = index
        self.name = name
        self.role = role
        self.store = store
        self.secret = Array("secret-of-\(name)".utf8)
        self.skew = skew
    }

    var isUp: Bool { replica != nil }
}

/// A PULL of a store node that reached the hub's store: its cursor, the hub's wall clock then,
/// whether the hub surely recorded it (the read ran to its end without a fault, in the hub's
/// current history), and the count of the hub's power losses before it.
struct PullSeen {
    var after: UInt64
    var wall: UInt64
    var sure: Bool
    var epoch: Int
}

/// What SPEC section 7 ("Write rights", "Transfers") says the hub does with one op of a store's
/// PUSH: take it, refuse it (ERROR 8), or either (a late edit judged near the moment the hub may
/// or may not have recorded, depending on faults).
enum LateEditVerdict: String { case take, refuse, either }

/// A deterministic simulation of a hub and its nodes in one process (issue 12, item 8): sessions
/// over `MemoryTransport`, the real executors and replicas, one virtual clock and one seeded
/// generator deciding everything — edits, message faults, partitions, disconnections, crashes
/// and restarts of nodes and the hub. `run()` makes chaos for a while, heals every fault, runs
/// until quiescent and checks convergence; it throws `SimulationFailure` naming the seed.
///
/// Reproducible: nothing reads a wall clock, every collection is walked in a fixed order, and
/// every decision comes from `rng`, so a seed replays the same run (`trace` is the same).
final class Simulation {
    struct Stats: CustomStringConvertible {
        var edits = 0, editCrashes = 0, effectCrashes = 0, nodeCrashes = 0, hubCrashes = 0, faults = 0
        var partitions = 0, disconnects = 0, connections = 0, transientFailures = 0, clockJumps = 0
        var copies = 0, powerLosses = 0, compactions = 0, opsDropped = 0, replacingSnapshots = 0
        var transfers = 0, lateEditsJudged = 0, lateEditsRefused = 0
        var healingMillis: UInt64 = 0
        var description: String {
            "edits \(edits), transfers \(transfers), late edits judged \(lateEditsJudged) (refused \(lateEditsRefused)), crashes: node \(nodeCrashes) hub \(hubCrashes) mid-effect \(effectCrashes) mid-edit \(editCrashes), "
                + "power losses \(powerLosses) (file back to one of \(copies) copies), compactions \(compactions) (\(opsDropped) ops dropped, \(replacingSnapshots) snapshots of reason 2), "
                + "message faults \(faults), partitions \(partitions), disconnects \(disconnects), connections \(connections), "
                + "transient store failures \(transientFailures), clock jumps \(clockJumps), healed in \(healingMillis) ms"
        }
    }

    let seed: UInt64
    var rng: SeededRandom
    let clock = VirtualClock()
    let dir: TemporaryDirectory
    let journal = EditJournal()
    var stats = Stats()
    var trace: [String] = []
    var problems: [String] = []

    var hubReplica: Replica?
    var hubStore: HubStoreExecutor?
    /// The hub's reads, as `HubServer` makes them: a `HubReader` over a read-only connection of its
    /// own to the same file; the writes they ask for go to the writer — the scope marks at once
    /// (the server's writer queue takes them before any PUSH the answer leads to), the PULL
    /// cursors with the next PUSH's commit or after a virtual second (lost if the hub dies first).
    var hubReadReplica: Replica?
    var hubReader: HubReader?
    var pendingCursors: [NodeID: UInt64] = [:]
    var cursorsGatheredAt: SessionInstant?
    let hubOptions: HubStoreExecutor.Options
    var hubSkew: Int64
    var hubRestartAt: SessionInstant?
    var nodes: [SimNode] = []
    /// Connections whose node side moved on (a newer connection, or the node crashed) that the hub still reads.
    var draining: [SimLink] = []
    var nextLinkID = 1
    var byteBudget: UInt64
    /// Whether faults happen (off while healing).
    var chaos = true
    let chaosSteps: Int
    /// Whose files a power loss sends back to an earlier copy in this run: the hub's (a restore
    /// from a backup, or a disk that lost synced commits: nodes hold every own op) or the nodes'
    /// (`synchronous = NORMAL` on a store PC: the hub, durable, holds every op it acknowledged).
    /// Not both in one run: an op both had lost would be lost for good, which nothing can prevent.
    enum PowerLossSide: String { case hub, nodes }
    let powerLossSide: PowerLossSide
    /// Whether the hub compacts its log in this run. Then a node's power loss takes its file back
    /// no further than its last synced commit — each stores its hub cursor (`Replica.applyChanges`),
    /// so a copy taken before one is dropped — as a real power cut does; without compaction a node's
    /// file may also go back further (as a restore from an older backup).
    let compacting: Bool
    /// The copy each process's file would go back to (taken at a commit, between steps).
    var copies: [String: String] = [:]
    /// Whether a node's file went back: edits it had made and no hub held are gone by design.
    var nodeRollbacks = 0
    /// How many times the hub's file went back to an earlier copy.
    var hubEpoch = 0
    let brand: Brand
    /// Every customer id made in the run, in the order made.
    var knownCustomers: [String] = []
    /// Transfers made per customer (at most 2: WeCom allows two per customer per 90 days).
    var transfers: [String: Int] = [:]

    var now: SessionInstant { clock.now }

    init(seed: UInt64) throws {
        self.seed = seed
        rng = SeededRandom(seed: seed &* 0x9E37_79B9 &+ 17)
        dir = try simulationDirectory()
        let stores = Int.random(in: 4...6, using: &rng)
        hubSkew = Int64.random(in: -1_500...1_500, using: &rng)
        hubOptions = HubStoreExecutor.Options(bootstrapSnapshotOps: Bool.random(using: &rng) ? UInt64.random(in: 5...150, using: &rng) : nil,
                                              opsPerSnapshotPart: Int.random(in: 3...60, using: &rng),
                                              restoreGraceMillis: Simulation.restoreGraceMillis)
        byteBudget = [UInt64(600), 2_000, 16_000, 256 * 1024].randomElement(using: &rng)!
        chaosSteps = Int.random(in: 150...300, using: &rng)
        powerLossSide = Bool.random(using: &rng) ? .hub : .nodes
        compacting = Bool.random(using: &rng)
        brand = Brand(stores: (0..<stores).map { "s\($0)" })
        nodes.append(SimNode(index: 0, name: "hq", role: .hq, skew: Int64.random(in: -1_500...1_500, using: &rng)))
        for (i, store) in brand.stores.enumerated() {
            // A store's node id is its store id: one node per store.
            nodes.append(SimNode(index: i + 1, name: store, role: .store, store: store, skew: Int64.random(in: -1_500...1_500, using: &rng)))
        }
        // The hub's file, with every node registered: each store node with its store
        // (`siyu-hub add-node --store`), HQ unscoped.
        let hub = try openHubReplica()
        // Few PBKDF2 iterations: the same code as 4,096, at the cost thousands of seeds can pay.
        // Salts made from the seed: a run's frames are the same bytes each time it replays.
        for n in nodes {
            try hub.registerNode(n.name, role: n.role, store: n.store, newStore: true, secret: n.secret, iterations: 8,
                                 salt: Array(SHA256.hash("salt \(seed) \(n.name)").prefix(SCRAMVerifiers.saltSize)))
        }
        hub.close()
        for n in nodes {
            // As `siyu-node init --store`: the replica records the store it serves.
            let clock = self.clock
            let r = try Replica.create(at: dir.path("\(n.name).db"), node: n.name, role: n.role, store: n.store,
                                       options: ReplicaOptions(wallClock: { [unowned n] in clock.wall(skew: n.skew) }))
            r.close()
        }
        note("seed \(seed): HQ and \(stores) stores, power losses on the \(powerLossSide.rawValue) side\(compacting ? ", compaction" : ""), budget \(byteBudget), snapshot ops \(String(describing: hubOptions.bootstrapSnapshotOps)) part \(hubOptions.opsPerSnapshotPart)")
    }

    // MARK: - Processes

    private func openHubReplica() throws -> Replica {
        let clock = self.clock, skew = hubSkew
        return try Replica(path: dir.path("hub.db"), options: ReplicaOptions(node: "hub", role: .hq, wallClock: { clock.wall(skew: skew) }))
    }

    private func openReplica(_ n: SimNode) throws -> Replica {
        let clock = self.clock
        // The skew can change (a clock jump): read it at each call.
        return try Replica(path: dir.path("\(n.name).db"), options: ReplicaOptions(node: n.name, role: n.role, wallClock: { [unowned n] in clock.wall(skew: n.skew) }))
    }

    func startHub() throws {
        let r = try openHubReplica()
        hubReplica = r
        let store = try HubStoreExecutor(replica: r, options: hubOptions)
        hubStore = store
        let clock = self.clock, skew = hubSkew
        var readOptions = ReplicaOptions(node: "hub", role: .hq, wallClock: { clock.wall(skew: skew) })
        readOptions.readOnly = true
        let reading = try Replica(path: dir.path("hub.db"), options: readOptions)
        hubReadReplica = reading
        hubReader = HubReader(replica: reading, options: hubOptions, logEpoch: store.logEpoch)
        hubRestartAt = nil
        note("hub up (log head \(try r.logHead()); acked " + (try r.registeredNodes().map { "\($0.node) \($0.ackedSeq)" }.joined(separator: ", ")) + ")")
    }

    func startNode(_ n: SimNode) throws {
        let r = try openReplica(n)
        n.replica = r
        n.executor = NodeStoreExecutor(replica: r)
        n.restartAt = nil
        n.reconnectAt = now
        n.attempts = 0
        note("\(n.name) up (last own seq \(try r.lastIssuedSeq()), cursor \(try r.syncState().position))")
    }

    /// The node's process dies: the replica is closed without finishing anything (an open
    /// snapshot load rolls back, as after a real crash), the connection is cut.
    func crashNode(_ n: SimNode, downFor: UInt64) {
        guard let r = n.replica else { return }
        n.crashes += 1
        note("\(n.name) crashes (down \(downFor) ms)")
        if let link = n.link {
            link.nodeClosed = link.nodeClosed ?? .transportClosed
            link.transport.close(from: .node)
            link.transport.hubToNode.reset()
            draining.append(link)
            n.link = nil
        }
        r.close()
        n.replica = nil
        n.executor = nil
        n.reconnectAt = nil
        n.restartAt = now.adding(milliseconds: downFor)
    }

    func crashHub(downFor: UInt64) {
        guard let r = hubReplica else { return }
        note("hub crashes (down \(downFor) ms)")
        for link in nodes.compactMap(\.link) + draining {
            link.hubClosed = link.hubClosed ?? .transportClosed
            link.transport.close(from: .hub)
            link.transport.nodeToHub.reset()
        }
        r.close()
        hubReadReplica?.close()
        hubReplica = nil
        hubStore = nil
        hubReadReplica = nil
        hubReader = nil
        pendingCursors = [:]
        cursorsGatheredAt = nil
        hubRestartAt = now.adding(milliseconds: downFor)
    }

    // MARK: - Power loss

    /// Keeps a copy of a file as it is now (the hub's, or node `n`'s, by the run's side), to go
    /// back to on a power loss. Taken with SQLite's online backup: a state at a commit.
    func takeCopy(_ n: SimNode) throws {
        let name = powerLossSide == .hub ? "hub" : n.name
        guard let replica = powerLossSide == .hub ? hubReplica : n.replica, !replica.isLoadingSnapshot else { return }
        let path = dir.path("\(name).copy.db")
        try? FileManager.default.removeItem(atPath: path)
        try replica.backup(to: path)
        copies[name] = path
        stats.copies += 1
        note("\(name): copy taken")
    }

    /// A power cut: the process dies and its file goes back to the copy taken earlier (its
    /// commits since are lost).
    func losePower(_ n: SimNode) throws {
        let name = powerLossSide == .hub ? "hub" : n.name
        guard let copy = copies.removeValue(forKey: name) else { return }
        if powerLossSide == .hub {
            guard hubReplica != nil else { copies[name] = copy; return }
            crashHub(downFor: UInt64.random(in: 50...8_000, using: &rng))
            hubEpoch += 1
        } else {
            guard n.isUp else { copies[name] = copy; return }
            // What the hub acknowledged stays recoverable; what only this file held is gone.
            let hubAcked = try hubAckedSeq(of: n)
            crashNode(n, downFor: UInt64.random(in: 50...5_000, using: &rng))
            nodeRollbacks += 1
            let copyLast: UInt64 = try {
                let db = try Database(path: copy, mode: .readOnly)
                defer { db.close() }
                return UInt64(clamping: try db.prepare("SELECT max(seq) FROM ops WHERE origin = ?").scalar([.text(n.name)])?.int64Value ?? 0)
            }()
            note("\(n.name): made up to #\(n.madeUpTo), the copy holds up to #\(copyLast), the hub acknowledged #\(hubAcked)")
            n.madeUpTo = max(copyLast, hubAcked)
        }
        let path = dir.path("\(name).db")
        removeDatabaseFiles(atPath: path)
        try FileManager.default.moveItem(atPath: copy, toPath: path)
        stats.powerLosses += 1
        note("\(name): power lost, its file went back to the copy")
    }

    /// The node's acked_seq at the hub now (read from the hub's file if the hub is down).
    private func hubAckedSeq(of n: SimNode) throws -> UInt64 {
        if let hub = hubReplica { return try hub.registeredNode(n.name)?.ackedSeq ?? 0 }
        let db = try Database(path: dir.path("hub.db"), mode: .readOnly)
        defer { db.close() }
        return UInt64(clamping: try db.prepare("SELECT acked_seq FROM hub_nodes WHERE node_id = ?").scalar([.text(n.name)])?.int64Value ?? 0)
    }

    // MARK: - Connections

    private func backoff(_ n: SimNode) -> UInt64 {
        let base = min(UInt64(10_000), UInt64(200) << UInt64(min(n.attempts, 6)))
        n.attempts += 1
        return base / 2 + UInt64.random(in: 0...(base / 2), using: &rng)
    }

    func connect(_ n: SimNode) {
        n.reconnectAt = nil
        if let old = n.link { draining.append(old); n.link = nil }
        guard let executor = n.executor else { return }
        guard hubStore != nil else {
            note("\(n.name): hub unreachable")
            n.reconnectAt = now.adding(milliseconds: backoff(n))
            return
        }
        let start: NodeStoreExecutor.SessionStart
        do { start = try executor.sessionStart() } catch {
            note("\(n.name): cannot read its sync state: \(error)")
            n.reconnectAt = now.adding(milliseconds: backoff(n))
            return
        }
        var transport = MemoryTransport(latencyMillis: UInt64.random(in: 1...20, using: &rng))
        transport.setPartitioned(n.partitioned)
        let nonce = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let nodeNonce = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let session = NodeSession(NodeSession.Configuration(node: n.name, role: n.role, secret: n.secret, byteBudget: byteBudget),
                                  cursor: start.cursor, lastOwnSeq: start.lastOwnSeq, logEpoch: start.logEpoch,
                                  recordedAckedSeq: start.recordedAckedSeq, now: now, nonce: nodeNonce)
        let link = SimLink(id: nextLinkID, nodeIndex: n.index, transport: transport, node: session,
                           hub: HubSession(HubSession.Configuration(hubID: "hub"), nonce: nonce, now: now))
        nextLinkID += 1
        n.link = link
        stats.connections += 1
        note("\(n.name): connection \(link.id) from cursor \(start.cursor), last own \(start.lastOwnSeq)")
        nodeDo(link, link.node.start(now: now))
    }

    /// The fate of one write on a node's connection.
    private func fate(_ link: SimLink) -> MemoryPipe.Fate {
        let rate = nodes[link.nodeIndex].faultRate
        guard chaos, rate > 0, Int.random(in: 0..<1_000, using: &rng) < rate else { return .deliver }
        stats.faults += 1
        switch Int.random(in: 0..<8, using: &rng) {
        case 0, 1:
            // Without the reset, a lost answer whose connection stays alive (PING/PONG go on) would
            // leave the node waiting for ever: the session has no request timeout (seed 40 before this).
            if link.resetAt == nil { link.resetAt = now.adding(milliseconds: UInt64.random(in: 1_000...20_000, using: &rng)) }
            return .drop
        case 2: return .duplicate
        case 3, 4, 5: return .delay(milliseconds: UInt64.random(in: 1...3_000, using: &rng))
        default: return .split(maxBytes: Int.random(in: 1...64, using: &rng))
        }
    }

    /// A crash point inside the next store effect: the statement it fails at, or nil.
    private func crashPoint(rate: Int) -> Int? {
        guard chaos, Int.random(in: 0..<1_000, using: &rng) < rate else { return nil }
        return Int.random(in: 1...12, using: &rng)
    }

    /// Runs `body` with a fault injected at statement `k` (if any); whether the fault fired.
    private func withFault<T>(_ replica: Replica, at k: Int?, _ body: () -> T) -> (T, fired: Bool) {
        guard let k else { return (body(), false) }
        var count = 0
        var fired = false
        replica.faultInjector = { _ in
            count += 1
            if count == k { fired = true; throw SimulatedCrash() }
        }
        let result = body()
        replica.faultInjector = nil
        return (result, fired)
    }

    func nodeDo(_ link: SimLink, _ actions: [NodeSession.Action]) {
        let n = nodes[link.nodeIndex]
        for action in actions {
            guard n.link === link else { return }   // the node crashed (or moved on) meanwhile
            switch action {
            case let .send(m, bytes):
                if Simulation.verbose { note("\(n.name) c\(link.id) -> \(m.type.specName) \(Simulation.brief(m)) [\(bytes.count) B \(SHA256.hash(Array(bytes)).prefix(4).map { String(format: "%02x", $0) }.joined())]") }
                link.transport.nodeToHub.write(bytes, now: now, fate: fate(link))
            case let .perform(effect):
                guard let executor = n.executor, let replica = n.replica else { return }
                let point = crashPoint(rate: 15)
                let (result, fired) = withFault(replica, at: point) { executor.execute(effect) }
                if fired {
                    let crash = Bool.random(using: &rng)
                    note("\(n.name): store fault inside \(Simulation.name(effect))\(crash ? ", and the process dies" : "")")
                    if crash {
                        stats.effectCrashes += 1
                        crashNode(n, downFor: UInt64.random(in: 50...5_000, using: &rng))
                        return
                    }
                    stats.transientFailures += 1
                }
                if compacting, powerLossSide == .nodes, result == .done, copies[n.name] != nil {
                    switch effect {
                    case .applyChanges, .finishSnapshot:
                        copies[n.name] = nil
                        note("\(n.name): its copy is older than a synced commit: dropped")
                    default: break
                    }
                }
                if let result { nodeDo(link, link.node.complete(result, now: now)) }
            case let .report(event):
                nodeEvent(n, event)
            case let .close(reason):
                link.nodeClosed = reason
                link.transport.close(from: .node)
                note("\(n.name): connection \(link.id) closed by node: \(reason)")
                n.reconnectAt = now.adding(milliseconds: backoff(n))
            }
        }
    }

    func hubDo(_ link: SimLink, _ actions: [HubSession.Action]) {
        for action in actions {
            guard link.hubClosed == nil, let store = hubStore, let replica = hubReplica else { return }
            switch action {
            case let .send(m, bytes):
                if Simulation.verbose { note("hub c\(link.id) -> \(m.type.specName) \(Simulation.brief(m))") }
                link.transport.hubToNode.write(bytes, now: now, fate: fate(link))
            case let .perform(effect):
                // What SPEC says of a store's PUSH, from the hub's state before it (read outside the fault).
                let expected = expectations(of: effect, hub: replica)
                let wall = clock.wall(skew: hubSkew)
                let point = crashPoint(rate: 8)
                let (result, fired) = hubPerform(effect, store: store, replica: replica, faultAt: point)
                if replica.isInTransaction || hubReadReplica?.isInTransaction == true {
                    problems.append("the hub's store left a transaction open after \(effect.caseName)\(fired ? " (a fault fired inside)" : "")")
                }
                observe(effect, result, fired: fired, wall: wall, expected: expected)
                if fired {
                    let crash = Int.random(in: 0..<3, using: &rng) == 0
                    note("hub: store fault inside \(effect.caseName)\(crash ? ", and the hub dies" : "")")
                    if crash {
                        stats.effectCrashes += 1
                        crashHub(downFor: UInt64.random(in: 50...8_000, using: &rng))
                        return
                    }
                    stats.transientFailures += 1
                }
                hubDo(link, link.hub.complete(result, now: now))
            case let .report(event):
                if case .authenticated = event {
                    // As HubServer does: a node's older connections close once a newer one is ready.
                    for other in nodes.compactMap(\.link) + draining
                    where other !== link && other.nodeIndex == link.nodeIndex && other.hubClosed == nil && other.hub.state == .ready {
                        hubDo(other, other.hub.close(reason: "a newer connection of this node", now: now))
                    }
                }
                if case let .snapshotStarted(id, _, _) = event { link.hubSnapshots.append(id) }
                if case let .opRefused(seq, code, message) = event {
                    note("hub refused op \(seq.map(String.init) ?? "?") of \(nodes[link.nodeIndex].name): \(code) \(message)")
                }
            case let .close(reason):
                link.hubClosed = reason
                link.transport.close(from: .hub)
                for id in link.hubSnapshots { hubReader?.forgetSnapshot(id) }
                link.hubSnapshots = []
            }
        }
    }

    /// Carries out one of the hub's store effects as `HubServer` does: a read on the reader's
    /// connection, a PUSH as a group commit of one (`writeBatch`) that also records the cursors
    /// gathered since the last commit. The fault, if any, fires on the connection the effect uses.
    private func hubPerform(_ effect: HubEffect, store: HubStoreExecutor, replica: Replica, faultAt point: Int?) -> (HubEffectResult, fired: Bool) {
        guard HubReader.reads(effect), let reader = hubReader, let reading = hubReadReplica else {
            let cursors = pendingCursors
            let (results, fired) = withFault(replica, at: point) { store.writeBatch([effect], recordingCursors: cursors) }
            if !fired { pendingCursors = [:]; cursorsGatheredAt = nil }
            return (results.first ?? .failed(.internalError, "no result"), fired)
        }
        var fired = false
        for _ in 0..<2 {
            let (outcome, firedNow) = withFault(reading, at: point) { reader.read(effect) }
            fired = fired || firedNow
            switch outcome {
            case let .answered(result, writes):
                var others: [HubWrite] = []
                for write in writes {
                    if case let .cursor(node, cursor) = write { pendingCursors[node] = cursor } else { others.append(write) }
                }
                if !pendingCursors.isEmpty, cursorsGatheredAt == nil { cursorsGatheredAt = now }
                if let failure = store.apply(others) { return (failure, fired) }
                return (result, fired)
            case .notYet:
                // The server's writer settles the customers waiting to be re-merged; ask again.
                do { try replica.settlePendingRemerges(limit: nil) } catch {
                    return (.failed(.internalError, "the hub's store failed: \(error)"), fired)
                }
            }
        }
        return (.failed(.busy, "the hub is re-merging customers holding a changed tag; ask again shortly"), fired)
    }

    /// As the server's cursor flush: the gathered PULL cursors recorded a second after the first.
    func flushHubCursors() {
        guard let gathered = cursorsGatheredAt, now.milliseconds >= gathered.milliseconds + 1_000, let store = hubStore else { return }
        let writes = pendingCursors.map { HubWrite.cursor(node: $0.key, $0.value) }
        if store.apply(writes) == nil { pendingCursors = [:]; cursorsGatheredAt = nil }
    }

    private func nodeEvent(_ n: SimNode, _ event: SessionEvent) {
        switch event {
        case .authenticated:
            n.attempts = 0
        case let .opQuarantined(seq, code, message):
            if !n.justified.contains(seq) {
                problems.append("\(n.name) quarantined its op #\(seq): the hub refused it with \(code): \(message)")
            }
            note("\(n.name) quarantines op \(seq): \(code) \(message)")
        case let .identityConflict(why):
            problems.append("\(n.name): identity conflict: \(why)")
            note("\(n.name): identity conflict")
        case let .upgradeNeeded(why):
            problems.append("\(n.name): upgrade needed: \(why)")
        case let .errorReceived(code, _, message):
            note("\(n.name) got ERROR \(code): \(message.prefix(120))")
        case let .snapshotStarted(id, cursor, reason):
            if reason == .cursorTooOld { stats.replacingSnapshots += 1 }
            note("\(n.name): snapshot \(id) to \(cursor) (\(reason))")
        case let .snapshotFinished(id, chunks, _):
            note("\(n.name): snapshot \(id) done, \(chunks) chunks")
        default:
            break
        }
    }

    static let verbose = ProcessInfo.processInfo.environment["SIYU_SIM_VERBOSE"] != nil

    static func brief(_ m: Message) -> String {
        switch m {
        case let .push(cs): return "\(cs.ops.count) ops \(cs.ops.first?.seq ?? 0)…\(cs.ops.last?.seq ?? 0)"
        case let .pushAck(a): return "acked \(a)"
        case let .pull(c, _, _): return "after \(c)"
        case let .changes(next, more, cs): return "\(cs.ops.count) ops next \(next) more \(more)"
        case let .error(code, _, text): return "\(code) \(text.prefix(100))"
        default: return ""
        }
    }

    static func name(_ effect: NodeEffect) -> String {
        switch effect {
        case .readOutbox: return "readOutbox"
        case .quarantine: return "quarantine"
        case .applyChanges: return "applyChanges"
        case .beginSnapshot: return "beginSnapshot"
        case .applySnapshotChunk: return "applySnapshotChunk"
        case .finishSnapshot: return "finishSnapshot"
        case .abandonSnapshot: return "abandonSnapshot"
        case .prepareSync: return "prepareSync"
        case .finishOwnOpsRecovery: return "finishOwnOpsRecovery"
        }
    }

    // MARK: - Time

    /// Delivers, ticks, reconnects and restarts everything due at `now`. Whether anything happened.
    @discardableResult
    func pump() throws -> Bool {
        var any = false
        for _ in 0..<10_000 {
            var progress = false
            if let at = hubRestartAt, at <= now { try startHub(); progress = true }
            for n in nodes {
                if let at = n.restartAt, at <= now { try startNode(n); progress = true }
                if n.isUp, let at = n.reconnectAt, at <= now, n.link == nil || n.link!.nodeClosed != nil {
                    connect(n); progress = true
                }
            }
            for link in nodes.compactMap(\.link) + draining {
                if let at = link.resetAt, at <= now {
                    link.resetAt = nil
                    note("\(nodes[link.nodeIndex].name): connection \(link.id) reset after a lost segment")
                    reset(link)
                    progress = true
                }
                progress = pumpLink(link) || progress
            }
            draining.removeAll { $0.isDead && $0.transport.nextDelivery == nil }
            for n in nodes where n.link?.isDead == true { n.link = nil; if n.isUp && n.reconnectAt == nil { n.reconnectAt = now } }
            if !progress { break }
            any = true
        }
        return any
    }

    /// The connection is reset: nothing in flight arrives, both sides see it closed.
    func reset(_ link: SimLink) {
        link.transport.setPartitioned(false)
        link.transport.nodeToHub.reset()
        link.transport.hubToNode.reset()
        link.transport.close(from: .node)
        link.transport.close(from: .hub)
    }

    private func pumpLink(_ link: SimLink) -> Bool {
        var progress = false
        let n = nodes[link.nodeIndex]
        let current = n.link === link
        if link.hubClosed == nil, hubStore != nil {
            for bytes in link.transport.read(by: .hub, now: now) where link.hubClosed == nil {
                progress = true
                hubDo(link, link.hub.receive(bytes, now: now))
            }
            if link.hubClosed == nil, link.transport.isClosed(toward: .hub) { progress = true; hubDo(link, link.hub.transportClosed()) }
            if link.hubClosed == nil, let d = link.hub.nextDeadline, d <= now {
                let actions = link.hub.tick(now: now)
                if !actions.isEmpty { progress = true; hubDo(link, actions) }
            }
        }
        if link.hubClosed != nil || hubStore == nil {
            _ = link.transport.read(by: .hub, now: now)   // nobody reads it any more (a crashed hub's came to nothing)
        }
        if current, link.nodeClosed != nil {
            _ = link.transport.read(by: .node, now: now)
        }
        if current, link.nodeClosed == nil {
            for bytes in link.transport.read(by: .node, now: now) where link.nodeClosed == nil && n.link === link {
                progress = true
                nodeDo(link, link.node.receive(bytes, now: now))
            }
            if n.link === link, link.nodeClosed == nil, link.transport.isClosed(toward: .node) { progress = true; nodeDo(link, link.node.transportClosed()) }
            if n.link === link, link.nodeClosed == nil, let d = link.node.nextDeadline, d <= now {
                let actions = link.node.tick(now: now)
                if !actions.isEmpty { progress = true; nodeDo(link, actions) }
            }
        } else if !current {
            _ = link.transport.read(by: .node, now: now)   // nobody reads it any more
        }
        return progress
    }

    /// The next time something is due, if anything is.
    func nextEvent() -> SessionInstant? {
        var all: [SessionInstant] = []
        if let t = hubRestartAt { all.append(t) }
        for n in nodes {
            if let t = n.restartAt { all.append(t) }
            if n.isUp, let t = n.reconnectAt { all.append(t) }
        }
        for link in nodes.compactMap(\.link) + draining {
            if let t = link.transport.nextDelivery { all.append(t) }
            if let t = link.resetAt { all.append(t) }
            if link.nodeClosed == nil, let t = link.node.nextDeadline { all.append(t) }
            if link.hubClosed == nil, hubStore != nil, let t = link.hub.nextDeadline { all.append(t) }
        }
        return all.min()
    }

    /// Moves time forward to `target`, handling everything due on the way, in time order.
    func advance(to target: SessionInstant) throws {
        try pump()
        while let next = nextEvent(), next <= target {
            if next > now { clock.now = next }
            flushHubCursors()
            if try !pump() && next <= now { break }   // nothing happened at a due time: avoid spinning
        }
        if target > now { clock.now = target }
        try pump()
    }

    // MARK: - The run

    func note(_ s: String) { trace.append("[\(now.milliseconds)] \(s)") }

    /// An edit at node `n`, as `siyu` on the same file would make it.
    func edit(_ n: SimNode) throws {
        guard let r = n.replica else { return }
        // A snapshot is staged outside the replica while it arrives (NodeStoreExecutor): edits go
        // on at any time, also in the middle of one.
        if chaos, Int.random(in: 0..<100, using: &rng) < 3, let (customer, by) = try crashingEdit(n, r) {
            // The process dies in the middle of the edit's transaction.
            let k = Int.random(in: 1...8, using: &rng)
            let (_, fired) = withFault(r, at: k) { () -> Bool in
                (try? r.editCustomer(customer, ["phone": .text("139\(Int.random(in: 0..<1000, using: &rng))")], by: by)) != nil
            }
            if fired {
                stats.editCrashes += 1
                note("\(n.name): dies in the middle of an edit")
                crashNode(n, downFor: UInt64.random(in: 50...5_000, using: &rng))
                return
            }
        } else {
            try scopedEdit(n, r)
        }
        stats.edits += 1
        n.madeUpTo = max(n.madeUpTo, try r.lastIssuedSeq())
        if let link = n.link, link.nodeClosed == nil { nodeDo(link, link.node.outboxGrew(now: now)) }
    }

    /// HQ's starting library, stores, staff and instances (`seedBrand`), made offline before anything connects.
    func seedHQ() throws {
        let hq = nodes[0]
        let r = try openReplica(hq)
        defer { r.close() }
        try seedBrand(r)
        hq.madeUpTo = try r.lastIssuedSeq()
    }

    func run() throws -> Stats {
        try seedHQ()
        try startHub()
        // Nodes come up at random times in the first seconds.
        for n in nodes {
            n.restartAt = SessionInstant(milliseconds: now.milliseconds + UInt64.random(in: 0...3_000, using: &rng))
        }
        for _ in 0..<chaosSteps {
            try chaosStep()
        }
        try heal()
        // Everyone caught up: copies to go back to (one side's files), a compaction up to the log's
        // head, then more faults — files going back below the hub's floor among them.
        if problems.isEmpty, compacting {
            for n in nodes where Bool.random(using: &rng) { try takeCopy(n) }
            try compact(maxInstances: .max)
            chaos = true
            for _ in 0..<Int.random(in: 40...120, using: &rng) { try chaosStep() }
            try heal()
        }
        try check()
        if !problems.isEmpty { throw SimulationFailure(seed: seed, problems: problems, trace: trace) }
        return stats
    }

    func chaosStep() throws {
        let roll = Int.random(in: 0..<1_000, using: &rng)
        let n = nodes.randomElement(using: &rng)!
        switch roll {
        case 0..<550:
            if n.isUp { try edit(n) }
        case 550..<600:
            n.faultRate = [0, 0, 10, 40, 150].randomElement(using: &rng)!
            note("\(n.name): fault rate \(n.faultRate)/1000")
        case 600..<630:
            n.partitioned.toggle()
            if n.partitioned { stats.partitions += 1 }
            n.link?.transport.setPartitioned(n.partitioned)
            note("\(n.name): \(n.partitioned ? "partitioned" : "healed")")
        case 630..<650:
            if let link = n.link, link.nodeClosed == nil {
                stats.disconnects += 1
                note("\(n.name): connection \(link.id) reset")
                reset(link)
            }
        case 650..<670:
            if n.isUp { stats.nodeCrashes += 1; crashNode(n, downFor: UInt64.random(in: 50...20_000, using: &rng)) }
        case 670..<678:
            if hubReplica != nil { stats.hubCrashes += 1; crashHub(downFor: UInt64.random(in: 50...15_000, using: &rng)) }
        case 684..<700:
            try takeCopy(n)
        case 700..<712:
            // A process with a copy to go back to: the hub, or a node that has one.
            try losePower(nodes.first { copies[$0.name] != nil && $0.isUp } ?? n)
        case 712..<740:
            // The hub compacts its log (siyu-hub compact), part of it or all.
            try compact(maxInstances: Bool.random(using: &rng) ? .max : Int.random(in: 1...40, using: &rng))
        case 678..<684:
            // A clock that jumps ahead beyond the hub's window for a while, then is corrected.
            stats.clockJumps += 1
            n.skew = Bool.random(using: &rng) ? Int64.random(in: 31_000...50_000, using: &rng) : Int64.random(in: -1_500...1_500, using: &rng)
            note("\(n.name): clock skew \(n.skew) ms")
        default:
            break   // time passes
        }
        let dt: UInt64
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<60: dt = UInt64.random(in: 0...60, using: &rng)
        case 60..<95: dt = UInt64.random(in: 60...2_500, using: &rng)
        default: dt = UInt64.random(in: 2_500...40_000, using: &rng)
        }
        try advance(to: now.adding(milliseconds: dt))
    }

    /// The hub compacts its log up to `maxInstances` instances (`siyu-hub compact`), if it is up.
    func compact(maxInstances: Int) throws {
        guard compacting, let hub = hubReplica else { return }
        let report = try hub.compactLog(maxInstances: maxInstances)
        stats.compactions += 1
        stats.opsDropped += report.opsDropped
        note("hub compacts: stable point \(report.stablePosition) (\(report.heldBackBy ?? "-")), \(report.opsDropped) ops dropped, floor \(report.floor)")
        if report.instancesKeptByCheck > 0 { problems.append("compaction kept \(report.instancesKeptByCheck) instance(s) whole: the merge without its candidates differed") }
    }

    /// All faults off, everything up and connected; runs until every node has pushed everything
    /// and pulled up to the hub's log head, or a bound is reached.
    func heal() throws {
        chaos = false
        note("heal")
        let started = now
        for n in nodes {
            n.faultRate = 0
            n.partitioned = false
            n.link?.transport.setPartitioned(false)
            if abs(n.skew) > 1_500 { n.skew = 0 }
            n.attempts = 0
        }
        for link in draining { link.transport.setPartitioned(false) }
        if hubReplica == nil { try startHub() }
        // A compaction while some nodes are still behind (their cursors hold it back) or down.
        try compact(maxInstances: .max)
        for n in nodes where !n.isUp { try startNode(n) }
        for n in nodes where n.link == nil || n.link!.nodeClosed != nil { n.reconnectAt = now }
        var rounds = 0
        while try !isQuiescent() {
            rounds += 1
            guard rounds < 5_000, now.milliseconds(since: started) < 30 * 60_000 else {
                // A quarantined op whose refusal the hub no longer records (its file went back) holds
                // the node's acked_seq below it for good (docs/RELIABILITY.md, "What can still be lost").
                for n in nodes {
                    guard let r = n.replica, let hub = hubReplica, let acked = try hub.registeredNode(n.name)?.ackedSeq else { continue }
                    let recorded = Set(try hub.refusals(of: n.name).map(\.seq))
                    for q in try r.quarantinedOps().map(\.seq) where q > acked && !recorded.contains(q) {
                        problems.append("\(n.name)'s acked_seq \(acked) is held back by its quarantined op #\(q), whose refusal the hub no longer records (its file went back)")
                    }
                }
                problems.append("not quiescent after healing for \(now.milliseconds(since: started)) ms: " + nodes.map(status).joined(separator: "; ")
                                + "; due: " + dueNow())
                return
            }
            let target = nextEvent() ?? now.adding(milliseconds: 1_000)
            try advance(to: max(target, now.adding(milliseconds: 1)))
        }
        stats.healingMillis = now.milliseconds(since: started)
        note("quiescent after \(stats.healingMillis) ms")
    }

    /// What keeps the next event at or before `now` (for a failure message).
    private func dueNow() -> String {
        var out: [String] = []
        if let t = hubRestartAt, t <= now { out.append("hub restart") }
        for n in nodes {
            if let t = n.restartAt, t <= now { out.append("\(n.name) restart") }
            if n.isUp, let t = n.reconnectAt, t <= now { out.append("\(n.name) reconnect (link \(n.link.map { "\($0.id) nodeClosed \(String(describing: $0.nodeClosed))" } ?? "none"))") }
        }
        for link in nodes.compactMap(\.link) + draining {
            let owner = nodes[link.nodeIndex].name + " c\(link.id)" + (nodes[link.nodeIndex].link === link ? "" : " (draining)")
            if let t = link.transport.nextDelivery, t <= now { out.append("\(owner) delivery") }
            if let t = link.resetAt, t <= now { out.append("\(owner) reset") }
            if link.nodeClosed == nil, let t = link.node.nextDeadline, t <= now { out.append("\(owner) node deadline") }
            if link.hubClosed == nil, hubStore != nil, let t = link.hub.nextDeadline, t <= now { out.append("\(owner) hub deadline \(link.hub.state)") }
        }
        return out.isEmpty ? "nothing" : out.joined(separator: ", ")
    }

    private func status(_ n: SimNode) -> String {
        guard let r = n.replica else { return "\(n.name) down" }
        let link = n.link.map {
            "conn \($0.id) \($0.node.state) caughtUp \($0.node.isCaughtUp) acked \($0.node.ackedSeq) session cursor \($0.node.cursor) "
                + "wantsInput \($0.node.wantsInput) deadline \(String(describing: $0.node.nextDeadline)) hub \($0.hub.state) \(String(describing: $0.hubClosed)) "
                + "in flight \($0.transport.nodeToHub.inFlight.count)/\($0.transport.hubToNode.inFlight.count) next \(String(describing: $0.transport.nextDelivery))"
        } ?? "no connection"
        return "\(n.name) \(link), cursor \((try? r.syncState().position) ?? 0), own \((try? r.lastIssuedSeq()) ?? 0)"
    }

    func isQuiescent() throws -> Bool {
        guard let hub = hubReplica else { return false }
        for n in nodes {
            guard let link = n.link, link.nodeClosed == nil, link.node.isCaughtUp else { return false }
        }
        let head = try hub.logHead()
        for n in nodes {
            guard let r = n.replica, let link = n.link else { return false }
            guard try r.outbox(after: link.node.ackedSeq, limit: 1).isEmpty, try r.syncState().position == head else { return false }
        }
        return true
    }

    // MARK: - Checks

    func check() throws {
        guard problems.isEmpty, let hub = hubReplica else { return }
        let hubDigest = try hub.digest()
        let hubOpList = try hub.changeSet(since: VersionVector()).ops
        let hubOps = Set(hubOpList.map(Simulation.key))
        let hubConflicts = try hub.conflicts()
        // Numbers whose ops the hub's compaction dropped: a node may still hold them.
        let dropped = try hub.droppedNumbers()
        // Each instance's home now, read here from the hub's tables by SPEC section 7 ("Scope"),
        // not from the hub's index of its log.
        let homes = try Simulation.homes(hub)
        func inScope(_ instance: InstanceRef, of store: String) -> Bool {
            switch instance.kind {
            case .tagGroup, .tag, .store: return true
            default: return homes[instance] == store
            }
        }
        for n in nodes {
            guard let r = n.replica else { continue }
            let ops = try r.changeSet(since: VersionVector()).ops
            // Own ops the hub refused as SPEC allows stay in the node's history, not the hub's —
            // unless a hub whose file went back took one later (the node pushed it again).
            let refused = { (op: Op) in op.origin == n.name && n.justified.contains(op.seq) && !hubOps.contains(Simulation.key(op)) }
            let held = Set(ops.filter { !refused($0) }.map(Simulation.key))
            if let store = n.store {
                // The hub's projection of the store's scope: its digest (the hub's own), and the op
                // set and conflict log filtered here by each instance's home now; plus the store's own ops.
                // A quarantined op stays in the node's state (SPEC section 7, "Refused ops"): then its
                // digest is that of the projection with its own ops, loaded into a fresh store replica.
                let quarantinedInScope = ops.contains { refused($0) && inScope($0.instance, of: store) }
                if quarantinedInScope {
                    let want = hubOpList.filter { $0.origin != n.name && inScope($0.instance, of: store) } + ops.filter { $0.origin == n.name }
                    if try r.digest() != projectionDigest(of: n, store: store, ops: want) {
                        problems.append("\(n.name)'s digest differs from that of its scope's ops and its own (it holds refused ops)")
                    }
                } else if try r.digest() != hub.digest(ofStore: store) {
                    problems.append("\(n.name)'s digest differs from the hub's digest of its scope" + (try Simulation.rowDifference(r, hub, inScope: { inScope($0, of: store) })))
                }
                let want = Set(hubOpList.filter { $0.origin == n.name || inScope($0.instance, of: store) }.map(Simulation.key))
                if !want.subtracting(held).subtracting(overwrittenOwn(n, ops, hubOpList)).isEmpty || !held.subtracting(want).isSubset(of: dropped) {
                    problems.append("\(n.name) holds other ops than the hub's projection of its scope: missing \(want.subtracting(held).sorted().prefix(10)), extra \(held.subtracting(want).sorted().prefix(10))")
                }
                // After the transfers settled: no op of another origin outside the scope.
                let outside = ops.filter { $0.origin != n.name && !inScope($0.instance, of: store) }.map { "\(Simulation.key($0)) on \($0.instance)" }
                if !outside.isEmpty { problems.append("\(n.name) holds ops outside its scope: \(outside.sorted().prefix(10))") }
                let wantConflicts = hubConflicts.filter { inScope($0.instance, of: store) }.map { "\($0.id):\($0.state.rawValue)" }.sorted()
                if try r.conflicts().map({ "\($0.id):\($0.state.rawValue)" }).sorted() != wantConflicts {
                    problems.append("\(n.name)'s conflict log differs from the hub's conflicts in its scope")
                }
            } else {
                if try r.digest() != hubDigest { problems.append("\(n.name)'s digest differs from the hub's") }
                if !hubOps.subtracting(held).subtracting(overwrittenOwn(n, ops, hubOpList)).isEmpty || !held.subtracting(hubOps).isSubset(of: dropped) {
                    problems.append("\(n.name) holds other ops than the hub: missing \(hubOps.subtracting(held).sorted().prefix(10)), extra \(held.subtracting(hubOps).sorted().prefix(10))")
                }
                if try r.conflicts().map({ "\($0.id):\($0.state.rawValue)" }).sorted() != hubConflicts.map({ "\($0.id):\($0.state.rawValue)" }).sorted() {
                    problems.append("\(n.name)'s conflict log differs from the hub's")
                }
            }
            // Every edit the node made — acknowledged, or in its outbox when it crashed — is at
            // the hub, unless the hub refused it as a late edit SPEC lets it refuse.
            let last = try r.lastIssuedSeq()
            if last < n.madeUpTo { problems.append("\(n.name) lost own ops: it made up to #\(n.madeUpTo), its file holds up to #\(last)") }
            let missing = (1...max(1, n.madeUpTo)).filter {
                n.madeUpTo > 0 && !hubOps.contains("\(n.name)#\($0)") && !dropped.contains("\(n.name)#\($0)") && !n.justified.contains($0)
            }
            if !missing.isEmpty { problems.append("the hub lacks ops of \(n.name): \(missing.prefix(10))") }
            let quarantined = try r.quarantinedOps().map(\.seq).filter { !n.justified.contains($0) }
            if !quarantined.isEmpty { problems.append("\(n.name) has quarantined ops the hub had no right to refuse: \(quarantined.prefix(10))") }
            // Tables equal to a rebuild from the op log.
            let incremental = try r.digest()
            try r.rebuild()
            if try r.digest() != incremental { problems.append("\(n.name)'s tables differ from a rebuild") }
        }
        guard problems.isEmpty else { return }
        // The property test's invariants, on the hub (HQ equals it; each store, its scope).
        let instances = try [(Table.customers, "customer_id", InstanceKind.customer), (.groupChats, "chat_id", .groupChat), (.orders, "order_id", .order)]
            .flatMap { table, column, kind in try hub.rows(of: table).compactMap { $0[column]?.textValue }.sorted().map { InstanceRef(kind, $0) } }
        try NoEditLost.check(hub, seed: seed, instances: instances)
        // (A node whose file went back lost the edits no hub held, payments among them.)
        if nodeRollbacks == 0 { _ = try MergeInvariants.paidOrdersHoldWhatTheirPayerSaw(hub, journal: journal, seed: seed) }
        _ = try MergeInvariants.closedConflictsAgreeWithTheValueShown(hub, seed: seed)
        // SQLite's own check of every file, after closing the replicas.
        hub.close()
        hubReplica = nil
        for n in nodes { n.replica?.close(); n.replica = nil }
        for name in ["hub"] + nodes.map(\.name) {
            let db = try Database(path: dir.path("\(name).db"))
            let result = try db.prepare("PRAGMA integrity_check").scalar()?.stringValue
            db.close()
            if result != "ok" { problems.append("\(name).db: integrity_check says \(result ?? "nothing")") }
        }
    }
}

extension Simulation {
    static func key(_ op: Op) -> String { "\(op.origin)#\(op.seq)" }

    /// The node's own ops the hub holds that the node may lack: those an op the node holds names
    /// (overwritten). A snapshot replaced the node's state while the hub had dropped them by
    /// compaction, and then the hub's file went back to a copy from before it did; CHANGES leave a
    /// node's own ops out, so they do not come back. Nothing merges differently without them.
    func overwrittenOwn(_ n: SimNode, _ held: [Op], _ hubOps: [Op]) -> Set<String> {
        func names(_ op: Op) -> [Stamp] {
            switch op.body {
            case let .write(_, _, _, list), let .add(_, list), let .remove(_, list): return list
            default: return []
            }
        }
        // Overwritten by a held op, or by an op itself overwritten so (a chain w1 ← w2 ← w3).
        var named = Set(held.flatMap(names))
        let byStamp = Dictionary(hubOps.map { ($0.stamp, $0) }, uniquingKeysWith: { first, _ in first })
        var frontier = Array(named)
        while let stamp = frontier.popLast() {
            for next in byStamp[stamp].map(names) ?? [] where named.insert(next).inserted { frontier.append(next) }
        }
        return Set(hubOps.filter { $0.origin == n.name && named.contains($0.stamp) }.map(Simulation.key))
    }

    /// The state digest of a fresh replica of store `store` (another node id: it issued none of `ops`) that loaded `ops` as one snapshot
    /// (which drops what lies outside its scope, as the node does).
    func projectionDigest(of n: SimNode, store: String, ops: [Op]) throws -> [UInt8] {
        let path = dir.path("\(n.name).projection.db")
        let clock = self.clock
        let r = try Replica.create(at: path, node: "\(n.name)_check", role: .store, store: store,
                                   options: ReplicaOptions(wallClock: { clock.wall(skew: 3_600_000) }))
        defer { r.close(); removeDatabaseFiles(atPath: path) }
        try r.beginSnapshotLoad()
        try r.applySnapshotChunk(ChangeSet(ops: ops))
        try r.finishSnapshot(cursor: 1)
        return try r.digest()
    }

    /// Which rows of a store's replica differ from the hub's rows of its scope (for a failure message).
    static func rowDifference(_ r: Replica, _ hub: Replica, inScope: (InstanceRef) -> Bool) throws -> String {
        var out: [String] = []
        for table in Table.allCases {
            let kind = table.instanceKind
            guard let key = table.columns.first?.name else { continue }
            func rows(_ x: Replica) throws -> Set<String> {
                Set(try x.rows(of: table).filter { inScope(InstanceRef(kind, $0[key]?.textValue ?? "")) || x === r }
                    .map { $0.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") })
            }
            let mine = try rows(r), hubs = try rows(hub)
            if mine != hubs {
                out.append("\(table.rawValue): only the node's \(mine.subtracting(hubs).sorted().prefix(3)), only the hub's \(hubs.subtracting(mine).sorted().prefix(3))")
            }
        }
        return out.isEmpty ? "" : " (" + out.joined(separator: "; ") + ")"
    }

    /// The store each customer, staff member, order and group chat belongs to by the hub's
    /// tables (absent: HQ only), as SPEC section 7 ("Scope") defines homes.
    static func homes(_ hub: Replica) throws -> [InstanceRef: String] {
        var out: [InstanceRef: String] = [:]
        var staffStore: [String: String] = [:]
        func store(_ v: Value?) -> String? { v?.textValue.flatMap { $0.isEmpty ? nil : $0 } }
        for row in try hub.rows(of: .staff) {
            guard let id = row["userid"]?.textValue, let s = store(row["store_id"]) else { continue }
            staffStore[id] = s
            out[InstanceRef(.staff, id)] = s
        }
        for row in try hub.rows(of: .customers) {
            if let id = row["customer_id"]?.textValue, let s = store(row["owner_store"]) { out[InstanceRef(.customer, id)] = s }
        }
        for row in try hub.rows(of: .orders) {
            if let id = row["order_id"]?.textValue, let s = store(row["store_id"]) { out[InstanceRef(.order, id)] = s }
        }
        for row in try hub.rows(of: .groupChats) {
            if let id = row["chat_id"]?.textValue, let owner = row["owner"]?.textValue, let s = staffStore[owner] { out[InstanceRef(.groupChat, id)] = s }
        }
        return out
    }
}

extension HubEffect {
    var caseName: String {
        switch self {
        case .authorize: return "authorize"
        case .storePush: return "storePush"
        case .readChanges: return "readChanges"
        case .readSnapshotPart: return "readSnapshotPart"
        case .readDigest: return "readDigest"
        }
    }
}

