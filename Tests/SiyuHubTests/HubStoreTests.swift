import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuNet
import SiyuSession
import SiyuStore
import SiyuWire
import SiyuTestSupport

@Suite struct HubStoreTests {
    final class Hub {
        let dir: TemporaryDirectory
        var now: UInt64 = 1_764_000_000_000
        var replica: Replica!
        var executor: HubStoreExecutor!
        init() throws {
            dir = try TemporaryDirectory()
            replica = try Replica(path: dir.path("hub.db"),
                                  options: ReplicaOptions(node: "hub-hz", role: .hq, wallClock: { [unowned self] in self.now }))
            executor = try HubStoreExecutor(replica: replica, options: .init(bootstrapSnapshotOps: nil))
        }
        deinit { replica.close(); dir.remove() }
    }

    /// Both of a serving hub's connections keep small page caches (`HubStoreExecutor.writerCacheMegabytes`,
    /// `HubServer.readerCacheMegabytes`), whatever the replica opened with (HQ's role: 64 MiB).
    @Test func aServingHubsWriterAndReaderKeepSmallPageCaches() throws {
        let hub = try Hub()
        #expect(try hub.replica.pageCacheKibibytes() == HubStoreExecutor.writerCacheMegabytes * 1024)
        let loop = try EventLoop()
        let server = try HubServer(loop: loop, executor: hub.executor, configuration: .init(session: .init(hubID: "hub-hz"), listen: .loopbackIPv4(port: 0)),
                                   log: .silent)
        #expect(try server.reader.replica.pageCacheKibibytes() == HubServer.readerCacheMegabytes * 1024)
        let opened = try Replica(path: hub.dir.path("other.db"), options: ReplicaOptions(node: "hq", role: .hq))
        defer { opened.close() }
        #expect(try opened.pageCacheKibibytes() == 64 * 1024)
    }

    /// A serving hub's writer leaves the WAL to the checkpointer: its commits copy pages into the
    /// file only past `HubServer.writerCheckpointPages` (SQLite's default is 1,000).
    @Test func aServingHubsWriterCheckpointsOnlyPastItsOwnThreshold() throws {
        let hub = try Hub()
        #expect(try hub.replica.automaticCheckpointPages() == 1_000)   // SQLite's default, before the server
        let loop = try EventLoop()
        _ = try HubServer(loop: loop, executor: hub.executor, configuration: .init(session: .init(hubID: "hub-hz"), listen: .loopbackIPv4(port: 0)),
                          log: .silent)
        #expect(try hub.replica.automaticCheckpointPages() == HubServer.writerCheckpointPages)
    }

    /// What the hub's checkpointer runs: a passive checkpoint on a connection of its own copies
    /// every page of the WAL another connection wrote into the file, while that connection stays open.
    @Test func aPassiveCheckpointFromAnotherConnectionCopiesTheWriterWAL() throws {
        let hub = try Hub()
        try hub.replica.setAutomaticCheckpoint(afterPages: 0)   // the writer never checkpoints
        try hub.replica.registerNode("xihu", role: .store, secret: Array("s".utf8))
        for first in stride(from: UInt64(1), through: 200, by: 4) {
            #expect(hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(first...first + 3)))) == .pushStored(ackedSeq: first + 3))
        }
        let checkpointer = try Replica(path: hub.dir.path("hub.db"), options: ReplicaOptions(cacheMegabytes: 1))
        defer { checkpointer.close() }
        let pass = try checkpointer.checkpointPassively()
        #expect(pass.walPages > 100 && pass.copied == pass.walPages, "\(pass)")
    }

    /// Tag adds by xihu numbered `seqs`, one customer each.
    func adds(_ seqs: ClosedRange<UInt64>, at millis: UInt64 = 1_764_000_000_000) -> [Op] {
        seqs.map { seq in
            Op(stamp: Stamp(hlc: HLC(millis: millis + seq, logical: 0), node: "xihu"), seq: seq, role: .store, author: "chenjing",
               body: .add(Target(.customerTag, "wm_\(seq)", "et_tea"), removes: []))
        }
    }

    /// A store's write to the tag library: a permission breach (SPEC section 9).
    func libraryWrite(_ seq: UInt64) -> Op {
        Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000 + seq, logical: 0), node: "xihu"), seq: seq, role: .store,
           author: "chenjing", body: .write(Target(.tag, "et_gold"), field: "name", value: .text("金"), overwrites: []))
    }

    @Test func registrationKeepsRoleStoreAndVerifiersAndRefusesDuplicatesAndBadIds() throws {
        let hub = try Hub()
        let long = Array(String(repeating: "k", count: 100).utf8)
        try hub.replica.registerNode("xihu", role: .store, store: "xihu", secret: long, iterations: 8)
        let xihu = try #require(try hub.replica.registeredNode("xihu"))
        #expect(xihu.store == "xihu" && xihu.role == .store && HubRegistryTests.proofVerifies(secret: long, xihu.verifiers))
        #expect(throws: ReplicaError.self) { try hub.replica.registerNode("xihu", role: .store, secret: long) }
        #expect(throws: ReplicaError.self) { try hub.replica.registerNode("bad\u{202E}", role: .store, secret: long) }
        #expect(hub.executor.execute(.authorize(node: "nobody")) == .registration(nil))
    }

    @Test func anOpNumberedMoreThanTheWindowPastTheAcknowledgedOneIsAnsweredBusyNothingStoredNorRecordedAndTakenLater() throws {
        let hub = try Hub()
        try hub.replica.registerNode("xihu", role: .store, secret: Array("s".utf8))
        #expect(hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(1...2)))) == .pushStored(ackedSeq: 2))
        let far = Replica.pushSequenceWindow + 3
        let base: UInt64 = 1_764_000_000_000 + 10 - far   // clocks stay within the hub's window
        let result = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(3...3) + adds(far...far, at: base))))
        guard case let .pushBusy(message) = result else { Issue.record("not answered busy: \(result)"); return }
        #expect(message.contains("#\(far)"))
        #expect(try hub.replica.logHead() == 2)
        #expect(try hub.replica.refusals(of: "xihu").isEmpty)   // not recorded: retryable (SPEC section 7, "Limits")
        #expect(hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(3...3) + adds((far - 1)...(far - 1), at: base)))) == .pushStored(ackedSeq: 3))
    }

    @Test func aRefusedOpIsRecordedRefusedAgainUntilTheNodeSkipsItThenSettled() throws {
        let hub = try Hub()
        try hub.replica.registerNode("xihu", role: .store, secret: Array("s".utf8))
        #expect(hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(1...2)))) == .pushStored(ackedSeq: 2))
        let bad = adds(3...3).map { _ in libraryWrite(3) } + adds(4...5)
        guard case let .pushRefused(seq, code, message) = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: bad))) else {
            Issue.record("the library write was taken"); return
        }
        #expect(seq == 3 && code == .permissionDenied && message.contains("tag library"))
        #expect(try hub.replica.logHead() == 2)                    // nothing of the PUSH
        #expect(try hub.replica.refusals(of: "xihu").map(\.settled) == [false])
        // Pushed again (the node missed the ERROR): refused again.
        if case .pushRefused(3, .permissionDenied, _) = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: bad))) {} else {
            Issue.record("a refused number was not refused again")
        }
        // The node quarantined #3 and pushes #4, #5: #3 is settled and acked_seq moves past it.
        #expect(hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(4...5)))) == .pushStored(ackedSeq: 5))
        #expect(try hub.replica.refusals(of: "xihu").map(\.settled) == [true])
        #expect(try hub.replica.logHead() == 4)
        guard case let .registration(r?) = hub.executor.execute(.authorize(node: "xihu")) else { Issue.record("no registration"); return }
        #expect(r.ackedSeq == 5 && r.logHead == 4)
    }

    @Test func aHeldNumberWithOtherContentIsRefusedAndAnInvalidOpIsCode14() throws {
        let hub = try Hub()
        try hub.replica.registerNode("xihu", role: .store, secret: Array("s".utf8))
        _ = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(1...1))))
        var other = adds(1...1)[0]
        other.author = "wangfang"
        if case .pushRefused(1, .permissionDenied, _) = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: [other]))) {} else {
            Issue.record("a different op under a held number was taken")
        }
        let zeroPoints = Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_100, logical: 0), node: "xihu"), seq: 2, role: .store,
                            author: "chenjing", body: .points(customerID: "wm_1", delta: 0))
        if case .pushRefused(2, .invalidOp, _) = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: [zeroPoints]))) {} else {
            Issue.record("a points change of 0 was not invalid_op")
        }
        // An op 31 s ahead of the hub's clock: clock_skew, not recorded (the node retries).
        let ahead = adds(3...3, at: hub.now + 31_000)
        if case .pushRefused(3, .clockSkew, _) = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: ahead))) {} else {
            Issue.record("an op beyond the clock window was taken")
        }
        #expect(try hub.replica.refusals(of: "xihu").map(\.seq) == [1, 2])
        // Two seconds later it is within the window; pushed without #2, it settles #2.
        hub.now += 2_000
        #expect(hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: ahead))) == .pushStored(ackedSeq: 3))
    }

    @Test func changesRespectTheBudgetButAlwaysCarryOneOpAndSnapshotsSendTheLibraryFirstWithInstancesWhole() throws {
        let hub = try Hub()
        try hub.replica.registerNode("xihu", role: .store, secret: Array("s".utf8))
        _ = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(1...50))))
        let one = try hub.replica.changes(after: 0, byteBudget: 1)
        #expect(one.ops.count == 1 && one.more && one.nextCursor == 1)
        let some = try hub.replica.changes(after: 10, byteBudget: 200)
        #expect(some.ops.first?.position == 11 && some.ops.count < 40 && some.more)
        let rest = try hub.replica.changes(after: 0, byteBudget: 1 << 20)
        #expect(rest.ops.count == 50 && !rest.more && rest.nextCursor == 50)
        let none = try hub.replica.changes(after: 50, byteBudget: 1 << 20)
        #expect(none.ops.isEmpty && !none.more && none.nextCursor == 50)
        // Past the head: a snapshot of reason 2.
        if case .startSnapshot(_, 50, .cursorTooOld) = hub.executor.execute(.readChanges(node: "xihu", after: 99, byteBudget: 1000, schemaVersion: 1, ownOps: false)) {} else {
            Issue.record("a cursor past the head was not answered with a snapshot")
        }
        // Snapshot parts: the tag library first, no instance split, everything once.
        let hq = Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_200, logical: 0), node: "hq"), seq: 1, role: .hq, author: "zhaolei",
                    body: .write(Target(.tag, "et_tea"), field: "name", value: .text("茶饮"), overwrites: []))
        try hub.replica.registerNode("hq", role: .hq, secret: Array("h".utf8))
        _ = hub.executor.execute(.storePush(node: "hq", ChangeSet(ops: [hq])))
        var all: [Op] = []
        var at: SnapshotPosition? = nil
        repeat {
            let part = try hub.replica.snapshotPart(after: at, maxOps: 7)
            #expect(part.ops.count <= 7)
            all += part.ops
            at = part.next
        } while at != nil
        #expect(all.count == 51 && all.first == hq)
        #expect(Set(all.map(\.seq)).count == 50)
    }

    /// Writes by hq numbered `seqs`, one customer name each.
    func hqWrites(_ seqs: ClosedRange<UInt64>) -> [Op] {
        seqs.map { seq in
            Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000 + seq, logical: 1), node: "hq"), seq: seq, role: .hq, author: "zhaolei",
               body: .write(Target(.customer, "wm_hq\(seq)"), field: "name", value: .text("客户\(seq)"), overwrites: []))
        }
    }

    @Test func aPullLeavesOutThePullingNodesOwnOpsButTheCursorMovesPastThemAndOtherNodesOpsArrive() throws {
        let hub = try Hub()
        try hub.replica.registerNode("xihu", role: .store, secret: Array("s".utf8))
        try hub.replica.registerNode("hq", role: .hq, secret: Array("h".utf8))
        _ = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(1...20))))   // positions 1…20
        _ = hub.executor.execute(.storePush(node: "hq", ChangeSet(ops: hqWrites(1...3))))  // 21…23
        _ = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(21...25))))  // 24…28

        // xihu's pull after its push brings nothing of its own, only hq's ops; the cursor passes the end.
        guard case let .changes(ops, next, more, _) = hub.executor.execute(.readChanges(node: "xihu", after: 0, byteBudget: 1 << 20, schemaVersion: 1, ownOps: false)) else {
            Issue.record("no changes"); return
        }
        #expect(ops.map(\.op.origin) == ["hq", "hq", "hq"] && ops.map(\.position) == [21, 22, 23])
        #expect(next == 28 && !more)
        // hq still receives every op of xihu, and none of its own.
        let forHQ = try hub.replica.changes(after: 0, byteBudget: 1 << 20, leavingOut: "hq")
        #expect(forHQ.ops.count == 25 && forHQ.ops.allSatisfy { $0.op.origin == "xihu" } && forHQ.nextCursor == 28 && !forHQ.more)

        // The budget counts only ops sent: a budget of one op still brings hq's first op, after
        // passing xihu's twenty, and stops before hq's second.
        let small = try hub.replica.changes(after: 0, byteBudget: 1, leavingOut: "xihu")
        #expect(small.ops.map(\.position) == [21] && small.nextCursor == 21 && small.more)
        // From hq's last op: only own ops remain; nothing is sent and the cursor moves past them.
        let ownOnly = try hub.replica.changes(after: 23, byteBudget: 1, leavingOut: "xihu")
        #expect(ownOnly.ops.isEmpty && ownOnly.nextCursor == 28 && !ownOnly.more)

        // A snapshot for xihu leaves its own ops out too: just hq's three.
        var all: [Op] = []
        var at: SnapshotPosition? = nil
        repeat {
            let part = try hub.replica.snapshotPart(after: at, maxOps: 2, leavingOut: "xihu")
            all += part.ops
            at = part.next
        } while at != nil
        #expect(all.count == 3 && all.allSatisfy { $0.origin == "hq" })
    }

    @Test func passingOverTheNodesOwnOpsIsBoundedPerReadAndEveryReadMakesProgress() throws {
        let hub = try Hub()
        try hub.replica.registerNode("xihu", role: .store, secret: Array("s".utf8))
        try hub.replica.registerNode("hq", role: .hq, secret: Array("h".utf8))
        _ = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(1...30))))
        _ = hub.executor.execute(.storePush(node: "hq", ChangeSet(ops: hqWrites(1...1))))
        // Passing at most 20 own ops a read (65,536 by default), with a budget of one op.
        let first = try hub.replica.changes(after: 0, byteBudget: 1, leavingOut: "xihu", passingAtMost: 20)
        #expect(first.ops.isEmpty && first.more && first.nextCursor == 20)
        let second = try hub.replica.changes(after: first.nextCursor, byteBudget: 1, leavingOut: "xihu", passingAtMost: 20)
        #expect(second.ops.map(\.op.origin) == ["hq"] && !second.more && second.nextCursor == 31)
    }

    /// A serving hub reads a snapshot in short runs (`HubServer.Configuration.snapshotPartMillis`):
    /// a part's read stops once its time budget is spent — after the op it read, with the rest of
    /// that instance — and the next part resumes where it left, so the parts hold every op once, in
    /// the order one unbounded part has them. A budget of 0 ms is spent after every op: each part
    /// is then one instance whole. Through `HubReader`, the path a serving hub runs.
    @Test func aSnapshotPartStopsOnceItsTimeBudgetIsSpentAndTheNextResumesWhereItLeft() throws {
        let hub = try Hub()
        try hub.replica.registerNode("xihu", role: .store, secret: Array("s".utf8))
        try hub.replica.registerNode("hq", role: .hq, secret: Array("h".utf8))
        _ = hub.executor.execute(.storePush(node: "hq", ChangeSet(ops: hqWrites(1...6))))
        // Three ops on each of six customers, so that an instance has more than one op.
        let more = (7...18).map { seq in
            Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000 + seq, logical: 1), node: "hq"), seq: UInt64(seq), role: .hq, author: "zhaolei",
               body: .write(Target(.customer, "wm_hq\((seq - 7) % 6 + 1)"), field: seq < 13 ? "phone" : "unionid", value: .text("v\(seq)"), overwrites: []))
        }
        _ = hub.executor.execute(.storePush(node: "hq", ChangeSet(ops: more)))
        _ = hub.executor.execute(.storePush(node: "xihu", ChangeSet(ops: adds(1...5))))
        let whole = try hub.replica.snapshotPart(after: nil, maxOps: 10_000)
        #expect(whole.next == nil && whole.ops.count == 23)
        let instances = Set(whole.ops.map(\.instance))

        var parts: [[Op]] = []
        var at: SnapshotPosition? = nil
        repeat {
            let part = try hub.replica.snapshotPart(after: at, maxOps: 10_000, timeBudgetMillis: 0)
            parts.append(part.ops)
            at = part.next
        } while at != nil && parts.count <= 100
        // One instance a part (the last may be empty: it only finds the end).
        let filled = parts.filter { !$0.isEmpty }
        #expect(filled.count == instances.count)
        #expect(filled.allSatisfy { Set($0.map(\.instance)).count == 1 })
        #expect(parts.flatMap { $0 } == whole.ops)

        // The reader: without a budget one part; with 0 ms one instance a part, then the digest.
        func partsRead(_ reader: HubReader) -> [Int] {
            guard case let .answered(.startSnapshot(id, _, _), _) = reader.read(.readChanges(node: "hq", after: 999, byteBudget: 1 << 20,
                                                                                             schemaVersion: UInt64(currentSchemaVersion), ownOps: true)) else {
                Issue.record("a PULL past the head started no snapshot"); return []
            }
            var counts: [Int] = []
            for part in 0..<100 {
                guard case let .answered(.snapshotPart(ops, isLast, digest, _), _) = reader.read(.readSnapshotPart(node: "hq", snapshotID: id, part: UInt64(part))) else {
                    Issue.record("no snapshot part"); return counts
                }
                counts.append(ops.count)
                if isLast { #expect(digest.count == 32); break }
            }
            return counts
        }
        let unbounded = HubReader(replica: hub.replica, options: hub.executor.options, logEpoch: hub.executor.logEpoch)
        #expect(partsRead(unbounded) == [23])
        let sliced = HubReader(replica: hub.replica, options: hub.executor.options, logEpoch: hub.executor.logEpoch, snapshotPartMillis: 0)
        let counts = partsRead(sliced)
        #expect(counts.filter { $0 > 0 }.count == instances.count && counts.reduce(0, +) == 23)
    }
}
