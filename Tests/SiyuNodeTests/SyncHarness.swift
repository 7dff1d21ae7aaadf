import Foundation
import SiyuCore
import SiyuHub
import SiyuNode
import SiyuSession
import SiyuStore
import SiyuWire
import SiyuTestSupport

/// One connection between a node replica and a hub replica: their sessions, each driven by its
/// `SessionHost` in a `MemorySessionPair` with a virtual clock, the real executors carrying out
/// every effect.
struct SyncRun {
    let pair: MemorySessionPair
    let nodeStore: NodeStoreExecutor
    let hubStore: HubStoreExecutor
    let wall: WallClock

    var now: SessionInstant { pair.now }
    var node: NodeSession { pair.node.session }
    var hub: HubSession { pair.hub.session }
    var nodeEvents: [SessionEvent] { pair.nodeEvents }
    var hubEvents: [SessionEvent] { pair.hubEvents }
    var hubSent: [Message] { pair.hubSent }
    var nodeSent: [Message] { pair.nodeSent }
    var nodeClosed: CloseReason? { pair.nodeClosed }
    var hubClosed: CloseReason? { pair.hubClosed }

    init(node replica: Replica, secret: [UInt8], hub: HubStoreExecutor, wall: WallClock, byteBudget: UInt64 = 64 * 1024,
         faults: MemoryTransport.FaultHook? = nil, start: SessionInstant = SessionInstant(milliseconds: 1_000_000)) throws {
        self.wall = wall
        let nodeStore = NodeStoreExecutor(replica: replica)
        self.nodeStore = nodeStore
        hubStore = hub
        let begin = try nodeStore.sessionStart()
        pair = MemorySessionPair(
            node: NodeSession(NodeSession.Configuration(node: replica.node, role: replica.role, secret: secret, byteBudget: byteBudget),
                              cursor: begin.cursor, lastOwnSeq: begin.lastOwnSeq, logEpoch: begin.logEpoch,
                              recordedAckedSeq: begin.recordedAckedSeq, now: start),
            hub: HubSession(HubSession.Configuration(hubID: "hub-hz"), nonce: Array(0..<32), now: start),
            transport: MemoryTransport(latencyMillis: 1, faults: faults), now: start,
            nodeEffects: { nodeStore.execute($0) }, hubEffects: { hub.execute($0) })
        pair.timeMoved = { wall.now += $0 }
    }

    /// The node hears its transport close (a cut connection).
    func nodeTransportClosed() { pair.node.transportClosed(now: pair.now) }

    /// Runs until `done` holds, both sides closed, or `limit` ms of virtual time pass. Replica wall
    /// time moves with the virtual clock.
    func run(forMillis limit: UInt64 = 120_000, until done: (SyncRun) -> Bool = { _ in false }) {
        if node.state == .hello && nodeSent.isEmpty { pair.nodeDo { $0.start(now: $1) } }
        pair.run(forMillis: limit) { done(self) }
    }

    /// Until the node has pushed everything and pulled with nothing more pending.
    func runUntilIdle(forMillis limit: UInt64 = 120_000) {
        run(forMillis: limit) { run in
            run.node.isCaughtUp && (try? run.nodeStore.replica.outbox(after: run.node.ackedSeq, limit: 1).isEmpty) == true
        }
    }

    /// Ends the connection (the node says BYE) and lets the goodbye cross.
    func close() {
        pair.nodeDo { $0.close(reason: "test done", now: $1) }
        run(forMillis: 100)
    }
}

