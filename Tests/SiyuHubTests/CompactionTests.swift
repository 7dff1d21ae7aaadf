import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuStore
import SiyuWire

/// A hub's log compaction (SPEC section 7, "Compaction"; docs/SCALING.md): what goes, what stays,
/// and that no node loses or misses anything because of it.
@Suite struct CompactionTests {
    typealias World = WriteRightsTests.World
    typealias StoreNode = TransferTests.StoreNode

    /// A write of customer `id`'s `field` by `node`, naming the hub's current heads of it (a plain
    /// overwrite, as an edit that saw them).
    func overwrite(_ w: World, _ node: String, _ id: String, _ field: String, _ value: String, author: String = "chenjing") throws -> Op {
        let target = Target(.customer, id, "")
        let heads = try w.hub.state(of: InstanceRef(.customer, id)).heads(target, field)
        w.now += 10
        guard node == "hq" else { return w.op(node, .write(target, field: field, value: .text(value), overwrites: heads), author: author) }
        // HQ's ops are numbered after those its replica issued in the world's setup.
        if w.seq["hq"] == nil { w.seq["hq"] = try w.hq.lastIssuedSeq() }
        var op = w.op("hq", .write(target, field: field, value: .text(value), overwrites: heads), author: "zhaolei")
        op.role = .hq
        return op
    }

    /// Every node with a history has pulled up to the log's head.
    func everyonePulled(_ w: World) throws {
        let head = try w.hub.logHead()
        try w.hub.recordCursors(["hq": head, "xihu": head, "binjiang": head])
    }

    /// The hub's state digests: everything, and each store's scope.
    func digests(_ w: World) throws -> [[UInt8]] {
        [try w.hub.digest(), try w.hub.scopeDigest(.store("xihu")).digest, try w.hub.scopeDigest(.store("binjiang")).digest]
    }

    /// Three names of c_x in a row, each overwriting the last: the first two go, the state stays.
    @Test func overwrittenFieldWritesEveryNodePulledPastAreDroppedAndEveryDigestStays() throws {
        let w = try World()
        for name in ["林一", "林二", "林三"] { #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "name", name)]) == nil) }
        try everyonePulled(w)
        let before = try digests(w)
        let total = try w.hub.opCounts().total
        let report = try w.hub.compactLog()
        #expect(try report.heldBackBy != nil && report.stablePosition == w.hub.logHead())
        #expect(report.opsDropped >= 2, "\(report)")
        #expect(report.instancesKeptByCheck == 0)
        #expect(try w.hub.opCounts().total == total - report.opsDropped)
        #expect(try w.hub.droppedOpCount() == Int64(report.opsDropped))
        #expect(try digests(w) == before)
        #expect(try w.hub.rows(of: .customers, where: "customer_id", equals: "c_x").first?["name"]?.textValue == "林三")
        #expect(try report.floor > 0 && w.hub.logFloor() == report.floor)
        #expect(try w.hub.logCompactions() == 1)
        // A second pass finds nothing more, and changes no mark.
        let again = try w.hub.compactLog()
        #expect(again.opsDropped == 0)
        #expect(try w.hub.logCompactions() == 1)
    }

    /// A dropped op's position is forgotten, but never the head's: the next op logged after a
    /// compaction gets the position after the head, not one that was given before.
    @Test func aDroppedOpsPositionIsForgottenButNoPositionIsGivenTwice() throws {
        let w = try World()
        for name in ["林一", "林二", "林三"] { #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "name", name)]) == nil) }
        try everyonePulled(w)
        let head = try w.hub.logHead()
        let report = try w.hub.compactLog()
        #expect(report.opsDropped >= 2)
        #expect(report.positionsForgotten == report.opsDropped, "every dropped op lay below the head")
        #expect(try w.hub.logHead() == head)
        #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "name", "林四")]) == nil)
        #expect(try w.hub.logHead() == head + 1, "the next position after the head, none given twice")
        // A node that pulled before the compaction reads on from its cursor: the positions skipped.
        let changes = try w.hub.changes(after: 0, byteBudget: 1 << 20, scope: .everything, leavingOut: nil)
        #expect(changes.ops.count == Int(try w.hub.opCounts().total), "every op held is read once, in log order")
        #expect(changes.nextCursor == head + 1)
    }

    /// A customer's first op may go (its name, renamed twice): the clock of its earliest op, which
    /// the restore grace reads, stays what it was.
    @Test func theFirstOpOfAnInstanceMayGoAndItsClockIsKept() throws {
        let w = try World()
        let customer = InstanceRef(.customer, "c_new")
        let created = w.write("xihu", .customer, "c_new", "name", .text("新一"))
        #expect(try w.push("xihu", [created, w.write("xihu", .customer, "c_new", "owner_store", .text("xihu"))]) == nil)
        for name in ["新二", "新三"] { #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_new", "name", name)]) == nil) }
        let earliest = try #require(try w.hub.earliestHeldClock(of: customer))
        #expect(earliest == created.hlc)
        try everyonePulled(w)
        _ = try w.hub.compactLog()
        #expect(try w.hub.hasDropped(origin: "xihu", seq: created.seq), "the first name went")
        #expect(try w.hub.earliestHeldClock(of: customer) == earliest)
    }

    /// The lowest cursor bounds what goes: writes overwritten only after xihu's cursor stay.
    @Test func theSlowestNodesCursorHoldsCompactionBack() throws {
        let w = try World()
        #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "name", "林一")]) == nil)
        try everyonePulled(w)
        let slow = try w.hub.logHead()
        #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "name", "林二")]) == nil)
        #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "name", "林三")]) == nil)
        let head = try w.hub.logHead()
        try w.hub.recordCursors(["hq": head, "xihu": slow, "binjiang": head])
        let report = try w.hub.compactLog()
        #expect(report.heldBackBy == "xihu" && report.stablePosition == slow)
        // Only HQ's first name write (overwritten by 林一, both before the stable point) may go.
        #expect(report.opsDropped <= 1, "\(report)")
        #expect(report.floor <= slow)
        let names = try w.hub.state(of: InstanceRef(.customer, "c_x"))
        #expect(names.value(Target(.customer, "c_x", ""), "name") == .text("林三"))
        #expect(try w.hub.opCounts().total >= 3)
    }

    /// Concurrent writes (an open conflict), and the resolving write that closes it, stay: each
    /// side is named by a write that named two.
    @Test func theSidesOfAConflictAndWhatAResolutionNamedStay() throws {
        let w = try World()
        let heads = try w.hub.state(of: InstanceRef(.customer, "c_x")).heads(Target(.customer, "c_x", ""), "phone")
        w.now += 10
        let a = w.op("xihu", .write(Target(.customer, "c_x", ""), field: "phone", value: .text("13800000001"), overwrites: heads))
        let b = Op(stamp: Stamp(hlc: HLC(millis: w.now, logical: 900), node: "hq"), seq: try w.hq.lastIssuedSeq() + 1, role: .hq, author: "zhaolei",
                   body: .write(Target(.customer, "c_x", ""), field: "phone", value: .text("13800000002"), overwrites: heads))
        #expect(try w.push("xihu", [a]) == nil)
        #expect(try w.push("hq", [b]) == nil)
        let open = try w.hub.conflicts()
        #expect(open.count == 1)
        #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "phone", "13800000003")]) == nil)   // names both
        try everyonePulled(w)
        let before = (try digests(w), try w.hub.conflicts())
        let report = try w.hub.compactLog()
        #expect(report.opsDropped == 0, "no write of the setup was overwritten, and the phone's were all named by a write naming two")
        #expect(report.instancesKeptByCheck == 0)
        #expect(try digests(w) == before.0)
        #expect(try w.hub.conflicts() == before.1)
    }

    /// A number whose op was dropped stays held: the same op pushed again is a duplicate, another
    /// op under it an identity conflict; the same op under a new number (a node that renumbered it
    /// while recovering) is held under that number too, and nothing is stored again.
    @Test func aDroppedNumberStaysHeldAndItsOpIsKnownByItsStampUnderANewNumber() throws {
        let w = try World()
        let first = try overwrite(w, "xihu", "c_x", "name", "林一")
        #expect(try w.push("xihu", [first]) == nil)
        #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "name", "林二")]) == nil)
        try everyonePulled(w)
        #expect(try w.hub.compactLog().opsDropped >= 1)
        #expect(try w.hub.hasDropped(origin: "xihu", seq: 1), "xihu's first write went")
        let total = try w.hub.opCounts().total
        guard case let .stored(acked, newOps) = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: [first])) else {
            Issue.record("the same op again is not a duplicate"); return
        }
        #expect(acked == 2 && newOps == 0)
        var other = first
        other.body = .write(Target(.customer, "c_x", ""), field: "name", value: .text("别人"), overwrites: [])
        guard case let .refused(refusal, _) = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: [other])) else {
            Issue.record("another op under a dropped number is taken"); return
        }
        #expect(refusal.message.contains("holds another op numbered 1"))
        var renumbered = first
        renumbered.seq = 3
        guard case let .stored(ackedAfter, stored) = try w.hub.acceptPush(from: "xihu", ChangeSet(ops: [renumbered])) else {
            Issue.record("the renumbered op is not recognised"); return
        }
        #expect(ackedAfter == 3 && stored == 0)
        #expect(try w.hub.opCounts().total == total)
    }

    /// A node whose cursor fell below the log's floor (its file went back) gets a snapshot, and
    /// holding ops the hub dropped besides, merges to the hub's state of its scope.
    @Test func aNodeBelowTheFloorGetsASnapshotAndConverges() throws {
        let w = try World()
        let executor = try HubStoreExecutor(replica: w.hub, options: .init(bootstrapSnapshotOps: nil))
        let xihu = try StoreNode(w, "xihu", store: "xihu")
        try xihu.sync(executor)
        let behind = xihu.cursor
        // HQ's edits: the store node receives them (its own pushed ops it would not be sent back).
        for name in ["林一", "林二", "林三"] { #expect(try w.push("hq", [try overwrite(w, "hq", "c_x", "name", name)]) == nil) }
        try xihu.sync(executor)
        try everyonePulled(w)
        let report = try w.hub.compactLog()
        #expect(report.opsDropped >= 2)
        // Up to date: CHANGES as before.
        #expect(try w.push("hq", [try overwrite(w, "hq", "c_x", "name", "林四")]) == nil)
        try xihu.sync(executor)
        #expect(xihu.reasons.isEmpty)
        #expect(try xihu.replica.digest() == (try w.hub.scopeDigest(.store("xihu")).digest))
        // Back below the floor: a snapshot of reason 2, and the same state as the hub's.
        xihu.cursor = behind
        try xihu.sync(executor)
        #expect(xihu.reasons == [.cursorTooOld])
        #expect(try xihu.replica.digest() == (try w.hub.scopeDigest(.store("xihu")).digest))
    }

    /// xihu renames c_x twice (its ops #1 and #2), every node pulls past both, the hub compacts
    /// (#1 goes); `behind` is xihu's cursor before the renames.
    func xihuRenamedTwiceAndCompacted() throws -> (World, HubStoreExecutor, StoreNode, UInt64) {
        let w = try World()
        let executor = try HubStoreExecutor(replica: w.hub, options: .init(bootstrapSnapshotOps: nil))
        let xihu = try StoreNode(w, "xihu", store: "xihu")
        try xihu.sync(executor, ownOps: false)
        let behind = xihu.cursor
        for name in ["林一", "林二"] {
            w.now += 1_000
            try xihu.replica.editCustomer("c_x", ["name": .text(name)], by: "chenjing")
            try push(xihu, w)
        }
        try xihu.sync(executor, ownOps: false)
        try everyonePulled(w)
        _ = try w.hub.compactLog()
        return (w, executor, xihu, behind)
    }

    /// A replacing snapshot makes a node forget its own op the hub dropped (merged alone it would be
    /// a current value again), but sets it aside: should a hub's acked_seq ever be below it (a hub
    /// restored from a backup taken before it dropped the op), the node pushes it again.
    @Test func anOwnOpTheHubDroppedLeavesTheNodesMergesButStaysInItsOutboxForAHubThatLacksIt() throws {
        let (w, executor, xihu, behind) = try xihuRenamedTwiceAndCompacted()
        #expect(try w.hub.hasDropped(origin: "xihu", seq: 1))
        xihu.cursor = behind                                    // its file went back
        #expect(try xihu.sync(executor, ownOps: false) == [.cursorTooOld])
        #expect(try xihu.replica.digest() == (try w.hub.scopeDigest(.store("xihu")).digest))
        #expect(try xihu.replica.outbox(after: 0).map(\.seq) == [1, 2], "#1 set aside, #2 held")
        #expect(try xihu.replica.outbox(after: 2).isEmpty)
    }

    /// A new log epoch (the hub restored, perhaps from before its compaction) brings the own ops a
    /// replacing snapshot set aside back into the node's op log and merges: the node reads the log
    /// again from 0, and an older log holds again the ops of other origins they overwrote — which,
    /// without them, would be heads again at the node (simulator seed 2711). Nothing is pushed twice.
    @Test func aNewLogEpochBringsTheOwnOpsASnapshotSetAsideBack() throws {
        let (w, executor, xihu, behind) = try xihuRenamedTwiceAndCompacted()
        xihu.cursor = behind
        #expect(try xihu.sync(executor, ownOps: false) == [.cursorTooOld])
        func holdsFirst() throws -> Bool { try xihu.replica.changeSet(since: VersionVector()).ops.contains { $0.origin == "xihu" && $0.seq == 1 } }
        #expect(try !holdsFirst(), "set aside by the snapshot")
        let digest = try xihu.replica.digest()
        try xihu.replica.adoptLogEpoch([7, 7, 7, 7], ackedSeq: 2)
        #expect(try holdsFirst(), "back in the op log")
        #expect(try xihu.replica.digest() == digest, "overwritten by #2, which the node holds: the rows stay")
        #expect(try xihu.replica.outbox(after: 0).map(\.seq) == [1, 2], "each once")
    }

    /// A compaction between two parts of a snapshot abandons it: `busy`, and the next PULL reads a
    /// new one. (A store at cursor 0 below the floor of a first compaction gets the snapshot.)
    @Test func aSnapshotReadAcrossACompactionIsAbandoned() throws {
        let w = try World()
        let executor = try HubStoreExecutor(replica: w.hub, options: .init(bootstrapSnapshotOps: nil))
        for name in ["林一", "林二"] { #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "name", name)]) == nil) }
        try everyonePulled(w)
        #expect(try w.hub.compactLog().opsDropped >= 1)
        guard case let .startSnapshot(id, _, reason) = executor.execute(.readChanges(node: "xihu", after: 0, byteBudget: 1 << 20, schemaVersion: 1, ownOps: false)) else {
            Issue.record("a PULL from below the floor is not answered with a snapshot"); return
        }
        #expect(reason == .cursorTooOld)
        for name in ["林三", "林四"] { #expect(try w.push("xihu", [try overwrite(w, "xihu", "c_x", "name", name)]) == nil) }
        try everyonePulled(w)
        #expect(try w.hub.compactLog().opsDropped >= 1)
        guard case let .failed(code, message) = executor.execute(.readSnapshotPart(node: "xihu", snapshotID: id, part: 0)) else {
            Issue.record("the snapshot went on across a compaction"); return
        }
        #expect(code == .busy && message.contains("compacted"))
    }

    /// Pushes the node's outbox after the hub's acked_seq and records the acknowledgement.
    func push(_ node: StoreNode, _ w: World) throws {
        let acked = try #require(try w.hub.registeredNode(node.name)).ackedSeq
        let outbox = try node.replica.outbox(after: acked)
        guard !outbox.isEmpty else { return }
        guard case let .stored(now, _) = try w.hub.acceptPush(from: node.name, ChangeSet(ops: outbox)) else {
            Issue.record("the push was not stored"); return
        }
        try node.replica.recordAcknowledged(now)
    }

    /// A store PC's file goes back past ops the hub acknowledged — and compacted — and the clerk
    /// edits before it reconnects: the edit takes a number the hub had given a dropped op. The
    /// recovery does not get that op back, so it gives the clerk's edit a new number: it is pushed
    /// and reaches the hub, and the node converges.
    @Test func aClerksEditUnderADroppedNumberAfterAPowerCutIsRenumberedAndReachesTheHub() throws {
        let w = try World()
        let executor = try HubStoreExecutor(replica: w.hub, options: .init(bootstrapSnapshotOps: nil))
        let xihu = try StoreNode(w, "xihu", store: "xihu")
        try xihu.sync(executor, ownOps: false)
        w.now += 1_000
        try xihu.replica.editCustomer("c_x", ["name": .text("林一")], by: "chenjing")         // #1
        try push(xihu, w)
        // What the power cut will go back to: #1 held and acknowledged.
        let path = xihu.replica.path
        xihu.replica.close()
        let saved = path + ".before-cut"
        try FileManager.default.copyItem(atPath: path, toPath: saved)
        let reopened = try StoreNode(reopening: path, name: "xihu", cursor: xihu.cursor, w)
        for name in ["林二", "林三"] {                                                           // #2, #3
            w.now += 1_000
            try reopened.replica.editCustomer("c_x", ["name": .text(name)], by: "chenjing")
        }
        try push(reopened, w)
        try reopened.sync(executor, ownOps: false)
        try everyonePulled(w)
        _ = try w.hub.compactLog()
        #expect(try w.hub.hasDropped(origin: "xihu", seq: 2), "林二 was overwritten by 林三 alone")
        // The cut: the file goes back to #1; the clerk edits at once (#2 again, another op).
        reopened.replica.close()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try FileManager.default.copyItem(atPath: saved, toPath: path)
        let cut = try StoreNode(reopening: path, name: "xihu", cursor: xihu.cursor, w)
        w.now += 1_000
        try cut.replica.editCustomer("c_x", ["phone": .text("13900000000")], by: "chenjing")
        let afterCut = try #require(try cut.replica.outbox(after: 1).first)
        #expect(afterCut.seq == 2)
        // Reconnecting: the hub's acked_seq (3) is past the file's (1), so it recovers.
        let hubAcked = try #require(try w.hub.registeredNode("xihu")).ackedSeq
        #expect(hubAcked == 3)
        try cut.replica.beginOwnOpsRecovery(through: hubAcked)
        let reasons = try cut.sync(executor, ownOps: true)
        #expect(reasons == [.cursorTooOld], "the file's cursor is below the floor")
        try cut.replica.finishOwnOpsRecovery(through: hubAcked)
        let renumbered = try cut.replica.outbox(after: hubAcked)
        #expect(renumbered.map(\.stamp) == [afterCut.stamp] && renumbered.first?.seq == 4)
        try push(cut, w)
        #expect(try w.hub.rows(of: .customers, where: "customer_id", equals: "c_x").first?["phone"]?.textValue == "13900000000")
        try cut.sync(executor, ownOps: false)
        #expect(try cut.replica.digest() == (try w.hub.scopeDigest(.store("xihu")).digest))
        cut.replica.close()
    }
}
