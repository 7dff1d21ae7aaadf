import Foundation
import Glibc
import Testing
import SiyuCore
import SiyuSQLite
import SiyuStore

/// A store whose network is down for a week: change-set files go both ways by hand (`siyu
/// export-changes` / `siyu import-changes`, real processes), then the store's link is back and
/// it syncs with the hub as usual. Nothing is applied twice, and everyone ends equal.
@Suite(.serialized) struct ChangeSetFileSyncTests {
    @Test(.timeLimit(.minutes(2))) func aStoreOfflineForAWeekExchangesFilesByHandThenSyncsWithoutDuplicates() throws {
        let n = try Network()
        defer { n.close() }
        for (node, role) in [("hq", "hq"), ("xihu", "store")] { try n.register(node, role: role) }
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("hq", role: "hq", hub: hub.address)
        try n.initNode("xihu", role: "store", hub: hub.address)
        try seed(n.db("hq"), customers: 20)
        #expect(try n.syncOnce("hq").code == 0)
        #expect(try n.syncOnce("xihu").code == 0)

        // The week: every day both sides edit; HQ stays online; the files travel both ways.
        var lastFromHQ: String?
        for day in 1...3 {
            try withReplica(n.db("xihu")) { r in
                for i in 0..<5 { try r.editCustomer("wm_\(i)", ["phone": .text("1390000\(day)00\(i)")], by: "chenjing") }
                try r.addTag(day % 2 == 0 ? "gold" : "silver", to: "wm_\(day)", by: "chenjing")
            }
            try withReplica(n.db("hq")) { r in
                try r.editCustomer("wm_\(day + 5)", ["name": .text("客户\(day)")], by: "zhaolei")
                try r.editCustomer("wm_0", ["phone": .text("1370000000\(day)")], by: "zhaolei")   // collides with the store's edit
            }
            #expect(try n.syncOnce("hq").code == 0)

            let fromStore = n.scratch.path("day\(day)-xihu.siyuc"), fromHQ = n.scratch.path("day\(day)-hq.siyuc")
            // The store exports what HQ lacked when it wrote its last file (everything, the first day).
            try n.p.ok("siyu", ["export-changes", "--db", n.db("xihu"), "--out", fromStore] + (lastFromHQ.map { ["--for", $0] } ?? []))
            try n.p.ok("siyu", ["import-changes", "--db", n.db("hq"), fromStore])
            try n.p.ok("siyu", ["export-changes", "--db", n.db("hq"), "--out", fromHQ, "--for", fromStore])
            try n.p.ok("siyu", ["import-changes", "--db", n.db("xihu"), fromHQ])
            // The same file again changes nothing.
            let before = try digest(n.db("hq"))
            try n.p.ok("siyu", ["import-changes", "--db", n.db("hq"), fromStore])
            #expect(try digest(n.db("hq")) == before)
            lastFromHQ = fromHQ
            #expect(try digest(n.db("hq")) == digest(n.db("xihu")), "day \(day): the files should leave HQ and the store equal")
        }
        // The hub has none of the week's store edits: they went around it.
        let storeOwn = try withReplica(n.db("xihu")) { try $0.lastIssuedSeq() }
        #expect(storeOwn == 18)
        #expect(try ops(of: "xihu", upTo: storeOwn, in: n.hubDB) == 0)

        // The link is back: ordinary sync rounds. The store pushes its week; every op the hub sends
        // back to either node is one it already holds.
        for node in ["xihu", "hq", "xihu"] {
            let r = try n.syncOnce(node)
            #expect(r.code == 0, "\(node): \(r.err)")
        }
        #expect(try ops(of: "xihu", upTo: storeOwn, in: n.hubDB) == Int(storeOwn))
        // `siyu status` shows the hub and how the last sync went…
        let synced = try #require(try JSONSerialization.jsonObject(with: Data(n.p.ok("siyu", ["status", "--db", n.db("xihu"), "--json"]).utf8)) as? [String: Any])
        #expect(synced["hub"] as? String == hub.address)
        #expect((synced["last_sync"] as? [String: Any])?["ok"] as? Bool == true)
        hub.child.kill(SIGTERM)
        #expect(hub.child.waitForExit(timeout: 5) == 0)
        // …and a failed one, once the hub is gone.
        #expect(try n.syncOnce("xihu", timeout: 2).code == 1)
        let failed = try #require(try JSONSerialization.jsonObject(with: Data(n.p.ok("siyu", ["status", "--db", n.db("xihu"), "--json"]).utf8)) as? [String: Any])
        let last = try #require(failed["last_sync"] as? [String: Any])
        #expect(last["ok"] as? Bool == false)
        #expect((last["result"] as? String)?.contains("cannot reach the hub") == true, "\(last)")

        let digests = try [n.hubDB, n.db("hq"), n.db("xihu")].map { try digest($0) }
        #expect(Set(digests).count == 1, "\(digests)")
        // No op is held twice anywhere, and the hub logged each op once.
        for path in [n.hubDB, n.db("hq"), n.db("xihu")] {
            let db = try Database(path: path, mode: .readOnly)
            defer { db.close() }
            let total = try db.prepare("SELECT count(*) FROM ops").scalar()?.int64Value
            let distinct = try db.prepare("SELECT count(*) FROM (SELECT DISTINCT origin, seq FROM ops)").scalar()?.int64Value
            #expect(total == distinct && total != nil, "\(path): \(String(describing: total)) ops, \(String(describing: distinct)) distinct")
            if path == n.hubDB {
                #expect(try db.prepare("SELECT count(*) FROM hub_log").scalar()?.int64Value == total)
            }
            #expect(try integrity(path) == "ok")
        }
        #expect(try withReplica(n.db("hq")) { try $0.opCounts().total } == withReplica(n.db("xihu")) { try $0.opCounts().total })
    }
}
