import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuTestSupport

/// Issue 18, section 4: `siyu-hub backup` while the hub serves, and the restore path of
/// docs/OPERATIONS.md ("Backup and restore"), with real `siyu-hub` and `siyu-node` processes.
@Suite struct BackupRestoreTests {
    @Test(.timeLimit(.minutes(3))) func aHubBackedUpWhileServingAndRestoredLosesNothingAnyNodeHolds() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        try n.register("xihu", role: "store")
        var hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("hq", role: "hq", hub: hub.address)
        try n.initNode("xihu", role: "store", hub: hub.address)
        try seed(n.db("hq"), customers: 30)
        #expect(try n.syncOnce("hq").code == 0)
        #expect(try n.syncOnce("xihu").code == 0)

        // The backup, taken while the hub serves.
        let copy = n.scratch.path("hub-backup.db")
        let out = try n.p.ok("siyu-hub", ["backup", "--db", n.hubDB, "--out", copy])
        #expect(out.contains("backed up"))
        let mode = (try FileManager.default.attributesOfItem(atPath: copy)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        #expect(try n.p.run("siyu-hub", ["backup", "--db", n.hubDB, "--out", copy]).code == 1)   // never overwrites

        // Syncing goes on after the backup: both nodes push ops the copy will not hold.
        try withReplica(n.db("xihu")) { r in
            for i in 0..<5 { try r.createCustomer("wm_xihu_\(i)", ["name": .text("西湖\(i)")], by: "chenjing") }
        }
        try withReplica(n.db("hq")) { r in
            for i in 0..<4 { try r.createCustomer("wm_hq_late_\(i)", ["name": .text("总部\(i)")], by: "zhaolei") }
        }
        #expect(try n.syncOnce("xihu").code == 0)
        #expect(try n.syncOnce("hq").code == 0)
        #expect(try n.syncOnce("xihu").code == 0)   // xihu's cursor now past what the copy holds
        let xihuOwn = try withReplica(n.db("xihu")) { try $0.lastIssuedSeq() }
        let hqOwn = try withReplica(n.db("hq")) { try $0.lastIssuedSeq() }

        // The restore: stop the hub, put the copy in place, start it.
        hub.child.kill(SIGTERM)
        #expect(hub.child.waitForExit(timeout: 20) == 0)
        removeDatabaseFiles(atPath: n.hubDB)
        try FileManager.default.copyItem(atPath: copy, toPath: n.hubDB)
        hub = try HubProcess.start(n.p, db: n.hubDB, port: hub.port)
        _ = try hub.child.waitFor("the new log epoch logged") { $0.contains("log epoch") && $0.contains("is new") }
        #expect(try hubAcked(n, "xihu") == 0)

        // HQ edits again: its new ops take positions xihu's old cursor had passed.
        try withReplica(n.db("hq")) { r in try r.createCustomer("wm_hq_after", ["name": .text("恢复后")], by: "zhaolei") }
        let hqSync = try n.syncOnce("hq")
        #expect(hqSync.code == 0)
        let xihuSync = try n.syncOnce("xihu")
        #expect(xihuSync.code == 0)
        #expect(xihuSync.err.contains("log epoch changed"))
        #expect(try n.syncOnce("hq").code == 0)

        // Nothing any node held is lost, and every replica equals the hub.
        #expect(try hubAcked(n, "xihu") == xihuOwn)
        #expect(try hubAcked(n, "hq") == hqOwn + 1)
        #expect(try withReplica(n.db("xihu")) { try $0.state(of: InstanceRef(.customer, "wm_hq_after")).hasOps })
        hub.child.kill(SIGTERM)
        #expect(hub.child.waitForExit(timeout: 20) == 0)
        #expect(try digest(n.hubDB) == digest(n.db("xihu")))
        #expect(try digest(n.hubDB) == digest(n.db("hq")))
        #expect(try integrity(n.hubDB) == "ok")
    }
}
