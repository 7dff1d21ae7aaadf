import Foundation
import Testing
import SiyuCore
import SiyuStore

/// One test per merge rule of the design, each with the exact expected outcome.
@Suite struct MergeRuleTests {

    /// HQ with a tag library (会员等级 exclusive: 银卡/金卡; 消费偏好: 茶/咖啡), a customer, synced to two stores.
    func library() throws -> Cluster {
        let c = try Cluster()
        let hq = c["hq"]
        try hq.defineTagGroup("level", name: "会员等级", exclusive: true)
        try hq.defineTag("silver", group: "level", name: "银卡")
        try hq.defineTag("gold", group: "level", name: "金卡")
        try hq.defineTagGroup("pref", name: "消费偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        try hq.defineTag("coffee", group: "pref", name: "咖啡")
        try hq.createCustomer("c1", ["name": .text("林小文"), "owner_store": .text("xihu")], by: "zhaolei")
        try c.syncAll()
        return c
    }

    func tags(_ r: Replica, _ customer: String) throws -> [String] {
        try r.rows(of: .customerTags, where: "customer_id", equals: customer).compactMap { $0["tag_id"]?.textValue }
    }

    @Test func concurrentAddAndRemoveOfATagLeavesItPresent() throws {
        let c = try library()
        try c["xihu"].addTag("tea", to: "c1", by: "chenjing")
        try c.send("xihu", to: "hq")
        try c["xihu"].removeTag("tea", from: "c1", by: "chenjing")   // removes the add it saw
        try c["jingan"].addTag("tea", to: "c1", by: "wangfang")      // concurrent: jingan never saw xihu's add
        try c.syncAll()
        for r in c.replicas.values { #expect(try tags(r, "c1") == ["tea"]) }
        #expect(try c["hq"].conflicts().isEmpty)
    }

    @Test func reAddAfterRemoveWorks() throws {
        let c = try library()
        let x = c["xihu"]
        try x.addTag("tea", to: "c1", by: "chenjing")
        try x.removeTag("tea", from: "c1", by: "chenjing")
        #expect(try tags(x, "c1") == [])
        try x.addTag("tea", to: "c1", by: "chenjing")
        try c.syncAll()
        for r in c.replicas.values { #expect(try tags(r, "c1") == ["tea"]) }
    }

    @Test func exclusiveGroupLocalAddReplacesTheOtherTagWithoutConflict() throws {
        let c = try library()
        try c["xihu"].addTag("silver", to: "c1", by: "chenjing")
        try c.syncAll()
        try c["jingan"].addTag("gold", to: "c1", by: "wangfang")
        try c.syncAll()
        for r in c.replicas.values { #expect(try tags(r, "c1") == ["gold"]) }
        #expect(try c["xihu"].conflicts().isEmpty)
    }

    @Test func concurrentSilverAndGoldCardTheLaterAddWinsAndTheOtherIsLogged() throws {
        let c = try library()
        try c["xihu"].addTag("silver", to: "c1", by: "chenjing")
        c.clock.advance(10)
        try c["jingan"].addTag("gold", to: "c1", by: "wangfang")     // later clock
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try tags(r, "c1") == ["gold"])
            let log = try r.conflicts()
            #expect(log.count == 1)
            #expect(log.first?.rule == .exclusiveTagGroup)
            #expect(log.first?.loser.value == .text("silver"))
            #expect(log.first?.loser.stamp.node == "xihu")
            #expect(log.first?.winner?.value == .text("gold"))
            #expect(log.first?.state == .open)
        }
        // Overriding picks the losing tag on every replica and closes the entry.
        let id = try c["hq"].conflicts()[0].id
        try c["xihu"].overrideConflict(id, by: "liuyang")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try tags(r, "c1") == ["silver"])
            #expect(try r.conflict(id).state == .overridden)
        }
        #expect(Set(try c.digests().values).count == 1)
    }

    /// Two resolutions of one exclusive-group conflict made without seeing each other: the later
    /// resolver closes the entry (as for fields), so the entry agrees with the tag shown, and the
    /// two resolutions are a new open conflict.
    @Test func theLaterOfTwoConcurrentResolutionsOfAnExclusiveConflictIsRecorded() throws {
        let c = try library()
        try c["xihu"].addTag("silver", to: "c1", by: "chenjing")
        c.clock.advance(10)
        try c["hq"].addTag("gold", to: "c1", by: "zhaolei")
        try c.syncAll()
        let original = try c["hq"].conflicts()
        #expect(original.count == 1)
        let id = original[0].id
        try c["jingan"].overrideConflict(id, by: "wangfang")       // silver
        c.clock.advance(10)
        try c["xihu"].acknowledgeConflict(id, by: "chenjing")      // gold, not having seen jingan's
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try tags(r, "c1") == ["gold"])
            let log = try r.conflicts()
            let entry = log.first { $0.id == id }
            #expect(entry?.state == .acknowledged)
            #expect(entry?.closedBy?.stamp.node == "xihu")
            let open = log.filter { $0.state == .open }
            #expect(open.count == 1)
            #expect(open.first?.loser.stamp.node == "jingan")
            #expect(open.first?.loser.value == .text("silver"))
            #expect(open.first?.winner?.stamp.node == "xihu")
        }
    }

    /// An exclusive-group conflict about an earlier of two adds of one tag, closed by one
    /// resolution and resolved again, concurrently, by a later one that removed that add too (it
    /// held both adds of the tag and the winner): the entry records the later resolution — as
    /// "An add that removed adds of two or more tags of the group closes them" says (simulator seed 2582).
    @Test func aLaterExclusiveResolutionThatRemovedAnEarlierAddOfTheLosingTagIsRecordedOnItsEntry() throws {
        let c = try library()
        try c["xihu"].addTag("silver", to: "c1", by: "chenjing")       // a1
        c.clock.advance(5)
        try c["hq"].addTag("silver", to: "c1", by: "zhaolei")          // a1b: another add of silver
        c.clock.advance(5)
        try c["jingan"].addTag("gold", to: "c1", by: "wangfang")       // a2: the latest, gold shown
        try c.send("jingan", to: "xihu")                                // xihu: a1, a2
        try c.send("xihu", to: "jingan")
        try c.send("hq", to: "jingan")                                  // jingan: a1, a1b, a2
        let first = try #require(try c["xihu"].conflicts(state: .open).first { $0.loser.stamp.node == "xihu" })
        c.clock.advance(10)
        try c["xihu"].acknowledgeConflict(first.id, by: "chenjing")    // R1: gold, removing a1 and a2
        let later = try #require(try c["jingan"].conflicts(state: .open).first { $0.loser.stamp.node == "hq" })
        c.clock.advance(10)
        try c["jingan"].overrideConflict(later.id, by: "wangfang")     // R2: silver, removing a1, a1b and a2; not having seen R1
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try tags(r, "c1") == ["silver"])
            let entry = try r.conflict(first.id)
            #expect(entry.closedBy?.stamp.node == "jingan")
            #expect(entry.state == .overridden)
        }
        #expect(Set(try c.digests().values).count == 1)
    }

    /// A field conflict closed by one resolution and resolved again, concurrently, by a later one
    /// that kept the first loser's value (it held a third write of that value): the entry records
    /// the later resolution — overridden, since the loser's value is what is shown.
    @Test func aLaterResolutionThatKeepsTheFirstLosersValueIsRecordedOnItsEntry() throws {
        let c = try library()
        let phone = Target(.customer, "c1")
        try c["xihu"].editCustomer("c1", ["phone": .text("13800000001")], by: "chenjing")   // A
        c.clock.advance(10)
        try c["hq"].editCustomer("c1", ["phone": .text("13900000002")], by: "zhaolei")     // B, later
        c.clock.advance(10)
        try c["jingan"].editCustomer("c1", ["phone": .text("13800000001")], by: "wangfang") // C = A's value
        try c.send("xihu", to: "hq")
        try c.send("hq", to: "jingan")                                       // jingan: A, B, C
        let first = try c["hq"].conflicts(state: .open)
        #expect(first.count == 1 && first[0].loser.stamp.node == "xihu")
        c.clock.advance(10)
        try c["hq"].acknowledgeConflict(first[0].id, by: "zhaolei")          // R1: keeps B over A; jingan does not see it
        #expect(try c["jingan"].state(of: phone.instance).heads(phone, "phone").count == 3)
        let second = try c["jingan"].conflicts(state: .open)
        #expect(second.map(\.loser.stamp.node) == ["hq"])                   // B lost to C; A agrees with C
        c.clock.advance(10)
        try c["jingan"].acknowledgeConflict(second[0].id, by: "wangfang")   // R2: names A, B, C; keeps A's value
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.rows(of: .customers)[0]["phone"] == .text("13800000001"))
            let entry = try r.conflict(first[0].id)
            #expect(entry.state == .overridden)
            #expect(entry.closedBy?.stamp.node == "jingan")
            #expect(entry.winner?.stamp.node == "hq")
        }
    }

    @Test func concurrentFieldWritesTheGreaterClockWinsTheLoserIsLogged() throws {
        let c = try library()
        try c["xihu"].setFollowRelation(customer: "c1", userid: "chenjing", ["remark": .text("林姐")], by: "chenjing")
        try c.syncAll()
        try c["xihu"].editCustomer("c1", ["phone": .text("13800000001")], by: "chenjing")
        c.clock.advance(5)
        try c["hq"].editCustomer("c1", ["phone": .text("13900000002")], by: "zhaolei")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.rows(of: .customers)[0]["phone"] == .text("13900000002"))
            let log = try r.conflicts()
            #expect(log.map(\.rule) == [.lastWriterWins])
            #expect(log[0].field == "phone" && log[0].loser.value == .text("13800000001") && log[0].loser.author == "chenjing")
        }
        // A causally later overwrite is not a conflict.
        try c["jingan"].setFollowRelation(customer: "c1", userid: "chenjing", ["remark": .text("林女士")], by: "wangfang")
        try c.syncAll()
        #expect(try c["hq"].conflicts().count == 1)

        // Acknowledging keeps the winner and closes the conflict everywhere.
        let id = try c["hq"].conflicts()[0].id
        try c["jingan"].acknowledgeConflict(id, by: "wangfang")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.conflict(id).state == .acknowledged)
            #expect(try r.rows(of: .customers)[0]["phone"] == .text("13900000002"))
        }
        #expect(Set(try c.digests().values).count == 1)
    }

    @Test func overridingAFieldConflictMakesTheLoserCurrent() throws {
        let c = try library()
        try c["xihu"].editCustomer("c1", ["name": .text("林晓雯")], by: "chenjing")
        c.clock.advance(5)
        try c["jingan"].editCustomer("c1", ["name": .text("林小雯")], by: "wangfang")
        try c.syncAll()
        let id = try c["hq"].conflicts(state: .open)[0].id
        try c["hq"].overrideConflict(id, by: "zhaolei")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.rows(of: .customers)[0]["name"] == .text("林晓雯"))
            #expect(try r.conflict(id).state == .overridden)
            #expect(try r.conflicts(state: .open).isEmpty)
        }
    }

    @Test func tagDeletedByHQStaysInactiveAndAConcurrentApplyIsLogged() throws {
        let c = try library()
        try c["hq"].deleteTag("coffee", by: "zhaolei")
        c.clock.advance(5)
        try c["xihu"].addTag("coffee", to: "c1", by: "chenjing")   // has not seen the deletion
        #expect(try tags(c["xihu"], "c1") == ["coffee"])
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try tags(r, "c1") == [])
            let log = try r.conflicts()
            #expect(log.map(\.rule) == [.deletedTag])
            #expect(log[0].loser.stamp.node == "xihu")
        }
        #expect(throws: ReplicaError.self) { try c["jingan"].addTag("coffee", to: "c1", by: "wangfang") }
    }

    @Test func anOfflineApplyWithAnEarlierClockThatHQNeverSawIsStillLogged() throws {
        let c = try library()
        try c["xihu"].addTag("coffee", to: "c1", by: "chenjing")     // earlier clock, offline
        c.clock.advance(60_000)
        try c["hq"].deleteTag("coffee", by: "zhaolei")               // HQ has not seen it
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try tags(r, "c1") == [])
            #expect(try r.conflicts().map(\.rule) == [.deletedTag])
        }
    }

    @Test func anApplyHQHadSeenIsDeactivatedWithoutAConflict() throws {
        let c = try library()
        try c["xihu"].addTag("coffee", to: "c1", by: "chenjing")
        try c.syncAll()
        try c["hq"].deleteTag("coffee", by: "zhaolei")               // HQ deletes the tag knowingly
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try tags(r, "c1") == [])
            #expect(try r.conflicts().isEmpty)
        }
    }

    @Test func the501stConcurrentMemberOverflowsAndIsLogged() throws {
        let c = try library()
        try c["hq"].createGroupChat("g1", ["name": .text("西湖店VIP群"), "owner": .text("liuyang")], by: "zhaolei")
        try c.syncAll()
        for i in 0..<250 { try c["xihu"].addMember("x\(i)", to: "g1", by: "chenjing") }
        c.clock.advance(1000)
        for i in 0..<251 { try c["jingan"].addMember("j\(i)", to: "g1", by: "wangfang") }
        try c.syncAll()
        for r in c.replicas.values {
            let members = try r.rows(of: .groupMembers, where: "chat_id", equals: "g1")
            #expect(members.count == 501)
            let overflow = members.filter { $0["overflow"] == .int(1) }.map { $0["member_id"] }
            #expect(overflow == [.text("j250")])            // the latest join overflows
            let log = try r.conflicts()
            #expect(log.map(\.rule) == [.rosterOverflow])
            #expect(log[0].loser.value == .text("j250"))
        }
        // A local add to a full group is refused outright.
        #expect(throws: ReplicaError.self) { try c["hq"].addMember("z", to: "g1", by: "zhaolei") }
    }

    func order(_ c: Cluster) throws {
        try c["xihu"].createOrder("o1", ["customer_id": .text("c1"), "store_id": .text("xihu"), "address": .text("杭州市西湖区")], by: "chenjing")
        try c["xihu"].setOrderLine("l1", of: "o1", ["sku": .text("TEA-01"), "qty": .int(2), "unit_price_cents": .int(3800)], by: "chenjing")
        try c["xihu"].moveOrder("o1", to: .placed, by: "chenjing")
        try c.syncAll()
    }

    @Test func cancelledConcurrentlyWithPaidKeepsPaidAndLogsIt() throws {
        let c = try library()
        try order(c)
        try c["xihu"].moveOrder("o1", to: .cancelled, by: "chenjing")
        try c["hq"].moveOrder("o1", to: .paid, by: "zhaolei")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.rows(of: .orders)[0]["status"] == .text("paid"))
            let log = try r.conflicts()
            #expect(log.map(\.rule) == [.cancelledAfterPayment])
            #expect(log[0].loser.stamp.node == "xihu")
        }
        #expect(throws: ReplicaError.self) { try c["xihu"].moveOrder("o1", to: .cancelled, by: "chenjing") }
    }

    /// An acknowledgement given a unique prefix of a conflict id names the whole id in its op, so
    /// it closes the conflict on every replica.
    @Test func acknowledgingByAUniquePrefixNamesTheWholeIdAndClosesTheConflictEverywhere() throws {
        let c = try library()
        try order(c)
        try c["xihu"].moveOrder("o1", to: .cancelled, by: "chenjing")
        try c["hq"].moveOrder("o1", to: .paid, by: "zhaolei")
        try c.syncAll()
        let id = try c["hq"].conflicts()[0].id
        try c["xihu"].acknowledgeConflict(String(id.prefix(6)), by: "chenjing")
        try c.syncAll()
        for r in c.replicas.values { #expect(try r.conflicts().map(\.state) == [.acknowledged]) }
        let acks = try c["hq"].history(of: Target(.order, "o1")).compactMap { entry -> String? in
            if case let .acknowledge(_, named) = entry.op.body { return named }
            return nil
        }
        #expect(acks == [id])
    }

    @Test func lineEditsConcurrentWithPaymentAreLoggedAndNotApplied() throws {
        let c = try library()
        try order(c)
        try c["xihu"].setOrderLine("l1", of: "o1", ["qty": .int(5)], by: "chenjing")          // concurrent with payment
        try c["xihu"].setOrderLine("l2", of: "o1", ["sku": .text("CAKE"), "qty": .int(1)], by: "chenjing")
        try c["hq"].moveOrder("o1", to: .paid, by: "zhaolei")
        try c.syncAll()
        for r in c.replicas.values {
            let lines = try r.rows(of: .orderLines)
            #expect(lines.count == 1)
            #expect(lines[0]["qty"] == .int(2))
            #expect(Set(try r.conflicts().map(\.rule)) == [.editAfterPayment])
        }
        #expect(throws: ReplicaError.self) { try c["xihu"].setOrderLine("l1", of: "o1", ["qty": .int(3)], by: "chenjing") }
    }

    @Test func lineEditsThePaymentSawAreApplied() throws {
        let c = try library()
        try order(c)
        try c["xihu"].setOrderLine("l1", of: "o1", ["qty": .int(5)], by: "chenjing")
        try c.syncAll()
        try c["hq"].moveOrder("o1", to: .paid, by: "zhaolei")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.rows(of: .orderLines)[0]["qty"] == .int(5))
            #expect(try r.conflicts().isEmpty)
        }
    }

    /// A payer holding a later op of an origin but not the earlier ones never saw the earlier line
    /// edits: they are frozen and logged, not applied.
    @Test func lineEditsAPayerMissedBehindAGapAreLoggedAndNotApplied() throws {
        let c = try library()
        try c["hq"].createOrder("o1", ["customer_id": .text("c1"), "store_id": .text("xihu")], by: "zhaolei")
        try c.syncAll()
        let before = try c["xihu"].versionVector()["xihu"]
        try c["xihu"].setOrderLine("l1", of: "o1", ["sku": .text("TEA-01"), "qty": .int(2)], by: "chenjing")
        try c["xihu"].editOrder("o1", ["note": .text("gift wrap")], by: "chenjing")
        let own = try c["xihu"].outbox(after: before)
        #expect(own.count == 4)
        try c["jingan"].apply(ChangeSet(ops: [own.last!]))           // only the note: a gap before it
        #expect(try c["jingan"].rows(of: .orderLines).isEmpty)
        try c["jingan"].moveOrder("o1", to: .paid, by: "wangfang")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.rows(of: .orderLines).isEmpty)
            #expect(try r.rows(of: .orders)[0]["note"] == .text("gift wrap"))
            let log = try r.conflicts()
            #expect(log.count == 3)
            #expect(log.allSatisfy { $0.rule == .editAfterPayment && $0.loser.stamp.node == "xihu" && $0.winner?.stamp.node == "jingan" })
        }
    }

    /// The same payment made by a replica that held the line edits applies them.
    @Test func lineEditsAPayerHeldBeyondAGapAreApplied() throws {
        let c = try library()
        try c["hq"].createOrder("o1", ["customer_id": .text("c1"), "store_id": .text("xihu")], by: "zhaolei")
        try c.syncAll()
        try c["xihu"].editOrder("o1", ["note": .text("call first")], by: "chenjing")   // jingan will miss this one
        let before = try c["xihu"].versionVector()["xihu"]
        try c["xihu"].setOrderLine("l1", of: "o1", ["sku": .text("TEA-01"), "qty": .int(2)], by: "chenjing")
        try c["jingan"].apply(ChangeSet(ops: try c["xihu"].outbox(after: before)))   // the line, not the note
        try c["jingan"].moveOrder("o1", to: .paid, by: "wangfang")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.rows(of: .orderLines).map { $0["qty"] } == [.int(2)])
            #expect(try r.conflicts().isEmpty)
        }
    }

    @Test func refundOnlyAfterPaymentAndIllegalMovesAreRefused() throws {
        let c = try library()
        try order(c)
        #expect(throws: ReplicaError.self) { try c["xihu"].moveOrder("o1", to: .refunded, by: "chenjing") }
        #expect(throws: ReplicaError.self) { try c["xihu"].moveOrder("o1", to: .fulfilled, by: "chenjing") }
        #expect(throws: ReplicaError.self) { try c["xihu"].moveOrder("o1", to: .draft, by: "chenjing") }
        try c["hq"].moveOrder("o1", to: .paid, by: "zhaolei")
        try c["hq"].moveOrder("o1", to: .refunded, by: "zhaolei")
        #expect(try c["hq"].rows(of: .orders)[0]["status"] == .text("refunded"))
    }

    @Test func concurrentRedemptionsBelowZeroAreAnOverdraft() throws {
        let c = try Cluster([("hq", .hq), ("crm", .hq), ("xihu", .store)])
        try c["hq"].createCustomer("c1", [:], by: "zhaolei")
        try c.syncAll()
        try c["xihu"].awardPoints(100, to: "c1", by: "chenjing")
        try c.syncAll()
        try c["hq"].redeemPoints(80, from: "c1", by: "zhaolei")
        try c["crm"].redeemPoints(70, from: "c1", by: "system")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.rows(of: .points)[0]["balance"] == .int(-50))
            #expect(try r.conflicts().map(\.rule) == [.overdraft])
        }
        #expect(throws: ReplicaError.self) { try c["xihu"].redeemPoints(1, from: "c1", by: "chenjing") }
    }

    @Test func deletedCustomerStaysATombstoneAndConcurrentEditsAreKeptInHistory() throws {
        let c = try library()
        try c["hq"].deleteCustomer("c1", by: "zhaolei")
        try c["xihu"].editCustomer("c1", ["phone": .text("13700000000")], by: "chenjing")
        try c["xihu"].addTag("tea", to: "c1", by: "chenjing")
        try c.syncAll()
        for r in c.replicas.values {
            #expect(try r.rows(of: .customers)[0]["deleted"] == .int(1))
            #expect(Set(try r.conflicts().map(\.rule)) == [.editOnDeleted])
            #expect(try r.history(of: Target(.customer, "c1"), field: "phone").map(\.op.origin) == ["xihu"])
        }
        #expect(throws: ReplicaError.self) { try c["xihu"].editCustomer("c1", ["name": .text("x")], by: "chenjing") }
    }

    @Test func concurrentCreatesOfTheSameValueAreNotAConflict() throws {
        let c = try library()
        try c["xihu"].createCustomer("c9", ["name": .text("周子豪")], by: "chenjing")
        try c["jingan"].createCustomer("c9", ["name": .text("周子豪")], by: "wangfang")
        try c.syncAll()
        #expect(try c["hq"].conflicts().isEmpty)
    }
}
