import Foundation
import Testing
import SiyuCore
import SiyuSQLite
import SiyuStore

/// A store replica whose `customer_tags` table was dropped by hand, as an operator meets it:
/// `siyu-node init` refuses it with the repair command, a daemon backs off and says once what to do,
/// `siyu verify` blames the replica (not the hub), `siyu check` names the table, `siyu rebuild`
/// repairs it from the op log and the node then syncs to the hub's digest.
@Suite(.serialized) struct RepairTests {
    @Test(.timeLimit(.minutes(2))) func aDamagedReplicaIsRefusedBackedOffFromExplainedAndRepaired() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        try n.register("xihu", role: "store")
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("hq", role: "hq", hub: hub.address)
        try n.initNode("xihu", role: "store", hub: hub.address)
        try n.p.ok("siyu", ["tag", "define-group", "--db", n.db("hq"), "et_level", "--name", "等级", "--exclusive"])
        try n.p.ok("siyu", ["tag", "define", "--db", n.db("hq"), "et_gold", "--group", "et_level", "--name", "金卡"])
        try n.p.ok("siyu", ["customer", "add", "--db", n.db("hq"), "wm_zhou", "--owner-store", "xihu"])
        try n.p.ok("siyu", ["tag", "add", "--db", n.db("hq"), "wm_zhou", "et_gold"])
        #expect(try n.syncOnce("hq").code == 0)

        let db = try Database(path: n.db("xihu"), mode: .readWrite)
        try db.execute("DROP TABLE customer_tags")
        db.close()

        let check = try n.p.run("siyu", ["check", "--db", n.db("xihu")])
        #expect(check.code == 1)
        #expect(check.out.contains("table customer_tags is missing"))
        #expect(check.err.contains("siyu rebuild --db \(n.db("xihu"))"))

        let initAgain = try n.p.run("siyu-node", ["init", "--db", n.db("xihu"), "--node", "xihu", "--role", "store", "--hub", hub.address,
                                                  "--secret-file", n.scratch.path("xihu.secret")])
        #expect(initAgain.code == 1)
        #expect(initAgain.err.contains("is damaged (table customer_tags is missing)"))
        #expect(initAgain.err.contains("siyu rebuild --db \(n.db("xihu"))"))

        // The daemon: one plain ERROR with what to do, then reconnections further and further apart.
        let daemon = try n.p.start("siyu-node", ["run", "--db", n.db("xihu"), "--max-backoff", "4"], name: "xihu")
        _ = try daemon.waitFor("the third reconnection", timeout: 30) { $0.contains("(attempt 3)") }
        daemon.kill(SIGTERM)
        _ = daemon.waitForExit(timeout: 10)
        let log = daemon.err
        #expect(log.components(separatedBy: "the replica failed:").count - 1 == 1, "\(log)")
        #expect(log.contains("Retrying will not fix this") && log.contains("siyu rebuild --db \(n.db("xihu"))"))
        let waits = log.split(separator: "\n").compactMap { line -> Double? in
            guard let r = line.range(of: "reconnecting in ") else { return nil }
            return Double(line[r.upperBound...].prefix { $0 != "s" })
        }
        #expect(waits.count >= 3)
        #expect(waits.count >= 3 && waits[2] > waits[0], "the waits must grow: \(waits)")

        let verify = try n.p.run("siyu", ["verify", "--db", n.db("xihu"), "--timeout", "20"])
        #expect(verify.code == 1)
        #expect(verify.err.contains("the replica failed"))
        #expect(verify.err.contains("siyu rebuild --db \(n.db("xihu"))") && !verify.err.contains("check that the hub runs"))

        let rebuilt = try n.p.ok("siyu", ["rebuild", "--db", n.db("xihu")])
        #expect(rebuilt.contains("repaired: table customer_tags is missing"))
        #expect(try n.p.run("siyu", ["check", "--db", n.db("xihu")]).code == 0)
        #expect(try n.syncOnce("xihu").code == 0)
        let equal = try n.p.run("siyu", ["verify", "--db", n.db("xihu")])
        #expect(equal.code == 0, "\(equal.err)")
        let customers = try n.p.ok("siyu", ["customers", "--db", n.db("xihu"), "--tag", "et_gold"])
        #expect(customers.contains("wm_zhou"))
    }
}

/// The wrong file given to a daemon, and `--version`: each says what it is and what to do.
@Suite struct WrongFileTests {
    @Test(.timeLimit(.minutes(1))) func theDaemonsRefuseTheOtherOnesFileAndAMissingOneWithTheRightHint() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("xihu", role: "store")
        try n.p.ok("siyu", ["init", "--db", n.db("xihu"), "--node", "xihu", "--role", "store", "--store", "xihu"])
        let store = try n.p.run("siyu-hub", ["serve", "--db", n.db("xihu"), "--listen", "127.0.0.1:0"])
        #expect(store.code == 1)
        #expect(store.err.contains("is the replica of store node 'xihu', not a hub's file"))
        #expect(store.err.contains("siyu-node run --db"))
        let missing = try n.p.run("siyu-hub", ["serve", "--db", n.scratch.path("nothing.db"), "--listen", "127.0.0.1:0"])
        #expect(missing.code == 1)
        #expect(missing.err.contains("does not exist") && missing.err.contains("siyu-hub init --db"))
        #expect(!missing.err.contains("--role store"))
        #expect(!FileManager.default.fileExists(atPath: n.scratch.path("nothing.db")))
        let hubAsNode = try n.p.run("siyu-node", ["run", "--db", n.hubDB])
        #expect(hubAsNode.code == 1)
        #expect(hubAsNode.err.contains("is a hub's file (1 node registered), not a node's replica"))
        #expect(hubAsNode.err.contains("siyu-hub serve --db"))
    }

    @Test func everyBinarySaysItsVersion() throws {
        let n = try Network()
        defer { n.close() }
        for binary in ["siyu", "siyu-hub", "siyu-node"] {
            let out = try n.p.ok(binary, ["--version"])
            #expect(out.hasPrefix("\(binary) "), "\(out)")
            #expect(out.contains("file layout ") && out.contains("protocol "))
        }
    }
}
