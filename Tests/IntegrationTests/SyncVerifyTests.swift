import Foundation
import Glibc
import Testing
import SiyuCore
import SiyuSQLite
import SiyuStore

/// `siyu sync --now` and `siyu verify` as an operator runs them: real `siyu-hub`, `siyu-node` and
/// `siyu` processes on loopback (ephemeral port, scratch directory removed, bounded waits).
@Suite(.serialized) struct SyncVerifyTests {
    /// `siyu …` with the scratch network; status, stdout, stderr.
    static func siyu(_ n: Network, _ arguments: [String]) throws -> (code: Int32, out: String, err: String) {
        try n.p.run("siyu", arguments, timeout: 60)
    }

    static func json(_ text: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw Failure("not a JSON object: \(text)")
        }
        return object
    }

    @Test(.timeLimit(.minutes(2))) func syncNowMovesOpsAndVerifySaysEqualThenDifferWhenTheNodeLacksTheHubsOps() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        try n.register("xihu", role: "store")
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("hq", role: "hq", hub: hub.address)
        try n.initNode("xihu", role: "store", hub: hub.address)
        try seed(n.db("hq"), customers: 20)
        let hqOwn = try withReplica(n.db("hq")) { try $0.lastIssuedSeq() }

        // HQ pushes everything it has (JSON report).
        let pushed = try Self.siyu(n, ["sync", "--now", "--db", n.db("hq"), "--json"])
        #expect(pushed.code == 0, "\(pushed.err)")
        let pushReport = try Self.json(pushed.out)
        let moved = pushReport["moved"] as? [String: Any] ?? [:]
        #expect(pushReport["synced"] as? Bool == true)
        #expect(moved["pushed_ops"] as? Int == Int(hqOwn))
        #expect(moved["acked_seq"] as? Int == Int(hqOwn))
        #expect(try hubAcked(n, "hq") == hqOwn)

        // The store pulls all of it (text report), then pushes an edit of its own.
        let pulled = try Self.siyu(n, ["sync", "--now", "--db", n.db("xihu")])
        #expect(pulled.code == 0, "\(pulled.err)")
        #expect(pulled.out.contains("nothing left to push or pull"))
        #expect(pulled.out.contains("pushed 0 ops"), "\(pulled.out)")
        #expect(pulled.out.contains("pulled \(hqOwn) ops (hub position \(hqOwn))"), "\(pulled.out)")
        try withReplica(n.db("xihu")) { r in try r.editCustomer("wm_1", ["phone": .text("13900000011")], by: "chenjing") }
        let pushedOne = try Self.siyu(n, ["sync", "--now", "--db", n.db("xihu")])
        #expect(pushedOne.code == 0, "\(pushedOne.err)")
        #expect(pushedOne.out.contains("pushed 1 op (own ops acknowledged up to #1)"), "\(pushedOne.out)")
        #expect(try hubAcked(n, "xihu") == 1)

        // Both verify equal; the hub's digest is the replica's own.
        let equal = try Self.siyu(n, ["verify", "--db", n.db("xihu")])
        #expect(equal.code == 0, "\(equal.out)\(equal.err)")
        #expect(equal.out.contains("equal: "))
        let equalJSON = try Self.json(try Self.siyu(n, ["verify", "--db", n.db("hq"), "--json"]).out)
        #expect(equalJSON["equal"] as? Bool == true)
        #expect(equalJSON["position"] as? Int == Int(hqOwn) + 1, "HQ's ops and xihu's one")
        #expect(equalJSON["hub_digest"] as? String == equalJSON["local_digest"] as? String)
        #expect(equalJSON["local_digest"] as? String == (try digest(n.db("hq"))))
        #expect(try digest(n.db("hq")) == digest(n.db("xihu")))

        // HQ adds a customer and pushes it. xihu's cursor is then moved past it by hand (a damaged
        // replica): its pulls skip the op, so after a full round the hub holds an op xihu lacks.
        try withReplica(n.db("hq")) { r in try r.createCustomer("wm_new", ["name": .text("新客")], by: "zhaolei") }
        let hqVerify = try Self.json(try Self.siyu(n, ["verify", "--db", n.db("hq"), "--json"]).out)
        #expect(hqVerify["equal"] as? Bool == true)
        let head = try #require(hqVerify["position"] as? Int)
        let db = try Database(path: n.db("xihu"), mode: .readWrite)
        try db.prepare("UPDATE cursors SET position = ? WHERE peer = 'hub'").run([.integer(Int64(head))])
        db.close()

        let differ = try Self.siyu(n, ["verify", "--db", n.db("xihu")])
        #expect(differ.code == 1)
        #expect(differ.out.contains("DIFFER: "), "\(differ.out)\(differ.err)")
        #expect(differ.out.contains("at log position \(head)"))
        #expect(differ.out.contains("hint: ") && differ.out.contains("siyu export-changes"))
        let differJSON = try Self.json(try Self.siyu(n, ["verify", "--db", n.db("xihu"), "--json"]).out)
        #expect(differJSON["equal"] as? Bool == false)
        #expect(differJSON["position"] as? Int == head)
        #expect(differJSON["hub_digest"] as? String == hqVerify["hub_digest"] as? String)
        #expect((differJSON["hint"] as? String)?.contains("siyu rebuild") == true)

        // The hint's remedy: the hub's ops carried over by file make the two equal again.
        let changes = n.scratch.path("hub-changes.siyu")
        #expect(try Self.siyu(n, ["export-changes", "--db", n.hubDB, "--out", changes]).code == 0)
        #expect(try Self.siyu(n, ["import-changes", "--db", n.db("xihu"), changes]).code == 0)
        let again = try Self.siyu(n, ["verify", "--db", n.db("xihu")])
        #expect(again.code == 0, "\(again.out)\(again.err)")

        // Tables edited by hand drift from the op log: verify differs until siyu rebuild.
        let edit = try Database(path: n.db("xihu"), mode: .readWrite)
        try edit.prepare("UPDATE customers SET name = 'hand-edited' WHERE customer_id = 'wm_2'").run()
        edit.close()
        #expect(try Self.siyu(n, ["verify", "--db", n.db("xihu")]).code == 1)
        #expect(try Self.siyu(n, ["rebuild", "--db", n.db("xihu")]).code == 0)
        #expect(try Self.siyu(n, ["verify", "--db", n.db("xihu")]).code == 0)
        hub.child.kill(SIGTERM)
    }

    @Test(.timeLimit(.minutes(2))) func aReplicaADaemonSyncsIsRefusedAtOnceWithWhoHoldsIt() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("xihu", role: "store")
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("xihu", role: "store", hub: hub.address)
        let daemon = try n.p.start("siyu-node", ["run", "--db", n.db("xihu")], name: "xihu")
        try daemon.waitFor("the daemon authenticated") { $0.contains("auth ok") }

        for command in [["sync", "--now"], ["verify"]] {
            let refused = try Self.siyu(n, command + ["--db", n.db("xihu")])
            #expect(refused.code == 1, "\(command)")
            #expect(refused.err.contains("is being synced by another process (siyu-node run, pid \(daemon.process.processIdentifier))"), "\(refused.err)")
            #expect(refused.err.contains("hint: ") && refused.err.contains("stop the daemon"))
            #expect(refused.out.isEmpty)
        }
        // A second daemon, or a one-round sync, is refused the same way.
        let second = try n.p.run("siyu-node", ["sync", "--once", "--db", n.db("xihu"), "--timeout", "5"], timeout: 30)
        #expect(second.code == 1 && second.err.contains("being synced by another process"))
        #expect(daemon.isRunning)

        // Once the daemon stops (even by SIGKILL: the lock dies with it), the command runs.
        daemon.kill(SIGKILL)
        let after = try Self.siyu(n, ["sync", "--now", "--db", n.db("xihu")])
        #expect(after.code == 0, "\(after.err)")

        // No hub recorded: refused before any connection, with the command that records one.
        let plain = n.scratch.path("plain.db")
        #expect(try Self.siyu(n, ["init", "--db", plain, "--node", "plain", "--role", "store"]).code == 0)
        let notSetUp = try Self.siyu(n, ["sync", "--now", "--db", plain])
        #expect(notSetUp.code == 1 && notSetUp.err.contains("siyu-node init"))
        // --now is required.
        #expect(try Self.siyu(n, ["sync", "--db", n.db("xihu")]).code == 2)
        hub.child.kill(SIGTERM)
    }

    @Test(.timeLimit(.minutes(1))) func withTheHubDownSyncNowGivesUpWithinItsTimeoutAndSaysWhy() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("xihu", role: "store")
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("xihu", role: "store", hub: hub.address)
        hub.child.kill()
        let away = try Self.siyu(n, ["sync", "--now", "--db", n.db("xihu"), "--timeout", "2", "--json"])
        #expect(away.code == 1)
        #expect(away.err.contains("sync did not finish") && away.err.contains("cannot reach the hub"))
        let report = try Self.json(away.out)
        #expect(report["synced"] as? Bool == false)
        #expect(((report["moved"] as? [String: Any])?["problems"] as? [String])?.isEmpty == false)
        let verify = try Self.siyu(n, ["verify", "--db", n.db("xihu"), "--timeout", "2"])
        #expect(verify.code == 1 && verify.err.contains("verify did not finish"))
    }
}
