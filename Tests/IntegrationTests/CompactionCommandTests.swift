import Foundation
import Testing
import SiyuCore
import SiyuStore

/// `siyu-hub compact` as an operator runs it, while `siyu-hub serve` serves: real processes on
/// loopback (ephemeral port, scratch directory removed, bounded waits).
@Suite(.serialized) struct CompactionCommandTests {
    static func siyu(_ n: Network, _ arguments: [String]) throws -> (code: Int32, out: String, err: String) {
        try n.p.run("siyu", arguments, timeout: 60)
    }

    /// HQ renames a customer three times; once the store has pulled past the renames, the command
    /// drops the two overwritten names, both replicas still verify equal with the hub, and the store
    /// goes on syncing.
    @Test(.timeLimit(.minutes(2))) func compactingAServingHubDropsOverwrittenWritesAndEveryNodeStillVerifiesEqual() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        try n.register("xihu", role: "store")
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("hq", role: "hq", hub: hub.address)
        try n.initNode("xihu", role: "store", hub: hub.address)
        try seed(n.db("hq"), customers: 3)
        for name in ["林一", "林二", "林三"] {
            try withReplica(n.db("hq")) { try $0.editCustomer("wm_1", ["name": .text(name)], by: "zhaolei") }
        }
        // Before any node pulled: the stable point is held back, nothing goes.
        #expect(try Self.siyu(n, ["sync", "--now", "--db", n.db("hq")]).code == 0)
        let early = try n.p.ok("siyu-hub", ["compact", "--db", n.hubDB])
        #expect(early.contains(" 0 ops dropped"), "\(early)")
        // Both pull past the renames (HQ a second time: a PULL sends the cursor it stored).
        for node in ["xihu", "hq", "xihu", "hq"] {
            let r = try Self.siyu(n, ["sync", "--now", "--db", n.db(node)])
            #expect(r.code == 0, "\(node): \(r.out)\(r.err)")
        }
        // A serving hub records the cursors of PULLs with its next commit, or within about a second.
        var out = ""
        try eventually("the renames dropped", timeout: 30) {
            out = try n.p.ok("siyu-hub", ["compact", "--db", n.hubDB])
            return !out.contains(" 0 ops dropped")
        }
        #expect(out.hasPrefix("stable point "), "\(out)")
        for node in ["hq", "xihu"] {
            let verified = try Self.siyu(n, ["verify", "--db", n.db(node)])
            #expect(verified.code == 0 && verified.out.contains("equal: "), "\(node): \(verified.out)\(verified.err)")
        }
        // The store edits on: its PUSH is taken and HQ receives it.
        try withReplica(n.db("xihu")) { try $0.editCustomer("wm_1", ["phone": .text("13900000011")], by: "chenjing") }
        #expect(try Self.siyu(n, ["sync", "--now", "--db", n.db("xihu")]).code == 0)
        #expect(try Self.siyu(n, ["sync", "--now", "--db", n.db("hq")]).code == 0)
        #expect(try withReplica(n.db("hq")) { try $0.rows(of: .customers, where: "customer_id", equals: "wm_1").first?["phone"]?.textValue } == "13900000011")
        #expect(hub.child.isRunning)
    }
}
