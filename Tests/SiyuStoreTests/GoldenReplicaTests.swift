import Foundation
import Testing
import SiyuCore
import SiyuSQLite
@testable import SiyuStore

/// Replica files written by the commits that wrote file layouts 1, 2 and 3
/// (`Golden/README.md` says how each was made) open, migrate to the current layout and keep
/// everything they held.
@Suite struct GoldenReplicaTests {
    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    /// What the generator printed for both files at every layout (`Golden/README.md`).
    static let writtenDigest = "eb334467d505b957798b1c9cff66f5efffeb9187e6060628e264581ce5b93e00"
    static var currentLayout: Int { ReplicaSchema.migrations.last!.version }

    /// A copy of a golden file in a fresh temporary directory (migrating writes to it).
    static func copy(layout: Int, node: String) throws -> (dir: URL, path: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("siyu-golden-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let target = dir.appendingPathComponent("\(node).db")
        try FileManager.default.copyItem(at: goldenDirectory.appendingPathComponent("layout\(layout)/\(node).db"), to: target)
        return (dir, target.path)
    }

    static func recordedLayout(_ path: String) throws -> Int64 {
        let db = try Database(path: path, mode: .readOnly)
        defer { db.close() }
        return try db.prepare("SELECT value FROM siyu_meta WHERE key = 'schema_version'").scalar()?.int64Value ?? -1
    }

    @Test(arguments: [1, 2, 3])
    func aGoldenReplicaOfAnOldLayoutMigratesAndKeepsWhatItHeld(layout: Int) throws {
        for (node, role, own) in [("hq", Role.hq, 41), ("xihu", Role.store, 4)] {
            let (dir, path) = try Self.copy(layout: layout, node: node)
            defer { try? FileManager.default.removeItem(at: dir) }
            #expect(try Self.recordedLayout(path) == Int64(layout))
            #expect(try Replica.inspect(path: path).fileLayout == layout)   // read-only: not migrated

            let replica = try Replica(existing: path)
            defer { replica.close() }
            #expect(replica.node == node && replica.role == role)
            #expect(try replica.schemaVersion() == Self.currentLayout)
            #expect(try Self.recordedLayout(path) == Int64(Self.currentLayout))
            let check = try replica.db.prepare("PRAGMA integrity_check").rows().compactMap(\.first?.stringValue)
            #expect(check == ["ok"])

            // The tables as written, untouched by the migration.
            #expect(try replica.digest().hexString == Self.writtenDigest)
            let counts = try replica.opCounts()
            #expect(counts.total == 45 && counts.own == own)
            #expect(try replica.rows(of: .customers).map { $0["customer_id"]?.textValue ?? "" } == ["wm_lin", "wm_ma", "wm_zhou"])
            #expect(try replica.rows(of: .tags).count == 3)
            #expect(try replica.rows(of: .orderLines).count == 1)
            #expect(try replica.rows(of: .customerTags, where: "customer_id", equals: "wm_zhou").count == 1)
            let rules = try replica.conflicts().map(\.rule.rawValue).sorted()
            #expect(rules == ["exclusive_tag_group", "lww"])
            #expect(try replica.versionVector().entries == ["hq": 41, "xihu": 4])

            // Every op decodes (old encodings included): a fresh replica given them all merges
            // to what a rebuild of the migrated file computes.
            let all = try replica.changeSet(since: VersionVector())
            #expect(all.ops.count == 45)
            let fresh = try Replica(path: dir.appendingPathComponent("fresh.db").path,
                                    options: ReplicaOptions(node: "jingan", role: .store, wallClock: { 1_764_000_001_000 }))
            defer { fresh.close() }
            try fresh.apply(all)
            try replica.rebuild()
            #expect(try fresh.digest() == replica.digest())

            // It goes on working: an edit numbered after its own ops, and it reopens.
            try replica.editCustomer("wm_ma", ["phone": .text("13700000000")], by: node == "hq" ? "zhaolei" : "chenjing")
            #expect(try replica.ownOps(after: UInt64(own)).map(\.seq) == [UInt64(own + 1)])
        }
    }

    @Test func theCurrentLayoutsPlainTablesHaveExactlyTheColumnsTheDataModelNames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("siyu-golden-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let replica = try Replica(path: dir.appendingPathComponent("r.db").path, options: ReplicaOptions(node: "hq", role: .hq))
        defer { replica.close() }
        // A change to `Table.columns` needs a migration: the frozen layouts do not follow it.
        for table in Table.allCases {
            let columns = try replica.db.prepare("SELECT name FROM pragma_table_info('\(table.rawValue)') ORDER BY cid").rows().compactMap(\.first?.stringValue)
            #expect(columns == table.columns.map(\.name), "table \(table.rawValue)")
        }
    }
}
