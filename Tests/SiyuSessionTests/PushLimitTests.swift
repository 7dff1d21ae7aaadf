import Testing
import SiyuCore
import SiyuSession
import SiyuWire

@Suite struct PushLimitTests {
    let t0 = SessionInstant(milliseconds: 5_000_000)

    /// A valid write of `field` (a value of the field's type).
    func tagLibraryWrite(_ field: String, entity: Entity = .tag) -> Op {
        let value: Value = ["deleted", "exclusive"].contains(field) ? .bool(true) : field == "sort_order" ? .int(3) : .text("x")
        return Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000, logical: 0), node: "hq"), seq: 1, role: .hq, author: "zhaolei",
                  body: .write(Target(entity, "et_tea"), field: field, value: value, overwrites: []))
    }

    @Test func aNodesBucketAdmitsItsBurstThenRefillsAtItsRateAndNothingMore() {
        var limits = NodeRateLimits(PushLimits(opsPerSecond: 100, burstOps: 1_000))
        #expect(limits.admit(node: "xihu", ops: 600, changesTagLibraryReads: false, now: t0) == .admitted)
        #expect(limits.admit(node: "xihu", ops: 400, changesTagLibraryReads: false, now: t0) == .admitted)
        // Empty: one more op waits 10 ms (100 ops a second), and a refused PUSH takes nothing.
        guard case let .busy(message, wait) = limits.admit(node: "xihu", ops: 1, changesTagLibraryReads: false, now: t0) else {
            Issue.record("a PUSH past the burst was admitted"); return
        }
        #expect(wait == 10 && message.contains("100 ops a second") && message.contains("nothing was stored"))
        #expect(limits.admit(node: "xihu", ops: 1, changesTagLibraryReads: false, now: t0.adding(milliseconds: 10)) == .admitted)
        // Two seconds refill 200 ops, not more.
        let later = t0.adding(milliseconds: 2_010)
        if case .busy(_, 10) = limits.admit(node: "xihu", ops: 201, changesTagLibraryReads: false, now: later) {} else {
            Issue.record("201 ops were admitted after a refill of 200")
        }
        #expect(limits.admit(node: "xihu", ops: 200, changesTagLibraryReads: false, now: later) == .admitted)
        // Other nodes have buckets of their own.
        #expect(limits.admit(node: "jingan", ops: 1_000, changesTagLibraryReads: false, now: later) == .admitted)
    }

    @Test func reconnectingDoesNotRefillTheBucketButTimeDoes() {
        // The hub keeps one NodeRateLimits for all connections: a node that pushed its burst on one
        // connection and comes back on another at once is still refused.
        var limits = NodeRateLimits(PushLimits(opsPerSecond: 1_000, burstOps: 5_000))
        #expect(limits.admit(node: "xihu", ops: 5_000, changesTagLibraryReads: false, now: t0) == .admitted)
        let reconnected = t0.adding(milliseconds: 300)
        guard case let .busy(_, wait) = limits.admit(node: "xihu", ops: 1_000, changesTagLibraryReads: false, now: reconnected) else {
            Issue.record("the bucket refilled"); return
        }
        #expect(wait == 700)
        #expect(limits.admit(node: "xihu", ops: 1_000, changesTagLibraryReads: false, now: reconnected.adding(milliseconds: wait)) == .admitted)
    }

    @Test func aPushLargerThanTheBurstGoesThroughOnlyWithAFullBucketAndLeavesItInDebt() {
        var limits = NodeRateLimits(PushLimits(opsPerSecond: 100, burstOps: 50))
        #expect(limits.admit(node: "xihu", ops: 150, changesTagLibraryReads: false, now: t0) == .admitted)
        // 100 ops of debt plus 50 to fill the bucket: 1.5 s at 100 a second.
        guard case let .busy(_, wait) = limits.admit(node: "xihu", ops: 150, changesTagLibraryReads: false, now: t0) else {
            Issue.record("admitted in debt"); return
        }
        #expect(wait == 1_500)
        #expect(limits.admit(node: "xihu", ops: 150, changesTagLibraryReads: false, now: t0.adding(milliseconds: 1_500)) == .admitted)
        // An empty PUSH costs nothing and is always admitted.
        #expect(limits.admit(node: "xihu", ops: 0, changesTagLibraryReads: false, now: t0.adding(milliseconds: 1_500)) == .admitted)
    }

    @Test func atMostOneTagLibraryChangeASecondIsAdmittedHubWideAndRenamesAreNotPaced() {
        var limits = NodeRateLimits(PushLimits())
        #expect(PushLimits.changesTagLibraryReads([tagLibraryWrite("group_id")]))
        #expect(PushLimits.changesTagLibraryReads([tagLibraryWrite("deleted")]))
        #expect(PushLimits.changesTagLibraryReads([tagLibraryWrite("exclusive", entity: .tagGroup)]))
        #expect(!PushLimits.changesTagLibraryReads([tagLibraryWrite("name"), tagLibraryWrite("sort_order"), tagLibraryWrite("name", entity: .tagGroup)]))
        let deletion = Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000, logical: 0), node: "hq"), seq: 2, role: .hq, author: "",
                          body: .tagDeletion(InstanceRef(.tag, "et_tea"), seen: []))
        #expect(PushLimits.changesTagLibraryReads([deletion]))
        // An op the store refuses anyway is answered with its own error, not paced.
        let invalid = Op(stamp: deletion.stamp, seq: 2, role: .hq, author: "", body: .tagDeletion(InstanceRef(.customer, "c1"), seen: []))
        #expect(!PushLimits.changesTagLibraryReads([invalid]))

        #expect(limits.admit(node: "hq", ops: 1, changesTagLibraryReads: true, now: t0) == .admitted)
        // Another HQ node 400 ms later: busy for 600 ms; its bucket is not charged meanwhile.
        guard case let .busy(message, wait) = limits.admit(node: "hq2", ops: 1, changesTagLibraryReads: true, now: t0.adding(milliseconds: 400)) else {
            Issue.record("a second library change within a second was admitted"); return
        }
        #expect(wait == 600 && message.contains("one change of a tag's group"))
        #expect(limits.admit(node: "hq2", ops: 1, changesTagLibraryReads: false, now: t0.adding(milliseconds: 400)) == .admitted)
        #expect(limits.admit(node: "hq2", ops: 1, changesTagLibraryReads: true, now: t0.adding(milliseconds: 1_000)) == .admitted)
    }

    @Test func bucketsOfIdleNodesAreDroppedSoMemoryStaysBounded() {
        var limits = NodeRateLimits(PushLimits(opsPerSecond: 1_000, burstOps: 1_000))
        for i in 0..<1_023 {
            #expect(limits.admit(node: "store-\(i)", ops: 10, changesTagLibraryReads: false, now: t0) == .admitted)
        }
        #expect(limits.trackedNodes == 1_023)
        // A second later every one of them is full again: the next PUSH prunes them all.
        #expect(limits.admit(node: "store-new", ops: 10, changesTagLibraryReads: false, now: t0.adding(milliseconds: 1_000)) == .admitted)
        #expect(limits.trackedNodes == 1)
        // A dropped entry is a full bucket: the node still has its whole burst.
        #expect(limits.admit(node: "store-7", ops: 1_000, changesTagLibraryReads: false, now: t0.adding(milliseconds: 1_000)) == .admitted)
    }

    @Test func theBusyDelayIsJitteredBetweenOnceAndTwiceTheBaseAndDiffersAcrossNodes() {
        let policy = KeepalivePolicy(busyRetryMillis: 1_000)
        let delays = (0..<50).map { policy.busyRetryDelay(node: "store-\($0)", now: t0) }
        #expect(delays.allSatisfy { $0 >= 1_000 && $0 <= 2_000 })
        #expect(Set(delays).count > 25)
        #expect(policy.busyRetryDelay(node: "xihu", now: t0) == policy.busyRetryDelay(node: "xihu", now: t0))
    }

    @Test func aBusyPushIsAnsweredWithRetryableErrorTwelveTheConnectionStaysOpenAndTheNodePushesAgainAfterItsDelay() {
        let h = Harness(own: tagOps("xihu", seqs: 1...3))
        h.hubStore.busyPushes = 2
        let start = h.now
        h.start()
        h.run { $0.node.isCaughtUp }
        let busy = h.hubSent.filter { if case .error(12, true, _) = $0 { return true }; return false }
        #expect(busy.count == 2)
        #expect(h.nodeSent.filter { $0.type == .push }.count == 3)
        #expect(h.node.ackedSeq == 3 && h.hubStore.acked("xihu") == 3 && h.nodeStore.quarantined.isEmpty)
        #expect(h.nodeClosed == nil && h.hubClosed == nil)
        // Two waits of 1–2 s each (the standard policy), not a hot loop and not the 30 s of clock_skew.
        let waited = h.now.milliseconds(since: start)
        #expect(waited >= 2_000 && waited < 10_000, "caught up after \(waited) ms")
    }
}
