import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuStore
import SiyuTestSupport

/// A tag-library change that re-merges many customers is settled by the hub in slices, between
/// other writes (SPEC section 10): the tables end as an all-at-once merge leaves them, and the digest
/// is always of the settled state.
@Suite struct SlicedRemergeTests {
    final class Scratch {
        let dir: TemporaryDirectory
        var now: UInt64 = 1_764_000_000_000
        var opened: [Replica] = []
        init() throws {
            dir = try TemporaryDirectory()
        }
        func replica(_ name: String, role: Role = .hq) throws -> Replica {
            let r = try Replica(path: dir.path("\(name).db"),
                                options: ReplicaOptions(node: name, role: role, wallClock: { [unowned self] in self.now }))
            opened.append(r)
            return r
        }
        func reopen(_ name: String) throws -> Replica {
            let r = try Replica(existing: dir.path("\(name).db"))
            opened.append(r)
            return r
        }
        deinit {
            for r in opened { r.close() }
            dir.remove()
        }
    }

    /// HQ's edits since the last call, as one PUSH.
    final class Outbox {
        let hq: Replica
        var sent = VersionVector()
        init(_ hq: Replica) { self.hq = hq }
        func next() throws -> ChangeSet {
            let cs = try hq.changeSet(since: sent)
            sent = try hq.versionVector()
            return cs
        }
    }

    /// A hub re-merging in slices of `slice` and one re-merging all at once, and a push of HQ's
    /// edits since the last push to both.
    func pair(_ s: Scratch, _ hq: Replica, slice: Int) throws -> (sliced: HubStoreExecutor, whole: HubStoreExecutor, push: () throws -> Void) {
        let outbox = Outbox(hq)
        let sliced = try hub(s, "sliced", slice: slice)
        let whole = try hub(s, "whole", slice: nil)
        return (sliced, whole, {
            let cs = try outbox.next()
            for h in [sliced, whole] {
                guard case .pushStored = h.execute(.storePush(node: "hq", cs)) else { Issue.record("a PUSH was refused"); return }
            }
        })
    }

    func hub(_ s: Scratch, _ name: String, slice: Int?) throws -> HubStoreExecutor {
        let replica = try s.replica(name)
        try replica.registerNode("hq", role: .hq, secret: Array("h".utf8))
        return try HubStoreExecutor(replica: replica, options: .init(bootstrapSnapshotOps: nil, tagHolderSlice: slice))
    }

    @Test func aGroupTurnedExclusiveIsReMergedInSlicesAndTheTablesEndAsAnAllAtOnceMergeLeavesThem() throws {
        let s = try Scratch()
        let hq = try s.replica("hq")
        let (sliced, whole, push) = try pair(s, hq, slice: 3)
        // Ten customers each hold two tags of one group; four hold only one.
        try hq.defineTagGroup("level", name: "会员等级")
        try hq.defineTag("silver", group: "level", name: "银卡")
        try hq.defineTag("gold", group: "level", name: "金卡")
        for i in 0..<14 {
            try hq.createCustomer("c\(i)", ["name": .text("客户\(i)")], by: "zhaolei")
            try hq.addTag("silver", to: "c\(i)", by: "zhaolei")
            if i < 10 { try hq.addTag("gold", to: "c\(i)", by: "zhaolei") }
        }
        try push()
        #expect(try sliced.replica.hasPendingRemerges == false)
        let before = try sliced.replica.rows(of: .customerTags).count
        #expect(before == 24)

        // The group turns exclusive: every holder's merge changes (one tag of the two is dropped).
        try hq.defineTagGroup("level", name: "会员等级", exclusive: true)
        try push()
        #expect(try whole.replica.rows(of: .customerTags).count == 14)
        // The sliced hub stored the change but re-merged nobody yet.
        #expect(try sliced.replica.hasPendingRemerges)
        #expect(try sliced.replica.rows(of: .customerTags).count == before)

        // A customer that receives an op meanwhile is merged whole with it, at once.
        try hq.editCustomer("c3", ["phone": .text("13800000003")], by: "zhaolei")
        try push()
        #expect(try sliced.replica.rows(of: .customerTags, where: "customer_id", equals: "c3").count == 1)

        // Slices of 3 customers: silver's 14 holders, then gold's 10.
        var slices = 0
        while try sliced.settleRemergeSlice() { slices += 1 }
        slices += 1
        #expect(slices == 9, "\(slices) slices")
        #expect(try sliced.replica.hasPendingRemerges == false)
        for table in [Table.customerTags, .customers, .tagGroups, .tags] {
            #expect(try sliced.replica.rows(of: table) == whole.replica.rows(of: table), "\(table)")
        }
        #expect(try sliced.replica.conflicts() == whole.replica.conflicts())
        #expect(try sliced.replica.digest() == whole.replica.digest())
        #expect(try whole.replica.digest() == hq.digest())
    }

    @Test func aSliceEndsOnceItsTimeBudgetIsSpentWhateverItsCount() throws {
        let s = try Scratch()
        let hq = try s.replica("hq")
        let (sliced, whole, push) = try pair(s, hq, slice: 5)
        try hq.defineTagGroup("level", name: "会员等级")
        try hq.defineTag("silver", group: "level", name: "银卡")
        for i in 0..<40 {
            try hq.createCustomer("c\(i)", ["name": .text("客户\(i)")], by: "zhaolei")
            try hq.addTag("silver", to: "c\(i)", by: "zhaolei")
        }
        try push()
        try hq.defineTagGroup("level", name: "会员等级", exclusive: true)
        try push()
        #expect(try sliced.replica.hasPendingRemerges)
        // No count limit, a spent time budget: each slice re-merges one batch (32 customers), then stops.
        #expect(try sliced.replica.settlePendingRemerges(limit: nil, timeBudgetMillis: 0), "8 of 40 holders left")
        #expect(try sliced.replica.settlePendingRemerges(limit: nil, timeBudgetMillis: 0) == false)
        for table in [Table.customerTags, .customers, .tagGroups, .tags] {
            #expect(try sliced.replica.rows(of: table) == whole.replica.rows(of: table), "\(table)")
        }
        #expect(try sliced.replica.digest() == whole.replica.digest())
    }

    @Test func aDigestTakenWhileSlicesArePendingIsOfTheSettledStateAndPendingWorkSurvivesAReopen() throws {
        let s = try Scratch()
        let hq = try s.replica("hq")
        let outbox = Outbox(hq)
        let sliced = try hub(s, "sliced", slice: 2)
        try hq.defineTagGroup("pref", name: "消费偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        for i in 0..<9 {
            try hq.createCustomer("c\(i)", ["name": .text("客户\(i)")], by: "zhaolei")
            try hq.addTag("tea", to: "c\(i)", by: "zhaolei")
        }
        _ = sliced.execute(.storePush(node: "hq", try outbox.next()))
        try hq.deleteTag("tea")
        _ = sliced.execute(.storePush(node: "hq", try outbox.next()))
        #expect(try sliced.settleRemergeSlice())   // 2 of 9 done
        #expect(try sliced.replica.rows(of: .customerTags).count == 7)

        // Reopened (a hub restarted mid-way): the rest is still pending, and resumes.
        sliced.replica.close()
        let reopened = try s.reopen("sliced")
        #expect(try reopened.hasPendingRemerges)
        #expect(try reopened.settlePendingRemerges(limit: 2))
        #expect(try reopened.rows(of: .customerTags).count == 5)
        // A digest settles the rest first: it equals HQ's, which merged everything.
        #expect(try reopened.digest() == hq.digest())
        #expect(try reopened.hasPendingRemerges == false)
        #expect(try reopened.rows(of: .customerTags).isEmpty)
    }

    /// A store bootstrapping while HQ's library change is re-merged is not held back until every
    /// holder is done: its snapshot ends with no digest (32 zero bytes, SPEC section 7); once
    /// settled, a snapshot ends with the digest of the settled state.
    @Test func aSnapshotEndsWithoutADigestWhileHoldersWaitAndWithTheSettledDigestAfter() throws {
        let s = try Scratch()
        let hq = try s.replica("hq")
        let outbox = Outbox(hq)
        let sliced = try hub(s, "sliced", slice: 1)
        try sliced.replica.registerNode("xihu", role: .store, secret: Array("x".utf8))
        try hq.defineTagGroup("pref", name: "消费偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        for i in 0..<5 {
            try hq.createCustomer("c\(i)", ["name": .text("客户\(i)")], by: "zhaolei")
            try hq.addTag("tea", to: "c\(i)", by: "zhaolei")
        }
        _ = sliced.execute(.storePush(node: "hq", try outbox.next()))
        try hq.deleteTag("tea")
        _ = sliced.execute(.storePush(node: "hq", try outbox.next()))
        #expect(try sliced.replica.hasPendingRemerges)

        func snapshotDigest() throws -> [UInt8]? {
            guard case let .startSnapshot(id, _, _) = sliced.execute(.readChanges(node: "xihu", after: 99, byteBudget: 1 << 20, schemaVersion: 1, ownOps: false)) else {
                Issue.record("no snapshot"); return nil
            }
            var part: UInt64 = 0
            while true {
                guard case let .snapshotPart(_, isLast, d, _) = sliced.execute(.readSnapshotPart(node: "xihu", snapshotID: id, part: part)) else {
                    Issue.record("no snapshot part"); return nil
                }
                if isLast { return d }
                part += 1
            }
        }
        #expect(try snapshotDigest() == HubReader.unsettledDigest)
        #expect(try sliced.replica.hasPendingRemerges, "the snapshot did not wait for the re-merge")
        while try sliced.settleRemergeSlice() {}
        #expect(try snapshotDigest() == (try hq.digest()))
    }
}
