import Foundation
import Testing
import SiyuCore
import SiyuStore

/// `Replica.history(of:)`: the one history reader, behind `siyu history` (its fates) and
/// `history(of:field:)`.
@Suite struct HistoryTests {
    func customer() throws -> Cluster {
        let c = try Cluster()
        let hq = c["hq"]
        try hq.defineTagGroup("level", name: "会员等级", exclusive: true)
        try hq.defineTag("silver", group: "level", name: "银卡")
        try hq.defineTag("gold", group: "level", name: "金卡")
        try hq.createCustomer("c1", ["name": .text("林小文"), "owner_store": .text("xihu")], by: "zhaolei")
        try c.syncAll()
        return c
    }

    @Test func aFieldsHistoryListsOnlyItsWritesOldestFirstAndMarksTheCurrentOne() throws {
        let c = try customer()
        try c["xihu"].editCustomer("c1", ["phone": .text("13800000001")], by: "chenjing")
        c.clock.advance(10)
        try c["hq"].editCustomer("c1", ["phone": .text("13800000002"), "gender": .int(2)], by: "zhaolei")
        try c.syncAll()
        let entries = try c["xihu"].history(of: Target(.customer, "c1"), field: "phone")
        #expect(entries.map(\.op.origin) == ["xihu", "hq"])
        #expect(entries.map(\.isCurrent) == [false, true])
        #expect(entries.allSatisfy { if case let .write(_, f, _, _) = $0.op.body { f == "phone" } else { false } })
    }

    @Test func aTagsHistoryListsTheExclusiveGroupAddThatReplacedIt() throws {
        let c = try customer()
        try c["xihu"].addTag("silver", to: "c1", by: "chenjing")
        try c.syncAll()
        try c["xihu"].addTag("gold", to: "c1", by: "chenjing")   // replaces silver's add
        let silver = try c["xihu"].history(of: Target(.customerTag, "c1", "silver"))
        #expect(silver.count == 2)
        #expect(silver.last.map { if case let .add(t, _) = $0.op.body { t.sub == "gold" } else { false } } == true)
        #expect(try c["xihu"].history(of: Target(.customerTag, "c1", "silver"), field: "name").isEmpty, "a field names writes only")
    }

    @Test func anInstancesHistoryHoldsEveryOpHeldAndTheStateTheyMergeTo() throws {
        let c = try customer()
        let created = try c["xihu"].instanceOps(InstanceRef(.customer, "c1")).count
        try c["xihu"].addTag("silver", to: "c1", by: "chenjing")
        try c["xihu"].editCustomer("c1", ["name": .text("林晓雯")], by: "chenjing")
        let history = try c["xihu"].history(of: InstanceRef(.customer, "c1"))
        #expect(history.ops == (try c["xihu"].instanceOps(InstanceRef(.customer, "c1"))))
        #expect(history.ops.count == created + 2)
        let state = try c["xihu"].state(of: InstanceRef(.customer, "c1"))
        #expect(history.state.rows == state.rows)
        #expect(history.state.conflicts.map(\.id) == state.conflicts.map(\.id))
    }
}
