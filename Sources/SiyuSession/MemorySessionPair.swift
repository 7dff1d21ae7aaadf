import SiyuWire

/// One side of a `MemorySessionPair`'s transport, as a `SessionHost` sees it.
///
/// Guarantees: a frame sent is one write of the pair's `MemoryTransport` at the pair's current
/// virtual time (its fault hook decides its fate); the transport is always writable.
public final class MemoryEndpoint: SessionTransport {
    public let side: ConnectionSide
    /// Whether the host reads now (the pair delivers nothing to it while false).
    public private(set) var isReading = true
    private unowned let pair: MemorySessionPair

    init(side: ConnectionSide, pair: MemorySessionPair) {
        self.side = side
        self.pair = pair
    }

    public func sendFrame(_ bytes: [UInt8]) throws { pair.transport.write(bytes, from: side, now: pair.now) }
    public var isWritable: Bool { true }
    public func closeAfterSending() { pair.transport.close(from: side) }
    public func closeNow() { pair.transport.close(from: side) }
    public func setReading(_ reading: Bool) { isReading = reading }
}

/// A node session and a hub session joined by a `MemoryTransport` and run in virtual time, each
/// through a `SessionHost` — the in-memory counterpart of a TCP connection on the event loop (as
/// swift-nio's `EmbeddedChannel` is of a socket). Tests drive the protocol end to end with it,
/// with fake stores or real replicas behind the two performers.
///
/// Guarantees: deterministic — the same sessions, performers, fault hook and calls give the same
/// frames at the same virtual times; `run` stops by itself (time limit, both sides closed, a
/// step limit, or nothing left to happen).
public final class MemorySessionPair {
    /// The virtual clock.
    public private(set) var now: SessionInstant
    public var transport: MemoryTransport
    public private(set) var node: SessionHost<NodeSession>!
    public private(set) var hub: SessionHost<HubSession>!
    /// Every message each side sent, every event each side reported, and why each side closed.
    public private(set) var nodeSent: [Message] = []
    public private(set) var hubSent: [Message] = []
    public private(set) var nodeEvents: [SessionEvent] = []
    public private(set) var hubEvents: [SessionEvent] = []
    public private(set) var nodeClosed: CloseReason?
    public private(set) var hubClosed: CloseReason?
    /// Told how many milliseconds virtual time moved on, each time it does (a test's wall clock).
    public var timeMoved: (UInt64) -> Void = { _ in }
    private var nodeEnd: MemoryEndpoint!
    private var hubEnd: MemoryEndpoint!

    public init(node: NodeSession, hub: HubSession, transport: MemoryTransport = MemoryTransport(latencyMillis: 1), now: SessionInstant,
                nodeEffects: @escaping (NodeEffect) -> NodeEffectResult?, hubEffects: @escaping (HubEffect) -> HubEffectResult) {
        self.now = now
        self.transport = transport
        var nodeHandlers = SessionHost<NodeSession>.Handlers(perform: { effect, _ in nodeEffects(effect) })
        nodeHandlers.sent = { [unowned self] in self.nodeSent.append($0) }
        nodeHandlers.report = { [unowned self] in self.nodeEvents.append($0) }
        nodeHandlers.closing = { [unowned self] in self.nodeClosed = $0 }
        var hubHandlers = SessionHost<HubSession>.Handlers(perform: { effect, _ in hubEffects(effect) })
        hubHandlers.sent = { [unowned self] in self.hubSent.append($0) }
        hubHandlers.report = { [unowned self] in self.hubEvents.append($0) }
        hubHandlers.closing = { [unowned self] in self.hubClosed = $0 }
        nodeEnd = MemoryEndpoint(side: .node, pair: self)
        hubEnd = MemoryEndpoint(side: .hub, pair: self)
        self.node = SessionHost(session: node, transport: nodeEnd, handlers: nodeHandlers)
        self.hub = SessionHost(session: hub, transport: hubEnd, handlers: hubHandlers)
    }

    /// Calls into the node's session (start, pullNow, …) and carries out what it asks.
    public func nodeDo(_ call: (inout NodeSession, SessionInstant) -> [NodeSession.Action]) {
        let now = now
        node.drive(now: now) { call(&$0, now) }
    }

    /// Calls into the hub's session and carries out what it asks.
    public func hubDo(_ call: (inout HubSession, SessionInstant) -> [HubSession.Action]) {
        let now = now
        hub.drive(now: now) { call(&$0, now) }
    }

    /// Delivers what is due, fires due deadlines and moves the clock on, until `done` holds, both
    /// sides closed, `limit` milliseconds of virtual time passed, or nothing is left to happen.
    public func run(forMillis limit: UInt64, until done: () -> Bool = { false }) {
        let end = now.adding(milliseconds: limit)
        var steps = 0
        while now <= end, !done(), nodeClosed == nil || hubClosed == nil, steps < 100_000 {
            steps += 1
            if hubEnd.isReading { for bytes in transport.read(by: .hub, now: now) { hub.received(bytes, now: now) } }
            if nodeEnd.isReading { for bytes in transport.read(by: .node, now: now) { node.received(bytes, now: now) } }
            if !hub.isFinished, transport.isClosed(toward: .hub) { hub.transportClosed(now: now) }
            if !node.isFinished, transport.isClosed(toward: .node) { node.transportClosed(now: now) }
            if !node.isFinished, let d = node.session.nextDeadline, d <= now { node.tick(now: now) }
            if !hub.isFinished, let d = hub.session.nextDeadline, d <= now { hub.tick(now: now) }
            if done() { return }
            let all = [transport.nextDelivery, deadline(node), deadline(hub)].compactMap { $0 }
            if all.contains(where: { $0 <= now }) { continue }
            guard let next = all.filter({ $0 > now }).min() else { return }
            timeMoved(next.milliseconds(since: now))
            now = next
        }
    }

    private func deadline<S: HostedSession>(_ host: SessionHost<S>) -> SessionInstant? {
        host.isFinished ? nil : host.session.nextDeadline
    }
}
