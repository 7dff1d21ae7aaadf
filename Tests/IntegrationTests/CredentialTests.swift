import Foundation
import Glibc
import Testing
import SiyuCore
import SiyuStore

/// `siyu-hub add-node`, `rotate-secret` and `remove-node` on the real binaries: what the hub file
/// holds, its mode, which store may be named, and a running hub closing a revoked node's session.
@Suite struct CredentialTests {
    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int
    }

    @Test(.timeLimit(.minutes(1))) func theHubFileIsOwnerOnlyAndHoldsNoSecretAndAnUnknownStoreIsRefused() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        let refused = try n.p.run("siyu-hub", ["add-node", "--db", n.hubDB, "xihu", "--role", "store", "--store", "nosuchstore"])
        #expect(refused.code == 1 && refused.err.contains("the hub knows no store") && refused.out.isEmpty)
        let secret = try n.p.ok("siyu-hub", ["add-node", "--db", n.hubDB, "xihu", "--role", "store", "--store", "xihu", "--new-store"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.count == 64)
        var bytes = Data()
        for file in [n.hubDB, n.hubDB + "-wal", n.hubDB + "-shm"] where FileManager.default.fileExists(atPath: file) {
            #expect(Self.mode(file) == 0o600, "\(file) is owner-only")
            bytes += FileManager.default.contents(atPath: file) ?? Data()
        }
        #expect(bytes.range(of: Data(secret.utf8)) == nil && bytes.range(of: Data(n.secrets["hq"]!.utf8)) == nil,
                "no secret (= its HMAC key: 64 bytes) is in the hub file")
        #expect(bytes.range(of: Data(secret.utf8.prefix(20))) == nil)
        // A backup holds what the hub file holds: owner-only, no secret.
        let copy = n.scratch.path("hub-backup.db")
        try n.p.ok("siyu-hub", ["backup", "--db", n.hubDB, "--out", copy])
        #expect(Self.mode(copy) == 0o600)
        let copied = FileManager.default.contents(atPath: copy) ?? Data()
        #expect(!copied.isEmpty && copied.range(of: Data(secret.utf8)) == nil && copied.range(of: Data(n.secrets["hq"]!.utf8)) == nil)
    }

    @Test(.timeLimit(.minutes(2))) func rotatingASecretAndRemovingANodeCloseItsSessionsOnARunningHub() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("xihu", role: "store")
        try n.register("jingan", role: "store")
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("xihu", role: "store", hub: hub.address)
        try n.initNode("jingan", role: "store", hub: hub.address)

        // A connected daemon; its secret is rotated: the hub closes the session, the old secret no longer works.
        let daemon = try n.p.start("siyu-node", ["run", "--db", n.db("xihu")], name: "xihu-daemon")
        try hub.child.waitFor("xihu authenticated") { $0.contains("node='xihu'") && $0.contains("auth ok") }
        let newSecret = try n.p.ok("siyu-hub", ["rotate-secret", "--db", n.hubDB, "xihu"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try hub.child.waitFor("the rotated node's session closed", timeout: 10) { $0.contains("node='xihu'") && $0.contains("registration removed or secret rotated") }
        #expect(daemon.waitForExit(timeout: 20) == 1, "the daemon is refused for good with the old secret")
        #expect(try n.syncOnce("xihu", timeout: 5).code == 1)
        try (newSecret + "\n").write(toFile: n.scratch.path("xihu.secret"), atomically: true, encoding: .utf8)
        try n.p.ok("siyu-node", ["init", "--db", n.scratch.path("xihu2.db"), "--node", "xihu", "--role", "store", "--hub", hub.address,
                                 "--secret-file", n.scratch.path("xihu.secret")])
        #expect(try n.p.run("siyu-node", ["sync", "--once", "--db", n.scratch.path("xihu2.db"), "--timeout", "20"], timeout: 40).code == 0,
                "the new secret works")

        // Removing a connected node closes its session; its ops stay; another node keeps syncing.
        try withReplica(n.db("jingan")) { try $0.createCustomer("wm_j1", ["name": .text("新客")], by: "wangfang") }
        let jingan = try n.p.start("siyu-node", ["run", "--db", n.db("jingan")], name: "jingan-daemon")
        try eventually("jingan's op acknowledged") { try hubAcked(n, "jingan") == 1 }
        try n.p.ok("siyu-hub", ["remove-node", "--db", n.hubDB, "jingan"])
        try hub.child.waitFor("the removed node's session closed", timeout: 10) { $0.contains("node='jingan'") && $0.contains("registration removed or secret rotated") }
        #expect(jingan.waitForExit(timeout: 20) == 1)
        #expect(try n.p.run("siyu-node", ["sync", "--once", "--db", n.scratch.path("xihu2.db"), "--timeout", "20"], timeout: 40).code == 0)
        #expect(try ops(of: "jingan", upTo: 1, in: n.scratch.path("xihu2.db")) == 1, "the removed node's ops stay in the log")
        let again = try n.p.run("siyu-hub", ["add-node", "--db", n.hubDB, "jingan", "--role", "store"])
        #expect(again.code == 1, "a removed node's id is not given out again")
    }
}
