import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore

/// Section `cli` — two operator commands on large inputs, each next to a plain-SQLite anchor:
/// - `siyu wecom import` of a JSON-lines file of N `externalcontact/get` payloads (100,000; quick
///   5,000), one per line, and of a tenth of it: the time per payload must stay flat (each
///   payload's line number is counted from the previous one, not from byte 0);
/// - `siyu customers --id X` on a replica of M customers (1,000,000; quick 20,000; built as the
///   scaling section builds its replicas), 50 random ids, and `--store` of a store owning none (a
///   full scan in SQL). Anchor: plain SQLite's primary-key SELECT on the same file.
/// Both run in-process through the CLI's own commands (`SiyuProgram.main`), as `siyu` runs them.
struct CLIBench {
    let jsonLines: Int
    let lookupCustomers: Int
    let directory: TemporaryDirectory

    func run() throws -> SectionReport {
        var r = SectionReport("cli: siyu wecom import of JSON lines (externalcontact/get, one per line) and siyu customers on a large replica")
        // JSON lines.
        let small = max(1, jsonLines / 10)
        let (smallSeconds, _) = try importLines(small, name: "small")
        let (largeSeconds, ops) = try importLines(jsonLines, name: "large")
        let smallUs = smallSeconds * 1e6 / Double(small), largeUs = largeSeconds * 1e6 / Double(jsonLines)
        r.line("wecom import  \(grouped(jsonLines)) lines  \(fixed(largeSeconds)) s   (\(fixed(largeUs, 1)) µs/payload, \(grouped(ops)) ops written)")
        r.line("wecom import  \(grouped(small)) lines  \(fixed(smallSeconds)) s   (\(fixed(smallUs, 1)) µs/payload; "
               + "ten times the lines cost \(fixed(largeSeconds / smallSeconds, 1))× the time: linear is 10×)")
        r.figure("cli_jsonl_lines", jsonLines)
        r.figure("cli_jsonl_seconds", largeSeconds, digits: 4)
        r.figure("cli_jsonl_payload_us", largeUs, digits: 2)
        r.figure("cli_jsonl_small_lines", small)
        r.figure("cli_jsonl_small_seconds", smallSeconds, digits: 4)
        r.figure("cli_jsonl_growth", largeSeconds / smallSeconds)

        // Filtered lookups.
        let path = directory.path("cli-lookup.db")
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let ids = (0..<lookupCustomers).map { "wm" + String(format: "%08d", $0) }
        progress("cli: building \(grouped(lookupCustomers)) customers for the lookups")
        do {
            let hq = try Replica(path: path, options: ReplicaOptions(node: "hq-2", role: .hq))
            defer { hq.close() }
            try ScalingBench(sizes: [], mergeOps: 0, directory: directory).build(hq, ids: ids, libraryAt: directory.path("cli-library.db"))
        }
        var random = SeededRandom(seed: 19)
        let picks = (0..<50).map { _ in ids[Int(random.next() % UInt64(ids.count))] }
        progress("cli: siyu customers --id, 50 lookups")
        let idSeconds = try seconds { for id in picks { _ = try WeComImportBench.siyu(["customers", "--db", path, "--id", id]) } } / 50
        progress("cli: siyu customers --store (no match: a scan of every customer in SQL)")
        let storeSeconds = try seconds { _ = try WeComImportBench.siyu(["customers", "--db", path, "--store", "nowhere"]) }
        let plain = try Database(path: path, mode: .readOnly)
        let select = try plain.prepare("SELECT * FROM customers WHERE customer_id = ?")
        let plainSeconds = try seconds { for id in picks { _ = try select.rows([.text(id)]) } } / 50
        plain.close()
        r.line("customers --id      \(fixed(idSeconds * 1000, 2)) ms per lookup on \(grouped(lookupCustomers)) customers "
               + "(the whole command: open, read, print; mean of 50)")
        r.line("plain SQLite        \(fixed(plainSeconds * 1e6, 1)) µs per primary-key SELECT on the same file (the row alone)")
        r.line("customers --store   \(fixed(storeSeconds, 3)) s for a store owning none (every customer scanned in SQL)")
        r.figure("cli_lookup_customers", lookupCustomers)
        r.figure("cli_lookup_id_ms", idSeconds * 1000, digits: 3)
        r.figure("cli_lookup_plain_us", plainSeconds * 1e6, digits: 2)
        r.figure("cli_lookup_store_scan_seconds", storeSeconds, digits: 4)
        r.summary.append(SummaryRow(what: "siyu customers --id on \(grouped(lookupCustomers)) customers", siyu: "\(fixed(idSeconds * 1000, 2)) ms",
                                    baseline: "\(fixed(plainSeconds * 1e6, 1)) µs", ratio: "—", target: "(information)", met: nil))
        r.summary.append(SummaryRow(what: "wecom import of \(grouped(jsonLines)) JSON lines", siyu: "\(fixed(largeSeconds, 2)) s",
                                    baseline: "—", ratio: "\(fixed(largeSeconds / smallSeconds, 1))× for 10× lines", target: "(information)", met: nil))
        return r
    }

    /// Imports `count` externalcontact/get payloads, one per line, into a new HQ replica (after
    /// the tag library); the seconds and the ops written.
    private func importLines(_ count: Int, name: String) throws -> (Double, Int) {
        let file = directory.path("cli-\(name).jsonl"), tags = directory.path("cli-tags.json"), path = directory.path("cli-\(name).db")
        defer { for p in [file, path, path + "-wal", path + "-shm"] { try? FileManager.default.removeItem(atPath: p) } }
        try Data(WeComImportBench.tagList().utf8).write(to: URL(fileURLWithPath: tags))
        FileManager.default.createFile(atPath: file, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: file) else { throw BenchError("cannot write \(file)") }
        var chunk = ""
        for i in 0..<count {
            let staff = WeComImportBench.staff[i % WeComImportBench.staff.count]
            chunk += #"{"errcode":0,"errmsg":"ok","external_contact":{"external_userid":"wmL\#(String(format: "%09d", i))","name":"客户\#(i)","type":1,"gender":\#(i % 3)},"#
                + #""follow_user":[{"userid":"\#(staff)","remark":"备注","description":"","createtime":\#(1_700_000_000 + i),"#
                + #""tags":[{"group_name":"会员等级","tag_name":"gold","type":1,"tag_id":"et_level_gold"}],"remark_mobiles":["1380000\#(String(format: "%04d", i % 10_000))"],"add_way":1,"state":""}]}"#
                + "\n"
            if chunk.utf8.count > 1 << 20 { handle.write(Data(chunk.utf8)); chunk = "" }
        }
        handle.write(Data(chunk.utf8))
        try handle.close()
        try Replica.create(at: path, node: "hq", role: .hq).close()
        _ = try WeComImportBench.siyu(["wecom", "import", "--db", path, tags])
        let before = try WeComImportBench.opCount(path)
        progress("cli: siyu wecom import of \(grouped(count)) JSON lines")
        let s = try seconds { _ = try WeComImportBench.siyu(["wecom", "import", "--db", path, file]) }
        return (s, try WeComImportBench.opCount(path) - before)
    }
}
