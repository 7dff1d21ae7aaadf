import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuNode
import SiyuSession
import SiyuStore
import SiyuWire
import SiyuTestSupport

/// A hub replica and node replicas in a temporary directory, synced through the real executors
/// over SiyuSession's MemoryTransport.
final class SyncWorld {
    let dir: TemporaryDirectory
    let wall = WallClock()
    var hubReplica: Replica
    var hub: HubStoreExecutor
    var nodes: [String: Replica] = [:]
    static func secret(_ node: String) -> [UInt8] { Array("secret-of-\(node)".utf8) }

    init(_ nodes: [(String, Role)] = [("hq", .hq), ("xihu", .store)], options: HubStoreExecutor.Options = .init(bootstrapSnapshotOps: nil)) throws {
        dir = try TemporaryDirectory()
        let wall = self.wall
        hubReplica = try Replica(path: dir.path("hub.db"), options: ReplicaOptions(node: "hub-hz", role: .hq, wallClock: { wall.now }))
        for (id, role) in nodes {
            try hubReplica.registerNode(id, role: role, secret: SyncWorld.secret(id))
            self.nodes[id] = try Replica(path: dir.path("\(id).db"), options: ReplicaOptions(node: id, role: role, wallClock: { wall.now }))
        }
        hub = try HubStoreExecutor(replica: hubReplica, options: options)
    }

    subscript(_ id: String) -> Replica { nodes[id]! }

    /// The hub's process stops without a clean stop (a crash, a power cut) and starts again,
    /// from `file` if given (a restored backup copy) or from its own file.
    func restartHub(from file: String? = nil) throws {
        hubReplica.close()
        let path = dir.path("hub.db")
        if let file {
            removeDatabaseFiles(atPath: path)
            try FileManager.default.copyItem(atPath: file, toPath: path)
        }
        let wall = self.wall
        hubReplica = try Replica(path: path, options: ReplicaOptions(node: "hub-hz", role: .hq, wallClock: { wall.now }))
        hub = try HubStoreExecutor(replica: hubReplica, options: .init(bootstrapSnapshotOps: nil))
    }

    /// Node `id`'s file goes back to `copy` (a power cut lost its commits since), and it reopens.
    func restoreNode(_ id: String, from copy: String) throws {
        let role = self[id].role
        self[id].close()
        let path = dir.path("\(id).db")
        removeDatabaseFiles(atPath: path)
        try FileManager.default.copyItem(atPath: copy, toPath: path)
        let wall = self.wall
        nodes[id] = try Replica(path: path, options: ReplicaOptions(node: id, role: role, wallClock: { wall.now }))
    }

    /// One connection of `id` until it is caught up, then BYE.
    @discardableResult
    func sync(_ id: String, byteBudget: UInt64 = 64 * 1024, faults: MemoryTransport.FaultHook? = nil) throws -> SyncRun {
        let run = try SyncRun(node: self[id], secret: SyncWorld.secret(id), hub: hub, wall: wall, byteBudget: byteBudget, faults: faults)
        run.runUntilIdle()
        run.close()
        return run
    }

    func reopen(_ id: String) throws {
        let role = self[id].role
        self[id].close()
        let wall = self.wall
        nodes[id] = try Replica(path: dir.path("\(id).db"), options: ReplicaOptions(node: id, role: role, wallClock: { wall.now }))
    }

    deinit {
        for r in nodes.values { r.close() }
        hubReplica.close()
    }
}

/// Seeds HQ's replica with a tag library and `customers` customers, each with a tag and a phone.
func seedHQ(_ hq: Replica, customers: Int, wall: WallClock) throws {
    try hq.defineTagGroup("g", name: "偏好")
    try hq.defineTag("t_tea", group: "g", name: "茶饮")
    for i in 0..<customers {
        wall.now += 1
        try hq.createCustomer("wm_\(i)", ["name": .text("客户\(i)"), "phone": .text("1380000\(i)")], by: "zhaolei")
        try hq.addTag("t_tea", to: "wm_\(i)", by: "zhaolei")
    }
}

@Suite struct NodeHubSyncTests {
    @Test func aNodeAuthenticatesPushesItsOutboxAndTheHubAcknowledgesEveryOp() throws {
        let w = try SyncWorld()
        try seedHQ(w["hq"], customers: 5, wall: w.wall)
        let run = try w.sync("hq")
        #expect(run.nodeEvents.contains { if case .authenticated = $0 { return true }; return false })
        let own = try w["hq"].lastIssuedSeq()
        #expect(own > 15)
        #expect(try w.hubReplica.registeredNode("hq")?.ackedSeq == own)
        #expect(try w.hubReplica.logHead() == own)
        #expect(try w["hq"].syncState().ackedSeq == own)   // recorded when the outbox was read again
        #expect(try w.hubReplica.digest() == w["hq"].digest())
        #expect(run.nodeClosed == .byeSent("test done"))
    }

    @Test func aNewNodePullsTheLogInBatchesWithinItsByteBudgetAndCatchesUp() throws {
        let w = try SyncWorld()
        try seedHQ(w["hq"], customers: 200, wall: w.wall)
        try w.sync("hq")
        let run = try w.sync("xihu", byteBudget: 2_000)
        let changes = run.hubSent.compactMap { m -> (UInt64, Bool, Int)? in
            if case let .changes(next, more, cs) = m { return (next, more, cs.ops.count) }; return nil
        }
        #expect(changes.count > 3)                                  // several batches…
        #expect(changes.dropLast().allSatisfy { $0.1 && $0.2 >= 1 }) // …each with more = true but the last
        #expect(changes.last?.1 == false)
        #expect(UInt64(changes.map(\.2).reduce(0, +)) == (try w.hubReplica.logHead()))
        #expect(try w["xihu"].syncState().position == w.hubReplica.logHead())
        #expect(try w["xihu"].digest() == w["hq"].digest())
    }

    @Test func aNodeThatWasAwayContinuesFromItsStoredCursor() throws {
        let w = try SyncWorld()
        try seedHQ(w["hq"], customers: 10, wall: w.wall)
        try w.sync("hq")
        try w.sync("xihu")
        let cursor = try w["xihu"].syncState().position
        #expect(cursor == (try w.hubReplica.logHead()))
        try w.reopen("xihu")
        try w["hq"].editCustomer("wm_3", ["name": .text("改名")], by: "zhaolei")
        try w["xihu"].editCustomer("wm_4", ["phone": .text("13900000000")], by: "chenjing")
        try w.sync("hq")
        let run = try w.sync("xihu")
        let pulls = run.nodeSent.compactMap { m -> UInt64? in if case let .pull(c, _, _) = m { return c }; return nil }
        #expect(pulls.first == cursor)                             // not from 0
        let pulledOps = run.hubSent.compactMap { m -> Int? in if case let .changes(_, _, cs) = m { return cs.ops.count }; return nil }
        #expect(pulledOps.reduce(0, +) >= 1)                       // HQ's edit (and xihu's own back, if pushed first)
        try w.sync("hq")
        #expect(try w["xihu"].digest() == w["hq"].digest())
        #expect(try w["xihu"].digest() == w.hubReplica.digest())
    }

    @Test func aPushRepeatedAfterALostAcknowledgementIsStoredOnce() throws {
        let w = try SyncWorld()
        try seedHQ(w["hq"], customers: 3, wall: w.wall)
        try w.sync("hq")
        let head = try w.hubReplica.logHead()
        let all = try w["hq"].outbox(after: 0, limit: 1_000)
        // The node missed the PUSH_ACK and pushes from an older acked_seq: every op again, then a
        // tail that overlaps what the hub holds.
        #expect(w.hub.execute(.storePush(node: "hq", ChangeSet(ops: all))) == .pushStored(ackedSeq: UInt64(all.count)))
        try w["hq"].editCustomer("wm_1", ["name": .text("新名")], by: "zhaolei")
        let tail = try w["hq"].outbox(after: UInt64(all.count - 2), limit: 1_000)
        #expect(w.hub.execute(.storePush(node: "hq", ChangeSet(ops: tail))) == .pushStored(ackedSeq: UInt64(all.count + 1)))
        #expect(try w.hubReplica.logHead() == head + 1)
        #expect(try w.hubReplica.opCounts().total == all.count + 1)
        try w.sync("hq")
        #expect(try w.hubReplica.digest() == w["hq"].digest())
    }

    @Test func aCrashBetweenApplyingChangesAndStoringTheCursorLosesNothing() throws {
        let w = try SyncWorld()
        try seedHQ(w["hq"], customers: 20, wall: w.wall)
        try w.sync("hq")
        // The write of the cursor fails (a crash at that statement): nothing of the batch stays.
        w["xihu"].faultInjector = { sql in if sql.contains("INSERT INTO cursors") { throw InjectedCrash() } }
        let crashed = try w.sync("xihu")
        #expect(crashed.nodeClosed.map { if case .errorSent(let e) = $0 { return e.code == .internalError }; return false } == true)
        #expect(try w["xihu"].opCounts().total == 0)
        #expect(try w["xihu"].syncState().position == 0)
        w["xihu"].faultInjector = nil
        try w.reopen("xihu")
        try w.sync("xihu")
        #expect(try w["xihu"].opCounts().total == w["hq"].opCounts().total)
        #expect(try w["xihu"].syncState().position == w.hubReplica.logHead())
        #expect(try w["xihu"].digest() == w["hq"].digest())
    }

    @Test func aNewNodeBootstrapsFromASnapshotInOneTransactionAndPullsOnFromItsCursor() throws {
        let w = try SyncWorld(options: .init(bootstrapSnapshotOps: 10, opsPerSnapshotPart: 15))
        try seedHQ(w["hq"], customers: 30, wall: w.wall)
        try w.sync("hq")
        let run = try w.sync("xihu")
        let chunks = run.hubSent.filter { if case .snapshotChunk = $0 { return true }; return false }.count
        #expect(chunks >= 4)
        #expect(run.nodeEvents.contains { if case .snapshotFinished = $0 { return true }; return false })
        #expect(try w["xihu"].syncState().position == w.hubReplica.logHead())
        #expect(try w["xihu"].digest() == w["hq"].digest())
    }

    @Test func aSnapshotCutOffHalfwayLeavesNothingAndTheNextOneCompletes() throws {
        let w = try SyncWorld(options: .init(bootstrapSnapshotOps: 10, opsPerSnapshotPart: 10))
        try seedHQ(w["hq"], customers: 30, wall: w.wall)
        try w.sync("hq")
        // Hub writes: CHALLENGE, WELCOME, SNAPSHOT_BEGIN, chunks…: everything from the third chunk on is lost.
        let cut = try SyncRun(node: w["xihu"], secret: SyncWorld.secret("xihu"), hub: w.hub, wall: w.wall,
                              faults: { side, index, _ in side == .hub && index >= 5 ? .drop : .deliver })
        cut.run(forMillis: 5_000)
        #expect(try w["xihu"].stagedSnapshotOpCount() > 0)   // chunks arrived, staged outside the replica
        #expect(try w["xihu"].opCounts().total == 0)
        cut.nodeTransportClosed()
        #expect(try w["xihu"].stagedSnapshotOpCount() == 0)
        #expect(try w["xihu"].opCounts().total == 0)
        #expect(try w["xihu"].syncState().position == 0)
        try w.sync("xihu")
        #expect(try w["xihu"].digest() == w["hq"].digest())
    }

    @Test func anOpTooFarAheadIsRefusedWithClockSkewAloneAndTakenOnceTheClocksAgree() throws {
        let w = try SyncWorld()
        try seedHQ(w["hq"], customers: 2, wall: w.wall)
        try w.sync("hq")
        // xihu's next edit is stamped 45 s in the future (its clock jumped), beyond the hub's 30 s window.
        let saved = w.wall.now
        w.wall.now += 45_000
        try w["xihu"].createCustomer("wm_future", [:], by: "chenjing")
        w.wall.now = saved
        let run = try SyncRun(node: w["xihu"], secret: SyncWorld.secret("xihu"), hub: w.hub, wall: w.wall)
        run.run(forMillis: 5_000)
        #expect(run.hubEvents.contains { if case .opRefused(1, 9, _) = $0 { return true }; return false })
        #expect(try w.hubReplica.registeredNode("xihu")?.ackedSeq == 0)
        #expect(try w.hubReplica.refusals(of: "xihu").isEmpty)        // 9 is not recorded: the node retries
        #expect(try w["xihu"].quarantinedOps().isEmpty)
        // The node retries after 30 s; by then the op is within the window.
        run.run(forMillis: 40_000) { _ in (try? w.hubReplica.registeredNode("xihu")?.ackedSeq) == 1 }
        #expect(try w.hubReplica.registeredNode("xihu")?.ackedSeq == 1)
    }
}

struct InjectedCrash: Error {}
