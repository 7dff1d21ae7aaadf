import Foundation
import Testing
import SiyuCore
import SiyuSQLite
import SiyuStore

/// `Replica.bulkLoad`: a new replica loading a snapshot defers an index, the version vector and
/// the tag pairs to the end of the load; the result must be what applying the change sets one by
/// one gives, and a bad load must leave nothing.
@Suite struct BulkLoadTests {
    /// HQ's library (an exclusive group), customers with tags, removes, and an exclusive-group
    /// conflict in which a tag is held but not shown; a store's edits as a second origin.
    static func makeHistory() throws -> Cluster {
        let c = try Cluster([("hq", .hq), ("xihu", .store), ("plain", .store), ("bulk", .store)])
        let hq = c["hq"], xihu = c["xihu"]
        try hq.defineTagGroup("level", name: "会员等级", exclusive: true)
        try hq.defineTag("gold", group: "level", name: "金")
        try hq.defineTag("silver", group: "level", name: "银")
        try hq.defineTagGroup("pref", name: "偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        for i in 0..<12 {
            try hq.createCustomer("c\(i)", ["name": .text("客户\(i)")], by: "zhaolei")
            try hq.addTag("tea", to: "c\(i)", by: "zhaolei")
            if i % 3 == 0 { try hq.removeTag("tea", from: "c\(i)", by: "zhaolei") }
        }
        try c.send("hq", to: "xihu")
        // Concurrent adds in the exclusive group: the store's later add is shown, HQ's is held hidden.
        try hq.addTag("gold", to: "c1", by: "zhaolei")
        c.clock.advance(10)
        try xihu.addTag("silver", to: "c1", by: "chenjing")
        try xihu.editCustomer("c2", ["name": .text("王芳")], by: "chenjing")
        try c.send("xihu", to: "hq")
        #expect(try hq.conflicts().contains { $0.rule.rawValue == "exclusive_tag_group" })
        return c
    }

    /// Chunks of HQ's ops: in log order (the library first) for seed 0, else shuffled (customers
    /// before the library, too).
    static func chunks(of changeSet: ChangeSet, seed: UInt64) -> [ChangeSet] {
        var rng = SeededRandom(seed: seed)
        var parts: [ChangeSet] = []
        var start = 0
        while start < changeSet.ops.count {
            let size = 1 + Int(rng.next() % 7)
            parts.append(ChangeSet(ops: Array(changeSet.ops[start..<min(start + size, changeSet.ops.count)])))
            start += size
        }
        if seed == 0 { return parts }
        for i in stride(from: parts.count - 1, to: 0, by: -1) { parts.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return parts
    }

    @Test(arguments: [0, 1, 2, 3] as [UInt64])
    func aBulkLoadEqualsApplyingTheChangeSetsOneByOne(seed: UInt64) throws {
        let c = try BulkLoadTests.makeHistory()
        let everything = try c["hq"].changeSet(since: VersionVector())
        let parts = BulkLoadTests.chunks(of: everything, seed: seed)
        for part in parts { try c["plain"].apply(part) }
        try c["bulk"].bulkLoad { for part in parts { try c["bulk"].apply(part) } }
        #expect(try c["bulk"].digest() == c["plain"].digest(), "seed \(seed)")
        #expect(try c["bulk"].versionVector() == c["hq"].versionVector(), "seed \(seed)")
        #expect(try c["bulk"].opCounts().total == everything.ops.count)

        // The library changes after the load: the customers it affects are found through the
        // deferred tag pairs — c1 holds "gold" only hidden (it lost the exclusive group to "silver").
        try c["hq"].defineTag("gold", group: "pref", name: "金")
        let change = try c["hq"].changeSet(since: try c["plain"].versionVector())
        try c["plain"].apply(change)
        try c["bulk"].apply(change)
        #expect(try c["plain"].rows(of: .customerTags, where: "customer_id", equals: "c1").compactMap { $0["tag_id"]?.textValue }.sorted()
                == ["gold", "silver", "tea"], "moving gold out of the exclusive group shows it on c1")
        #expect(try c["bulk"].digest() == c["plain"].digest(), "seed \(seed)")
        // And through the shown pairs: deleting "tea" takes it off every customer showing it.
        try c["hq"].deleteTag("tea", by: "zhaolei")
        let deletion = try c["hq"].changeSet(since: try c["plain"].versionVector())
        try c["plain"].apply(deletion)
        try c["bulk"].apply(deletion)
        #expect(try c["plain"].rows(of: .customerTags).allSatisfy { $0["tag_id"]?.textValue != "tea" })
        #expect(try c["bulk"].digest() == c["plain"].digest(), "seed \(seed)")

        let db = try Database(path: c.path("bulk"), mode: .readOnly)
        defer { db.close() }
        #expect(try db.prepare("PRAGMA journal_mode").scalar()?.stringValue == "wal")
        #expect(try db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'ops_by_origin'").scalar()?.int64Value == 1)
    }

    /// A change set big enough for the second thread (several merge windows), with one customer
    /// of more than 256 ops (those go through the index), equals applying it the ordinary way.
    @Test func aLargeChangeSetMergedAsideEqualsAnOrdinaryApply() throws {
        let c = try Cluster([("hq", .hq), ("plain", .store), ("bulk", .store)])
        let hq = c["hq"]
        try hq.defineTagGroup("pref", name: "偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        try hq.defineTag("coffee", group: "pref", name: "咖啡")
        let library = try hq.changeSet(since: VersionVector())
        let before = try hq.versionVector()
        for i in 0..<700 {
            try hq.createCustomer(String(format: "wm%05d", i), ["name": .text("客户\(i)")], by: "zhaolei")
            try hq.addTag(i % 2 == 0 ? "tea" : "coffee", to: String(format: "wm%05d", i), by: "zhaolei")
        }
        for _ in 0..<150 {
            try hq.addTag("tea", to: "wm00001", by: "zhaolei")
            try hq.removeTag("tea", from: "wm00001", by: "zhaolei")
        }
        let customers = try hq.changeSet(since: before)
        #expect(customers.ops.count == 1_700)
        for cs in [library, customers] { try c["plain"].apply(cs) }
        try c["bulk"].bulkLoad { for cs in [library, customers] { try c["bulk"].apply(cs) } }
        #expect(try c["bulk"].digest() == c["plain"].digest())
        #expect(try c["bulk"].digest() == hq.digest())
        #expect(try c["bulk"].versionVector() == hq.versionVector())
        #expect(try c["bulk"].history(of: Target(.customerTag, "wm00001", "tea")).count == 300)
    }

    /// The same ops twice in one change set, and a change set again: skipped as duplicates.
    @Test func duplicatesInABulkLoadAreSkipped() throws {
        let c = try BulkLoadTests.makeHistory()
        let everything = try c["hq"].changeSet(since: VersionVector())
        var doubled = everything.ops + everything.ops
        var rng = SeededRandom(seed: 5)
        for i in stride(from: doubled.count - 1, to: 0, by: -1) { doubled.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var reports: [ApplyReport] = []
        try c["bulk"].bulkLoad {
            reports.append(try c["bulk"].apply(ChangeSet(ops: doubled)))
            reports.append(try c["bulk"].apply(everything))
        }
        #expect(reports.map(\.applied) == [everything.ops.count, 0])
        #expect(reports.map(\.duplicates) == [everything.ops.count, everything.ops.count])
        #expect(try c["bulk"].opCounts().total == everything.ops.count)
        #expect(try c["bulk"].digest() == c["hq"].digest())
    }

    @Test func twoOpsWithOneNumberRefuseTheWholeLoad() throws {
        let c = try Cluster([("hq", .hq), ("bulk", .store)])
        try c["hq"].createCustomer("c1", ["name": .text("A")], by: "zhaolei")
        try c["hq"].createCustomer("c2", ["name": .text("B")], by: "zhaolei")
        let good = try c["hq"].changeSet(since: VersionVector())
        let first = good.ops[0]
        // The same origin and number as the first op, on another customer.
        let twin = Op(stamp: Stamp(hlc: HLC(raw: first.hlc.raw + 100), node: first.origin), seq: first.seq, role: first.role,
                      author: first.author, body: .write(Target(.customer, "c9"), field: "name", value: .text("C"), overwrites: []))
        do {
            try c["bulk"].bulkLoad {
                try c["bulk"].apply(good)
                try c["bulk"].apply(ChangeSet(ops: [twin]))
            }
            Issue.record("a load holding two ops numbered \(first.origin)#\(first.seq) was stored")
        } catch let e as ReplicaError {
            #expect(e.description.contains("same origin and sequence number"))
        }
        #expect(try c["bulk"].opCounts().total == 0)
        #expect(try c["bulk"].versionVector() == VersionVector())
        // Nothing of the failed load remains, and the replica works normally afterwards.
        try c["bulk"].bulkLoad { try c["bulk"].apply(good) }
        #expect(try c["bulk"].versionVector() == c["hq"].versionVector())
        try c["hq"].editCustomer("c1", ["name": .text("D")], by: "zhaolei")
        try c.send("hq", to: "bulk")
        #expect(try c["bulk"].digest() == c["hq"].digest())
    }

    @Test func aBulkLoadIntoAReplicaWithOpsIsAnOrdinaryTransaction() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        try c["hq"].createCustomer("c1", ["name": .text("A")], by: "zhaolei")
        try c.send("hq", to: "xihu")
        try c["hq"].createCustomer("c2", ["name": .text("B")], by: "zhaolei")
        let rest = try c["hq"].changeSet(since: try c["xihu"].versionVector())
        try c["xihu"].bulkLoad { try c["xihu"].apply(rest) }
        #expect(try c["xihu"].digest() == c["hq"].digest())
        #expect(try c["xihu"].versionVector() == c["hq"].versionVector())
    }

    /// A process that dies during a bulk load leaves the file and its rollback journal: opened
    /// again, that is an empty replica, back in WAL mode with its index, that loads normally.
    @Test func aBulkLoadCutOffMidwayOpensEmptyAndLoadsAgain() throws {
        struct CutOff: Error {}
        let c = try Cluster([("hq", .hq)])
        let hq = c["hq"]
        try hq.defineTagGroup("pref", name: "偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        for i in 0..<5_000 {
            let id = String(format: "wmQm7wCAAAkB%05d_remark_and_more", i)
            try hq.createCustomer(id, ["name": .text("客户\(i)"), "phone": .text("1380000\(i)")], by: "zhaolei")
            try hq.addTag("tea", to: id, by: "zhaolei")
        }
        let everything = try hq.changeSet(since: VersionVector())
        let half = ChangeSet(ops: Array(everything.ops.prefix(everything.ops.count / 2)))
        let path = c.path("cut"), copy = c.path("copy")
        let options = ReplicaOptions(node: "cut", role: .store, cacheMegabytes: 1)
        let sizeBefore: Int
        do {
            let store = try Replica(path: path, options: options)
            defer { store.close() }
            sizeBefore = try fileSize(path)
            do {
                try store.bulkLoad {
                    try store.apply(half)
                    // What a crash now leaves on disk: the file (a 1 MiB page cache has spilled
                    // into it) and the journal that undoes that.
                    try FileManager.default.copyItem(atPath: path, toPath: copy)
                    try FileManager.default.copyItem(atPath: path + "-journal", toPath: copy + "-journal")
                    throw CutOff()
                }
            } catch is CutOff {}
        }
        #expect(try fileSize(copy) > sizeBefore, "the load did not reach the file, so the journal was not needed")

        let reopened = try Replica(path: copy, options: options)
        defer { reopened.close() }
        #expect(try reopened.opCounts().total == 0)
        #expect(try reopened.versionVector() == VersionVector())
        #expect(!FileManager.default.fileExists(atPath: copy + "-journal"))
        try reopened.bulkLoad { try reopened.apply(everything) }
        #expect(try reopened.digest() == hq.digest())
        #expect(try reopened.versionVector() == hq.versionVector())
        try reopened.editCustomer(String(format: "wmQm7wCAAAkB%05d_remark_and_more", 7), ["phone": .text("13900000000")], by: "chenjing")
        #expect(FileManager.default.fileExists(atPath: copy + "-wal"), "the replica is not back in WAL mode")
        let db = try Database(path: copy, mode: .readOnly)
        defer { db.close() }
        #expect(try db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'ops_by_origin'").scalar()?.int64Value == 1)
    }

    /// With another connection open on the file (say `siyu status` beside the node), the load
    /// stays in WAL mode and gives the same replica; the other connection then reads it.
    @Test func aBulkLoadBesideAnotherConnectionRunsInWALMode() throws {
        let c = try makeHistoryAndPlain()
        let watcher = try Replica(path: c.path("bulk"), options: ReplicaOptions(node: "bulk", role: .store))
        defer { watcher.close() }
        #expect(try watcher.opCounts().total == 0)
        let everything = try c["hq"].changeSet(since: VersionVector())
        try c["bulk"].bulkLoad {
            // Bytes 18–19 of the file header: 2, 2 in WAL mode, 1, 1 with a rollback journal.
            let header = try #require(FileHandle(forReadingAtPath: c.path("bulk"))).readData(ofLength: 20)
            #expect(Array(header[18...19]) == [2, 2], "the load left WAL mode while another connection was open")
            for part in BulkLoadTests.chunks(of: everything, seed: 0) { try c["bulk"].apply(part) }
        }
        #expect(try c["bulk"].digest() == c["plain"].digest())
        #expect(try watcher.digest() == c["plain"].digest())
        #expect(try watcher.versionVector() == c["hq"].versionVector())
    }

    /// `makeHistory`, with "plain" holding HQ's ops applied the ordinary way.
    private func makeHistoryAndPlain() throws -> Cluster {
        let c = try BulkLoadTests.makeHistory()
        try c["plain"].apply(try c["hq"].changeSet(since: VersionVector()))
        return c
    }

    private func fileSize(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }
}
