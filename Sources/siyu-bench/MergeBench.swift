import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore

/// Section 2 — merging ~N remote ops into HQ as one change set, next to plain SQLite upserting the
/// same rows in one transaction (`SameRowsBaseline`: per op, the row of the plain tables it writes,
/// with the values HQ holds after the merge; target ≤ 2.5×). The old baseline, as many upserts of
/// `customer_tags` rows, is kept as information. Also the replica's bytes on disk per op held, next
/// to its plain tables alone (target ≤ 120 B per op held).
///
/// A store ("xihu") copies HQ's customers and tag library, then makes a mixed workload through the
/// Replica API: customer creates and phone edits, tag adds, follow-relation remarks, group joins,
/// orders and order lines. Meanwhile HQ edits the phone of every base customer, some of which the
/// store edited too, so the merge finds real conflicts; their number is reported. Only the apply
/// is timed. The change set is handed on to the wire-size section.
struct MergeBench {
    let targetOps: Int
    let directory: TemporaryDirectory

    static let baseCustomers = (0..<200).map { "wm_\($0)" }
    static let targetRatio = 2.5

    struct Outcome {
        var changeSet: ChangeSet
        var recordsMerged: Int
        var siyuSeconds: Double
        var plainSeconds: Double
        var sameRowsSeconds: Double
        var concurrentEdits: Int
        var conflicts: Int
        var disk: DiskFigures
    }

    func run() throws -> (SectionReport, ChangeSet) {
        let hq = try Replica(path: directory.path("merge-hq.db"), options: ReplicaOptions(node: "hq", role: .hq))
        let store = try Replica(path: directory.path("merge-xihu.db"), options: ReplicaOptions(node: "xihu", role: .store))
        defer { hq.close(); store.close() }
        progress("merge: setting up HQ and the store")
        try setUpBase(hq)
        try store.apply(try hq.changeSet(since: VersionVector()))

        progress("merge: the store makes ~\(grouped(targetOps)) ops")
        try makeWorkload(on: store)
        let changeSet = try store.changeSet(since: try hq.versionVector())
        let concurrent = try makeConcurrentEdits(on: hq)
        let conflictsBefore = try hq.conflicts().count
        let rowsBefore = try SameRowsBaseline.rows(of: hq)

        progress("merge: applying \(grouped(changeSet.ops.count)) ops to HQ")
        var applyReport: ApplyReport?
        let siyuSeconds = try seconds { applyReport = try hq.apply(changeSet) }
        let conflicts = try hq.conflicts().count - conflictsBefore

        let plain = try PlainSQLite.open(directory.path("plain-merge.db"), tables: [.customerTags], likeReplicaAt: hq.path)
        defer { plain.close() }
        let plainSeconds = try plainUpserts(changeSet.ops, into: plain, transactionSizes: [changeSet.ops.count])
        let steps = SameRowsBaseline.plan(changeSet.ops, after: try SameRowsBaseline.rows(of: hq))
        let sameRows = try SameRowsBaseline.database(directory.path("plain-merge-rows.db"), likeReplicaAt: hq.path, rows: rowsBefore)
        defer { sameRows.close() }
        let sameRowsSeconds = try SameRowsBaseline.run(steps, into: sameRows, transactionSizes: [steps.count])
        progress("merge: bytes on disk")
        let disk = try DiskFigures(of: hq, plainAt: directory.path("plain-merge-tables.db"))
        let outcome = Outcome(changeSet: changeSet, recordsMerged: applyReport?.instancesMerged ?? 0, siyuSeconds: siyuSeconds,
                              plainSeconds: plainSeconds, sameRowsSeconds: sameRowsSeconds, concurrentEdits: concurrent,
                              conflicts: conflicts, disk: disk)
        return (report(outcome), changeSet)
    }

    private func setUpBase(_ hq: Replica) throws {
        try hq.defineTagGroup("pref", name: "消费偏好")
        for t in 0..<10 { try hq.defineTag("t\(t)", group: "pref", name: "标签\(t)") }
        for c in MergeBench.baseCustomers { try hq.createCustomer(c, ["name": .text(c)], by: "bench") }
    }

    /// The mixed workload (unchanged from the first benchmark, so figures stay comparable).
    private func makeWorkload(on source: Replica) throws {
        let customers = MergeBench.baseCustomers
        let baseline = try source.opCounts().own
        let walkIns = (0..<max(targetOps / 20, 50)).map { "walkin_\($0)" }
        var made = 0, k = 0, rosterAdds = 0
        while made < targetOps {
            let c = walkIns[k % walkIns.count]
            switch k % 10 {
            case 0:
                try source.createCustomer(c + "_\(k)", ["name": .text("客户\(k)"), "phone": .text("138\(k)")], by: "bench")
                made += 2
            case 1...5:
                try source.addTag("t\(k % 9)", to: customers[k % customers.count], by: "bench")
                made += 1
            case 6:
                try source.editCustomer(customers[k % customers.count], ["phone": .text("139\(k)")], by: "bench")
                made += 1
            case 7 where k % 70 == 7:
                if rosterAdds % 400 == 0 {
                    try source.createGroupChat("g\(rosterAdds / 400)", ["name": .text("群")], by: "bench")
                    made += 1
                }
                try source.addMember("m\(k)", to: "g\(rosterAdds / 400)", by: "bench")
                made += 1
                rosterAdds += 1
            case 7:
                try source.setFollowRelation(customer: customers[k % customers.count], userid: "u\(k % 7)",
                                             ["remark": .text("r\(k)")], by: "bench")
                made += 1
            case 8:
                try source.createOrder("o\(k)", ["customer_id": .text(c)], by: "bench")
                made += 1
            default:
                try source.setOrderLine("1", of: "o\(k - 1)", ["sku": .text("sku\(k)"), "qty": .int(1)], by: "bench")
                made += 3
            }
            k += 1
            if k % 500 == 0 { made = try source.opCounts().own - baseline }
        }
    }

    /// HQ edits the phone of every base customer, not having seen the store's edits.
    private func makeConcurrentEdits(on hq: Replica) throws -> Int {
        for (i, c) in MergeBench.baseCustomers.enumerated() {
            try hq.editCustomer(c, ["phone": .text("137\(String(format: "%08d", i))")], by: "zhaolei")
        }
        return MergeBench.baseCustomers.count
    }

    private func report(_ o: Outcome) -> SectionReport {
        let ops = o.changeSet.ops.count
        let ratio = o.siyuSeconds / o.plainSeconds
        let sameRowsRatio = o.siyuSeconds / o.sameRowsSeconds
        let met = judgedAt100k(ops: ops, sameRowsRatio <= MergeBench.targetRatio)
        var r = SectionReport("merge of \(grouped(ops)) remote ops into HQ, one change set (\(grouped(o.recordsMerged)) records re-merged)")
        r.line("siyu          \(fixed(o.siyuSeconds)) s   (\(grouped(Int(Double(ops) / o.siyuSeconds))) ops/s)")
        r.line("plain SQLite  \(fixed(o.sameRowsSeconds)) s   (the same rows upserted, one statement per op, one transaction)")
        r.line("ratio         \(fixed(sameRowsRatio))×   (target ≤ \(MergeBench.targetRatio)×: \(verdict(met)))")
        r.line("old baseline  \(fixed(o.plainSeconds)) s   (as many customer_tags upserts, one transaction; ratio \(fixed(ratio))×, information)")
        r.line("conflicts     \(o.conflicts) logged (HQ edited the phone of \(o.concurrentEdits) customers concurrently)")
        r.line(o.disk.line(what: "HQ's replica after the merge"))

        r.figure("merge_ops", ops)
        r.figure("merge_records", o.recordsMerged)
        r.figure("merge_100k_seconds", o.siyuSeconds, digits: 4)
        r.figure("merge_plain_seconds", o.plainSeconds, digits: 4)
        r.figure("merge_ratio", ratio)
        r.figure("merge_same_rows_seconds", o.sameRowsSeconds, digits: 4)
        r.figure("merge_same_rows_ratio", sameRowsRatio)
        r.figure("merge_ops_per_s", Double(ops) / o.siyuSeconds, digits: 0)
        r.figure("merge_concurrent_edits", o.concurrentEdits)
        r.figure("merge_conflicts", o.conflicts)

        o.disk.figures(prefix: "merge_disk", into: &r)
        r.summary.append(SummaryRow(what: "merge \(grouped(ops)) remote ops (same rows)", siyu: "\(fixed(o.siyuSeconds, 3)) s",
                                    baseline: "\(fixed(o.sameRowsSeconds, 3)) s", ratio: "\(fixed(sameRowsRatio, 2))×",
                                    target: "≤ \(MergeBench.targetRatio)×", met: met, unjudged: "not judged at this size", key: "merge"))
        r.summary.append(SummaryRow(what: "merge throughput", siyu: "\(grouped(Int(Double(ops) / o.siyuSeconds))) ops/s",
                                    baseline: "\(grouped(Int(Double(ops) / o.sameRowsSeconds))) rows/s", ratio: "",
                                    target: "(information)", met: nil, peerKey: "loro_merge_ops_per_s", peerUnit: " ops/s"))
        r.summary.append(o.disk.summaryRow(what: "disk: HQ replica after the merge", key: "disk_merge", judged: ops >= 90_000))
        return r
    }
}
