import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuStore
import SiyuWire

/// PUSHes of several connections committed as one transaction (`HubStoreExecutor.writeBatch`,
/// what `HubServer`'s writer runs): each is taken or refused as it would be alone, and nothing is
/// durable before the whole commits.
@Suite struct GroupCommitTests {
    /// Tag adds by `node` numbered `seqs`, one customer each.
    static func adds(_ node: NodeID, _ seqs: ClosedRange<UInt64>) -> [Op] {
        seqs.map { seq in
            Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000 + seq, logical: 0), node: node), seq: seq, role: .store, author: "clerk",
               body: .add(Target(.customerTag, "\(node)_\(seq)", "et_tea"), removes: []))
        }
    }

    static func hub() throws -> HubStoreTests.Hub {
        let hub = try HubStoreTests.Hub()
        for node in ["xihu", "jingan", "minhang"] { try hub.replica.registerNode(node, role: .store, secret: Array(node.utf8), iterations: 8) }
        return hub
    }

    @Test func eachPushOfABatchGetsTheAnswerItWouldGetAlone() throws {
        let hub = try Self.hub()
        let results = hub.executor.writeBatch([
            .storePush(node: "xihu", ChangeSet(ops: Self.adds("xihu", 1...3))),
            .storePush(node: "jingan", ChangeSet(ops: Self.adds("jingan", 1...2))),
        ])
        #expect(results == [.pushStored(ackedSeq: 3), .pushStored(ackedSeq: 2)])
        #expect(try hub.replica.logHead() == 5)
        #expect(try hub.replica.registeredNode("jingan")?.ackedSeq == 2)
    }

    @Test func aRefusedOrFailingPushLeavesTheOthersOfItsBatchStored() throws {
        let hub = try Self.hub()
        let library = Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_001, logical: 0), node: "jingan"), seq: 1, role: .store, author: "clerk",
                         body: .write(Target(.tag, "et_gold"), field: "name", value: .text("金"), overwrites: []))
        let results = hub.executor.writeBatch([
            .storePush(node: "xihu", ChangeSet(ops: Self.adds("xihu", 1...2))),
            .storePush(node: "jingan", ChangeSet(ops: [library])),                      // refused: the tag library is HQ's
            .storePush(node: "minhang", ChangeSet(ops: Self.adds("xihu", 3...3))),      // an op of another origin: fails
            .storePush(node: "minhang", ChangeSet(ops: Self.adds("minhang", 1...1))),
        ])
        #expect(results[0] == .pushStored(ackedSeq: 2) && results[3] == .pushStored(ackedSeq: 1))
        guard case .pushRefused(1, .permissionDenied, _) = results[1] else { Issue.record("the library write: \(results[1])"); return }
        guard case .failed(.permissionDenied, _) = results[2] else { Issue.record("another origin's op: \(results[2])"); return }
        #expect(try hub.replica.logHead() == 3)
        #expect(try hub.replica.refusals(of: "jingan").map(\.seq) == [1])
    }

    @Test func aBatchWhoseCommitFailsStoresNothingAndAnswersEveryPushRetryably() throws {
        let hub = try Self.hub()
        hub.replica.faultInjector = { sql in if sql == "COMMIT" { throw SimulatedDiskFull() } }
        let results = hub.executor.writeBatch([
            .storePush(node: "xihu", ChangeSet(ops: Self.adds("xihu", 1...2))),
            .storePush(node: "jingan", ChangeSet(ops: Self.adds("jingan", 1...1))),
        ])
        hub.replica.faultInjector = nil
        for result in results {
            guard case .failed(.internalError, _) = result else { Issue.record("not a retryable failure: \(result)"); continue }
        }
        #expect(try hub.replica.logHead() == 0)
        #expect(try hub.replica.registeredNode("xihu")?.ackedSeq == 0)
        // The same PUSHes go through once the disk is back.
        #expect(hub.executor.writeBatch([.storePush(node: "xihu", ChangeSet(ops: Self.adds("xihu", 1...2)))]) == [.pushStored(ackedSeq: 2)])
    }

    /// A serving hub records PULL cursors with its next group commit, not in a commit of their own.
    @Test func aBatchRecordsThePullCursorsGatheredSinceTheLastCommitInItsOwnTransaction() throws {
        let hub = try Self.hub()
        var commits = 0
        hub.replica.faultInjector = { sql in if sql == "COMMIT" { commits += 1 } }
        let results = hub.executor.writeBatch([.storePush(node: "xihu", ChangeSet(ops: Self.adds("xihu", 1...2)))],
                                              recordingCursors: ["jingan": 7, "minhang": 3])
        hub.replica.faultInjector = nil
        #expect(results == [.pushStored(ackedSeq: 2)])
        #expect(commits == 1)
        #expect(try hub.replica.registeredNode("jingan")?.cursor == 7 && hub.replica.registeredNode("minhang")?.cursor == 3)
    }

    @Test func cursorsAppliedWithoutAPushAreRecordedInOneCommit() throws {
        let hub = try Self.hub()
        var commits = 0
        hub.replica.faultInjector = { sql in if sql == "COMMIT" { commits += 1 } }
        #expect(hub.executor.apply([.cursor(node: "xihu", 4), .cursor(node: "jingan", 5), .cursor(node: "minhang", 6)]) == nil)
        hub.replica.faultInjector = nil
        #expect(commits == 1)
        #expect(try hub.replica.registeredNodes().map(\.cursor) == [5, 6, 4])
    }

    struct SimulatedDiskFull: Error {}
}
