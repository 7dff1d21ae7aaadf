import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuNode
import SiyuSession
import SiyuStore
import SiyuWire
import SiyuTestSupport

/// Issue 18, section 4: a power cut or a restore from a backup loses nothing a hub acknowledged
/// (SPEC section 7, "Log epochs" and "Identity"), through the real executors and replicas.
@Suite struct PowerLossTests {
    func edit(_ r: Replica, _ n: Int, wall: WallClock, note: String = "") throws {
        for i in 0..<n {
            wall.now += 1
            try r.createCustomer("wm_\(r.node)_\(note)\(i)", ["name": .text("客户\(note)\(i)")], by: "chenjing")
        }
    }

    func has(_ run: SyncRun, _ match: (SessionEvent) -> Bool) -> Bool { run.nodeEvents.contains(where: match) }

    @Test func aHubCommitsDurablyAndANodeRelaxedBeforeAnAck() throws {
        let w = try SyncWorld()
        #expect(try w.hubReplica.commitDurability() == .full)      // set by HubStoreExecutor
        #expect(try w["xihu"].commitDurability() == .normal)       // a store node: recoverable from the hub
    }

    /// A store node commits edits with NORMAL, but the commit that stores its hub cursor — and the
    /// snapshot load's — is synced: a power cut never takes its file back before a cursor it sent
    /// (the hub compacts its log up to the lowest one, SPEC section 7, "Compaction").
    @Test func aNodeSyncsTheCommitThatStoresItsCursorAndOnlyThatOne() throws {
        let w = try SyncWorld(options: .init(bootstrapSnapshotOps: 1))
        try seedHQ(w["hq"], customers: 5, wall: w.wall)
        _ = try w.sync("hq")
        let xihu = w["xihu"]
        _ = try w.sync("xihu")                                        // a bootstrap snapshot, then CHANGES
        #expect(xihu.syncedCursorCommits >= 2, "the snapshot load and the CHANGES after it")
        #expect(try xihu.commitDurability() == .normal)              // back to NORMAL for edits
        let before = xihu.syncedCursorCommits
        try xihu.editCustomer("wm_1", ["phone": .text("13900000001")], by: "chenjing")
        #expect(xihu.syncedCursorCommits == before, "an edit is not synced")
        #expect(w.hubReplica.syncedCursorCommits == 0, "the hub commits everything with FULL anyway")
    }

    @Test func theLogEpochIsKeptOnlyAcrossACleanStopAndABackupCopyStartsANewOne() throws {
        let w = try SyncWorld()
        let first = w.hub.logEpoch
        #expect(first.count == 32 && w.hub.logEpochRenewed)
        try w.restartHub()                                            // no clean stop: a crash
        #expect(w.hub.logEpoch != first && w.hub.logEpochRenewed)
        let second = w.hub.logEpoch
        try w.hubReplica.markCleanStop()
        let copy = w.dir.path("hub-copy.db")
        try w.hubReplica.backup(to: copy)
        let mode = (try FileManager.default.attributesOfItem(atPath: copy)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        try w.restartHub()                                            // after the clean stop: kept
        #expect(w.hub.logEpoch == second && !w.hub.logEpochRenewed)
        try w.hubReplica.markCleanStop()
        try w.restartHub(from: copy)                                  // a restored copy: new
        #expect(w.hub.logEpoch != second && w.hub.logEpochRenewed)
        #expect(throws: ReplicaError.self) { try w.hubReplica.backup(to: copy) }   // never overwrites
    }

    @Test func aHubsRestoreGraceStartsWithEachNewEpochAndIsKeptAcrossACleanStop() throws {
        let w = try SyncWorld()
        #expect(w.hubReplica.restoreGrace == nil)                    // the file's first epoch: no earlier history
        w.wall.now += 10_000
        try w.restartHub()                                            // a crash: a new epoch, a grace
        #expect(w.hubReplica.restoreGrace == RestoreGrace(epochStartedMillis: w.wall.now, graceMillis: 3_600_000))
        let started = w.wall.now
        try w.hubReplica.markCleanStop()
        w.wall.now += 10_000
        try w.restartHub()                                            // a clean stop: the same epoch and grace
        #expect(w.hubReplica.restoreGrace?.epochStartedMillis == started)
    }

    @Test func aNewEpochPutsTheQuarantinedOpsAboveWelcomesAckedSeqBackInTheOutbox() throws {
        let w = try SyncWorld()
        try edit(w["xihu"], 4, wall: w.wall)
        try w["xihu"].quarantine(seq: 2, code: 8, message: "op 2: refused")
        try w["xihu"].quarantine(seq: 4, code: 8, message: "op 4: refused")
        #expect(try w["xihu"].outbox(after: 0, limit: 10).map(\.seq) == [1, 3])
        // The hub had settled #2 (its acked_seq passed it) but may have lost the refusal of #4.
        try w["xihu"].adoptLogEpoch(Array(repeating: 7, count: 32), ackedSeq: 3)
        #expect(try w["xihu"].quarantinedOps().map(\.seq) == [2])
        #expect(try w["xihu"].outbox(after: 3, limit: 10).map(\.seq) == [4])
    }

    @Test func aNodeWhoseFileWentBackTakesItsAcknowledgedOpsFromTheHubAndRenumbersItsNewOnes() throws {
        let w = try SyncWorld()
        try w.sync("xihu")
        try edit(w["xihu"], 2, wall: w.wall, note: "a")
        let copy = w.dir.path("xihu-copy.db")
        try w["xihu"].backup(to: copy)
        try edit(w["xihu"], 3, wall: w.wall, note: "b")
        try w.sync("xihu")
        #expect(try w.hubReplica.registeredNode("xihu")?.ackedSeq == 5)
        // The power cut: the file holds ops 1…2; the shop goes on editing before the node reconnects.
        try w.restoreNode("xihu", from: copy)
        #expect(try w["xihu"].lastIssuedSeq() == 2)
        try edit(w["xihu"], 1, wall: w.wall, note: "c")               // numbered 3: the hub holds another #3
        let run = try w.sync("xihu")
        #expect(!has(run) { if case .identityConflict = $0 { return true }; return false })
        #expect(has(run) { if case .recoveringOwnOps(5, 3) = $0 { return true }; return false })
        #expect(try w["xihu"].lastIssuedSeq() == 6)                   // 1…5 from before, the new edit now #6
        #expect(try w.hubReplica.registeredNode("xihu")?.ackedSeq == 6)
        #expect(try w["xihu"].state(of: InstanceRef(.customer, "wm_xihu_c0")).hasOps)
        #expect(try w["xihu"].state(of: InstanceRef(.customer, "wm_xihu_b2")).hasOps)   // recovered
        try w.sync("hq")
        #expect(try w.hubReplica.digest() == w["xihu"].digest())
        #expect(try w.hubReplica.digest() == w["hq"].digest())
        // Reconnecting again: nothing to recover, nothing to push.
        let again = try w.sync("xihu")
        #expect(!has(again) { if case .recoveringOwnOps = $0 { return true }; return false })
        #expect(!again.nodeSent.contains { $0.type == .push })
    }

    /// The file's clock goes back with it: with the wall clock where it was when the lost op was
    /// made (the clock running ahead of the wall, in the shop), the clerk's next edit gets the lost
    /// op's number and its stamp too. It is renumbered and given a fresh stamp, and the edit made
    /// after it that overwrote it names the new stamp (simulator seed 5417).
    @Test func anEditAfterAPowerCutThatGotTheLostOpsStampTooIsRestampedAndWhatNamedItFollows() throws {
        let w = try SyncWorld()
        try w.sync("xihu")
        try edit(w["xihu"], 2, wall: w.wall, note: "a")
        let copy = w.dir.path("xihu-copy.db")
        try w["xihu"].backup(to: copy)
        let before = w.wall.now
        try edit(w["xihu"], 1, wall: w.wall, note: "b")
        try w.sync("xihu")
        let acked = try w.hubReplica.registeredNode("xihu")?.ackedSeq ?? 0
        try w.restoreNode("xihu", from: copy)
        w.wall.now = before                                            // the same clock as the lost op's
        try edit(w["xihu"], 1, wall: w.wall, note: "c")                // the lost op's number and stamp
        let lost = try w.hubReplica.changeSet(since: VersionVector()).ops.filter { $0.origin == "xihu" }.map(\.stamp)
        let made = try w["xihu"].changeSet(since: VersionVector()).ops.filter { $0.origin == "xihu" }.map(\.stamp)
        #expect(!Set(lost).isDisjoint(with: made), "a stamp the hub holds on another op")
        try w["xihu"].editCustomer("wm_xihu_c0", ["name": .text("改名")], by: "chenjing")   // overwrites it
        let run = try w.sync("xihu")
        #expect(!has(run) { if case .identityConflict = $0 { return true }; return false })
        #expect(try w["xihu"].lastIssuedSeq() > acked)
        try w.sync("hq")
        #expect(try w.hubReplica.rows(of: .customers, where: "customer_id", equals: "wm_xihu_c0").first?["name"]?.textValue == "改名")
        #expect(try w.hubReplica.conflicts().isEmpty, "the rename overwrote the recreated customer's name, as at the node")
        #expect(try w.hubReplica.digest() == w["xihu"].digest())
        #expect(try w.hubReplica.digest() == w["hq"].digest())
    }

    @Test func aHubRestoredFromABackupIsNoticedAndNoNodeSkipsAnOpItReusedAPositionFor() throws {
        let w = try SyncWorld()
        try edit(w["hq"], 2, wall: w.wall, note: "a")
        try w.sync("hq")
        try w.sync("xihu")
        let copy = w.dir.path("hub-copy.db")
        try w.hubReplica.backup(to: copy)
        // After the backup: xihu pushes 3 ops and pulls to the head.
        try edit(w["xihu"], 3, wall: w.wall, note: "b")
        try w.sync("xihu")
        try w.sync("xihu")                                            // pulls past its own ops
        let cursorBefore = try w["xihu"].syncState().position
        #expect(cursorBefore == 5)
        // The hub is restored from the copy; HQ pushes 4 new ops: they take positions 3…6, which
        // xihu's cursor (5) had passed in the old history.
        try w.restartHub(from: copy)
        #expect(try w.hubReplica.logHead() == 2)
        try edit(w["hq"], 4, wall: w.wall, note: "c")
        let hqRun = try w.sync("hq")
        #expect(has(hqRun) { if case .logEpochChanged = $0 { return true }; return false })
        #expect(try w.hubReplica.logHead() == 6)
        let run = try w.sync("xihu")
        #expect(has(run) { if case .logEpochChanged(5) = $0 { return true }; return false })
        let cursors: [UInt64] = run.nodeSent.compactMap { if case let .pull(c, _, _) = $0 { return c }; return nil }
        #expect(cursors.first == 0)
        #expect(try w.hubReplica.registeredNode("xihu")?.ackedSeq == 3)   // pushed again after WELCOME's 0
        #expect(try w["xihu"].state(of: InstanceRef(.customer, "wm_hq_c3")).hasOps)   // not skipped
        try w.sync("hq")
        #expect(try w.hubReplica.digest() == w["xihu"].digest())
        #expect(try w.hubReplica.digest() == w["hq"].digest())
    }
}
