import Testing
import SiyuCore
import SiyuStore

/// An honest edit always fits: past `Op.maxNamedStamps` open heads (or live adds), an edit names the
/// latest ones; the rest stay as they were on every replica, and later edits name them in turn.
@Suite struct BoundedNamingTests {
    static let extra = 300

    /// A peer's change set of `count` writes of c1's phone (or adds of tea) that name nothing:
    /// all concurrent. (Only a faulty or very partitioned fleet makes this many.)
    static func concurrent(_ count: Int, _ body: (Int) -> OpBody) -> ChangeSet {
        ChangeSet(ops: (0..<count).map { i in
            Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000, logical: UInt16(i)), node: "crm"), seq: UInt64(i + 1),
               role: .hq, author: "system", body: body(i))
        })
    }

    @Test func aWriteOverMoreHeadsThanAnOpMayNameNamesTheLatestAndTheNextWritesNameTheRest() throws {
        let c = try Cluster()
        let hq = c["hq"], xihu = c["xihu"]
        try hq.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        try c.syncAll()
        let count = Op.maxNamedStamps + BoundedNamingTests.extra
        try xihu.apply(BoundedNamingTests.concurrent(count) { i in
            .write(Target(.customer, "c1"), field: "phone", value: .text("1380000\(i)"), overwrites: [])
        })
        let phone = Target(.customer, "c1")
        #expect(try xihu.state(of: phone.instance).heads(phone, "phone").count == count)
        c.clock.advance(1_000)
        try xihu.editCustomer("c1", ["phone": .text("13900000000")], by: "chenjing")
        let first = try xihu.history(of: phone, field: "phone").last!.op
        guard case let .write(_, _, _, named) = first.body else { Issue.record("not a write"); return }
        #expect(named.count == Op.maxNamedStamps)
        #expect(try xihu.state(of: phone.instance).heads(phone, "phone").count == BoundedNamingTests.extra + 1)
        #expect(try xihu.rows(of: .customers)[0]["phone"] == .text("13900000000"))
        // The next write names what is left; then one head remains.
        try xihu.editCustomer("c1", ["phone": .text("13900000001")], by: "chenjing")
        #expect(try xihu.state(of: phone.instance).heads(phone, "phone").count == 1)
        try c.syncAll()
        #expect(Set(try c.digests().values).count == 1)
    }

    @Test func aRemoveOverMoreLiveAddsThanAnOpMayNameLeavesTheRestUntilTheNextRemove() throws {
        let c = try Cluster()
        let hq = c["hq"], xihu = c["xihu"]
        try hq.defineTagGroup("pref", name: "消费偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        try hq.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        try c.syncAll()
        let count = Op.maxNamedStamps + BoundedNamingTests.extra
        try xihu.apply(BoundedNamingTests.concurrent(count) { _ in .add(Target(.customerTag, "c1", "tea"), removes: []) })
        c.clock.advance(1_000)
        try xihu.removeTag("tea", from: "c1", by: "chenjing")
        #expect(try xihu.state(of: InstanceRef(.customer, "c1")).liveAdds(Target(.customerTag, "c1", "tea")).count == BoundedNamingTests.extra)
        #expect(try xihu.rows(of: .customerTags).count == 1)
        try xihu.removeTag("tea", from: "c1", by: "chenjing")
        #expect(try xihu.rows(of: .customerTags).isEmpty)
        try c.syncAll()
        #expect(Set(try c.digests().values).count == 1)
    }
}
