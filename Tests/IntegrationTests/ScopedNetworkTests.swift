import Foundation
import Glibc
import Testing
import SiyuCore
import SiyuSQLite
import SiyuStore

/// Per-store scopes on real processes (SPEC section 7, "Scope", "Write rights", "Transfers"): a
/// `siyu-hub` and HQ and two stores synced by `siyu sync --now`; each store's file is read with
/// the `sqlite3` tool.
@Suite(.serialized) struct ScopedNetworkTests {
    static func siyu(_ n: Network, _ arguments: [String]) throws -> (code: Int32, out: String, err: String) {
        try n.p.run("siyu", arguments, timeout: 60)
    }

    /// The rows of `sql` on the file at `path`, one line each (columns joined by `|`): read by the
    /// `sqlite3` tool, outside Siyu's code, where it is installed; else by a read-only SiyuSQLite
    /// connection (the same SQL).
    static func sqlite(_ n: Network, _ path: String, _ sql: String) throws -> [String] {
        let tool = "/usr/bin/sqlite3"
        guard FileManager.default.isExecutableFile(atPath: tool) else {
            let db = try Database(path: path, mode: .readOnly)
            defer { db.close() }
            return try db.prepare(sql).rows().map { row in
                row.map { v -> String in
                    switch v {
                    case let .integer(i): return String(i)
                    case let .text(t): return t
                    default: return ""
                    }
                }.joined(separator: "|")
            }
        }
        let r = try n.p.run(tool, [path, sql], timeout: 60)
        guard r.code == 0 else { throw Failure("sqlite3 \(sql): \(r.err)") }
        return r.out.split(separator: "\n").map(String.init)
    }

    static func sync(_ n: Network, _ node: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try siyu(n, ["sync", "--now", "--db", n.db(node)])
        #expect(r.code == 0, "\(node): \(r.out)\(r.err)", sourceLocation: sourceLocation)
        return r.out
    }

    @Test(.timeLimit(.minutes(2))) func eachStoreHoldsOnlyItsScopeIsRefusedOutsideItAndATransferMovesTheHistory() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        try n.register("xihu", role: "store", store: "xihu")
        try n.register("binjiang", role: "store", store: "binjiang")
        let hub = try HubProcess.start(n.p, db: n.hubDB)
        try n.initNode("hq", role: "hq", hub: hub.address)
        try n.initNode("xihu", role: "store", hub: hub.address, store: "xihu")
        try n.initNode("binjiang", role: "store", hub: hub.address, store: "binjiang")
        try withReplica(n.db("hq")) { hq in
            try hq.defineStore("xihu", name: "西湖店")
            try hq.defineStore("binjiang", name: "滨江店")
            try hq.defineStaff("chenjing", name: "陈静", storeID: "xihu")
            try hq.defineStaff("lina", name: "李娜", storeID: "binjiang")
            try hq.defineTagGroup("g_pref", name: "偏好", by: "zhaolei")
            try hq.defineTag("et_tea", group: "g_pref", name: "茶饮", by: "zhaolei")
            for (c, store) in [("c_x1", "xihu"), ("c_x2", "xihu"), ("c_b1", "binjiang")] {
                try hq.createCustomer(c, ["name": .text(c), "owner_store": .text(store), "phone": .text("138\(c)")], by: "zhaolei")
            }
            try hq.createOrder("o_x", ["customer_id": .text("c_x1"), "store_id": .text("xihu")], by: "zhaolei")
            try hq.createOrder("o_b", ["customer_id": .text("c_b1"), "store_id": .text("binjiang")], by: "zhaolei")
        }
        _ = try Self.sync(n, "hq")
        _ = try Self.sync(n, "xihu")
        _ = try Self.sync(n, "binjiang")
        try withReplica(n.db("xihu")) { try $0.addTag("et_tea", to: "c_x1", by: "chenjing") }
        _ = try Self.sync(n, "xihu")

        // Each store's file holds its own rows only, op log included.
        for (node, mine) in [("xihu", ["c_x1", "c_x2"]), ("binjiang", ["c_b1"])] {
            #expect(try Self.sqlite(n, n.db(node), "SELECT customer_id FROM customers ORDER BY 1") == mine)
            #expect(try Self.sqlite(n, n.db(node), "SELECT DISTINCT inst_id FROM ops WHERE inst_kind = 'customer' ORDER BY 1") == mine)
            #expect(try Self.sqlite(n, n.db(node), "SELECT DISTINCT inst_id FROM ops WHERE inst_kind = 'order'") == [node == "xihu" ? "o_x" : "o_b"])
            #expect(try Self.sqlite(n, n.db(node), "SELECT count(*) FROM tags") == ["1"], "the tag library is shared")
            let verify = try Self.siyu(n, ["verify", "--db", n.db(node)])
            #expect(verify.code == 0 && verify.out.contains("equal: "), "\(node): \(verify.out)\(verify.err)")
        }
        let nodes = try n.p.ok("siyu-hub", ["nodes", "--db", n.hubDB])
        #expect(nodes.contains("store xihu and the tag library: 2 customers, 0 group chats, 1 order"), "\(nodes)")
        // A PULL with no PUSH after it: its cursor reaches the hub's file by the hub's cursor flush.
        _ = try Self.sync(n, "binjiang")
        try eventually("binjiang's second pull cursor recorded", timeout: 10) {
            try Self.sqlite(n, n.hubDB, "SELECT cursor > 0 FROM hub_nodes WHERE node_id = 'binjiang'") == ["1"]
        }

        // xihu writes binjiang's customer (it does not hold it, so it thinks it creates it): the
        // hub refuses the op, xihu quarantines it and keeps syncing.
        try withReplica(n.db("xihu")) { try $0.createCustomer("c_b1", ["name": .text("抢客")], by: "chenjing") }
        try withReplica(n.db("xihu")) { try $0.editCustomer("c_x2", ["phone": .text("13911112222")], by: "chenjing") }
        _ = try Self.sync(n, "xihu")
        let quarantined = try withReplica(n.db("xihu")) { try $0.quarantinedOps() }
        #expect(quarantined.count == 2 && quarantined.allSatisfy { $0.code == 8 }, "\(quarantined)")   // c_b1's name and owner_store
        _ = try Self.sync(n, "binjiang")
        #expect(try Self.sqlite(n, n.db("binjiang"), "SELECT name FROM customers WHERE customer_id = 'c_b1'") == ["c_b1"])
        #expect(try Self.sqlite(n, n.hubDB, "SELECT phone FROM customers WHERE customer_id = 'c_x2'") == ["13911112222"], "xihu kept syncing")

        // Transfer: HQ moves c_x1 to binjiang while xihu edits it offline.
        try withReplica(n.db("xihu")) { try $0.editCustomer("c_x1", ["phone": .text("13900000001")], by: "chenjing") }
        try withReplica(n.db("hq")) { try $0.editCustomer("c_x1", ["owner_store": .text("binjiang")], by: "zhaolei") }
        _ = try Self.sync(n, "hq")
        _ = try Self.sync(n, "binjiang")
        #expect(try Self.sqlite(n, n.db("binjiang"), "SELECT DISTINCT origin FROM ops WHERE inst_id = 'c_x1' ORDER BY 1") == ["hq", "xihu"],
                "the whole history, xihu's tag add included")
        _ = try Self.sync(n, "xihu")       // pushes its offline edit (taken), then learns of the move
        #expect(try Self.sqlite(n, n.db("xihu"), "SELECT count(*) FROM customers WHERE customer_id = 'c_x1'") == ["0"])
        #expect(try Self.sqlite(n, n.db("xihu"), "SELECT DISTINCT origin FROM ops WHERE inst_id = 'c_x1'") == ["xihu"], "only its own ops stay")
        _ = try Self.sync(n, "binjiang")
        #expect(try Self.sqlite(n, n.db("binjiang"), "SELECT phone FROM customers WHERE customer_id = 'c_x1'") == ["13900000001"],
                "the old store's offline edit reached the new store")
        let verify = try Self.siyu(n, ["verify", "--db", n.db("binjiang")])
        #expect(verify.code == 0 && verify.out.contains("equal: "), "\(verify.out)\(verify.err)")
    }
}
