import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuTestSupport

/// The write rights of store nodes (SPEC section 7, "Write rights"; `WriteRights.rules`), one
/// test per rule, on the path production runs: a hub's `acceptPush` from a registered store.
/// Each refused PUSH stores nothing and names the op and the rule.
@Suite struct WriteRightsTests {
    final class World {
        let dir: TemporaryDirectory
        var now: UInt64 = 1_764_000_000_000
        var hub: Replica!
        var hq: Replica!
        var seq: [String: UInt64] = [:]
        init() throws {
            dir = try TemporaryDirectory()
            hub = try Replica(path: dir.path("hub.db"),
                              options: ReplicaOptions(node: "hub", role: .hq, wallClock: { [unowned self] in self.now }))
            hq = try Replica(path: dir.path("hq.db"),
                             options: ReplicaOptions(node: "hq", role: .hq, wallClock: { [unowned self] in self.now }))
            try hub.registerNode("hq", role: .hq, secret: Array("h".utf8))
            try hub.registerNode("xihu", role: .store, store: "xihu", secret: Array("x".utf8))
            try hub.registerNode("binjiang", role: .store, store: "binjiang", secret: Array("b".utf8))
            try hub.registerNode("legacy", role: .store, secret: Array("l".utf8))
            // HQ's setup: stores, staff, a customer, an order and a group chat of each store.
            try hq.defineStore("xihu", name: "西湖店")
            try hq.defineStore("binjiang", name: "滨江店")
            try hq.defineStaff("chenjing", name: "陈静", storeID: "xihu")
            try hq.defineStaff("lina", name: "李娜", storeID: "binjiang")
            try hq.defineStaff("zhaolei", name: "赵磊", storeID: nil)
            try hq.defineTagGroup("g_level", name: "等级", by: "zhaolei")
            try hq.defineTag("et_gold", group: "g_level", name: "金卡", by: "zhaolei")
            try hq.createCustomer("c_x", ["name": .text("林"), "owner_store": .text("xihu")], by: "zhaolei")
            try hq.createCustomer("c_b", ["name": .text("周"), "owner_store": .text("binjiang")], by: "zhaolei")
            try hq.createCustomer("c_none", ["name": .text("马")], by: "zhaolei")
            try hq.createOrder("o_x", ["customer_id": .text("c_x"), "store_id": .text("xihu")], by: "zhaolei")
            try hq.createGroupChat("g_x", ["name": .text("西湖群"), "owner": .text("chenjing")], by: "zhaolei")
            try hq.createGroupChat("g_b", ["name": .text("滨江群"), "owner": .text("lina")], by: "zhaolei")
            _ = try hub.acceptPush(from: "hq", ChangeSet(ops: try hq.outbox(after: 0)))
        }
        deinit { hub.close(); hq.close(); dir.remove() }

        /// An op of store node `node`, numbered in turn.
        func op(_ node: String, _ body: OpBody, author: String = "chenjing") -> Op {
            let next = (seq[node] ?? 0) + 1
            seq[node] = next
            return Op(stamp: Stamp(hlc: HLC(millis: now, logical: UInt16(truncatingIfNeeded: next)), node: node), seq: next,
                      role: .store, author: author, body: body)
        }

        func write(_ node: String, _ entity: Entity, _ id: String, _ field: String, _ value: Value, sub: String = "",
                   author: String = "chenjing") -> Op {
            op(node, .write(Target(entity, id, sub), field: field, value: value, overwrites: []), author: author)
        }

        /// Pushes `ops` from `node`: nil when stored, else the refusal (and then nothing was stored).
        func push(_ node: String, _ ops: [Op]) throws -> OpRefusal? {
            let head = try hub.logHead()
            switch try hub.acceptPush(from: node, ChangeSet(ops: ops)) {
            case .stored: return nil
            case let .deferred(message, _):
                Issue.record("deferred, not refused: \(message)")
                return nil
            case let .refused(refusal, _):
                #expect(try hub.logHead() == head, "a refused PUSH stores nothing")
                return refusal
            }
        }

        /// Expects the PUSH refused with code 8, naming the op numbered `seq` and the rule.
        func expectRefused(_ node: String, _ ops: [Op], rule: String, seq: UInt64? = nil,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
            let refusal = try push(node, ops)
            #expect(refusal?.reason == .permission, "refused as permission_denied", sourceLocation: sourceLocation)
            #expect(refusal?.seq == (seq ?? ops.last?.seq), sourceLocation: sourceLocation)
            #expect(refusal?.message.contains("(rule \(rule))") == true, "\(refusal?.message ?? "stored")", sourceLocation: sourceLocation)
        }
    }

    @Test func aStoreCannotWriteTheTagLibrary() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.write("xihu", .tag, "et_gold", "name", .text("金"))], rule: "tag_library")
    }

    @Test func aStoreCannotDeleteATag() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.op("xihu", .tagDeletion(InstanceRef(.tag, "et_gold"), seen: []))], rule: "tag_deletion")
    }

    @Test func aStoreCannotRedeemPoints() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.op("xihu", .points(customerID: "c_x", delta: -5))], rule: "redemption")
    }

    @Test func aStoreAwardsAtMostTheDocumentedLimitPerOp() throws {
        let w = try World()
        #expect(try w.push("xihu", [w.op("xihu", .points(customerID: "c_x", delta: WriteRights.storeMaxPointsAward))]) == nil)
        try w.expectRefused("xihu", [w.op("xihu", .points(customerID: "c_x", delta: WriteRights.storeMaxPointsAward + 1))],
                            rule: "points_award_limit")
        let hq = w.hq!
        try hq.awardPoints(WriteRights.storeMaxPointsAward * 10, to: "c_x", by: "zhaolei")
        #expect(try w.push("hq", try hq.outbox(after: 0)) == nil, "HQ awards more")
    }

    @Test func aStoreCannotWriteStoreRows() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.write("xihu", .store, "xihu", "name", .text("西湖新店"))], rule: "store_rows")
    }

    @Test func aStoreCannotMoveStaffBetweenStores() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.write("xihu", .staff, "lina", "store_id", .text("xihu"))], rule: "staff_store")
        #expect(try w.push("xihu", [w.write("xihu", .staff, "chenjing", "name", .text("陈静静"))]) == nil,
                "a store edits its own staff's name")
    }

    @Test func aStoreCannotDeleteACustomer() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.op("xihu", .deleteCustomer(customerID: "c_x", observed: []))], rule: "customer_deletion")
    }

    @Test func aStoreSetsACustomersOwnerOnlyWhenCreatingItAndOnlyToItself() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.write("xihu", .customer, "c_x", "owner_store", .text("binjiang"))], rule: "customer_owner")
        try w.expectRefused("xihu", [w.write("xihu", .customer, "c_x", "owner_staff", .text("chenjing"))], rule: "customer_owner")
        try w.expectRefused("xihu", [w.write("xihu", .customer, "c_new1", "owner_store", .text("binjiang"))], rule: "customer_owner")
        // Its other ops on that customer are then outside its scope (the PUSH makes it binjiang's).
        let name = w.write("xihu", .customer, "c_new1", "name", .text("新"))
        try w.expectRefused("xihu", [name, w.write("xihu", .customer, "c_new1", "owner_store", .text("binjiang"))],
                            rule: "scope", seq: name.seq)
        try w.expectRefused("xihu", [w.write("xihu", .customer, "c_new2", "owner_store", .text("xihu")),
                                     w.write("xihu", .customer, "c_new2", "owner_staff", .text("lina"))],
                            rule: "customer_owner")
        #expect(try w.push("xihu", [w.write("xihu", .customer, "c_new3", "name", .text("新")),
                                    w.write("xihu", .customer, "c_new3", "owner_store", .text("xihu")),
                                    w.write("xihu", .customer, "c_new3", "owner_staff", .text("chenjing"))]) == nil)
        #expect(try w.hub.heldHome(of: InstanceRef(.customer, "c_new3")) == .store("xihu"))
    }

    @Test func anOrdersStoreIsFixedOnceTheOrderExists() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.write("xihu", .order, "o_x", "store_id", .text("xihu"))], rule: "order_store")
        try w.expectRefused("xihu", [w.write("xihu", .order, "o_new1", "store_id", .text("binjiang"))], rule: "order_store")
        #expect(try w.push("xihu", [w.write("xihu", .order, "o_new2", "customer_id", .text("c_x")),
                                    w.write("xihu", .order, "o_new2", "store_id", .text("xihu"))]) == nil)
    }

    @Test func aStoreGivesAGroupChatOnlyToItsOwnStaff() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.write("xihu", .groupChat, "g_x", "owner", .text("lina"))], rule: "group_owner")
        #expect(try w.push("xihu", [w.write("xihu", .groupChat, "g_new", "owner", .text("chenjing"))]) == nil)
    }

    @Test func anOpsAuthorIsStaffOfTheStoreOrEmpty() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.write("xihu", .customer, "c_x", "phone", .text("139"), author: "lina")], rule: "author")
        try w.expectRefused("xihu", [w.write("xihu", .customer, "c_x", "phone", .text("139"), author: "zhaolei")], rule: "author")
        #expect(try w.push("xihu", [w.write("xihu", .customer, "c_x", "phone", .text("139"), author: "")]) == nil, "a system edit")
        #expect(try w.push("xihu", [w.write("xihu", .customer, "c_x", "phone", .text("138"))]) == nil)
        let hq = w.hq!
        try hq.editCustomer("c_x", ["phone": .text("137")], by: "lina")
        #expect(try w.push("hq", try hq.outbox(after: 0)) == nil, "HQ names any staff")
    }

    @Test func aStoreWritesOnlyInsideItsScope() throws {
        let w = try World()
        try w.expectRefused("xihu", [w.write("xihu", .customer, "c_b", "phone", .text("139"))], rule: "scope")
        try w.expectRefused("xihu", [w.write("xihu", .customer, "c_none", "phone", .text("139"))], rule: "scope")
        try w.expectRefused("xihu", [w.op("xihu", .add(Target(.customerTag, "c_b", "et_gold"), removes: []))], rule: "scope")
        try w.expectRefused("xihu", [w.write("xihu", .groupChat, "g_b", "notice", .text("x"))], rule: "scope")
        try w.expectRefused("xihu", [w.write("xihu", .customer, "c_new", "name", .text("无主"))], rule: "scope")
        try w.expectRefused("xihu", [w.write("xihu", .staff, "lina", "name", .text("x"))], rule: "scope")
        // One op out of scope refuses the whole PUSH, the valid op before it included.
        let ok = w.write("xihu", .customer, "c_x", "phone", .text("1"))
        try w.expectRefused("xihu", [ok, w.write("xihu", .customer, "c_b", "phone", .text("2"))], rule: "scope")
        #expect(try w.hub.rows(of: .customers, where: "customer_id", equals: "c_x").first?["phone"] != .text("1"))
        #expect(try w.push("xihu", [w.write("xihu", .customer, "c_x", "phone", .text("3")),
                                    w.op("xihu", .add(Target(.customerTag, "c_x", "et_gold"), removes: [])),
                                    w.write("xihu", .groupChat, "g_x", "notice", .text("欢迎"))]) == nil)
        #expect(try w.push("binjiang", [w.write("binjiang", .customer, "c_b", "phone", .text("139"), author: "lina")]) == nil)
    }

    @Test func aStoreRegisteredWithoutAStoreIsCheckedOnlyByTheRulesThatNeedNone() throws {
        let w = try World()
        #expect(try w.push("legacy", [w.write("legacy", .customer, "c_b", "phone", .text("139"), author: "anyone")]) == nil)
        try w.expectRefused("legacy", [w.op("legacy", .deleteCustomer(customerID: "c_b", observed: []))], rule: "customer_deletion")
    }
}
