import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore

/// Section 1b — bulk local edits: an HQ campaign tagging customers, 1,000 edits per transaction,
/// next to plain SQLite inserting the same rows in the same transactions.
///
/// HQ holds N customers (WeCom-length ids, each with a name and a phone) and a campaign tag group.
/// The campaign adds the tag 双十一 to every customer: ordinary `Replica.addTag` calls, 1,000 of them
/// inside each `Replica.inOneTransaction { … }` (so each edit is a step of that transaction, not a
/// transaction of its own). Before the timing, the section checks that edits really run inside it:
/// a transaction of edits whose body throws at its end must leave no op and no tag behind.
///
/// Anchor (the target): plain SQLite inserting the same `customer_tags` rows (the replica's own DDL,
/// a prepared INSERT) in transactions of the same 1,000 rows. Information: the floor, plain SQLite
/// writing every row Siyu writes (op row, its index entries, the (tag, customer) pair, the state
/// row) in the same transactions. The three sides alternate transaction by transaction, after a
/// warm-up transaction of another tag on each side.
struct BulkEditBench {
    let transactions: Int
    let editsPerTransaction: Int
    let directory: TemporaryDirectory

    static let editsPerTransaction = 1_000
    static let targetRatio = 2.0
    static let campaignTag = "et_1111", warmUpTag = "et_618"

    struct Outcome {
        var edits = 0
        var siyuSeconds = 0.0, plainSeconds = 0.0, floorSeconds = 0.0
        var ratio: Double { siyuSeconds / plainSeconds }
        var floorRatio: Double { siyuSeconds / floorSeconds }
        var micros: (siyu: Double, plain: Double, floor: Double) {
            (siyuSeconds * 1e6 / Double(edits), plainSeconds * 1e6 / Double(edits), floorSeconds * 1e6 / Double(edits))
        }
        /// Whether a failed transaction of edits left nothing behind (the edits ran inside it).
        var atomic = false
    }

    struct Abort: Error {}

    func run() throws -> SectionReport {
        let count = transactions * editsPerTransaction
        progress("bulk edits: setting up \(grouped(count)) customers at HQ")
        let customers = CustomerIDs.weCom(count, seed: 9)
        let replica = try Replica(path: directory.path("bulk-hq.db"), options: ReplicaOptions(node: "hq", role: .hq))
        defer { replica.close() }
        try replica.defineTagGroup("campaign", name: "活动参与")
        try replica.defineTag(BulkEditBench.campaignTag, group: "campaign", name: "双十一")
        try replica.defineTag(BulkEditBench.warmUpTag, group: "campaign", name: "618")
        for start in stride(from: 0, to: count, by: editsPerTransaction) {
            try replica.inOneTransaction {
                for i in start..<min(start + editsPerTransaction, count) {
                    try replica.createCustomer(customers[i], ["name": .text("客户\(i)"), "phone": .text("138\(String(format: "%08d", i))")],
                                               by: "hq-crm")
                }
            }
        }
        var outcome = Outcome(edits: count)
        outcome.atomic = try checkEditsRunInside(replica, customers: customers)
        guard outcome.atomic else {
            throw BenchError("bulk edits: a failed inOneTransaction of addTag calls left ops or tags behind: the edits do not run inside it")
        }

        let plain = try PlainSQLite.open(directory.path("plain-bulk.db"), tables: [.customers, .customerTags], likeReplicaAt: replica.path)
        defer { plain.close() }
        try LocalEditBench.copyRows(of: [.customers, .customerTags], from: replica, to: plain)
        let floor = try FloorDatabase(path: directory.path("floor-bulk.db"), likeReplica: replica)
        defer { floor.db.close() }
        try LocalEditBench.copyRows(of: [.customers, .customerTags], from: replica, to: floor.db)
        let insert = try plain.cached("INSERT INTO customer_tags VALUES (?, ?, ?, ?, ?)")
        var stamp = Int64(Date().timeIntervalSince1970 * 1000) << 16
        var floorHeld = Set<[String]>()

        func siyu(_ batch: ArraySlice<String>, _ tag: String) throws {
            try replica.inOneTransaction { for c in batch { try replica.addTag(tag, to: c, by: "hq-crm") } }
        }
        func plainInsert(_ batch: ArraySlice<String>, _ tag: String) throws {
            try plain.transaction {
                for c in batch {
                    stamp += 1
                    try insert.run([.text(c), .text(tag), .text("hq-crm"), .text("hq"), .integer(stamp)])
                }
            }
        }
        func floorPlan(_ batch: ArraySlice<String>, _ tag: String) -> [FloorDatabase.Edit] {
            batch.map { floor.toggle($0, tag, &floorHeld) }
        }

        // Warm-up: one transaction of another tag on each side.
        let warmBatch = customers.prefix(editsPerTransaction)
        try siyu(warmBatch, BulkEditBench.warmUpTag)
        try plainInsert(warmBatch, BulkEditBench.warmUpTag)
        try floor.write(floorPlan(warmBatch, BulkEditBench.warmUpTag))

        progress("bulk edits: \(transactions) transactions of \(editsPerTransaction) tag adds")
        for start in stride(from: 0, to: count, by: editsPerTransaction) {
            let batch = customers[start..<min(start + editsPerTransaction, count)]
            outcome.siyuSeconds += try seconds { try siyu(batch, BulkEditBench.campaignTag) }
            outcome.plainSeconds += try seconds { try plainInsert(batch, BulkEditBench.campaignTag) }
            let planned = floorPlan(batch, BulkEditBench.campaignTag)
            outcome.floorSeconds += try seconds { try floor.write(planned) }
        }
        let tagged = try replica.rows(of: .customerTags, where: "tag_id", equals: BulkEditBench.campaignTag).count
        guard tagged == count else { throw BenchError("bulk edits: \(tagged) customers hold the campaign tag, expected \(count)") }
        return report(outcome)
    }

    /// Ten edits inside `inOneTransaction`, whose body then throws: nothing of them may remain.
    private func checkEditsRunInside(_ replica: Replica, customers: [String]) throws -> Bool {
        let before = try replica.opCounts().total
        do {
            try replica.inOneTransaction {
                for c in customers.prefix(10) { try replica.addTag(BulkEditBench.campaignTag, to: c, by: "hq-crm") }
                throw Abort()
            }
        } catch is Abort {
        }
        let after = try replica.opCounts().total
        let tagged = try replica.rows(of: .customerTags, where: "tag_id", equals: BulkEditBench.campaignTag).count
        return after == before && tagged == 0
    }

    private func report(_ o: Outcome) -> SectionReport {
        let m = o.micros
        let met = o.ratio <= BulkEditBench.targetRatio
        var r = SectionReport("bulk local edits: an HQ campaign, \(transactions) transactions of \(grouped(editsPerTransaction)) tag adds "
                              + "(Replica.addTag inside Replica.inOneTransaction)")
        r.line("siyu          \(fixed(o.siyuSeconds)) s   (\(fixed(m.siyu, 2)) µs/edit, \(grouped(Int(1e6 / m.siyu))) edits/s)")
        r.line("plain SQLite  \(fixed(o.plainSeconds)) s   (\(fixed(m.plain, 2)) µs/row: INSERT of the same customer_tags rows, same transactions)")
        r.line("ratio         \(fixed(o.ratio))×   (target ≤ \(BulkEditBench.targetRatio)×: \(verdict(met)))")
        r.line("floor         \(fixed(o.floorSeconds)) s   (\(fixed(m.floor, 2)) µs/edit: plain SQLite writing every row Siyu writes, same transactions)")
        r.line("siyu ÷ floor  \(fixed(o.floorRatio))×   (information)")
        r.line("checked: edits run inside inOneTransaction (a transaction of 10 edits that threw left no op and no tag)")

        r.figure("bulk_edits", o.edits)
        r.figure("bulk_edits_per_transaction", editsPerTransaction)
        r.figure("bulk_seconds", o.siyuSeconds, digits: 4)
        r.figure("bulk_edit_us", m.siyu, digits: 2)
        r.figure("bulk_plain_seconds", o.plainSeconds, digits: 4)
        r.figure("bulk_ratio", o.ratio)
        r.figure("bulk_floor_seconds", o.floorSeconds, digits: 4)
        r.figure("bulk_floor_ratio", o.floorRatio)
        r.figure("bulk_edits_in_one_transaction", .bool(o.atomic))

        r.summary.append(SummaryRow(what: "bulk edits: \(grouped(o.edits)) tag adds, \(grouped(editsPerTransaction))/transaction",
                                    siyu: "\(fixed(o.siyuSeconds, 3)) s", baseline: "\(fixed(o.plainSeconds, 3)) s",
                                    ratio: "\(fixed(o.ratio, 2))×", target: "≤ \(BulkEditBench.targetRatio)×", met: met, key: "bulk_edits"))
        r.summary.append(SummaryRow(what: "bulk edits, vs. same rows (floor)", siyu: "\(fixed(o.siyuSeconds, 3)) s",
                                    baseline: "\(fixed(o.floorSeconds, 3)) s", ratio: "\(fixed(o.floorRatio, 2))×",
                                    target: "(information)", met: nil))
        return r
    }
}
