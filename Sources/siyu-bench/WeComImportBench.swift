import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore
import SiyuCLI
import SiyuCommandLine

/// Section `wecom` — `siyu wecom import` of a large `batch/get_by_user` response, next to plain
/// SQLite inserting the same rows in the same run.
///
/// A synthetic response of N entries (100,000; quick 10,000) is written to a temporary file: each
/// entry a new customer (WeCom-length ids, a name, a gender, a unionid) with one follow relation
/// (one of four staff members, a remark, createtime, add_way, an empty state) holding two corp
/// tags of the tag library, which is imported first from a `get_corp_tag_list` payload. The import
/// runs in-process through the CLI's own command (`SiyuProgram.main`), as `siyu wecom import`.
/// Then the same file is imported again, which must write no op (checked, and timed as information),
/// and the ops the import wrote are bulk-loaded into a new replica (`Replica.bulkLoad`, as a new
/// store loads its snapshot; it must reach the same digest), timed as information: the speed the
/// import is compared with.
///
/// Anchor: plain SQLite inserting the rows the import left in `customers`, `follow_relations` and
/// `customer_tags` (the replica's own DDL, prepared INSERTs) in one transaction. It reads no JSON
/// and merges nothing: it is the cost of the rows alone.
struct WeComImportBench {
    let customers: Int
    let directory: TemporaryDirectory

    static let staff = ["chenjing", "wangfang", "liuyang", "zhaolei"]
    static let levels = ["et_level_silver", "et_level_gold"]
    static let preferences = ["et_pref_tea", "et_pref_coffee", "et_pref_bakery"]

    struct Outcome {
        var siyuSeconds = 0.0, againSeconds = 0.0, plainSeconds = 0.0, bulkSeconds = 0.0
        var ops = 0, againOps = -1, rows = 0, fileBytes = 0
        var peakKB: Int?
    }

    func run() throws -> SectionReport {
        progress("wecom import: writing a batch/get_by_user payload of \(grouped(customers)) customers")
        let tagsFile = directory.path("wecom-tags.json"), batchFile = directory.path("wecom-batch.json")
        try Data(WeComImportBench.tagList().utf8).write(to: URL(fileURLWithPath: tagsFile))
        var outcome = Outcome()
        outcome.fileBytes = try WeComImportBench.writeBatch(customers, to: batchFile)
        let path = directory.path("wecom-hq.db")
        try Replica.create(at: path, node: "hq", role: .hq).close()
        _ = try WeComImportBench.siyu(["wecom", "import", "--db", path, tagsFile])
        let opsBefore = try WeComImportBench.opCount(path)

        progress("wecom import: importing \(grouped(customers)) customers (siyu wecom import, in-process)")
        outcome.siyuSeconds = try seconds { _ = try WeComImportBench.siyu(["wecom", "import", "--db", path, batchFile]) }
        outcome.peakKB = peakResidentKilobytes()
        outcome.ops = try WeComImportBench.opCount(path) - opsBefore
        progress("wecom import: the same file again (must write nothing)")
        outcome.againSeconds = try seconds { _ = try WeComImportBench.siyu(["wecom", "import", "--db", path, batchFile]) }
        outcome.againOps = try WeComImportBench.opCount(path) - opsBefore - outcome.ops
        guard outcome.againOps == 0 else { throw BenchError("wecom import: importing the same file again wrote \(outcome.againOps) ops") }

        progress("wecom import: the same ops through a bulk load into a new replica")
        let replica = try Replica(existing: path)
        do {
            let all = try replica.changeSet(since: VersionVector())
            let loaded = try Replica(path: directory.path("wecom-bulk.db"), options: ReplicaOptions(node: "hq-2", role: .hq))
            defer { loaded.close() }
            outcome.bulkSeconds = try seconds { try loaded.bulkLoad { _ = try loaded.apply(all) } }
            guard try loaded.digest() == replica.digest() else { throw BenchError("wecom import: the bulk-loaded replica differs") }
        }

        progress("wecom import: plain SQLite inserting the same rows")
        let tables: [Table] = [.customers, .followRelations, .customerTags]
        var rows: [Table: [[SQLiteValue]]] = [:]
        for table in tables {
            rows[table] = try replica.rows(of: table).map { row in table.columns.map { (row[$0.name] ?? .null).sqliteValue } }
        }
        replica.close()
        guard rows[.customers]?.count == customers else {
            throw BenchError("wecom import: \(rows[.customers]?.count ?? 0) customers imported, expected \(customers)")
        }
        outcome.rows = rows.values.reduce(0) { $0 + $1.count }
        let plain = try PlainSQLite.open(directory.path("plain-wecom.db"), tables: tables, likeReplicaAt: path)
        defer { plain.close() }
        outcome.plainSeconds = try seconds {
            try plain.transaction {
                for table in tables {
                    let placeholders = Array(repeating: "?", count: table.columns.count).joined(separator: ", ")
                    let insert = try plain.cached("INSERT INTO \(table.rawValue) VALUES (\(placeholders))")
                    for row in rows[table] ?? [] { try insert.run(row) }
                }
            }
        }
        return report(outcome)
    }

    /// Runs `siyu` in-process with its output discarded; a failure is thrown with its message.
    static func siyu(_ arguments: [String]) throws -> Int32 {
        let err = TextBuffer()
        let context = CLIContext(io: CommandIO(output: TextStream { _ in }, error: err.stream()))
        let code = SiyuProgram.main(arguments, context: context)
        guard code == 0 else { throw BenchError("siyu \(arguments.prefix(2).joined(separator: " ")) failed: \(err.text)") }
        return code
    }

    static func opCount(_ path: String) throws -> Int {
        let r = try Replica(existing: path)
        defer { r.close() }
        return try r.opCounts().total
    }

    /// A `get_corp_tag_list` response: two groups, the tags the batch uses.
    static func tagList() -> String {
        func tags(_ ids: [String]) -> String {
            ids.enumerated().map { #"{"id":"\#($1)","name":"\#($1.split(separator: "_").last!)","order":\#($0)}"# }.joined(separator: ",")
        }
        return #"{"errcode":0,"errmsg":"ok","tag_group":[{"group_id":"et_level","group_name":"会员等级","order":1,"tag":[\#(tags(levels))]},"#
            + #"{"group_id":"et_pref","group_name":"消费偏好","order":2,"tag":[\#(tags(preferences))]}]}"#
    }

    /// Writes a `batch/get_by_user` response of `count` entries to `path`; returns its size.
    static func writeBatch(_ count: Int, to path: String) throws -> Int {
        FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw BenchError("cannot write \(path)") }
        defer { try? handle.close() }
        let ids = CustomerIDs.weCom(count, seed: 31)
        var chunk = #"{"errcode":0,"errmsg":"ok","external_contact_list":["# + "\n"
        var bytes = 0
        for i in 0..<count {
            chunk += #"{"external_contact":{"external_userid":"\#(ids[i])","name":"客户\#(i)","type":1,"gender":\#(i % 3),"#
                + #""unionid":"oU\#(String(format: "%010d", i))"},"follow_info":{"userid":"\#(staff[i % staff.count])","#
                + #""remark":"备注\#(i)","description":"","createtime":\#(1_700_000_000 + i),"#
                + #""tag_id":["\#(levels[i % levels.count])","\#(preferences[i % preferences.count])"],"add_way":1,"state":""}}"#
                + (i == count - 1 ? "\n" : ",\n")
            if chunk.utf8.count > 1 << 20 {
                bytes += chunk.utf8.count
                handle.write(Data(chunk.utf8))
                chunk = ""
            }
        }
        chunk += #"],"next_cursor":""}"# + "\n"
        bytes += chunk.utf8.count
        handle.write(Data(chunk.utf8))
        return bytes
    }

    private func report(_ o: Outcome) -> SectionReport {
        let perCustomer = o.siyuSeconds * 1e6 / Double(customers)
        let plainPerCustomer = o.plainSeconds * 1e6 / Double(customers)
        let ratio = o.siyuSeconds / o.plainSeconds
        var r = SectionReport("wecom import: a batch/get_by_user file of \(grouped(customers)) new customers "
                              + "(\(DiskFigures.megabytes(o.fileBytes)), each one relation with two corp tags), siyu wecom import in-process")
        r.line("siyu          \(fixed(o.siyuSeconds)) s   (\(fixed(perCustomer, 2)) µs/customer, \(grouped(o.ops)) ops written)")
        r.line("plain SQLite  \(fixed(o.plainSeconds)) s   (\(fixed(plainPerCustomer, 2)) µs/customer: INSERT of the same \(grouped(o.rows)) "
               + "customers, follow_relations and customer_tags rows, one transaction)")
        r.line("ratio         \(fixed(ratio, 2))×   (information: the import also reads and checks the JSON, twice, and keeps the op log)")
        r.line("bulk load     \(fixed(o.bulkSeconds)) s   (the same \(grouped(o.ops)) ops and the tag library as one change set, "
               + "Replica.bulkLoad into a new replica: import ÷ bulk load \(fixed(o.siyuSeconds / o.bulkSeconds, 2))×, information)")
        r.line("again         \(fixed(o.againSeconds)) s   (the same file again: 0 ops written, checked)")
        if let kb = o.peakKB { r.line("peak memory   \(DiskFigures.megabytes(kb * 1024)) resident (the whole benchmark process so far)") }

        r.figure("wecom_customers", customers)
        r.figure("wecom_file_bytes", o.fileBytes)
        r.figure("wecom_ops", o.ops)
        r.figure("wecom_seconds", o.siyuSeconds, digits: 4)
        r.figure("wecom_customer_us", perCustomer, digits: 2)
        r.figure("wecom_plain_seconds", o.plainSeconds, digits: 4)
        r.figure("wecom_plain_customer_us", plainPerCustomer, digits: 2)
        r.figure("wecom_ratio", ratio)
        r.figure("wecom_bulk_load_seconds", o.bulkSeconds, digits: 4)
        r.figure("wecom_again_seconds", o.againSeconds, digits: 4)
        r.figure("wecom_again_ops", o.againOps)

        r.summary.append(SummaryRow(what: "wecom import: \(grouped(customers)) customers (batch/get_by_user)",
                                    siyu: "\(fixed(o.siyuSeconds, 3)) s", baseline: "\(fixed(o.plainSeconds, 3)) s",
                                    ratio: "\(fixed(ratio, 2))×", target: "(information)", met: nil))
        return r
    }
}

private extension Value {
    /// The value as SQLite stores it in a plain table.
    var sqliteValue: SQLiteValue {
        switch self {
        case .null: return .null
        case let .int(n): return .integer(n)
        case let .text(s): return .text(s)
        case let .bytes(b): return .blob(b)
        case let .bool(b): return .integer(b ? 1 : 0)
        }
    }
}
