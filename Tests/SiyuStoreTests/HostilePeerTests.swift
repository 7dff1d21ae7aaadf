import Foundation
import Testing
import SiyuCore
import SiyuSQLite
import SiyuStore

/// Issue 11, the replica: hostile change sets built through the public API (`ChangeSet(ops:)`,
/// `Op(...)`) and applied with `Replica.apply`, the path a hub takes. Each is refused whole (nothing
/// stored, the replica works on) or applied within bounds — never a trap, and the file always reopens.
@Suite struct HostilePeerTests {
    /// A cluster of HQ and one store (`xihu`) holding customer `c1`, created by HQ and synced.
    static func cluster() throws -> Cluster {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        try c["hq"].createCustomer("c1", ["name": .text("A")], by: "zhaolei")
        try c.send("hq", to: "xihu")
        return c
    }

    static func op(_ c: Cluster, _ body: OpBody, node: String = "jingan", seq: UInt64 = 1, role: Role = .store,
                   author: String = "chenjing", logical: UInt16 = 0) -> Op {
        Op(stamp: Stamp(hlc: HLC(millis: c.clock.now, logical: logical), node: node), seq: seq, role: role,
           author: author, body: body)
    }

    /// Applies and expects a refusal that names `mentioning`; then checks nothing was stored.
    static func expectRefused(_ c: Cluster, _ to: String, _ ops: [Op], mentioning: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try c[to].digest(), count = try c[to].opCounts().total
        do {
            try c[to].apply(ChangeSet(ops: ops))
            Issue.record("the change set was applied", sourceLocation: sourceLocation)
        } catch let e as ReplicaError {
            #expect(e.description.contains(mentioning), "\(e.description.prefix(300))", sourceLocation: sourceLocation)
            #expect(e.description.contains("Hint:"), sourceLocation: sourceLocation)
        }
        #expect(try c[to].digest() == before, sourceLocation: sourceLocation)
        #expect(try c[to].opCounts().total == count, sourceLocation: sourceLocation)
    }

    // MARK: Integers on the wire

    @Test func aChangeSetWithAnOpOfSequenceNumberTwoToThe63IsRefusedWholeWithoutATrap() throws {
        let c = try HostilePeerTests.cluster()
        let honest = HostilePeerTests.op(c, .write(Target(.customer, "c2"), field: "name", value: .text("B"), overwrites: []))
        let hostile = HostilePeerTests.op(c, .write(Target(.customer, "c3"), field: "name", value: .text("C"), overwrites: []),
                                          seq: 1 << 63, logical: 1)
        try HostilePeerTests.expectRefused(c, "hq", [honest, hostile], mentioning: "1...9223372036854775807")
        try c["hq"].apply(ChangeSet(ops: [honest]))   // the honest op alone applies
        #expect(try c["hq"].rows(of: .customers).count == 2)
    }

    @Test func aPointsOpWithDeltaInt64MinIsRefusedOnApplyAndTheMergeDoesNotTrap() throws {
        let c = try HostilePeerTests.cluster()
        let redeem = HostilePeerTests.op(c, .points(customerID: "c1", delta: .min), node: "hq2", role: .hq)
        try HostilePeerTests.expectRefused(c, "xihu", [redeem], mentioning: "points")
        try c["xihu"].awardPoints(10, to: "c1", by: "chenjing")
        #expect(try c["xihu"].rows(of: .points).first?["balance"] == .int(10))
    }

    @Test func twoStoreAwardsOfInt64MaxAreRefusedAndAwardsAtTheBoundAddUpExactly() throws {
        let c = try HostilePeerTests.cluster()
        let a = HostilePeerTests.op(c, .points(customerID: "c1", delta: .max), node: "jingan")
        let b = HostilePeerTests.op(c, .points(customerID: "c1", delta: .max), node: "binjiang")
        try HostilePeerTests.expectRefused(c, "hq", [a, b], mentioning: "1000000000000")
        let atBound = [HostilePeerTests.op(c, .points(customerID: "c1", delta: Op.maxPointsDelta), node: "jingan"),
                       HostilePeerTests.op(c, .points(customerID: "c1", delta: Op.maxPointsDelta), node: "binjiang")]
        try c["hq"].apply(ChangeSet(ops: atBound))
        #expect(try c["hq"].rows(of: .points).first?["balance"] == .int(2 * Op.maxPointsDelta))
        #expect(try c["hq"].conflicts().isEmpty)
        #expect(throws: ReplicaError.self) { try c["xihu"].awardPoints(.max, to: "c1", by: "chenjing") }
    }

    @Test func anOpClaimingTheReceiversOwnOriginWithSeqInt64MaxIsRefusedAndTheReceiverEditsAndReopens() throws {
        let c = try HostilePeerTests.cluster()
        try c["xihu"].setFollowRelation(customer: "c1", userid: "chenjing", ["remark": .text("r1")], by: "chenjing")
        let forged = HostilePeerTests.op(c, .points(customerID: "c1", delta: 1), node: "xihu", seq: UInt64(Int64.max), logical: 9)
        try HostilePeerTests.expectRefused(c, "xihu", [forged], mentioning: "own origin")
        // The next edit takes the next number, and the file reopens with it.
        try c["xihu"].awardPoints(5, to: "c1", by: "chenjing")
        #expect(try c["xihu"].outbox(after: 0).map(\.seq) == [1, 2])
        c["xihu"].close()
        let reopened = try Replica(path: c.path("xihu"), options: ReplicaOptions(wallClock: { c.clock.now }))
        try reopened.awardPoints(5, to: "c1", by: "chenjing")
        #expect(try reopened.outbox(after: 0).map(\.seq) == [1, 2, 3])
        reopened.close()
        // Its own ops it does hold come back as harmless duplicates.
        let again = try Replica(path: c.path("xihu"), options: ReplicaOptions(wallClock: { c.clock.now }))
        let own = ChangeSet(ops: try again.outbox(after: 0))
        #expect(try again.apply(own).duplicates == 3)
        again.close()
    }

    @Test func aFileThatAlreadyHoldsAnOwnOpAtSeqInt64MaxReopensAndRefusesTheNextEditInsteadOfTrapping() throws {
        // As a replica written before this check could hold (the op copied in with SQL).
        let c = try HostilePeerTests.cluster()
        try c["xihu"].awardPoints(5, to: "c1", by: "chenjing")
        // First while open: another connection writes the op, the open replica notices it.
        let other = try Database(path: c.path("xihu"))
        try other.execute("""
            INSERT INTO ops(inst_kind, inst_id, origin, seq, hlc, body)
            SELECT inst_kind, inst_id, origin, 9223372036854775807, hlc + 1, body FROM ops WHERE origin = 'xihu' AND seq = 1
            """)
        other.close()
        do {
            try c["xihu"].awardPoints(5, to: "c1", by: "chenjing")
            Issue.record("an edit past sequence number 2^63 - 1 was accepted")
        } catch let e as ReplicaError {
            #expect(e.description.contains("sequence number"), "\(e)")
        }
        c["xihu"].close()
        // Then reopening: no trap, and edits are refused with the same reason.
        let reopened = try Replica(path: c.path("xihu"), options: ReplicaOptions(wallClock: { c.clock.now }))
        #expect(try reopened.versionVector()["xihu"] == UInt64(Int64.max))
        #expect(throws: ReplicaError.self) { try reopened.awardPoints(5, to: "c1", by: "chenjing") }
        try reopened.rebuild()                          // reads and merges the op back
        #expect(try reopened.rows(of: .points).first?["balance"] == .int(10))   // the award and its copy
        reopened.close()
    }

    // MARK: Stamp hashing and stamp lists

    @Test func aRemoveNaming100kSameClockDistinctNodeStampsIsRefusedWithoutMerging() throws {
        let c = try HostilePeerTests.cluster()
        let stamps = (0..<100_000).map { Stamp(hlc: HLC(millis: c.clock.now - 1000, logical: 0), node: "n\($0)") }
        let remove = HostilePeerTests.op(c, .remove(Target(.customerTag, "c1", "t1"), removes: stamps))
        let started = Date()
        try HostilePeerTests.expectRefused(c, "hq", [remove], mentioning: "100000 stamps")
        #expect(Date().timeIntervalSince(started) < 30)   // refused by the cap: no merge ran (generous bound)
        try c["hq"].editCustomer("c1", ["name": .text("B")], by: "zhaolei")
    }

    @Test func aDeleteNamingTheMostStampsAllowedWithOneClockAppliesAndLaterEditsStayCheap() throws {
        // 16,384 stamps of one clock: with a hash of the clock alone every set of them was quadratic.
        let c = try HostilePeerTests.cluster()
        let stamps = (0..<Op.maxObservedStamps).map { Stamp(hlc: HLC(millis: c.clock.now - 1000, logical: 0), node: "n\($0)") }
        let delete = HostilePeerTests.op(c, .deleteCustomer(customerID: "c2", observed: stamps))
        let started = Date()
        try c["hq"].apply(ChangeSet(ops: [delete]))
        try c["hq"].createCustomer("c3", [:], by: "zhaolei")
        #expect(Date().timeIntervalSince(started) < 60)    // generous: well under a second in a release build
    }

    /// The issue's row: 60k writes of one field from 60k origins with one clock (7.8 s to apply,
    /// 37.5 s for every later edit, when stamps hashed their clock only). Here 20k of them (the
    /// suite stays quick; nothing here is timed): they apply like any 20k ops, the field has 20k
    /// heads, and the next honest edit names the latest 1,024 of them (it fits a frame) instead of
    /// all. (The origins stay in the version vector: a hub takes ops only from registered nodes,
    /// docs/RELIABILITY.md.)
    @Test func twentyThousandWritesFromAsManyOriginsWithOneClockApplyAndTheNextEditNamesAtMost1024() throws {
        let c = try HostilePeerTests.cluster()
        let count = 20_000
        let ops = (0..<count).map { i in
            HostilePeerTests.op(c, .write(Target(.customer, "c1"), field: "phone", value: .text("1\(i)"), overwrites: []),
                                node: "n\(i)", role: .store)
        }
        try c["xihu"].apply(ChangeSet(ops: ops))
        let customer = InstanceRef(.customer, "c1")
        #expect(try c["xihu"].state(of: customer).heads(Target(.customer, "c1"), "phone").count == count)
        c.clock.advance(1_000)
        try c["xihu"].editCustomer("c1", ["phone": .text("13900000000")], by: "chenjing")
        let write = try c["xihu"].history(of: Target(.customer, "c1"), field: "phone").last!.op
        guard case let .write(_, _, value, named) = write.body else { Issue.record("not a write"); return }
        #expect(value == .text("13900000000"))
        #expect(named.count == Op.maxNamedStamps)
        #expect(try c["xihu"].versionVector().entries.count >= count)
    }

    @Test func aStampListWithADuplicateIsRefusedOnApply() throws {
        let c = try HostilePeerTests.cluster()
        let s = Stamp(hlc: HLC(millis: c.clock.now - 1, logical: 0), node: "hq")
        let remove = HostilePeerTests.op(c, .remove(Target(.customerTag, "c1", "t1"), removes: [s, s]))
        try HostilePeerTests.expectRefused(c, "xihu", [remove], mentioning: "twice")
    }

    // MARK: Ids, authors and text

    static let hundredThousandAccents = "x" + String(repeating: "\u{0301}", count: 100_000)

    @Test func xWithAHundredThousandCombiningAccentsIsRefusedAsACustomerIdAndAsAName() throws {
        let c = try HostilePeerTests.cluster()
        let asID = HostilePeerTests.op(c, .write(Target(.customer, HostilePeerTests.hundredThousandAccents), field: "name", value: .text("A"), overwrites: []))
        try HostilePeerTests.expectRefused(c, "hq", [asID], mentioning: "bytes")
        let asName = HostilePeerTests.op(c, .write(Target(.customer, "c9"), field: "name", value: .text(HostilePeerTests.hundredThousandAccents), overwrites: []))
        try HostilePeerTests.expectRefused(c, "hq", [asName], mentioning: "bytes")
        #expect(throws: ReplicaError.self) { try c["hq"].createCustomer(HostilePeerTests.hundredThousandAccents, [:], by: "zhaolei") }
        #expect(throws: ReplicaError.self) { try c["hq"].editCustomer("c1", ["name": .text(HostilePeerTests.hundredThousandAccents)], by: "zhaolei") }
    }

    @Test func aHundredThousandByteAuthorReusedBy200OpsIsRefused() throws {
        let c = try HostilePeerTests.cluster()
        let author = String(repeating: "a", count: 100_000)
        let ops = (1...200).map { i in
            HostilePeerTests.op(c, .points(customerID: "c1", delta: 1), seq: UInt64(i), author: author, logical: UInt16(i))
        }
        try HostilePeerTests.expectRefused(c, "hq", ops, mentioning: "author")
        #expect(throws: ReplicaError.self) { try c["hq"].awardPoints(1, to: "c1", by: author) }
    }

    @Test func idsWithBidiZeroWidthBOMC1OrOnlyASpaceAndAnAuthorWithAnEscapeSequenceAreRefused() throws {
        let c = try HostilePeerTests.cluster()
        for id in ["wm\u{202E}gnp", "wm\u{200B}x", "\u{FEFF}wm", "wm\u{0085}x", "wm\u{009B}2J", " "] {
            let op = HostilePeerTests.op(c, .write(Target(.customer, id), field: "name", value: .text("A"), overwrites: []))
            try HostilePeerTests.expectRefused(c, "hq", [op], mentioning: "customer id")
            #expect(throws: ReplicaError.self) { try c["hq"].createCustomer(id, [:], by: "zhaolei") }
        }
        let escape = HostilePeerTests.op(c, .points(customerID: "c1", delta: 1), author: "\u{1B}[2J\u{1B}[H")
        try HostilePeerTests.expectRefused(c, "hq", [escape], mentioning: "author")
        let node = HostilePeerTests.op(c, .points(customerID: "c1", delta: 1), node: "store\u{202E}")
        try HostilePeerTests.expectRefused(c, "hq", [node], mentioning: "origin node id")
        #expect(throws: ReplicaError.self) { try c["hq"].editCustomer("c1", ["name": .text("B")], by: "zhao\u{202E}lei") }
    }
}
