import Foundation
import Glibc
import Testing
import SiyuCore
import SiyuStore

/// Real `siyu-hub` and `siyu-node` processes on loopback (ephemeral ports, a scratch directory
/// removed at the end, every wait bounded, every process killed at the end).
@Suite(.serialized) struct NetworkTests {
    /// Hub, HQ and two stores: the stores edit offline while their daemons are down, come back in
    /// different orders (continuous daemons and one-round syncs mixed), and all end equal.
    @Test(.timeLimit(.minutes(2))) func hqAndTwoStoresEditOfflineReconnectInDifferentOrdersAndConverge() throws {
        let n = try Network()
        defer { n.close() }
        for (node, role) in [("hq", "hq"), ("xihu", "store"), ("jingan", "store")] { try n.register(node, role: role) }
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("hq", role: "hq", hub: hub.address)
        try n.initNode("xihu", role: "store", hub: hub.address)
        // jingan's secret comes from the environment, not a file.
        try n.p.ok("siyu-node", ["init", "--db", n.db("jingan"), "--node", "jingan", "--role", "store", "--hub", hub.address],
                   environment: ["SIYU_NODE_SECRET": n.secrets["jingan"]!])

        try seed(n.db("hq"), customers: 20)
        #expect(try n.syncOnce("hq").code == 0)
        for s in ["xihu", "jingan"] {
            let r = try n.syncOnce(s)
            #expect(r.code == 0, "\(r.err)")
            #expect(r.out.contains("synced: nothing left to push or pull"))
        }
        #expect(try withReplica(n.db("xihu")) { try $0.opCounts().total } == withReplica(n.db("hq")) { try $0.opCounts().total })

        // Offline: both stores tag wm_1 with a different level (an exclusive group) and change a phone; HQ edits too.
        try withReplica(n.db("xihu")) { r in
            try r.addTag("silver", to: "wm_1", by: "chenjing")
            try r.editCustomer("wm_2", ["phone": .text("13900000011")], by: "chenjing")
        }
        let jinganOwn = try withReplica(n.db("jingan")) { r -> UInt64 in
            try r.addTag("gold", to: "wm_1", by: "wangfang")
            try r.editCustomer("wm_2", ["phone": .text("13900000022")], by: "wangfang")
            try r.createCustomer("wm_jingan_new", ["name": .text("新客")], by: "wangfang")
            return try r.lastIssuedSeq()
        }
        try withReplica(n.db("hq")) { r in
            try r.editCustomer("wm_3", ["name": .text("改名")], by: "zhaolei")
        }

        // jingan comes back first as a daemon, then xihu for one round, then HQ as a daemon.
        let jingan = try n.p.start("siyu-node", ["run", "--db", n.db("jingan"), "--max-backoff", "2"], name: "jingan")
        try jingan.waitFor("jingan's push acknowledged") { $0.contains("push acknowledged up to #\(jinganOwn)") }
        #expect(try n.syncOnce("xihu").code == 0)
        let hq = try n.p.start("siyu-node", ["run", "--db", n.db("hq"), "--max-backoff", "2"], name: "hq")
        try hq.waitFor("HQ's push acknowledged") { $0.contains("push acknowledged up to #") && $0.contains("pulled") }

        // An edit on HQ's file while its daemon runs (as siyu would make it) is pushed without any command.
        let before = try withReplica(n.db("hq")) { r -> UInt64 in
            try r.editCustomer("wm_4", ["phone": .text("13700000004")], by: "zhaolei")
            return try r.lastIssuedSeq()
        }
        try eventually("HQ's live edit acknowledged by the hub", timeout: 20) { try hubAcked(n, "hq") == before }
        // jingan's daemon pulls it (it polls every 5 s).
        try eventually("jingan pulls HQ's live edit", timeout: 20) {
            try withReplica(n.db("jingan")) { try $0.opCounts().total } >= withReplica(n.db("hq")) { try $0.opCounts().total }
        }

        jingan.kill(SIGTERM)
        hq.kill(SIGTERM)
        #expect(jingan.waitForExit(timeout: 5) == 0)
        #expect(hq.waitForExit(timeout: 5) == 0)
        #expect(jingan.err.contains("closing: sent BYE: node shutting down"))

        // Rounds in another order until every replica holds everything (two suffice).
        for _ in 0..<2 {
            for node in ["xihu", "hq", "jingan"] {
                let r = try n.syncOnce(node)
                #expect(r.code == 0, "\(node): \(r.err)")
            }
        }
        hub.child.kill(SIGTERM)
        #expect(hub.child.waitForExit(timeout: 5) == 0)
        #expect(hub.child.err.contains("hub stopped"))

        let digests = try ["hq", "xihu", "jingan"].map { try digest(n.db($0)) }
        #expect(Set(digests).count == 1, "\(digests)")
        #expect(try digest(n.hubDB) == digests[0])
        // The level conflict was settled the same way everywhere, and recorded.
        let tags = try ["hq", "xihu", "jingan"].map { node in
            try withReplica(n.db(node)) { r in try r.conflicts().count }
        }
        #expect(tags.allSatisfy { $0 > 0 && $0 == tags[0] }, "\(tags)")
        // Every operator line names the node and the peer.
        #expect(hub.child.err.contains("node='xihu' peer=127.0.0.1:"))
        #expect(hub.child.err.contains("push stored"))
    }

    /// A node with the wrong secret is refused (and says so), and the hub goes on serving others.
    @Test(.timeLimit(.minutes(1))) func aWrongSecretIsRefusedAndTheHubKeepsServing() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("xihu", role: "store")
        try n.register("jingan", role: "store")
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("jingan", role: "store", hub: hub.address)
        try String(repeating: "ab", count: 32).write(toFile: n.scratch.path("xihu.secret"), atomically: true, encoding: .utf8)
        try n.initNode("xihu", role: "store", hub: hub.address)

        let refused = try n.syncOnce("xihu")
        #expect(refused.code == 1)
        #expect(refused.err.contains("auth_failed"))
        #expect(refused.err.contains("siyu-node: sync did not finish"))
        let daemon = try n.p.run("siyu-node", ["run", "--db", n.db("xihu")], timeout: 20)
        #expect(daemon.code == 1, "a daemon the hub refuses stops instead of retrying forever")
        #expect(daemon.err.contains("stopped syncing"))
        try hub.child.waitFor("the refusal in the hub's log") { $0.contains("node='xihu'") && $0.contains("auth refused: the proof does not verify") }

        let jinganOwn = try withReplica(n.db("jingan")) { r -> UInt64 in
            try r.createCustomer("wm_j1", ["name": .text("新客")], by: "wangfang")
            return try r.lastIssuedSeq()
        }
        let other = try n.syncOnce("jingan")
        #expect(other.code == 0, "\(other.err)")
        #expect(try hubAcked(n, "jingan") == jinganOwn)
        #expect(hub.child.isRunning)

        // An unregistered node is refused the same way on the wire.
        try n.p.ok("siyu-node", ["init", "--db", n.db("ghost"), "--node", "ghost", "--role", "store", "--hub", hub.address],
                   environment: ["SIYU_NODE_SECRET": String(repeating: "cd", count: 32)])
        #expect(try n.syncOnce("ghost").code == 1)
        try hub.child.waitFor("the unknown node in the hub's log") { $0.contains("auth refused: the node is not registered") }
        // Nothing listening: sync --once gives up within its timeout with a clear message.
        hub.child.kill()
        let away = try n.p.run("siyu-node", ["sync", "--once", "--db", n.db("jingan"), "--timeout", "2"], timeout: 20)
        #expect(away.code == 1)
        #expect(away.err.contains("cannot reach the hub"))
    }

    /// SIGKILL of the hub while it stores a push: nothing it acknowledged is lost, the file is
    /// intact, and the node's daemon reconnects (backoff) to the restarted hub and finishes.
    @Test(.timeLimit(.minutes(2))) func killingTheHubInTheMiddleOfAPushLosesNothingAcknowledged() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        var hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("hq", role: "hq", hub: hub.address)
        try seed(n.db("hq"), customers: 1_200)
        let own = try withReplica(n.db("hq")) { try $0.lastIssuedSeq() }
        #expect(own > 3_000, "several PUSHes of 1,000 ops")

        // Killed once the first PUSH is acknowledged and the second is on its way.
        let daemon = try n.p.start("siyu-node", ["run", "--db", n.db("hq"), "--max-backoff", "1", "--push-batch", "1000"], name: "hq")
        try daemon.waitFor("a second PUSH sent", timeout: 40) { $0.components(separatedBy: " pushed ").count >= 3 }
        hub.child.kill(SIGKILL)
        let log = daemon.err
        let acknowledged = log.split(separator: "\n").compactMap { line -> UInt64? in
            guard let r = line.range(of: "push acknowledged up to #") else { return nil }
            return UInt64(line[r.upperBound...].prefix { $0.isNumber })
        }.max() ?? 0

        #expect(try integrity(n.hubDB) == "ok")
        let held = try withReplica(n.hubDB) { try $0.registeredNode("hq")!.ackedSeq }
        #expect(acknowledged >= 1_000)
        #expect(held >= acknowledged, "the hub acknowledged #\(acknowledged) but holds only up to #\(held)")
        #expect(try ops(of: "hq", upTo: held, in: n.hubDB) == Int(held), "every op up to acked_seq is in the hub's log")

        // Restart on the same port: the running daemon reconnects by itself and pushes the rest.
        hub = try HubProcess.start(n.p, db: n.hubDB, port: hub.port)
        try eventually("the rest pushed after the restart", timeout: 40) { try hubAcked(n, "hq") == own }
        try daemon.waitFor("a reconnection") { $0.components(separatedBy: "auth ok").count >= 3 }
        daemon.kill(SIGTERM)
        hub.child.kill(SIGTERM)
        #expect(try integrity(n.hubDB) == "ok")
        #expect(try digest(n.hubDB) == digest(n.db("hq")))
    }

    /// SIGKILL of a node while it applies CHANGES, and of another while it loads a snapshot:
    /// their files are intact, their own edits kept, and the next sync finishes and converges.
    @Test(.timeLimit(.minutes(2))) func killingANodeInTheMiddleOfAPullOrASnapshotLosesNothing() throws {
        let n = try Network()
        defer { n.close() }
        for (node, role) in [("hq", "hq"), ("xihu", "store"), ("gulou", "store")] { try n.register(node, role: role) }
        let hub = try HubProcess.start(n.p, db: n.hubDB, extra: ["--snapshot-after", "1000"])
        for (node, role) in [("hq", "hq"), ("xihu", "store"), ("gulou", "store")] { try n.initNode(node, role: role, hub: hub.address) }
        try seed(n.db("hq"), customers: 10)
        #expect(try n.syncOnce("hq").code == 0)
        #expect(try n.syncOnce("xihu").code == 0)   // xihu has a cursor now: it gets CHANGES, not a snapshot

        // xihu edits offline; HQ pushes a lot.
        try withReplica(n.db("xihu")) { r in
            try r.addTag("silver", to: "wm_1", by: "chenjing")
            try r.editCustomer("wm_2", ["phone": .text("13900000011")], by: "chenjing")
        }
        try seed(n.db("hq"), customers: 1_000, prefix: "wm_b", tags: false)
        let pushed = try n.syncOnce("hq", timeout: 40)
        #expect(pushed.code == 0, "\(pushed.err)")

        // A pull in small CHANGES, killed after the first arrived.
        let xihu = try n.p.start("siyu-node", ["run", "--db", n.db("xihu"), "--pull-budget", "1024"], name: "xihu")
        try xihu.waitFor("a first CHANGES applied") { $0.contains("more pending") }
        xihu.kill(SIGKILL)
        #expect(try integrity(n.db("xihu")) == "ok")
        let (position, ownKept) = try withReplica(n.db("xihu")) { r in (try r.syncState().position, try r.lastIssuedSeq()) }
        #expect(ownKept == 2)
        #expect(try ops(of: "xihu", upTo: 2, in: n.db("xihu")) == 2)
        #expect(position > 0)

        // A fresh store bootstraps from a snapshot (the hub holds more than 1,000 ops), killed mid-load.
        let gulou = try n.p.start("siyu-node", ["run", "--db", n.db("gulou")], name: "gulou")
        try gulou.waitFor("a snapshot started") { $0.contains("snapshot 1 started") }
        gulou.kill(SIGKILL)
        #expect(try integrity(n.db("gulou")) == "ok")
        let gulouState = try withReplica(n.db("gulou")) { r in (try r.syncState().position, try r.opCounts().total) }
        let snapshotDone = gulou.err.contains("snapshot 1 loaded")
        #expect(snapshotDone || gulouState == (0, 0), "an interrupted snapshot leaves nothing behind: \(gulouState)")

        // Both finish on their next round and everyone converges.
        for node in ["xihu", "gulou", "hq"] {
            let r = try n.syncOnce(node, timeout: 40)
            #expect(r.code == 0, "\(node): \(r.err)")
        }
        #expect(try hubAcked(n, "xihu") == 2)
        hub.child.kill(SIGTERM)
        let digests = try ["hq", "xihu", "gulou"].map { try digest(n.db($0)) }
        #expect(Set(digests).count == 1, "\(digests)")
        #expect(try digest(n.hubDB) == digests[0])
        #expect(try integrity(n.hubDB) == "ok")
    }
    /// SIGKILL of the hub while it serves a snapshot to a new store: the store's daemon keeps
    /// nothing of the unfinished load, reconnects to the restarted hub and bootstraps.
    @Test(.timeLimit(.minutes(2))) func killingTheHubInTheMiddleOfASnapshotLeavesTheNodeToBootstrapAgain() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        try n.register("gulou", role: "store")
        var hub = try HubProcess.start(n.p, db: n.hubDB, extra: ["--snapshot-after", "1000"])
        try n.initNode("hq", role: "hq", hub: hub.address)
        try n.initNode("gulou", role: "store", hub: hub.address)
        try seed(n.db("hq"), customers: 800)
        #expect(try n.syncOnce("hq", timeout: 40).code == 0)

        let gulou = try n.p.start("siyu-node", ["run", "--db", n.db("gulou"), "--max-backoff", "1"], name: "gulou")
        try gulou.waitFor("a snapshot started") { $0.contains("snapshot 1 started") }
        hub.child.kill(SIGKILL)
        #expect(try integrity(n.hubDB) == "ok")
        hub = try HubProcess.start(n.p, db: n.hubDB, port: hub.port, extra: ["--snapshot-after", "1000"])
        try gulou.waitFor("the snapshot loaded", timeout: 40) { $0.contains(" loaded: ") }
        try eventually("gulou caught up", timeout: 30) {
            try withReplica(n.db("gulou")) { try $0.syncState().position } == withReplica(n.db("hq")) { try $0.opCounts().total }
        }
        gulou.kill(SIGTERM)
        #expect(gulou.waitForExit(timeout: 5) == 0)
        hub.child.kill(SIGTERM)
        #expect(try integrity(n.db("gulou")) == "ok")
        #expect(try digest(n.db("gulou")) == digest(n.hubDB))
        #expect(try digest(n.db("hq")) == digest(n.hubDB))
    }

    /// A hub with a small per-node rate: HQ's big push is answered `busy` part of the way, its
    /// daemon waits and pushes the rest on the same connection, and the hub sends it none of its
    /// own ops back while a store receives them all.
    @Test(.timeLimit(.minutes(2))) func aNodeOverItsRateIsToldBusyPushesTheRestLaterAndNeverReceivesItsOwnOps() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        try n.register("xihu", role: "store")
        let hub = try HubProcess.start(n.p, db: n.hubDB, extra: ["--push-rate", "100", "--push-burst", "1000", "--log-level", "debug"])
        try n.initNode("hq", role: "hq", hub: hub.address)
        try n.initNode("xihu", role: "store", hub: hub.address)
        try seed(n.db("hq"), customers: 600)
        let own = try withReplica(n.db("hq")) { try $0.lastIssuedSeq() }
        #expect(own > 1_800, "more than the burst")

        let daemon = try n.p.start("siyu-node", ["run", "--db", n.db("hq"), "--push-batch", "500"], name: "hq")
        try eventually("HQ's ops all acknowledged", timeout: 60) { try hubAcked(n, "hq") == own }
        // HQ's next pull passes over its own ops: the cursor reaches the log head with no op sent.
        try eventually("HQ's cursor past its own ops", timeout: 20) { hub.child.err.contains("sent 0 ops up to position \(own)") }
        daemon.kill(SIGTERM)
        #expect(daemon.waitForExit(timeout: 5) == 0)
        #expect(daemon.err.contains("busy (12), retryable"), "\(daemon.err)")
        #expect(daemon.err.components(separatedBy: "auth ok").count == 2, "one connection: busy does not close it")
        #expect(hub.child.err.contains("error sent: busy (12): node 'hq' has used its share"))
        // Every CHANGES the hub sent HQ was empty: HQ is the only origin.
        let sent = hub.child.err.split(separator: "\n").filter { $0.contains(" node='hq' ") && $0.contains(" ops up to position ") }
        #expect(!sent.isEmpty && sent.allSatisfy { $0.contains(" sent 0 ops ") }, "\(sent) \(hub.child.err.suffix(3000))")
        #expect(try withReplica(n.db("hq")) { try $0.opCounts().total } == Int(own))

        #expect(try n.syncOnce("xihu", timeout: 40).code == 0)
        hub.child.kill(SIGTERM)
        #expect(try digest(n.db("xihu")) == digest(n.db("hq")))
        #expect(try digest(n.hubDB) == digest(n.db("hq")))
    }
}
