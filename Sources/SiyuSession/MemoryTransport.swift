import SiyuCore

/// One direction of an in-memory connection: what one side wrote, waiting to be read by the other
/// at a virtual time. Each write is one segment (a session writes one frame per `send` action), so
/// segments can be dropped, duplicated, delayed, reordered (by delay) or split, as a test or the
/// simulator decides.
///
/// Guarantees: deterministic — segments are delivered in order of (delivery time, write order);
/// nothing is delivered before the time it was written plus its delay; after `close()` nothing
/// more is accepted, and what is in flight is still delivered.
public struct MemoryPipe: Sendable {
    /// What happens to one write.
    public enum Fate: Sendable, Equatable {
        case deliver
        case drop
        /// Delivered twice, back to back.
        case duplicate
        /// Delivered this many milliseconds late (later writes may overtake it).
        case delay(milliseconds: UInt64)
        /// Delivered as pieces of at most this many bytes (1: byte by byte).
        case split(maxBytes: Int)
    }

    /// A write in flight.
    public struct Segment: Sendable, Equatable {
        public var bytes: [UInt8]
        public var deliverAt: SessionInstant
        fileprivate var order: UInt64
    }

    public private(set) var inFlight: [Segment] = []
    /// Delivery waits while partitioned (like TCP retransmitting) and resumes when healed.
    public var isPartitioned = false
    public private(set) var isClosed = false
    /// How many writes were made (the index the next write gets).
    public private(set) var writeCount = 0
    /// How many bytes were delivered.
    public private(set) var deliveredBytes = 0
    /// Base latency of every segment.
    public var latencyMillis: UInt64
    private var order: UInt64 = 0

    public init(latencyMillis: UInt64 = 0) { self.latencyMillis = latencyMillis }

    /// One write, with its fate.
    public mutating func write(_ bytes: [UInt8], now: SessionInstant, fate: Fate = .deliver) {
        guard !isClosed, !bytes.isEmpty else { return }
        writeCount += 1
        let at = now.adding(milliseconds: latencyMillis)
        switch fate {
        case .deliver: enqueue(bytes, at)
        case .drop: break
        case .duplicate: enqueue(bytes, at); enqueue(bytes, at)
        case let .delay(ms): enqueue(bytes, at.adding(milliseconds: ms))
        case let .split(maxBytes):
            let size = max(1, maxBytes)
            for start in stride(from: 0, to: bytes.count, by: size) { enqueue(Array(bytes[start..<min(start + size, bytes.count)]), at) }
        }
    }

    private mutating func enqueue(_ bytes: [UInt8], _ at: SessionInstant) {
        inFlight.append(Segment(bytes: bytes, deliverAt: at, order: order))
        order += 1
    }

    /// Takes the segments due at `now`, in delivery order.
    public mutating func read(now: SessionInstant) -> [[UInt8]] {
        guard !isPartitioned else { return [] }
        let due = inFlight.filter { $0.deliverAt <= now }.sorted { ($0.deliverAt, $0.order) < ($1.deliverAt, $1.order) }
        guard !due.isEmpty else { return [] }
        inFlight.removeAll { $0.deliverAt <= now }
        deliveredBytes += due.reduce(0) { $0 + $1.bytes.count }
        return due.map(\.bytes)
    }

    /// When the next segment is due (nil if none, or partitioned).
    public var nextDelivery: SessionInstant? { isPartitioned ? nil : inFlight.map(\.deliverAt).min() }

    /// The writer closed its end.
    public mutating func close() { isClosed = true }
    /// Drops everything in flight (a crash of the connection).
    public mutating func reset() { inFlight = [] }
}

/// A connection between a node and a hub in memory: two pipes and a fault hook deciding each
/// write's fate. For tests and the deterministic simulator (issue 12, item 8).
///
/// Guarantees: with the same writes, times and hook, the same bytes arrive at the same times.
public struct MemoryTransport: Sendable {
    /// Decides the fate of write number `index` (counted per direction) from `side`.
    public typealias FaultHook = @Sendable (_ from: ConnectionSide, _ index: Int, _ bytes: [UInt8]) -> MemoryPipe.Fate

    public var nodeToHub: MemoryPipe
    public var hubToNode: MemoryPipe
    public var faults: FaultHook?

    public init(latencyMillis: UInt64 = 0, faults: FaultHook? = nil) {
        nodeToHub = MemoryPipe(latencyMillis: latencyMillis)
        hubToNode = MemoryPipe(latencyMillis: latencyMillis)
        self.faults = faults
    }

    /// `side` writes bytes.
    public mutating func write(_ bytes: [UInt8], from side: ConnectionSide, now: SessionInstant) {
        switch side {
        case .node: nodeToHub.write(bytes, now: now, fate: faults?(.node, nodeToHub.writeCount, bytes) ?? .deliver)
        case .hub: hubToNode.write(bytes, now: now, fate: faults?(.hub, hubToNode.writeCount, bytes) ?? .deliver)
        }
    }

    /// What `side` reads at `now`.
    public mutating func read(by side: ConnectionSide, now: SessionInstant) -> [[UInt8]] {
        side == .hub ? nodeToHub.read(now: now) : hubToNode.read(now: now)
    }

    /// `side` closed its end.
    public mutating func close(from side: ConnectionSide) {
        if side == .node { nodeToHub.close() } else { hubToNode.close() }
    }

    /// Whether `side` has read everything its peer wrote, and the peer closed.
    public func isClosed(toward side: ConnectionSide) -> Bool {
        let pipe = side == .hub ? nodeToHub : hubToNode
        return pipe.isClosed && pipe.inFlight.isEmpty
    }

    /// Cuts both directions (bytes wait) or heals them.
    public mutating func setPartitioned(_ on: Bool) {
        nodeToHub.isPartitioned = on
        hubToNode.isPartitioned = on
    }

    /// When something is next due in either direction.
    public var nextDelivery: SessionInstant? { [nodeToHub.nextDelivery, hubToNode.nextDelivery].compactMap { $0 }.min() }
}
