import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuStore
import SiyuWire

/// Transfers (SPEC section 7, "Transfers"): HQ moves a customer, an order, a group chat or a
/// staff member to another store. The receiving store's next PULL is a snapshot of reason 1 with
/// the whole history; the old store drops the instance when it applies the CHANGES carrying the
/// move; the old store's late edits are taken while it could not have known.
@Suite struct TransferTests {
    typealias World = WriteRightsTests.World

    /// A store node of `store` fed by the hub's executor as a real node is (CHANGES or snapshots).
    final class StoreNode {
        let replica: Replica
        let name: String
        /// The hub's file (its acked_seq of this node tells a replacing snapshot what to keep).
        unowned let hub: Replica
        var cursor: UInt64 = 0
        var reasons: [SnapshotReason] = []
        init(_ w: World, _ name: String, store: String) throws {
            self.name = name
            hub = w.hub
            replica = try Replica.create(at: w.dir.path("\(name)-node.db"), node: name, role: .store, store: store,
                                         options: ReplicaOptions(wallClock: { [unowned w] in w.now }))
        }

        /// The node's file opened again (after a test closed it, or put an older copy in its place).
        init(reopening path: String, name: String, cursor: UInt64, _ w: World) throws {
            self.name = name
            hub = w.hub
            self.cursor = cursor
            replica = try Replica(path: path, options: ReplicaOptions(wallClock: { [unowned w] in w.now }))
        }

        /// Pulls until caught up, CHANGES of about `byteBudget` bytes at a time (the node's own ops
        /// too with `ownOps`, as a node recovering them pulls); the snapshot reasons it met.
        @discardableResult
        func sync(_ executor: HubStoreExecutor, byteBudget: Int = 1 << 20, ownOps: Bool = false) throws -> [SnapshotReason] {
            let before = reasons.count
            for _ in 0..<1_000 {
                switch executor.execute(.readChanges(node: name, after: cursor, byteBudget: byteBudget, schemaVersion: 1, ownOps: ownOps)) {
                case let .changes(ops, next, more, _):
                    _ = try replica.applyChanges(ChangeSet(ops: ops.map(\.op)), nextCursor: next, caughtUp: !more)
                    cursor = next
                    if !more { return Array(reasons[before...]) }
                case let .startSnapshot(id, at, reason):
                    reasons.append(reason)
                    try replica.beginSnapshotLoad(replacingAbove: try hub.registeredNode(name)?.ackedSeq ?? 0)
                    while true {
                        guard case let .snapshotPart(ops, last, _, _) = executor.execute(.readSnapshotPart(node: name, snapshotID: id, part: 0)) else {
                            Issue.record("no snapshot part"); return Array(reasons[before...])
                        }
                        try replica.applySnapshotChunk(ChangeSet(ops: ops))
                        if last { break }
                    }
                    try replica.finishSnapshot(cursor: at)
                    cursor = at
                case let other:
                    Issue.record("unexpected \(other)"); return Array(reasons[before...])
                }
            }
            return Array(reasons[before...])
        }
    }

    func world() throws -> (World, HubStoreExecutor, StoreNode, StoreNode) {
        let w = try World()
        let executor = try HubStoreExecutor(replica: w.hub, options: .init(bootstrapSnapshotOps: nil))
        let xihu = try StoreNode(w, "xihu", store: "xihu"), binjiang = try StoreNode(w, "binjiang", store: "binjiang")
        try xihu.sync(executor)
        try binjiang.sync(executor)
        return (w, executor, xihu, binjiang)
    }

    /// Each store node holds exactly its scope as the hub has it.
    func expectScopes(_ w: World, _ nodes: [StoreNode], sourceLocation: SourceLocation = #_sourceLocation) throws {
        for n in nodes {
            #expect(try n.replica.digest() == (try w.hub.scopeDigest(.store(n.replica.store ?? "")).digest),
                    "\(n.name) holds its scope", sourceLocation: sourceLocation)
        }
    }

    /// HQ moves customer c_x from xihu to binjiang (WeCom's transfer_customer).
    func transfer(_ w: World, customer: String = "c_x", to store: String) throws {
        try w.hq.editCustomer(customer, ["owner_store": .text(store)], by: "zhaolei")
        #expect(try w.push("hq", try w.hq.outbox(after: 0)) == nil)
    }

    @Test func aStoreGivenACustomersCreationWithoutItsTransferInOneCHANGESKeepsItUntilItHasCaughtUp() throws {
        let (w, executor, xihu, _) = try world()
        // HQ creates c_new for no store and gives it to xihu in one PUSH: all its ops are logged
        // under xihu's home, and a CHANGES cut by the byte budget can bring the creation alone.
        try w.hq.createCustomer("c_new", ["name": .text("新客")], by: "zhaolei")
        try w.hq.editCustomer("c_new", ["owner_store": .text("xihu")], by: "zhaolei")
        #expect(try w.push("hq", try w.hq.outbox(after: 0)) == nil)
        try xihu.sync(executor, byteBudget: 1)   // one op a CHANGES
        #expect(try xihu.replica.customerRows(id: "c_new").first?["name"] == .text("新客"))
        try expectScopes(w, [xihu])
    }

    /// Found by the scoped simulator (fixed; seeds 209, 303, 502): after the hub's file went back,
    /// HQ pushed again a customer's creation for xihu and its transfer to binjiang in one PUSH, so
    /// the hub never saw the customer in xihu's scope: xihu, which held it from the old history,
    /// kept it for good, and its offline edit of it was refused as outside its scope.
    @Test func aStoreACustomerEntersAndLeavesInOnePushIsToldItLeftAndItsEarlierEditIsTaken() throws {
        let (w, executor, xihu, binjiang) = try world()
        let hqBefore = try w.hq.lastIssuedSeq()
        try w.hq.createCustomer("c_t", ["name": .text("转店客"), "owner_store": .text("xihu")], by: "zhaolei")
        let creation = try w.hq.outbox(after: hqBefore)
        // xihu holds c_t from the history the hub lost, and edits it offline.
        _ = try xihu.replica.applyChanges(ChangeSet(ops: creation), nextCursor: xihu.cursor, caughtUp: true)
        try xihu.replica.editCustomer("c_t", ["phone": .text("13900000000")], by: "chenjing")
        w.now += 1_000
        try w.hq.editCustomer("c_t", ["owner_store": .text("binjiang")], by: "zhaolei")
        #expect(try w.push("hq", try w.hq.outbox(after: hqBefore)) == nil)     // creation and transfer in one PUSH
        #expect(try w.hub.departure(of: InstanceRef(.customer, "c_t"), from: "xihu") != nil)
        #expect(try w.push("xihu", try xihu.replica.outbox(after: 0)) == nil, "a late edit made before xihu could know")
        try xihu.sync(executor)
        #expect(try xihu.replica.customerRows(id: "c_t").isEmpty, "xihu dropped it")
        try binjiang.sync(executor)
        try expectScopes(w, [xihu, binjiang])
    }

    /// Found by the simulator (seed 5734): HQ's transfer wrote owner_store and then owner_staff in
    /// one PUSH, and a CHANGES of xihu's ended between the two: xihu dropped the customer at the
    /// first and took the second alone — with its own creation of the customer, back as its own for
    /// good. The store a PUSH takes an instance out of now gets the ops up to the transfer, not
    /// those after it.
    @Test func aStoreACustomerLeavesGetsTheTransferButNotTheWritesAfterItInItsPush() throws {
        let (w, executor, xihu, _) = try world()
        try xihu.sync(executor)
        let hqBefore = try w.hq.lastIssuedSeq()
        try w.hq.editCustomer("c_x", ["owner_store": .text("binjiang")], by: "zhaolei")
        try w.hq.editCustomer("c_x", ["owner_staff": .text("lina")], by: "zhaolei")
        #expect(try w.hq.outbox(after: hqBefore).count == 2)
        #expect(try w.push("hq", try w.hq.outbox(after: 0)) == nil)   // one PUSH
        let read = try w.hub.changes(after: xihu.cursor, byteBudget: 1 << 20, scope: .store("xihu"), leavingOut: nil)
        let fields = read.ops.map(\.op).filter { $0.instance == InstanceRef(.customer, "c_x") }.compactMap { op -> String? in
            if case let .write(_, field, _, _) = op.body { return field }; return nil
        }
        #expect(fields == ["owner_store"], "the transfer, not the write after it")
        try xihu.sync(executor, byteBudget: 1)   // one op a CHANGES
        #expect(try xihu.replica.customerRows(id: "c_x").isEmpty, "xihu dropped it and nothing brought it back")
        try expectScopes(w, [xihu])
    }

    /// Found by the scoped simulator (seed 6473): after the hub's file went back, HQ pushed again a
    /// customer's creation for xihu, its transfer to binjiang and its transfer back, in one PUSH.
    /// xihu, pulling that range a CHANGES at a time, dropped the customer at the transfer (as SPEC
    /// says a store does) and got only the transfer back: HQ's earlier ops of it never came again.
    /// The hub now records xihu's scope as changed at the write that brings it back, so a node of
    /// xihu that pulls from before it gets a snapshot of reason 1.
    @Test func aStoreACustomerLeavesAndReentersInOnePushGetsItsWholeHistory() throws {
        let (w, executor, xihu, binjiang) = try world()
        let hqBefore = try w.hq.lastIssuedSeq()
        try w.hq.createCustomer("c_rt", ["name": .text("回流客"), "owner_store": .text("xihu")], by: "zhaolei")
        w.now += 1_000
        try w.hq.editCustomer("c_rt", ["owner_store": .text("binjiang")], by: "zhaolei")
        w.now += 1_000
        try w.hq.editCustomer("c_rt", ["owner_store": .text("xihu")], by: "zhaolei")
        #expect(try w.push("hq", try w.hq.outbox(after: hqBefore)) == nil)     // the three in one PUSH
        try xihu.sync(executor, byteBudget: 1)   // one op a CHANGES
        try binjiang.sync(executor, byteBudget: 1)
        let held = Set(try xihu.replica.instanceOps(InstanceRef(.customer, "c_rt")))
        #expect(held == Set(try w.hub.instanceOps(InstanceRef(.customer, "c_rt"))), "xihu holds every op of c_rt")
        #expect(try xihu.replica.customerRows(id: "c_rt").first?["name"] == .text("回流客"))
        #expect(try binjiang.replica.customerRows(id: "c_rt").isEmpty)
        try expectScopes(w, [xihu, binjiang])
    }

    /// Found by the scoped simulator (seed 864): a tag deleted while the customer was away from
    /// the store that had added it.
    @Test func aCustomerBackAfterItsTagWasDeletedMeanwhileDoesNotShowTheTag() throws {
        let (w, executor, xihu, binjiang) = try world()
        try xihu.replica.addTag("et_gold", to: "c_x", by: "chenjing")
        #expect(try w.push("xihu", try xihu.replica.outbox(after: 0)) == nil)
        try xihu.sync(executor)
        try transfer(w, to: "binjiang")
        try xihu.sync(executor)
        try binjiang.sync(executor)
        #expect(try xihu.replica.customerRows(id: "c_x").isEmpty)
        w.now += 1_000
        try w.hq.deleteTag("et_gold", by: "zhaolei")
        #expect(try w.push("hq", try w.hq.outbox(after: 0)) == nil)
        try xihu.sync(executor)
        w.now += 1_000
        try transfer(w, to: "xihu")
        try xihu.sync(executor)
        try binjiang.sync(executor)
        #expect(try xihu.replica.rows(of: .customerTags, where: "customer_id", equals: "c_x").isEmpty)
        try expectScopes(w, [xihu, binjiang])
    }

    /// Found by the scoped simulator (fixed; seeds 1239, 1465): a store whose file went back
    /// recovers its own ops from the hub's CHANGES of its scope with own_ops = 1; its late edit of
    /// a customer that had left was logged only under the customer's new home, so it never came back.
    @Test func aStoresLateEditOfACustomerThatLeftComesBackWhenItRecoversItsOwnOps() throws {
        let (w, executor, xihu, _) = try world()
        try xihu.replica.editCustomer("c_x", ["phone": .text("13900000000")], by: "chenjing")   // offline
        try transfer(w, to: "binjiang")
        #expect(try w.push("xihu", try xihu.replica.outbox(after: 0)) == nil, "made before xihu could know")
        guard case let .changes(ops, _, more, _) = executor.execute(.readChanges(node: "xihu", after: 0, byteBudget: 1 << 20,
                                                                                  schemaVersion: 1, ownOps: true)) else {
            Issue.record("no CHANGES"); return
        }
        #expect(!more)
        #expect(ops.contains { $0.op.origin == "xihu" && $0.op.instance == InstanceRef(.customer, "c_x") })
    }

    /// Found by the scoped simulator (fixed; seed 864): a store that dropped a customer kept its
    /// own ops of it but not their tag-index pairs; back in its scope (a snapshot of reason 1, which
    /// leaves the store's own ops out), the customer's tags were not indexed again, so a tag
    /// deletion did not re-merge it and the deleted tag stayed shown.
    @Test func aTagDeletedAfterTheCustomerCameBackIsGoneFromTheStoreToo() throws {
        let (w, executor, xihu, binjiang) = try world()
        try xihu.replica.addTag("et_gold", to: "c_x", by: "chenjing")
        #expect(try w.push("xihu", try xihu.replica.outbox(after: 0)) == nil)
        try xihu.sync(executor)
        try transfer(w, to: "binjiang")
        try xihu.sync(executor)
        try binjiang.sync(executor)
        w.now += 1_000
        try transfer(w, to: "xihu")
        try xihu.sync(executor)
        try binjiang.sync(executor)
        #expect(try xihu.replica.rows(of: .customerTags, where: "customer_id", equals: "c_x").count == 1)
        w.now += 1_000
        try w.hq.deleteTag("et_gold", by: "zhaolei")
        #expect(try w.push("hq", try w.hq.outbox(after: 0)) == nil)
        try xihu.sync(executor)
        try binjiang.sync(executor)
        #expect(try xihu.replica.rows(of: .customerTags, where: "customer_id", equals: "c_x").isEmpty)
        try expectScopes(w, [xihu, binjiang])
    }

    /// Found by the scoped simulator (fixed; seed 2231): the old store dropped the customer on the
    /// CHANGES carrying the move, then the next CHANGES brought another op of the move's PUSH (a tag
    /// HQ added): the customer, with no `customers` row, was listed by no table and never dropped.
    @Test func anOpOfTheMovesPushThatComesInALaterCHANGESLeavesTheOldStoreWithoutTheCustomer() throws {
        let (w, executor, xihu, binjiang) = try world()
        let hqBefore = try w.hq.lastIssuedSeq()
        try w.hq.editCustomer("c_x", ["owner_store": .text("binjiang")], by: "zhaolei")
        try w.hq.addTag("et_gold", to: "c_x", by: "zhaolei")
        #expect(try w.push("hq", try w.hq.outbox(after: hqBefore)) == nil)
        try xihu.sync(executor, byteBudget: 1)   // one op a CHANGES: the move, then the tag
        try binjiang.sync(executor)
        #expect(try xihu.replica.customerRows(id: "c_x").isEmpty)
        #expect(try xihu.replica.rows(of: .customerTags, where: "customer_id", equals: "c_x").isEmpty)
        #expect(try xihu.replica.instanceOps(InstanceRef(.customer, "c_x")).allSatisfy { $0.origin == "xihu" })
        try expectScopes(w, [xihu, binjiang])
    }

    @Test func theReceivingStoreGetsTheCustomersWholeHistoryByASnapshotOfReason1() throws {
        let (w, executor, xihu, binjiang) = try world()
        #expect(try w.push("xihu", [w.write("xihu", .customer, "c_x", "phone", .text("139"))]) == nil)
        try xihu.sync(executor)
        try transfer(w, to: "binjiang")
        try binjiang.sync(executor)
        #expect(binjiang.reasons == [.scopeChange])
        let history = try w.hub.instanceOps(InstanceRef(.customer, "c_x"))
        #expect(Set(try binjiang.replica.instanceOps(InstanceRef(.customer, "c_x"))) == Set(history), "every origin's ops")
        #expect(history.contains { $0.origin == "xihu" })
        try binjiang.sync(executor)
        #expect(binjiang.reasons == [.scopeChange], "once")
        try xihu.sync(executor)
        try expectScopes(w, [xihu, binjiang])
    }

    @Test func theOldStoreDropsTheCustomerWhenItAppliesTheChangesCarryingTheMoveKeepingItsOwnOps() throws {
        let (w, executor, xihu, binjiang) = try world()
        try xihu.replica.editCustomer("c_x", ["phone": .text("139")], by: "chenjing")
        #expect(try w.push("xihu", try xihu.replica.outbox(after: 0)) == nil)
        try xihu.sync(executor)
        try transfer(w, to: "binjiang")
        try xihu.sync(executor)
        #expect(xihu.reasons.isEmpty, "told by CHANGES")
        #expect(try xihu.replica.rows(of: .customers, where: "customer_id", equals: "c_x").isEmpty)
        let left = try xihu.replica.instanceOps(InstanceRef(.customer, "c_x"))
        #expect(!left.isEmpty && left.allSatisfy { $0.origin == "xihu" }, "only its own ops stay")
        #expect(throws: ReplicaError.self) { try xihu.replica.editCustomer("c_x", ["phone": .text("1")], by: "chenjing") }
        try binjiang.sync(executor)
        try expectScopes(w, [xihu, binjiang])
    }

    /// Found by the scoped simulator (fixed): a store's PULL answered by a snapshot of reason 1
    /// (something entered its scope) passes over the CHANGES that carried another instance's move
    /// out of it; the snapshot held only the instances in its scope, so the store kept the one
    /// that left, with its whole history, for good. A store's snapshot now also carries the ops of
    /// the instances that left it, which the node applies and then drops.
    @Test func aStoreWhosePullASnapshotAnswersStillDropsTheCustomerThatLeftIt() throws {
        let (w, executor, xihu, binjiang) = try world()
        // In one PUSH, HQ moves c_x from xihu to binjiang and c_b from binjiang to xihu.
        try w.hq.editCustomer("c_x", ["owner_store": .text("binjiang")], by: "zhaolei")
        try transfer(w, customer: "c_b", to: "xihu")
        try xihu.sync(executor)
        #expect(xihu.reasons == [.scopeChange])
        #expect(try xihu.replica.rows(of: .customers, where: "customer_id", equals: "c_x").isEmpty)
        #expect(try xihu.replica.instanceOps(InstanceRef(.customer, "c_x")).isEmpty, "no op of it stays (xihu made none)")
        #expect(try xihu.replica.rows(of: .customers, where: "customer_id", equals: "c_b").count == 1)
        try binjiang.sync(executor)
        try expectScopes(w, [xihu, binjiang])
    }

    @Test func anOfflineEditTheOldStoreMadeBeforeItLearnedOfTheTransferIsTakenAndRelayed() throws {
        let (w, executor, xihu, binjiang) = try world()
        // xihu edits offline; meanwhile HQ transfers the customer and edits the same field.
        try xihu.replica.editCustomer("c_x", ["phone": .text("13900000001")], by: "chenjing")
        w.now += 1_000
        try w.hq.editCustomer("c_x", ["phone": .text("13700000002")], by: "zhaolei")
        try transfer(w, to: "binjiang")
        try binjiang.sync(executor)
        // xihu comes back: it pushes first (it has not pulled past the move).
        #expect(try w.push("xihu", try xihu.replica.outbox(after: 0)) == nil)
        try xihu.sync(executor)
        try xihu.sync(executor)            // its next PULL says it has applied the move
        try binjiang.sync(executor)
        let late = try #require(try xihu.replica.outbox(after: 0).last)
        #expect(try binjiang.replica.instanceOps(InstanceRef(.customer, "c_x")).contains(late), "relayed to the new store")
        #expect(try w.hub.conflicts().contains { $0.target.id == "c_x" && $0.field == "phone" }, "the merge logs the loser")
        try expectScopes(w, [xihu, binjiang])
        // An edit made long after xihu learned of it is refused.
        w.now += 60_000
        let next = try xihu.replica.lastIssuedSeq() + 1
        let refusal = try w.push("xihu", [Op(stamp: Stamp(hlc: HLC(millis: w.now, logical: 0), node: "xihu"), seq: next, role: .store,
                                              author: "chenjing", body: .write(Target(.customer, "c_x"), field: "phone", value: .text("1"), overwrites: []))])
        #expect(refusal?.reason == .permission && refusal?.message.contains("(rule scope)") == true)
    }

    @Test func anOfflineEditMadeBeforeTheStoreLearnedIsTakenEvenAfterItPulled() throws {
        let (w, executor, xihu, _) = try world()
        let early = w.write("xihu", .customer, "c_x", "phone", .text("139"))   // made at w.now, before the move
        w.now += 1_000
        try transfer(w, to: "binjiang")
        try xihu.sync(executor)            // a node of xihu learns of it,
        try xihu.sync(executor)            // and its next PULL says so
        #expect(try w.hub.departure(of: InstanceRef(.customer, "c_x"), from: "xihu")?.seenAtMillis == w.now)
        w.now += 1_000
        #expect(try w.push("xihu", [early]) == nil, "its clock is before the store learned")
    }

    @Test func aStaffMemberWhoMovesTakesTheirGroupChatsAlong() throws {
        let (w, executor, xihu, binjiang) = try world()
        try w.hq.defineStaff("chenjing", name: "陈静", storeID: "binjiang")
        #expect(try w.push("hq", try w.hq.outbox(after: 0)) == nil)
        try xihu.sync(executor)
        try binjiang.sync(executor)
        #expect(binjiang.reasons == [.scopeChange])
        #expect(try xihu.replica.rows(of: .groupChats, where: "chat_id", equals: "g_x").isEmpty)
        #expect(try binjiang.replica.rows(of: .groupChats, where: "chat_id", equals: "g_x").count == 1)
        #expect(try w.hub.heldHome(of: InstanceRef(.groupChat, "g_x")) == .store("binjiang"))
        try expectScopes(w, [xihu, binjiang])
    }

    @Test func anOrderMovedToAnotherStoreMovesWithItsLines() throws {
        let (w, executor, xihu, binjiang) = try world()
        try w.hq.setOrderLine("1", of: "o_x", ["sku": .text("茶"), "qty": .int(1)], by: "zhaolei")
        #expect(try w.push("hq", try w.hq.outbox(after: 0)) == nil)
        try xihu.sync(executor)
        try w.hq.editOrder("o_x", ["store_id": .text("binjiang")], by: "zhaolei")
        #expect(try w.push("hq", try w.hq.outbox(after: 0)) == nil)
        try xihu.sync(executor)
        try binjiang.sync(executor)
        #expect(try xihu.replica.rows(of: .orderLines).isEmpty)
        #expect(try binjiang.replica.rows(of: .orderLines).count == 1)
        try expectScopes(w, [xihu, binjiang])
    }
}
