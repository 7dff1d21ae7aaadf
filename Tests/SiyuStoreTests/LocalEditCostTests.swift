import Testing
import SiyuCore
@testable import SiyuStore

/// A local edit adds its ops to the instance's kept state: it does not read or re-merge the
/// instance's history, so its cost does not grow with the history (the benchmark's "history"
/// section times it; this checks the mechanism deterministically).
@Suite struct LocalEditCostTests {
    @Test func aLocalEditAfterAThousandWritesReadsNoneOfThemBack() throws {
        let c = try Cluster()
        let hq = c["hq"]
        try hq.addTagGroupAndTag()   // before: a change of the tag library drops every kept customer
        try hq.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        for i in 0..<1_000 { try hq.editCustomer("c1", ["phone": .text("1380000\(i)")], by: "zhaolei") }
        hq.opsReadForMerging = 0
        try hq.editCustomer("c1", ["phone": .text("13900000000")], by: "zhaolei")
        try hq.addTag("tea", to: "c1", by: "zhaolei")
        try hq.removeTag("tea", from: "c1", by: "zhaolei")
        try hq.awardPoints(10, to: "c1", by: "zhaolei")
        #expect(hq.opsReadForMerging == 0)
        #expect(try hq.state(of: InstanceRef(.customer, "c1")).heads(Target(.customer, "c1"), "phone").count == 1)
        let incremental = try hq.digest()
        try hq.rebuild()
        #expect(try hq.digest() == incremental)
    }

    @Test func aConcurrentRemoteOpReMergesTheInstanceOnceAndTheNextEditsAgree() throws {
        let c = try Cluster()
        let hq = c["hq"], xihu = c["xihu"]
        try hq.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        for i in 0..<50 { try hq.editCustomer("c1", ["phone": .text("1380000\(i)")], by: "zhaolei") }
        try c.syncAll()
        try xihu.editCustomer("c1", ["phone": .text("13700000000")], by: "chenjing")   // concurrent with the next
        c.clock.advance(10)
        try hq.editCustomer("c1", ["phone": .text("13600000000")], by: "zhaolei")    // stamped later
        hq.opsReadForMerging = 0
        try c.send("xihu", to: "hq")
        #expect(hq.opsReadForMerging == 53)   // older than the kept state's last op: merged from every op, once
        hq.opsReadForMerging = 0
        try hq.editCustomer("c1", ["name": .text("林晓雯")], by: "zhaolei")
        #expect(hq.opsReadForMerging == 0)
        hq.opsReadForMerging = 0
        try hq.editCustomer("c1", ["name": .text("林小雯")], by: "zhaolei")
        #expect(hq.opsReadForMerging == 0)
        #expect(try hq.conflicts().map(\.rule) == [.lastWriterWins])
        let incremental = try hq.digest()
        try hq.rebuild()
        #expect(try hq.digest() == incremental)
    }
}

/// A peer's ops into an instance: added to its kept state when they are later than every op
/// held, so applying them costs the same after 100,000 ops as after 1,000 (the benchmark's
/// "history" section times it).
@Suite struct RemoteApplyCostTests {
    /// HQ holding customer c1 with `writes` chained phone writes from xihu, re-opened (nothing kept).
    func history(_ writes: Int) throws -> (Cluster, Replica) {
        let c = try Cluster()
        try c["hq"].createCustomer("c1", ["name": .text("林小文"), "owner_store": .text("xihu")], by: "zhaolei")
        try c.send("hq", to: "xihu")
        for i in 0..<writes { try c["xihu"].editCustomer("c1", ["phone": .text("1380000\(i)")], by: "chenjing") }
        try c.send("xihu", to: "hq")
        c["hq"].close()
        return (c, try Replica(path: c.path("hq"), options: ReplicaOptions(wallClock: { UInt64(c.clock.now) })))
    }

    @Test func aPeersLaterOpIsAddedToTheKeptStateWithoutReadingTheHistory() throws {
        let (c, hq) = try history(300)
        defer { hq.close() }
        try c["xihu"].editCustomer("c1", ["phone": .text("13900000000")], by: "chenjing")
        try hq.apply(try c["xihu"].changeSet(since: try hq.versionVector()))
        #expect(hq.opsReadForMerging == 303, "the first op merges the whole history once (creation's 2 ops, 300 writes, this one)")
        for i in 0..<3 {
            hq.opsReadForMerging = 0
            try c["xihu"].editCustomer("c1", ["phone": .text("1390000000\(i)")], by: "chenjing")
            try hq.apply(try c["xihu"].changeSet(since: try hq.versionVector()))
            #expect(hq.opsReadForMerging == 0)
        }
        #expect(try hq.digest() == c["xihu"].digest())
        let incremental = try hq.digest()
        try hq.rebuild()
        #expect(try hq.digest() == incremental)
    }

    @Test func aShortHistoryIsMergedAgainForEachPeersOpAndNotKept() throws {
        let (c, hq) = try history(20)
        defer { hq.close() }
        for i in 0..<2 {
            hq.opsReadForMerging = 0
            try c["xihu"].editCustomer("c1", ["phone": .text("1390000000\(i)")], by: "chenjing")
            try hq.apply(try c["xihu"].changeSet(since: try hq.versionVector()))
            #expect(hq.opsReadForMerging == 23 + i, "below Replica.keptHistoryLength: merged from the op log each time")
        }
        #expect(try hq.digest() == c["xihu"].digest())
    }
}

/// A peer's ops into an instance HQ (or a hub) held before, merged from the op log, write only the
/// rows and conflicts they change; the tables still equal a rebuild from the ops.
@Suite struct RemoteApplyWritesTests {
    /// The data-table writes (not the op log's, the version vector's or the tag index's) `body` makes on `replica`.
    static func tableWrites(on replica: Replica, _ body: () throws -> Void) throws -> [String] {
        let logTables = ["ops", "versions", "tagged_customers", "siyu_meta"]
        var writes: [String] = []
        replica.db.faultInjector = { sql in
            let words = sql.split(separator: " ").map(String.init)
            guard let first = words.first, ["INSERT", "DELETE", "UPDATE"].contains(first) else { return }
            guard let table = words.drop(while: { !["INTO", "FROM", "UPDATE"].contains($0) }).dropFirst().first ?? (first == "UPDATE" ? words.dropFirst().first : nil),
                  !logTables.contains(where: { table.hasPrefix($0) }) else { return }
            writes.append(sql)
        }
        defer { replica.db.faultInjector = nil }
        try body()
        return writes
    }

    @Test func aPeersOpsIntoACustomerHQHeldWriteOnlyTheRowsTheyChange() throws {
        let c = try Cluster()
        let hq = c["hq"]
        try hq.addTagGroupAndTag()
        try hq.createCustomer("c1", ["name": .text("林小文"), "owner_store": .text("xihu")], by: "zhaolei")
        try hq.addTag("tea", to: "c1", by: "zhaolei")
        try hq.awardPoints(10, to: "c1", by: "zhaolei")
        try c.send("hq", to: "xihu")
        hq.close()
        let reopened = try Replica(path: c.path("hq"), options: ReplicaOptions(wallClock: { UInt64(c.clock.now) }))   // nothing kept
        defer { reopened.close() }
        try c["xihu"].editCustomer("c1", ["name": .text("林晓雯")], by: "chenjing")
        let writes = try Self.tableWrites(on: reopened) {
            try reopened.apply(try c["xihu"].changeSet(since: try reopened.versionVector()))
        }
        #expect(writes.count == 1 && writes.first?.hasPrefix("INSERT OR REPLACE INTO customers ") == true, "\(writes)")
        // A concurrent write: the conflict is logged, and the tables equal a rebuild.
        try c["xihu"].editCustomer("c1", ["name": .text("林小雯")], by: "chenjing")
        try reopened.editCustomer("c1", ["name": .text("林筱雯")], by: "zhaolei")
        try reopened.apply(try c["xihu"].changeSet(since: try reopened.versionVector()))
        #expect(try reopened.conflicts().map(\.rule) == [.lastWriterWins])
        let incremental = try reopened.digest()
        try reopened.rebuild()
        #expect(try reopened.digest() == incremental)
    }

    @Test func aStoreNodeStillWritesAHeldInstanceWhole() throws {
        // A store node may have dropped an instance's rows (it left the store's scope) and kept its
        // own ops: its rows are not the merge of the ops it holds, so the instance is written whole.
        let c = try Cluster()
        try c["hq"].createCustomer("c1", ["name": .text("林小文"), "owner_store": .text("xihu")], by: "zhaolei")
        try c.send("hq", to: "xihu")
        try c["hq"].editCustomer("c1", ["phone": .text("13800000000")], by: "zhaolei")
        let xihu = c["xihu"]
        let writes = try Self.tableWrites(on: xihu) { try c.send("hq", to: "xihu") }
        #expect(writes.contains { $0.hasPrefix("DELETE FROM customers ") }, "\(writes)")
    }
}

extension Replica {
    /// A tag group with one tag (tea), for the tests here.
    func addTagGroupAndTag() throws {
        try defineTagGroup("pref", name: "消费偏好")
        try defineTag("tea", group: "pref", name: "茶")
    }
}
