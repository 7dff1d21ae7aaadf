import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuStore
import SiyuWire

/// Defects the simulator found, each as the smallest test that shows it. They are known issues
/// (the fix lies outside the simulator's files, for the lead to decide): `withKnownIssue` keeps
/// the suite green and fails the day they are fixed, so the wrapper is then removed.
@Suite struct FoundDefectsTests {
    /// Found while building the simulator: a local edit made through the node's `Replica` while a
    /// snapshot load is held open (between SNAPSHOT_BEGIN and SNAPSHOT_END) joins the load's
    /// transaction; when the load is abandoned (the connection drops), the edit — which returned
    /// success — is rolled back with it. (The simulator defers such edits, as `siyu` on the same
    /// file would wait for the lock.)
    @Test func anEditMadeDuringASnapshotLoadSurvivesTheLoadBeingAbandoned() throws {
        let dir = try SimDirectory()
        let r = try Replica(path: dir.path("s0.db"), options: ReplicaOptions(node: "s0", role: .store, wallClock: { 1_764_000_000_000 }))
        defer { r.close() }
        try r.createCustomer("c1", ["name": .text("周")], by: "chenjing")    // the replica holds an op: an ordinary transaction
        try r.beginSnapshotLoad()
        try r.createCustomer("c9", ["name": .text("林")], by: "chenjing")   // succeeds
        r.abandonSnapshotLoad()                                             // the hub went away mid-snapshot
        let seq = try r.lastIssuedSeq(), customers = try r.rows(of: .customers).count
        withKnownIssue("the edit joined the snapshot's transaction and was rolled back with it") {
            #expect(seq == 2)
            #expect(customers == 2)
        }
        // On a replica that holds no ops yet (the load runs as a bulk load), the same edit fails
        // instead, with a storage error (UNIQUE constraint on customers), and fails the load with it.
    }

    /// Seed 40 (before the simulator reset connections that lost a segment): the hub's CHANGES is
    /// lost while the connection stays up; the node's PINGs are answered, so its idle timer never
    /// fires, and it waits for the answer to its PULL for ever — no more pulls, no more pushes.
    /// Over TCP a segment is not lost without the connection failing, but a hub that never
    /// answers (a bug, or a long-poll PULL, which SPEC section 7 leaves open) hangs the node the
    /// same way: nothing bounds how long a request may stay unanswered.
    @Test func aNodeWhosePullIsNeverAnsweredGivesUpTheConnection() throws {
        let dir = try SimDirectory()
        let wall: UInt64 = 1_764_000_000_000
        let hubReplica = try Replica(path: dir.path("hub.db"), options: ReplicaOptions(node: "hub", role: .hq, wallClock: { wall }))
        defer { hubReplica.close() }
        try hubReplica.registerNode("s0", role: .store, secret: Array("k".utf8))
        let hubStore = try HubStoreExecutor(replica: hubReplica, options: .init(bootstrapSnapshotOps: nil))
        var now = SessionInstant(milliseconds: 1_000)
        var node = NodeSession(NodeSession.Configuration(node: "s0", role: .store, secret: Array("k".utf8)), cursor: 0, lastOwnSeq: 0, now: now)
        var hub = HubSession(HubSession.Configuration(hubID: "hub"), nonce: Array(repeating: 7, count: 32), now: now)
        var toHub: [[UInt8]] = [], toNode: [[UInt8]] = []
        var changesDropped = false
        func nodeActions(_ actions: [NodeSession.Action]) {
            for a in actions { if case let .send(_, bytes) = a { toHub.append(bytes) } }
        }
        func hubActions(_ actions: [HubSession.Action]) {
            for a in actions {
                switch a {
                case let .send(m, bytes):
                    if case .changes = m, !changesDropped { changesDropped = true; continue }   // lost
                    toNode.append(bytes)
                case let .perform(e): hubActions(hub.complete(hubStore.execute(e), now: now))
                default: break
                }
            }
        }
        nodeActions(node.start(now: now))
        for _ in 0..<400 {   // 400 s of virtual time, one second at a time
            now = now.adding(milliseconds: 1_000)
            while !toHub.isEmpty || !toNode.isEmpty {
                for b in toHub { hubActions(hub.receive(b, now: now)) }
                toHub = []
                for b in toNode { nodeActions(node.receive(b, now: now)) }
                toNode = []
            }
            if let d = node.nextDeadline, d <= now { nodeActions(node.tick(now: now)) }
            if let d = hub.nextDeadline, d <= now { hubActions(hub.tick(now: now)) }
        }
        #expect(changesDropped)
        withKnownIssue("the PULL stays outstanding while PING/PONG keep the idle timer from firing") {
            #expect(node.state == .closed)
        }
    }

    /// Seed 570 (fixed): the hub and every node agreed (equal digests and conflict logs), but the
    /// property test's invariant `MergeInvariants.closedConflictsAgreeWithTheValueShown` failed on
    /// order o0's customer_id. The eight writes of that field, alone, reproduce it: the conflict d
    /// (c0) over c (c1) is resolved by f (hq, c1), g (s0, c0) and h (s2, c1, the latest, shown). h
    /// named c and d but, holding e (c1), kept c's value: it resolved that conflict again, so the
    /// entry records h, overridden (`RegisterState.resolve`), not g, acknowledged.
    @Test func aConflictResolvedSeveralTimesConcurrentlyRecordsTheResolutionShown() throws {
        let dir = try SimDirectory()
        let r = try Replica(path: dir.path("p.db"), options: ReplicaOptions(node: "p", role: .hq, wallClock: { 1_764_000_400_000 }))
        defer { r.close() }
        func st(_ ms: UInt64, _ l: UInt16, _ n: String) -> Stamp { Stamp(hlc: HLC(millis: 1_764_000_000_000 + ms, logical: l), node: n) }
        let t = Target(.order, "o0")
        let a = st(1561, 39, "hq"), b = st(2813, 0, "s1"), c = st(32745, 0, "s0"), d = st(35940, 0, "s2"), e = st(73315, 0, "s1")
        let f = st(226202, 0, "hq"), g = st(299309, 0, "s0"), h = st(321383, 0, "s2")
        func w(_ s: Stamp, _ seq: UInt64, _ v: String, _ over: [Stamp]) -> Op {
            Op(stamp: s, seq: seq, role: s.node == "hq" ? .hq : .store, author: "x", body: .write(t, field: "customer_id", value: .text(v), overwrites: over))
        }
        try r.apply(ChangeSet(ops: [w(a, 1, "c0", []), w(b, 1, "c1", []), w(c, 1, "c1", [a, b]), w(d, 1, "c0", [a, b]), w(e, 2, "c1", [a, b]),
                                    w(f, 2, "c1", [c, d]), w(g, 2, "c0", [c, d]), w(h, 2, "c1", [c, d, e])]))
        let entry = try #require(try r.conflicts().first { $0.winner?.stamp == d && $0.loser.stamp == c })
        #expect(try r.state(of: InstanceRef(.order, "o0")).registers[FieldKey(t, "customer_id")]?.winner?.stamp == h)
        #expect(entry.closedBy?.stamp == h)
        #expect(entry.state == .overridden)
    }
}
