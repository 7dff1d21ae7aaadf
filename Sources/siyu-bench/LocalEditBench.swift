import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore

/// Section 1 — the cost of a local edit, each next to the same row written by plain SQLite.
///
/// (a) Tag toggles: customers "wm_0"…, tags t0…t9 of a non-exclusive group; edit i touches customer
///     i % customers and tag t((i / customers) % 10), removing it if present, else adding it
///     (`Replica.addTag` / `removeTag`, one transaction each). Half of the (customer, tag) pairs hold
///     the tag beforehand, so the run is about half adds, half removes. Baseline: the same
///     `customer_tags` row inserted into / deleted from a plain table (the replica's own DDL) with a
///     prepared statement, one transaction per write.
/// (b) Field edits: `editCustomer(c, ["phone": …])` against a plain `UPDATE customers SET phone`.
///
/// Both sides run in alternating blocks of edits, so background load hits them alike; a warm-up that
/// leaves the data unchanged runs first.
struct LocalEditBench {
    let edits: Int
    let customerCount: Int
    let directory: TemporaryDirectory

    static let tags = (0..<10).map { "t\($0)" }
    static let blockSize = 100

    struct Outcome {
        var edits = 0, adds = 0, removes = 0
        var siyuSeconds = 0.0, plainSeconds = 0.0
        var siyuMicros: Double { siyuSeconds * 1e6 / Double(edits) }
        var plainMicros: Double { plainSeconds * 1e6 / Double(edits) }
        var ratio: Double { siyuSeconds / plainSeconds }
    }

    func run() throws -> SectionReport {
        progress("local edits: setting up \(customerCount) customers × \(LocalEditBench.tags.count) tags")
        let customers = (0..<customerCount).map { "wm_\($0)" }
        let replica = try Replica(path: directory.path("local.db"), options: ReplicaOptions(node: "hq", role: .hq))
        defer { replica.close() }
        var present = try setUpReplica(replica, customers: customers)
        let plain = try PlainSQLite.open(directory.path("plain-local.db"), tables: [.customers, .customerTags],
                                         likeReplicaAt: replica.path)
        defer { plain.close() }
        try copyRows(of: [.customers, .customerTags], from: replica, to: plain)

        progress("local edits: \(edits) tag toggles")
        let toggles = try measureTagToggles(replica, plain, customers: customers, present: &present)
        progress("local edits: \(edits) field edits")
        let fields = try measureFieldEdits(replica, plain, customers: customers)
        return report(toggles, fields)
    }

    // MARK: Setup

    /// The tag library, the customers, and the tags held before the run: pair (c, t) holds its tag
    /// when c + t is odd. Returns the held pairs.
    private func setUpReplica(_ replica: Replica, customers: [String]) throws -> Set<[String]> {
        try replica.defineTagGroup("pref", name: "消费偏好")
        for (i, tag) in LocalEditBench.tags.enumerated() { try replica.defineTag(tag, group: "pref", name: "偏好\(i)") }
        var present = Set<[String]>()
        for (c, customer) in customers.enumerated() {
            try replica.createCustomer(customer, ["name": .text("客户\(c)"), "phone": .text("13800\(String(format: "%06d", c))")], by: "bench")
            for (t, tag) in LocalEditBench.tags.enumerated() where (c + t) % 2 == 1 {
                try replica.addTag(tag, to: customer, by: "bench")
                present.insert([customer, tag])
            }
        }
        return present
    }

    private func copyRows(of tables: [Table], from replica: Replica, to plain: Database) throws {
        try plain.transaction {
            for table in tables {
                let upsert = try PlainSQLite.upsert(table, in: plain)
                for row in try replica.rows(of: table) {
                    try upsert.run(table.columns.map { sqliteValue(row[$0.name] ?? .null) })
                }
            }
        }
    }

    // MARK: Tag toggles

    private func measureTagToggles(_ replica: Replica, _ plain: Database, customers: [String],
                                   present: inout Set<[String]>) throws -> Outcome {
        let insert = try plain.cached("INSERT INTO customer_tags VALUES (?, ?, ?, ?, ?)")
        let delete = try plain.cached("DELETE FROM customer_tags WHERE customer_id = ? AND tag_id = ?")
        var plainPresent = present
        var stamp = Int64(Date().timeIntervalSince1970 * 1000) << 16

        func siyuToggle(_ customer: String, _ tag: String, _ held: inout Set<[String]>) throws -> Bool {
            if held.remove([customer, tag]) != nil { try replica.removeTag(tag, from: customer, by: "bench"); return false }
            try replica.addTag(tag, to: customer, by: "bench")
            held.insert([customer, tag])
            return true
        }
        func plainToggle(_ customer: String, _ tag: String, _ held: inout Set<[String]>) throws {
            stamp += 1
            let wasHeld = held.remove([customer, tag]) != nil
            if !wasHeld { held.insert([customer, tag]) }
            try plain.transaction {
                if wasHeld { try delete.run([.text(customer), .text(tag)]) }
                else { try insert.run([.text(customer), .text(tag), .text("bench"), .text("hq"), .integer(stamp)]) }
            }
        }

        // Warm-up: every toggle is undone, so the measured run starts from the same data.
        let warmUp = min(50, customers.count)
        for i in 0..<warmUp {
            for _ in 0..<2 {
                _ = try siyuToggle(customers[i], "t9", &present)
                try plainToggle(customers[i], "t9", &plainPresent)
            }
        }

        var outcome = Outcome(edits: edits)
        let pairs = (0..<edits).map { i in (customers[i % customers.count], LocalEditBench.tags[(i / customers.count) % LocalEditBench.tags.count]) }
        for block in stride(from: 0, to: edits, by: LocalEditBench.blockSize) {
            let range = block..<min(block + LocalEditBench.blockSize, edits)
            outcome.siyuSeconds += try seconds {
                for i in range {
                    if try siyuToggle(pairs[i].0, pairs[i].1, &present) { outcome.adds += 1 } else { outcome.removes += 1 }
                }
            }
            outcome.plainSeconds += try seconds {
                for i in range { try plainToggle(pairs[i].0, pairs[i].1, &plainPresent) }
            }
        }
        return outcome
    }

    // MARK: Field edits

    private func measureFieldEdits(_ replica: Replica, _ plain: Database, customers: [String]) throws -> Outcome {
        let update = try plain.cached("UPDATE customers SET phone = ? WHERE customer_id = ?")
        func phone(_ i: Int) -> String { "139" + String(format: "%08d", i) }
        func siyuEdit(_ i: Int) throws {
            try replica.editCustomer(customers[i % customers.count], ["phone": .text(phone(i))], by: "bench")
        }
        func plainEdit(_ i: Int) throws {
            try plain.transaction { try update.run([.text(phone(i)), .text(customers[i % customers.count])]) }
        }
        let warmUp = min(50, edits)
        for i in 0..<warmUp { try siyuEdit(edits + i); try plainEdit(edits + i) }

        var outcome = Outcome(edits: edits)
        for block in stride(from: 0, to: edits, by: LocalEditBench.blockSize) {
            let range = block..<min(block + LocalEditBench.blockSize, edits)
            outcome.siyuSeconds += try seconds { for i in range { try siyuEdit(i) } }
            outcome.plainSeconds += try seconds { for i in range { try plainEdit(i) } }
        }
        return outcome
    }

    // MARK: Report

    private func report(_ tags: Outcome, _ fields: Outcome) -> SectionReport {
        var r = SectionReport("local edit, one transaction each (\(customerCount) customers, \(LocalEditBench.tags.count) tags)")
        r.line("(a) tag add/remove: \(tags.edits) edits (\(tags.adds) adds, \(tags.removes) removes)")
        r.line("    siyu          \(fixed(tags.siyuMicros)) µs/edit   (\(Int(1e6 / tags.siyuMicros)) edits/s)")
        r.line("    plain SQLite  \(fixed(tags.plainMicros)) µs/write  (INSERT/DELETE of the customer_tags row)")
        r.line("    ratio         \(fixed(tags.ratio))×   (target ≤ 1.5×: \(verdict(tags.ratio <= 1.5)))")
        r.line("(b) field edit (customer phone): \(fields.edits) edits")
        r.line("    siyu          \(fixed(fields.siyuMicros)) µs/edit")
        r.line("    plain SQLite  \(fixed(fields.plainMicros)) µs/write  (UPDATE customers SET phone)")
        r.line("    ratio         \(fixed(fields.ratio))×   (target ≤ 1.5×: \(verdict(fields.ratio <= 1.5)))")

        r.figure("local_edits", tags.edits)
        r.figure("local_edit_adds", tags.adds)
        r.figure("local_edit_removes", tags.removes)
        r.figure("local_edit_us", tags.siyuMicros)
        r.figure("local_edit_plain_us", tags.plainMicros)
        r.figure("local_edit_ratio", tags.ratio)
        r.figure("local_edits_per_s", 1e6 / tags.siyuMicros, digits: 0)
        r.figure("field_edit_us", fields.siyuMicros)
        r.figure("field_edit_plain_us", fields.plainMicros)
        r.figure("field_edit_ratio", fields.ratio)

        r.summary.append(SummaryRow(what: "local edit: tag add/remove", siyu: "\(fixed(tags.siyuMicros, 1)) µs",
                                    baseline: "\(fixed(tags.plainMicros, 1)) µs", ratio: "\(fixed(tags.ratio, 2))×",
                                    target: "≤ 1.5×", met: tags.ratio <= 1.5, peerKey: "loro_local_edit_us", peerUnit: " µs"))
        r.summary.append(SummaryRow(what: "local edit: field (phone)", siyu: "\(fixed(fields.siyuMicros, 1)) µs",
                                    baseline: "\(fixed(fields.plainMicros, 1)) µs", ratio: "\(fixed(fields.ratio, 2))×",
                                    target: "≤ 1.5×", met: fields.ratio <= 1.5, peerKey: "loro_field_edit_us", peerUnit: " µs"))
        return r
    }
}

/// A replica value as the SQLite value its table stores.
func sqliteValue(_ value: Value) -> SQLiteValue {
    switch value {
    case .null: return .null
    case let .int(i): return .integer(i)
    case let .text(s): return .text(s)
    case let .bytes(b): return .blob(b)
    case let .bool(b): return .integer(b ? 1 : 0)
    }
}
