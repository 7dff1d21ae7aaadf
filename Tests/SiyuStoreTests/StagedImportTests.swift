import Foundation
import Testing
import SiyuCore
@testable import SiyuStore

/// `stageCustomerImport` stores exactly what `importCustomer` one by one would: the same ops, the
/// same tables, the same results — with customers repeated, updated, deleted, more than
/// `stagedImportLimit` of them, and other edits in between.
@Suite struct StagedImportTests {
    struct Record {
        var id: String
        var fields: [String: Value]
        var relations: [ImportedRelation]
    }

    /// Two replicas of node hq (in two directories) with the same clock readings, tag library
    /// and customers.
    static func pair() throws -> (one: Cluster, staged: Cluster) {
        let pair = (one: try Cluster([("hq", .hq)]), staged: try Cluster([("hq", .hq)]))
        for c in [pair.one, pair.staged] {
            let r = c["hq"]
            try r.defineTagGroup("g_level", name: "会员等级", exclusive: true)
            try r.defineTag("t_silver", group: "g_level", name: "银卡")
            try r.defineTag("t_gold", group: "g_level", name: "金卡")
            try r.defineTagGroup("g_pref", name: "偏好")
            try r.defineTag("t_tea", group: "g_pref", name: "茶饮")
            try r.defineTag("t_old", group: "g_pref", name: "旧")
            try r.deleteTag("t_old")
            try r.createCustomer("c_existing", ["name": .text("老客"), "phone": .text("13800000000")], by: "zhaolei")
            try r.createCustomer("c_gone", ["name": .text("走了")], by: "zhaolei")
            try r.deleteCustomer("c_gone", by: "zhaolei")
        }
        return pair
    }

    /// Seeded records: new customers (some repeated with another staff member or other fields),
    /// the existing one, the deleted one, unknown and deleted tags.
    static func records(_ count: Int, seed: UInt64) -> [Record] {
        var rng = SeededRandom(seed: seed)
        let staff = ["chenjing", "wangfang", "liuyang"], tags = ["t_silver", "t_gold", "t_tea", "t_old", "t_unknown"]
        var out: [Record] = []
        for i in 0..<count {
            let id: String
            switch rng.next() % 10 {
            case 0: id = "c_existing"
            case 1: id = "c_gone"
            case 2, 3: id = "c\(rng.next() % UInt64(max(1, i)))"   // one seen before, maybe
            default: id = "c\(i)"
            }
            var fields: [String: Value] = ["name": .text("客户\(rng.next() % 5)")]
            if rng.next() % 2 == 0 { fields["gender"] = .int(Int64(rng.next() % 3)) }
            let relation = ImportedRelation(userid: staff[Int(rng.next() % 3)], fields: ["remark": .text("r\(rng.next() % 3)")],
                                            tags: (0..<Int(rng.next() % 3)).map { _ in tags[Int(rng.next() % UInt64(tags.count))] })
            out.append(Record(id: id, fields: fields, relations: [relation]))
        }
        return out
    }

    @Test(arguments: [120, Replica.stagedImportLimit * 2 + 300])
    func stagedImportsStoreWhatImportingOneByOneStores(count: Int) throws {
        let seed = UInt64(count) &* 7919
        print("StagedImportTests seed \(seed)")
        let (oneCluster, stagedCluster) = try Self.pair()
        let c = ["one": oneCluster["hq"], "staged": stagedCluster["hq"]]
        let records = Self.records(count, seed: seed)
        var one: [ImportResult] = []
        for (i, r) in records.enumerated() {
            one.append(try c["one"]!.importCustomer(r.id, fields: r.fields, relations: r.relations))
            if i == count / 2 { try c["one"]!.defineStaff("chenjing", name: "陈静", storeID: nil) }
        }
        var staged: [ImportResult] = []
        try c["staged"]!.inOneTransaction {
            for (i, r) in records.enumerated() {
                staged.append(try c["staged"]!.stageCustomerImport(r.id, fields: r.fields, relations: r.relations))
                // Another edit in between: the staged customers are stored first, in order.
                if i == count / 2 { try c["staged"]!.defineStaff("chenjing", name: "陈静", storeID: nil) }
            }
        }
        #expect(staged == one, "seed \(seed)")
        #expect(try c["staged"]!.digest() == c["one"]!.digest(), "seed \(seed)")
        #expect(try c["staged"]!.opCounts().total == c["one"]!.opCounts().total)
        #expect(try c["staged"]!.rows(of: .customerTags) == c["one"]!.rows(of: .customerTags))
        #expect(try c["staged"]!.db.prepare("SELECT count(*) FROM tagged_customers").scalar()
                == c["one"]!.db.prepare("SELECT count(*) FROM tagged_customers").scalar())

        // The same records again: both replicas write the same (fields flip back where a customer
        // was repeated with other values).
        var oneAgain: [ImportResult] = [], stagedAgain: [ImportResult] = []
        for r in records { oneAgain.append(try c["one"]!.importCustomer(r.id, fields: r.fields, relations: r.relations)) }
        try c["staged"]!.inOneTransaction {
            for r in records { stagedAgain.append(try c["staged"]!.stageCustomerImport(r.id, fields: r.fields, relations: r.relations)) }
        }
        #expect(stagedAgain == oneAgain, "seed \(seed)")
        #expect(try c["staged"]!.digest() == c["one"]!.digest(), "seed \(seed)")

        // Each customer's last record, twice: the second time writes nothing.
        var last: [String: Record] = [:]
        for r in records { last[r.id] = r }
        let unique = last.keys.sorted().map { last[$0]! }
        try c["staged"]!.inOneTransaction {
            for r in unique { _ = try c["staged"]!.stageCustomerImport(r.id, fields: r.fields, relations: r.relations) }
        }
        let before = try c["staged"]!.opCounts().total
        var written = 0
        try c["staged"]!.inOneTransaction {
            for r in unique { written += try c["staged"]!.stageCustomerImport(r.id, fields: r.fields, relations: r.relations).ops }
        }
        #expect(written == 0)
        #expect(try c["staged"]!.opCounts().total == before)
    }

    @Test func aFailedTransactionKeepsNothingOfItsStagedImports() throws {
        let (_, stagedCluster) = try Self.pair()
        let c = ["staged": stagedCluster["hq"]]
        let before = try c["staged"]!.opCounts().total
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try c["staged"]!.inOneTransaction {
                for i in 0..<50 { _ = try c["staged"]!.stageCustomerImport("n\(i)", fields: ["name": .text("甲")], relations: []) }
                try c["staged"]!.commitStagedImports()
                for i in 50..<60 { _ = try c["staged"]!.stageCustomerImport("n\(i)", fields: ["name": .text("乙")], relations: []) }
                throw Stop()
            }
        }
        #expect(try c["staged"]!.opCounts().total == before)
        #expect(try c["staged"]!.rows(of: .customers).count == 2)
        // And the replica goes on numbering where it was.
        try c["staged"]!.createCustomer("n0", ["name": .text("丙")], by: "zhaolei")
        #expect(try c["staged"]!.outbox(after: UInt64(before)).map(\.seq) == [UInt64(before + 1)])
    }
}
