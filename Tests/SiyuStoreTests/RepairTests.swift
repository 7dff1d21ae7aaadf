import Foundation
import Testing
import SiyuCore
import SiyuSQLite
import SiyuStore

/// `Replica.check` and `Replica.repair`: tables and indexes dropped or altered by hand come back
/// from the op log with the same digest; the check never writes; what the op log cannot give back
/// is refused, with nothing changed.
@Suite struct RepairTests {
    /// A store replica with tags, a group, an order and conflicts, synced from HQ; closed.
    static func damagedCopy(_ sql: String) throws -> (cluster: Cluster, path: String, digest: String) {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        let hq = c["hq"], xihu = c["xihu"]
        try hq.defineTagGroup("et_level", name: "等级", exclusive: true)
        try hq.defineTag("et_gold", group: "et_level", name: "金卡")
        try hq.defineTag("et_silver", group: "et_level", name: "银卡")
        try hq.createCustomer("wm_1", ["name": .text("一")], by: "")
        try c.send("hq", to: "xihu")
        try hq.addTag("et_gold", to: "wm_1", by: "")
        try xihu.addTag("et_silver", to: "wm_1", by: "")
        try xihu.createOrder("o_1", ["customer_id": .text("wm_1")], by: "")
        try c.syncAll()
        let digest = try xihu.digest().hexString
        xihu.close()
        let db = try Database(path: c.path("xihu"), mode: .readWrite)
        try db.execute(sql)
        db.close()
        return (c, c.path("xihu"), digest)
    }

    @Test func checkNamesDroppedAndAlteredTablesAndIndexesWithoutWriting() throws {
        let (c, path, _) = try RepairTests.damagedCopy("""
            DROP TABLE customer_tags; DROP INDEX conflicts_by_state; DROP TABLE versions;
            DROP TABLE orders; CREATE TABLE orders(order_id TEXT);
            """)
        _ = c
        let before = FileManager.default.contents(atPath: path)
        let damage = try Replica.check(path: path)
        #expect(damage.problems.contains("table customer_tags is missing"))
        #expect(damage.problems.contains("index conflicts_by_state is missing"))
        #expect(damage.problems.contains("table versions is missing"))
        #expect(damage.problems.contains("table orders differs from its definition"))
        #expect(damage.beyondRepair.isEmpty)
        #expect(FileManager.default.contents(atPath: path) == before)
        #expect((FileManager.default.contents(atPath: path + "-wal") ?? Data()).isEmpty)
    }

    @Test func repairBringsBackTheSameDigestFromTheOpLog() throws {
        let (c, path, digest) = try RepairTests.damagedCopy("""
            DROP TABLE customer_tags; DROP INDEX conflicts_by_state; DROP TABLE versions; DROP TABLE tagged_customers;
            DROP TABLE orders; CREATE TABLE orders(order_id TEXT); DELETE FROM conflicts;
            """)
        _ = c
        let damage = try Replica.repair(path: path)
        #expect(!damage.problems.isEmpty)
        #expect(try Replica.check(path: path).isHealthy)
        let r = try Replica(existing: path)
        defer { r.close() }
        #expect(try r.digest().hexString == digest)
        #expect(try r.versionVector() == (try c["hq"].versionVector()))
    }

    @Test func aReplicaWithoutItsOpLogIsBeyondRepairAndLeftAsItWas() throws {
        let (c, path, _) = try RepairTests.damagedCopy("DROP TABLE ops")
        _ = c
        let damage = try Replica.check(path: path)
        #expect(damage.beyondRepair.contains("table ops is missing"))
        let before = FileManager.default.contents(atPath: path)
        #expect(throws: ReplicaError.self) { try Replica.repair(path: path) }
        #expect(FileManager.default.contents(atPath: path) == before)
    }
}
