import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuStore

/// A hub's restore grace (SPEC section 7, "Log epochs"): after a new log epoch the hub may lack ops
/// it had acknowledged, and the nodes push them again in an order it does not control. Write
/// rights that read state must not then refuse for good an op the old history had taken.
@Suite struct RestoreGraceTests {
    typealias World = WriteRightsTests.World

    /// The hub's epoch started 5 s after the world's clock now; the clock moves to 1 s after that.
    func startEpoch(_ w: World, graceMillis: UInt64 = 3_600_000) {
        w.hub.restoreGrace = RestoreGrace(epochStartedMillis: w.now + 5_000, graceMillis: graceMillis)
        w.now += 6_000
    }

    /// HQ's edit of customer `id`, stamped `millis`, numbered after HQ's ops.
    func hqEdit(_ w: World, _ id: String, at millis: UInt64) throws -> Op {
        Op(stamp: Stamp(hlc: HLC(millis: millis, logical: 0), node: "hq"), seq: try w.hq.lastIssuedSeq() + 1, role: .hq, author: "zhaolei",
           body: .write(Target(.customer, id, ""), field: "phone", value: .text("13800000000"), overwrites: []))
    }

    /// A store's new customer, pushed again after HQ's later edit of it reached the restored hub.
    func creationAfterHQsLaterEdit(grace: Bool) throws -> (World, OpRefusal?) {
        let w = try World()
        let creation = [w.write("xihu", .customer, "c_new", "owner_store", .text("xihu")),
                        w.write("xihu", .customer, "c_new", "name", .text("新客"))]
        let later = try hqEdit(w, "c_new", at: w.now + 1_000)   // HQ saw the creation, then edited
        if grace { startEpoch(w) } else { w.now += 6_000 }
        #expect(try w.push("hq", [later]) == nil)
        return (w, try w.push("xihu", creation))
    }

    @Test func aStoresCreationPushedAgainAfterHQsLaterEditOfItIsTakenInTheGrace() throws {
        let (w, refusal) = try creationAfterHQsLaterEdit(grace: true)
        #expect(refusal == nil)
        #expect(try w.hub.rows(of: .customers, where: "customer_id", equals: "c_new").first?["owner_store"]?.textValue == "xihu")
        // Without the grace the same order of arrival refuses it: the customer exists.
        let (_, without) = try creationAfterHQsLaterEdit(grace: false)
        #expect(without?.message.contains("(rule customer_owner)") == true)
    }

    /// Found by the scoped simulator (fixed; seeds 123, 212, 312): the creation is taken, but HQ's
    /// later transfer wins the merge, and xihu — which holds the customer — must learn it left.
    @Test func aStoreWhoseCreationLosesToHQsLaterTransferIsToldItLeft() throws {
        let w = try World()
        let executor = try HubStoreExecutor(replica: w.hub, options: .init(bootstrapSnapshotOps: nil, restoreGraceMillis: nil))
        let xihu = try TransferTests.StoreNode(w, "xihu", store: "xihu")
        try xihu.sync(executor)
        try xihu.replica.createCustomer("c_y", ["name": .text("新客"), "owner_store": .text("xihu")], by: "chenjing")
        let creation = try xihu.replica.outbox(after: 0)
        // HQ saw the creation (the history the hub lost) and moved the customer to binjiang.
        let hqBefore = try w.hq.lastIssuedSeq()
        _ = try w.hq.apply(ChangeSet(ops: creation))
        w.now += 1_000
        try w.hq.editCustomer("c_y", ["owner_store": .text("binjiang")], by: "zhaolei")
        startEpoch(w)
        #expect(try w.push("hq", try w.hq.outbox(after: hqBefore)) == nil)
        #expect(try w.push("xihu", creation) == nil)
        #expect(try w.hub.rows(of: .customers, where: "customer_id", equals: "c_y").first?["owner_store"]?.textValue == "binjiang")
        try xihu.sync(executor)
        #expect(xihu.reasons == [.scopeChange], "a snapshot that carries the customer that left")
        #expect(try xihu.replica.customerRows(id: "c_y").isEmpty)
        #expect(try xihu.replica.digest() == (try w.hub.scopeDigest(.store("xihu")).digest))
    }

    @Test func aStateReadingRefusalOfAnOpStampedBeforeTheEpochIsBusyUntilTheOpsItReadsArePushedAgain() throws {
        let w = try World()
        let hqBefore = try w.hq.lastIssuedSeq()
        try w.hq.defineStaff("wangfang", name: "王芳", storeID: "xihu")       // HQ's, not yet at the hub
        w.now += 1_000                                                      // the store saw c_x, then edited it
        let edit = w.write("xihu", .customer, "c_x", "name", .text("林女士"), author: "wangfang")
        startEpoch(w)
        let head = try w.hub.logHead()
        guard case let .deferred(message, _) = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: [edit])) else {
            Issue.record("not deferred"); return
        }
        #expect(message.hasPrefix("the PUSH holds op #1: ") && message.contains("(rule author)"), "names no op as a refusal would: it is retryable")
        #expect(try w.hub.logHead() == head)
        #expect(try w.hub.refusals(of: "xihu").isEmpty, "nothing recorded: the node pushes it again")
        #expect(try w.push("hq", try w.hq.outbox(after: hqBefore)) == nil)
        #expect(try w.push("xihu", [edit]) == nil)
    }

    /// Found by the scoped simulator (seed 1871): a store's PUSH held `busy` for the whole grace by
    /// a late edit of its own that the rules truly refuse lost, when the grace ended, the ops
    /// before it that only the grace admitted (a creation HQ's later edit had reached first).
    @Test func aDeferredOpDoesNotHoldBackTheOpsBeforeItThatTheGraceAdmits() throws {
        let w = try World()
        let creation = [w.write("xihu", .customer, "c_new", "owner_store", .text("xihu")),
                        w.write("xihu", .customer, "c_new", "name", .text("新客"))]
        let later = try hqEdit(w, "c_new", at: w.now + 1_000)
        w.now += 1_000
        let refused = w.write("xihu", .customer, "c_x", "name", .text("林女士"), author: "nobody")
        startEpoch(w, graceMillis: 60_000)
        #expect(try w.push("hq", [later]) == nil)
        let head = try w.hub.logHead()
        guard case let .deferred(message, acked) = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: creation + [refused])) else {
            Issue.record("not deferred"); return
        }
        #expect(message.hasPrefix("the PUSH holds op #3: ") && message.hasSuffix("the 2 op(s) before it were stored"))
        #expect(acked == 2)
        #expect(try w.hub.logHead() == head + 2)
        #expect(try w.hub.refusals(of: "xihu").isEmpty)
        // The grace ends; the same PUSH again: the creation is held, the late edit refused for good.
        w.now += 60_000
        try w.expectRefused("xihu", creation + [refused], rule: "author")
        #expect(try w.hub.rows(of: .customers, where: "customer_id", equals: "c_new").first?["owner_store"]?.textValue == "xihu")
    }

    /// Found by the scoped simulator (seed 4578): the ops before a held one are stored only if they
    /// stand alone — a new customer's edit admitted because the PUSH's later op makes it the
    /// store's must not be stored without that op (its creation would then be refused: it exists).
    @Test func theOpsBeforeAHeldOneAreStoredOnlyIfTheyStandWithoutTheOpsAfterIt() throws {
        let w = try World()
        let edit = w.write("xihu", .customer, "c_n", "name", .text("新客"))
        let held = w.write("xihu", .customer, "c_x", "name", .text("林女士"), author: "nobody")
        let owner = w.write("xihu", .customer, "c_n", "owner_store", .text("xihu"))
        startEpoch(w, graceMillis: 60_000)
        let head = try w.hub.logHead()
        guard case let .deferred(message, acked) = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: [edit, held, owner])) else {
            Issue.record("not deferred"); return
        }
        #expect(message.hasSuffix("nothing was stored") && acked == 0)
        #expect(try w.hub.logHead() == head)
        // The grace ends: the held op is refused for good, and the node pushes the others together.
        w.now += 60_000
        try w.expectRefused("xihu", [edit, held, owner], rule: "author", seq: held.seq)
        #expect(try w.push("xihu", [edit, owner]) == nil)
        #expect(try w.hub.rows(of: .customers, where: "customer_id", equals: "c_n").first?["owner_store"]?.textValue == "xihu")
    }

    @Test func afterTheGraceSuchAnOpIsRefusedForGood() throws {
        let w = try World()
        w.now += 1_000
        let edit = w.write("xihu", .customer, "c_x", "name", .text("林女士"), author: "wangfang")
        startEpoch(w, graceMillis: 60_000)
        guard case .deferred = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: [edit])) else { Issue.record("not deferred"); return }
        w.now += 60_000
        try w.expectRefused("xihu", [edit], rule: "author")
        #expect(try w.hub.refusals(of: "xihu").map(\.seq) == [1])
    }

    @Test func anEditMadeAfterTheRestoreOnAnOpTheHubLostIsBusyTooUntilHQPushesItAgain() throws {
        let w = try World()
        let hqBefore = try w.hq.lastIssuedSeq()
        try w.hq.defineStaff("wangfang", name: "王芳", storeID: "xihu")       // HQ's, lost by the hub
        startEpoch(w)
        w.now += HybridClock.defaultMaxDriftMillis     // the store edits after the restore
        let edit = w.write("xihu", .customer, "c_x", "name", .text("林女士"), author: "wangfang")
        guard case .deferred = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: [edit])) else { Issue.record("not deferred"); return }
        #expect(try w.hub.refusals(of: "xihu").isEmpty)
        #expect(try w.push("hq", try w.hq.outbox(after: hqBefore)) == nil)
        #expect(try w.push("xihu", [edit]) == nil)
    }

    @Test func onlyAnOpStampedBeforeTheEpochStartedMakesAnInstanceNewByStamps() throws {
        let w = try World()
        startEpoch(w)
        w.now += HybridClock.defaultMaxDriftMillis
        // A creation stamped after the restore, of a customer the hub holds with later ops.
        let creation = [w.write("xihu", .customer, "c_late", "owner_store", .text("xihu"))]
        let later = try hqEdit(w, "c_late", at: w.now + 1_000)
        #expect(try w.push("hq", [later]) == nil)
        guard case let .deferred(message, _) = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: creation)) else {
            Issue.record("taken"); return
        }
        #expect(message.contains("(rule customer_owner)"))
    }

    @Test func eachNodesGraceRunsFromItsFirstPushInTheEpoch() throws {
        let w = try World()
        w.now += 1_000
        let edit = w.write("xihu", .customer, "c_x", "name", .text("林女士"), author: "wangfang")
        startEpoch(w, graceMillis: 60_000)
        w.now += 120_000                               // xihu was offline past the epoch's first minute
        guard case .deferred = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: [edit])) else { Issue.record("not deferred"); return }
        w.now += 60_000                                // a minute after xihu's first PUSH
        try w.expectRefused("xihu", [edit], rule: "author")
    }

    @Test func aRuleThatReadsNoStateIsNeverDeferred() throws {
        let w = try World()
        let edit = w.write("xihu", .store, "xihu", "name", .text("西湖新店"))
        startEpoch(w)
        try w.expectRefused("xihu", [edit], rule: "store_rows")
    }
}
