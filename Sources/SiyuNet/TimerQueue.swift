/// Identifies a timer scheduled on an event loop, for `EventLoop.cancelTimer(_:)`.
public struct TimerHandle: Hashable, Sendable {
    let id: UInt64
}

/// Timers ordered by deadline (ties in the order they were scheduled): a binary min-heap with lazy
/// cancellation. A cancelled timer stays in the heap until it reaches the top or the heap is
/// compacted (when more than half of it is cancelled), so memory stays proportional to the live
/// timers even when a keepalive timer is rescheduled on every message. Not thread-safe.
struct TimerQueue {
    struct Entry {
        let deadline: Deadline
        let id: UInt64
        let body: () -> Void

        func precedes(_ other: Entry) -> Bool {
            deadline != other.deadline ? deadline < other.deadline : id < other.id
        }
    }

    private var heap: [Entry] = []
    private var live: Set<UInt64> = []
    /// The id the next timer gets; ids grow, so they also record the order of scheduling.
    private(set) var nextID: UInt64 = 1

    /// How many timers are scheduled and neither fired nor cancelled.
    var count: Int { live.count }

    mutating func schedule(at deadline: Deadline, _ body: @escaping () -> Void) -> TimerHandle {
        let id = nextID
        nextID += 1
        live.insert(id)
        heap.append(Entry(deadline: deadline, id: id, body: body))
        siftUp(heap.count - 1)
        return TimerHandle(id: id)
    }

    /// Cancels a timer; false if it already fired or was cancelled.
    @discardableResult
    mutating func cancel(_ handle: TimerHandle) -> Bool {
        guard live.remove(handle.id) != nil else { return false }
        if heap.count > 64 && heap.count > 2 * live.count { compact() }
        return true
    }

    /// The earliest deadline of a live timer.
    mutating func nextDeadline() -> Deadline? {
        dropCancelledTop()
        return heap.first?.deadline
    }

    /// Removes and returns the earliest live timer if it is due at `now` and was scheduled before
    /// `idLimit` (so a timer that schedules another already due one does not run it in the same pass).
    mutating func popDue(now: Deadline, scheduledBefore idLimit: UInt64) -> Entry? {
        dropCancelledTop()
        guard let top = heap.first, top.deadline <= now, top.id < idLimit else { return nil }
        live.remove(top.id)
        removeTop()
        return top
    }

    mutating func removeAll() {
        heap.removeAll()
        live.removeAll()
    }

    // MARK: heap

    private mutating func dropCancelledTop() {
        while let top = heap.first, !live.contains(top.id) { removeTop() }
    }

    private mutating func removeTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private mutating func compact() {
        heap.removeAll { !live.contains($0.id) }
        // Floyd's heap construction.
        var index = heap.count / 2
        while index > 0 {
            index -= 1
            siftDown(index)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var first = parent
            if left < heap.count && heap[left].precedes(heap[first]) { first = left }
            if right < heap.count && heap[right].precedes(heap[first]) { first = right }
            if first == parent { return }
            heap.swapAt(parent, first)
            parent = first
        }
    }
}
