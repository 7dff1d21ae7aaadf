import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuStore
import SiyuWire
import SiyuTestSupport

/// The hub's answer to DIGEST_REQUEST (SPEC section 7, "Digests") from its real replica.
@Suite struct HubDigestTests {
    @Test func theDigestIsTheReplicasStateDigestAtTheLogHeadAndMovesWithEveryPush() throws {
        let hub = try HubStoreTests.Hub()
        try hub.replica.registerNode("xihu", role: .store, secret: Array("s".utf8))
        let empty = hub.executor.execute(.readDigest(node: "xihu"))
        let emptyState = try hub.replica.digest()
        #expect(empty == .digest(position: 0, digest: emptyState))

        let ops = (1...3).map { (seq: UInt64) in
            Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000 + seq, logical: 0), node: "xihu"), seq: seq, role: .store, author: "chenjing",
               body: .write(Target(.customer, "wm_\(seq)"), field: "name", value: .text("客户\(seq)"), overwrites: []))
        }
        #expect(hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: ops))) == .pushStored(ackedSeq: 3))
        let after = hub.executor.execute(.readDigest(node: "xihu"))
        guard case let .digest(position, digest) = after else { Issue.record("not a digest: \(after)"); return }
        let head = try hub.replica.logHead()
        let state = try hub.replica.digest()
        #expect(position == 3 && position == head)
        #expect(digest == state && digest.count == 32)
        if case let .digest(_, before) = empty { #expect(before != digest) }

        // A node that holds the same three ops has the same digest.
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let node = try Replica(path: dir.path("xihu.db"),
                               options: ReplicaOptions(node: "jingan", role: .store, wallClock: { 1_764_000_000_000 }))
        defer { node.close() }
        try node.applyChanges(ChangeSet(ops: ops), nextCursor: 3)
        let nodeDigest = try node.digest()
        #expect(nodeDigest == digest)
    }

    @Test func aScopeDigestIsReadInsideATransactionTheCallerHolds() throws {
        let hub = try HubStoreTests.Hub()
        let outside = try hub.replica.scopeDigest()
        let inside = try hub.replica.inOneTransaction { try hub.replica.scopeDigest() }
        #expect(outside == inside && outside.position == 0)
    }
}
