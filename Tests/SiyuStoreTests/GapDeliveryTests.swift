import Testing
import SiyuCore
import SiyuStore

/// Change sets whose ops leave gaps in an origin's numbering (a hand-carried file, a scoped pull, a
/// subset): the ops are kept and merged at once, the version vector's contiguous entry for that
/// origin does not move past the gap, and the gap is filled later by an ordinary change set.
@Suite struct GapDeliveryTests {
    @Test func opsBeyondAGapAreMergedAndTheFrontierWaitsForTheGap() throws {
        let c = try Cluster()
        let hq = c["hq"], xihu = c["xihu"], jingan = c["jingan"]
        try hq.defineTagGroup("pref", name: "消费偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        try hq.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        try c.syncAll()
        let base = try xihu.versionVector()["xihu"]
        try xihu.editCustomer("c1", ["phone": .text("13800000001")], by: "chenjing")   // base+1
        try xihu.editCustomer("c1", ["unionid": .text("u-1")], by: "chenjing")         // base+2
        try xihu.addTag("tea", to: "c1", by: "chenjing")                                // base+3
        try xihu.editCustomer("c1", ["name": .text("林晓雯")], by: "chenjing")           // base+4
        let own = try xihu.outbox(after: base)
        #expect(own.map(\.seq) == [base + 1, base + 2, base + 3, base + 4])

        // Only the last two arrive, in reverse order.
        let report = try jingan.apply(ChangeSet(ops: [own[3], own[2]]))
        #expect(report.applied == 2)
        let customer = try jingan.rows(of: .customers, where: "customer_id", equals: "c1")[0]
        #expect(customer["name"] == .text("林晓雯"))
        #expect(customer["phone"] == .null)
        #expect(try jingan.rows(of: .customerTags).map { $0["tag_id"] } == [.text("tea")])
        #expect(try jingan.versionVector()["xihu"] == base)

        // What jingan passes on includes the ops beyond its gap; hq then has the same gap.
        try c.send("jingan", to: "hq")
        #expect(try hq.versionVector()["xihu"] == base)
        #expect(try hq.rows(of: .customerTags).count == 1)

        // The gap is filled by an ordinary change set (which repeats the ops held: harmless).
        let fill = try c.send("xihu", to: "jingan")
        #expect(fill.applied == 2)
        #expect(fill.duplicates == 2)
        #expect(try jingan.versionVector()["xihu"] == base + 4)
        try c.syncAll()
        #expect(Set(try c.digests().values).count == 1)
    }

    @Test func aSubsetAppliedTwiceAndOutOfOrderEqualsTheWholeSetAppliedOnce() throws {
        let c = try Cluster()
        let hq = c["hq"], xihu = c["xihu"]
        try hq.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        try c.syncAll()
        let base = try xihu.versionVector()["xihu"]
        for phone in ["13800000001", "13800000002", "13800000003", "13800000004", "13800000005"] {
            try xihu.editCustomer("c1", ["phone": .text(phone)], by: "chenjing")
        }
        let own = try xihu.outbox(after: base)
        try c["jingan"].apply(ChangeSet(ops: [own[4], own[1]]))
        try c["jingan"].apply(ChangeSet(ops: [own[1], own[3], own[0]]))
        try c["jingan"].apply(ChangeSet(ops: [own[2]]))
        #expect(try c["jingan"].versionVector()["xihu"] == base + 5)
        try c.send("xihu", to: "hq")
        #expect(try c["jingan"].digest() == (try hq.digest()))
        #expect(try c["jingan"].conflicts().isEmpty)
    }
}
