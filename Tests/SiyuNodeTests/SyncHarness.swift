import Foundation
import SiyuCore
import SiyuHub
import SiyuNode
import SiyuSession
import SiyuStore
import SiyuWire

/// Wall time of the replicas of a test (milliseconds since the Unix epoch).
final class WallClock: @unchecked Sendable {
    var now: UInt64 = 1_764_000_000_000
}

/// A temporary directory removed when the value goes away.
final class TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("siyu-sync-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// One connection between a node replica and a hub replica, driven by their sessions over a
/// `MemoryTransport` with a virtual clock, the real executors carrying out every effect.
struct SyncRun {
    var now: SessionInstant
    var node: NodeSession
    var hub: HubSession
    var transport: MemoryTransport
    let nodeStore: NodeStoreExecutor
    let hubStore: HubStoreExecutor
    let wall: WallClock
    var nodeEvents: [SessionEvent] = []
    var hubEvents: [SessionEvent] = []
    var hubSent: [Message] = []
    var nodeSent: [Message] = []
    var nodeClosed: CloseReason?
    var hubClosed: CloseReason?

    init(node replica: Replica, secret: [UInt8], hub: HubStoreExecutor, wall: WallClock, byteBudget: UInt64 = 64 * 1024,
         faults: MemoryTransport.FaultHook? = nil, start: SessionInstant = SessionInstant(milliseconds: 1_000_000)) throws {
        now = start
        self.wall = wall
        nodeStore = NodeStoreExecutor(replica: replica)
        hubStore = hub
        let begin = try nodeStore.sessionStart()
        node = NodeSession(NodeSession.Configuration(node: replica.node, role: replica.role, secret: secret, byteBudget: byteBudget),
                           cursor: begin.cursor, lastOwnSeq: begin.lastOwnSeq, logEpoch: begin.logEpoch,
                           recordedAckedSeq: begin.recordedAckedSeq, now: now)
        self.hub = HubSession(HubSession.Configuration(hubID: "hub-hz"), nonce: Array(0..<32), now: now)
        transport = MemoryTransport(latencyMillis: 1, faults: faults)
    }

    mutating func nodeDo(_ actions: [NodeSession.Action]) {
        for action in actions {
            switch action {
            case let .send(m, bytes): nodeSent.append(m); transport.write(bytes, from: .node, now: now)
            case let .perform(effect):
                if let result = nodeStore.execute(effect) { nodeDo(node.complete(result, now: now)) }
            case let .report(e): nodeEvents.append(e)
            case let .close(r): nodeClosed = r; transport.close(from: .node)
            }
        }
    }

    mutating func hubDo(_ actions: [HubSession.Action]) {
        for action in actions {
            switch action {
            case let .send(m, bytes): hubSent.append(m); transport.write(bytes, from: .hub, now: now)
            case let .perform(effect): hubDo(hub.complete(hubStore.execute(effect), now: now))
            case let .report(e): hubEvents.append(e)
            case let .close(r): hubClosed = r; transport.close(from: .hub)
            }
        }
    }

    /// Runs until `done` holds, both sides closed, or `limit` ms of virtual time pass. Replica wall
    /// time moves with the virtual clock.
    mutating func run(forMillis limit: UInt64 = 120_000, until done: (SyncRun) -> Bool = { _ in false }) {
        if node.state == .hello && nodeSent.isEmpty { nodeDo(node.start(now: now)) }
        let end = now.adding(milliseconds: limit)
        var steps = 0
        while now <= end, !done(self), nodeClosed == nil || hubClosed == nil, steps < 100_000 {
            steps += 1
            for bytes in transport.read(by: .hub, now: now) where hubClosed == nil { hubDo(hub.receive(bytes, now: now)) }
            for bytes in transport.read(by: .node, now: now) where nodeClosed == nil { nodeDo(node.receive(bytes, now: now)) }
            if hubClosed == nil, transport.isClosed(toward: .hub) { hubDo(hub.transportClosed()) }
            if nodeClosed == nil, transport.isClosed(toward: .node) { nodeDo(node.transportClosed()) }
            if let d = node.nextDeadline, d <= now { nodeDo(node.tick(now: now)) }
            if let d = hub.nextDeadline, d <= now { hubDo(hub.tick(now: now)) }
            if done(self) { return }
            let all = [transport.nextDelivery, node.nextDeadline, hub.nextDeadline].compactMap { $0 }
            if all.contains(where: { $0 <= now }) { continue }
            guard let next = all.filter({ $0 > now }).min() else { return }
            wall.now += next.milliseconds(since: now)
            now = next
        }
    }

    /// Until the node has pushed everything and pulled with nothing more pending.
    mutating func runUntilIdle(forMillis limit: UInt64 = 120_000) {
        run(forMillis: limit) { run in
            run.node.isCaughtUp && (try? run.nodeStore.replica.outbox(after: run.node.ackedSeq, limit: 1).isEmpty) == true
        }
    }

    /// Ends the connection (the node says BYE) and lets the goodbye cross.
    mutating func close() {
        nodeDo(node.close(reason: "test done", now: now))
        run(forMillis: 100)
    }
}

