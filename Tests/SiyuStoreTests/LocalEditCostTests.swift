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

    @Test func aRemoteOpOnTheInstanceMakesTheNextEditReadTheHistoryOnceAndAgree() throws {
        let c = try Cluster()
        let hq = c["hq"], xihu = c["xihu"]
        try hq.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        for i in 0..<50 { try hq.editCustomer("c1", ["phone": .text("1380000\(i)")], by: "zhaolei") }
        try c.syncAll()
        try xihu.editCustomer("c1", ["phone": .text("13700000000")], by: "chenjing")   // concurrent with the next
        try hq.editCustomer("c1", ["phone": .text("13600000000")], by: "zhaolei")
        try c.send("xihu", to: "hq")
        hq.opsReadForMerging = 0
        try hq.editCustomer("c1", ["name": .text("林晓雯")], by: "zhaolei")
        #expect(hq.opsReadForMerging == 53)   // the remote op dropped the kept state: read once
        hq.opsReadForMerging = 0
        try hq.editCustomer("c1", ["name": .text("林小雯")], by: "zhaolei")
        #expect(hq.opsReadForMerging == 0)
        #expect(try hq.conflicts().map(\.rule) == [.lastWriterWins])
        let incremental = try hq.digest()
        try hq.rebuild()
        #expect(try hq.digest() == incremental)
    }
}

extension Replica {
    /// A tag group with one tag (tea), for the tests here.
    func addTagGroupAndTag() throws {
        try defineTagGroup("pref", name: "消费偏好")
        try defineTag("tea", group: "pref", name: "茶")
    }
}
