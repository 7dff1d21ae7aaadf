import SiyuNet

/// The order of the hub writer's turns: batches of PUSHes (group commits) and slices of re-merging
/// the customers that hold a changed tag (SPEC section 10). The writer runs one turn at a time, in
/// the order turns are handed to it.
///
/// Guarantees:
/// - a slice never goes ahead of PUSHes that wait or are being committed: it becomes *owed*, and
///   runs after their batch — before the next batch only if no PUSH waits, or if no slice ended
///   for `starvation` (so under a steady stream of PUSHes one still runs about that often);
/// - so a PUSH waits behind at most one slice, and an owed slice behind at most `starvation` of
///   back-to-back batches.
public struct WriterTurnPolicy: Sendable, Equatable {
    /// How long an owed slice may wait behind back-to-back batches.
    public var starvation: Duration
    /// A slice came due while PUSHes waited or were being committed.
    public private(set) var owed = false
    /// When the last slice ended.
    public private(set) var lastSliceEnded = Deadline(nanoseconds: 0)

    public init(starvation: Duration) { self.starvation = starvation }

    /// A slice came due (its timer fired): whether to hand it to the writer now.
    public mutating func sliceDue(pushesPending: Bool) -> Bool {
        owed = pushesPending
        return !pushesPending
    }

    /// A batch was committed: whether the owed slice goes to the writer before the next batch.
    public mutating func batchCommitted(pushesWaiting: Bool, now: Deadline) -> Bool {
        guard owed else { return false }
        guard !pushesWaiting || !(now < lastSliceEnded.advanced(by: starvation)) else { return false }
        owed = false
        return true
    }

    /// A slice was handed to the writer some other way (nothing is owed any more).
    public mutating func sliceStarted() { owed = false }

    /// A slice ended at `now`.
    public mutating func sliceEnded(at now: Deadline) { lastSliceEnded = now }
}
