import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore

/// `siyu-bench [--ops N] [--edits N]`: what a local edit and applying N remote ops cost today,
/// each next to plain SQLite doing the same row writes in the same run, on this machine.
var remoteOps = 100_000
var localEdits = 2_000
var it = CommandLine.arguments.dropFirst().makeIterator()
while let a = it.next() {
    switch a {
    case "--ops": remoteOps = Int(it.next() ?? "") ?? remoteOps
    case "--edits": localEdits = Int(it.next() ?? "") ?? localEdits
    case "--quick": remoteOps = 5_000; localEdits = 200
    default: FileHandle.standardError.write(Data("usage: siyu-bench [--ops N] [--edits N] [--quick]\n".utf8)); exit(2)
    }
}

let dir = FileManager.default.temporaryDirectory.appendingPathComponent("siyu-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: dir) }

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func plainSQLite(_ name: String) throws -> Database {
    let db = try Database(path: dir.appendingPathComponent(name).path)
    _ = try db.prepare("PRAGMA journal_mode = WAL").scalar()
    try db.execute("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;")
    try db.execute("CREATE TABLE customer_tags(customer_id TEXT, tag_id TEXT, added_by TEXT, added_at INTEGER, PRIMARY KEY(customer_id, tag_id)) WITHOUT ROWID")
    return db
}

// Local edits: tag add / remove on 200 customers, one transaction per edit, vs the same row
// written to a plain table with a prepared statement, one transaction per write.
let customers = (0..<200).map { "wm_\($0)" }
let store = try Replica(path: dir.appendingPathComponent("store.db").path, options: ReplicaOptions(node: "hq", role: .hq))
try store.defineTagGroup("pref", name: "消费偏好")
for t in 0..<10 { try store.defineTag("t\(t)", group: "pref", name: "标签\(t)") }
for c in customers { try store.createCustomer(c, ["name": .text(c)], by: "bench") }
let siyuLocal = try seconds {
    for i in 0..<localEdits {
        let c = customers[i % customers.count], t = "t\((i / customers.count) % 10)"
        if i % 2 == 0 { try store.addTag(t, to: c, by: "bench") } else { try store.addTag("t9", to: c, by: "bench") }
    }
}
let plain = try plainSQLite("plain-local.db")
let upsert = try plain.cached("INSERT OR REPLACE INTO customer_tags VALUES (?, ?, ?, ?)")
let plainLocal = try seconds {
    for i in 0..<localEdits {
        try plain.transaction {
            try upsert.run([.text(customers[i % customers.count]), .text("t\(i % 10)"), .text("bench"), .integer(Int64(i))])
        }
    }
}

// Remote merge: N ops from a store (tag adds/removes, field edits, roster adds, order lines),
// applied to HQ as one change set, vs plain upserts of the same rows in one transaction.
let source = try Replica(path: dir.appendingPathComponent("source.db").path, options: ReplicaOptions(node: "xihu", role: .store))
try source.apply(try store.changeSet(since: VersionVector()))
let baseline = try source.opCounts().own
var made = 0
let mixCustomers = (0..<max(remoteOps / 20, 50)).map { "walkin_\($0)" }
var k = 0
var rosterAdds = 0
while made < remoteOps {
    let c = mixCustomers[k % mixCustomers.count]
    switch k % 10 {
    case 0: try source.createCustomer(c + "_\(k)", ["name": .text("客户\(k)"), "phone": .text("138\(k)")], by: "bench"); made += 2
    case 1...5: try source.addTag("t\(k % 9)", to: customers[k % customers.count], by: "bench"); made += 1
    case 6: try source.editCustomer(customers[k % customers.count], ["phone": .text("139\(k)")], by: "bench"); made += 1
    case 7: if k % 70 == 7 {
            if rosterAdds % 400 == 0 { try source.createGroupChat("g\(rosterAdds / 400)", ["name": .text("群")], by: "bench"); made += 1 }
            try source.addMember("m\(k)", to: "g\(rosterAdds / 400)", by: "bench"); made += 1; rosterAdds += 1 } else { try source.setFollowRelation(customer: customers[k % customers.count], userid: "u\(k % 7)", ["remark": .text("r\(k)")], by: "bench"); made += 1 }
    case 8: try source.createOrder("o\(k)", ["customer_id": .text(c)], by: "bench"); made += 1
    default: try source.setOrderLine("1", of: "o\(k - 1)", ["sku": .text("sku\(k)"), "qty": .int(1)], by: "bench"); made += 3
    }
    k += 1
    if k % 500 == 0 { made = try source.opCounts().own - baseline }
}
let changeSet = try source.changeSet(since: try store.versionVector())
let opsToApply = changeSet.ops.count
var report: ApplyReport?
let siyuMerge = try seconds { report = try store.apply(changeSet) }
let plainMergeDB = try plainSQLite("plain-merge.db")
let mergeUpsert = try plainMergeDB.cached("INSERT OR REPLACE INTO customer_tags VALUES (?, ?, ?, ?)")
let plainMerge = try seconds {
    try plainMergeDB.transaction {
        for (i, op) in changeSet.ops.enumerated() {
            try mergeUpsert.run([.text(op.instance.id), .text(op.body.target.sub + "\(i % 97)"), .text(op.author), .integer(Int64(op.seq))])
        }
    }
}

func f(_ x: Double) -> String { String(format: "%.3f", x) }
print("siyu-bench — SQLite \(Database.libraryVersion), \(ProcessInfo.processInfo.activeProcessorCount) cores")
print("")
print("local edit (tag add, own transaction), \(localEdits) edits")
print("  siyu          \(f(siyuLocal * 1e6 / Double(localEdits))) µs/edit")
print("  plain SQLite  \(f(plainLocal * 1e6 / Double(localEdits))) µs/write")
print("  ratio         \(f(siyuLocal / plainLocal))×   (target ≤ 1.5×)")
print("")
print("merge of \(opsToApply) remote ops (\(report?.instancesMerged ?? 0) records re-merged), one change set")
print("  siyu          \(f(siyuMerge)) s   (\(Int(Double(opsToApply) / siyuMerge)) ops/s)")
print("  plain SQLite  \(f(plainMerge)) s   (same number of row upserts, one transaction)")
print("  ratio         \(f(siyuMerge / plainMerge))×   (target < 1 s for 100k)")
store.close(); source.close()
