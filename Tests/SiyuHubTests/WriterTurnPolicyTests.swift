import Testing
import SiyuHub
import SiyuNet

/// The hub writer's turn order (`WriterTurnPolicy`, what `HubServer` follows): PUSH batches ahead
/// of re-merge slices, without starving the re-merge.
@Suite struct WriterTurnPolicyTests {
    static func at(_ millis: UInt64) -> Deadline { Deadline(nanoseconds: millis * 1_000_000) }

    @Test func aSliceDueWhileNoPushWaitsRunsAtOnce() {
        var turns = WriterTurnPolicy(starvation: .milliseconds(50))
        let r1 = turns.sliceDue(pushesPending: false)
        #expect(r1)
        #expect(!turns.owed)
    }

    @Test func aSliceDueWhilePushesWaitIsOwedAndRunsAfterTheirBatchWhenNoneWaitsThen() {
        var turns = WriterTurnPolicy(starvation: .milliseconds(50))
        turns.sliceEnded(at: Self.at(1_000))
        let r2 = turns.sliceDue(pushesPending: true)
        #expect(!r2)
        #expect(turns.owed)
        let r3 = turns.batchCommitted(pushesWaiting: false, now: Self.at(1_005))
        #expect(r3)
        #expect(!turns.owed)
        let r4 = turns.batchCommitted(pushesWaiting: false, now: Self.at(1_010))
        #expect(!r4, "nothing owed any more")
    }

    @Test func anOwedSliceWaitsBehindBackToBackBatchesOnlyUntilTheStarvationBound() {
        var turns = WriterTurnPolicy(starvation: .milliseconds(50))
        turns.sliceEnded(at: Self.at(1_000))
        let r5 = turns.sliceDue(pushesPending: true)
        #expect(!r5)
        let r6 = turns.batchCommitted(pushesWaiting: true, now: Self.at(1_020))
        #expect(!r6, "PUSHes wait: they go first")
        let r7 = turns.batchCommitted(pushesWaiting: true, now: Self.at(1_049))
        #expect(!r7)
        let r8 = turns.batchCommitted(pushesWaiting: true, now: Self.at(1_050))
        #expect(r8, "50 ms without a slice: it goes before the next batch")
    }

    @Test func aBatchWithNothingOwedNeverStartsASlice() {
        var turns = WriterTurnPolicy(starvation: .milliseconds(50))
        let r9 = turns.batchCommitted(pushesWaiting: false, now: Self.at(5_000))
        #expect(!r9)
        let r10 = turns.batchCommitted(pushesWaiting: true, now: Self.at(9_000))
        #expect(!r10)
    }
}
