import Foundation
import Testing
import SiyuCore
import SiyuSQLite
@testable import SiyuStore
import SiyuTestSupport

/// Replica files written by the commits that wrote file layouts 1, 2, 3, 4 and 7
/// (`Golden/README.md` says how each was made) open, migrate to the current layout and keep
/// everything they held.
@Suite struct GoldenReplicaTests {
    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    /// What the generator printed for both files at every layout (`Golden/README.md`).
    static let writtenDigest = "eb334467d505b957798b1c9cff66f5efffeb9187e6060628e264581ce5b93e00"
    static var currentLayout: Int { ReplicaSchema.migrations.last!.version }

    /// A copy of a golden file in a fresh temporary directory (migrating writes to it).
    static func copy(layout: Int, node: String) throws -> (dir: TemporaryDirectory, path: String) {
        try copy(layout: layout, file: node)
    }

    static func copy(layout: Int, file node: String) throws -> (dir: TemporaryDirectory, path: String) {
        let dir = try TemporaryDirectory()
        let target = dir.url(for: "\(node).db")
        try FileManager.default.copyItem(at: goldenDirectory.appendingPathComponent("layout\(layout)/\(node).db"), to: target)
        return (dir, target.path)
    }

    static func recordedLayout(_ path: String) throws -> Int64 {
        let db = try Database(path: path, mode: .readOnly)
        defer { db.close() }
        return try db.prepare("SELECT value FROM siyu_meta WHERE key = 'schema_version'").scalar()?.int64Value ?? -1
    }

    @Test(arguments: [1, 2, 3, 4, 7])
    func aGoldenReplicaOfAnOldLayoutMigratesAndKeepsWhatItHeld(layout: Int) throws {
        for (node, role, own) in [("hq", Role.hq, 41), ("xihu", Role.store, 4)] {
            let (dir, path) = try Self.copy(layout: layout, node: node)
            defer { dir.remove() }
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
            let fresh = try Replica(path: dir.path("fresh.db"),
                                    options: ReplicaOptions(node: "jingan", role: .store, wallClock: { 1_764_000_001_000 }))
            defer { fresh.close() }
            try fresh.apply(all)
            try replica.rebuild()
            #expect(try fresh.digest() == replica.digest())

            // Layout 8's indexes by store exist and serve a store's scope (its digest).
            let indexes = try replica.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name IN (?, ?, ?, ?) ORDER BY name")
                .rows([.text("customers_by_owner_store"), .text("group_chats_by_owner"), .text("orders_by_store"), .text("staff_by_store")])
            #expect(indexes.count == 4)
            #expect(try replica.db.queryPlan("SELECT customer_id FROM customers WHERE owner_store = ?").contains { $0.contains("customers_by_owner_store") })
            #expect(try replica.digest(ofStore: "xihu") == fresh.digest(ofStore: "xihu"))
            #expect(try replica.digest(ofStore: "xihu") != replica.digest())

            // It goes on working: an edit numbered after its own ops, and it reopens.
            try replica.editCustomer("wm_ma", ["phone": .text("13700000000")], by: node == "hq" ? "zhaolei" : "chenjing")
            #expect(try replica.outbox(after: UInt64(own)).map(\.seq) == [UInt64(own + 1)])
        }
    }

    /// The shape of a table as SQLite reports it: its columns (name, type, not null, key
    /// position) and whether it is a WITHOUT ROWID table.
    static func shape(of table: String, in db: Database) throws -> [String] {
        let columns = try db.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info('\(table)') ORDER BY cid").rows()
            .map { row in (0..<4).map { "\(row[$0])" }.joined(separator: " ") }
        let withoutRowID = try db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
            .scalar([.text(table)])?.stringValue?.uppercased().contains("WITHOUT ROWID") ?? false
        return columns + ["without rowid: \(withoutRowID)"]
    }

    /// Before layout 5 the WeCom import created `bridge_state` itself: `layout4/hq-wecom.db` was
    /// written that way (an import of a group chat and the tag library at 8aa6943). Layout 5 keeps
    /// the table and its rows, and the table is the one a new replica gets.
    @Test func aLayout4ReplicaWhoseImportMadeBridgeStateKeepsItsRowsWhenMigrated() throws {
        let (dir, path) = try Self.copy(layout: 4, file: "hq-wecom")
        defer { dir.remove() }
        #expect(try Self.recordedLayout(path) == 4)
        let replica = try Replica(existing: path)
        defer { replica.close() }
        #expect(try replica.schemaVersion() == Self.currentLayout)
        #expect(try replica.bridgeValue("wecom.member_version", "wrQm7wCAAALSXWwuG6TIYm6sYgDM4A") == "0a728af81d9dc35213d94c7ebbe6c1ec")
        #expect(try replica.bridgeValues("wecom.import").map { "\($0.key)=\($0.value)" } == ["00000000000000000042=137"])
        #expect(try replica.opCounts().total == 141)
        let check = try replica.db.prepare("PRAGMA integrity_check").rows().compactMap(\.first?.stringValue)
        #expect(check == ["ok"])

        let fresh = try Replica(path: dir.path("fresh.db"), options: ReplicaOptions(node: "hq", role: .hq))
        defer { fresh.close() }
        #expect(try Self.shape(of: "bridge_state", in: replica.db) == Self.shape(of: "bridge_state", in: fresh.db))
        #expect(try Self.shape(of: "bridge_state", in: fresh.db).count == 4)

        try replica.setBridgeValue("wecom.member_version", "wrQm7wCAAALSXWwuG6TIYm6sYgDM4A", "next")
        #expect(try replica.bridgeValue("wecom.member_version", "wrQm7wCAAALSXWwuG6TIYm6sYgDM4A") == "next")
    }

    /// A layout-4 golden file that never held `bridge_state` gets it, empty, and bridge values
    /// are read and written through the ordinary path.
    @Test func aLayout4ReplicaGainsAnEmptyBridgeStateTable() throws {
        let (dir, path) = try Self.copy(layout: 4, node: "hq")
        defer { dir.remove() }
        do {
            let before = try Database(path: path, mode: .readOnly)
            defer { before.close() }
            #expect(try before.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'bridge_state'").scalar()?.int64Value == 0)
        }
        let replica = try Replica(existing: path)
        defer { replica.close() }
        #expect(try replica.bridgeValues("wecom.import").isEmpty)
        #expect(try replica.bridgeValue("wecom.member_version", "chat") == nil)
        try replica.setBridgeValue("wecom.member_version", "chat", "v1")
        #expect(try replica.bridgeValue("wecom.member_version", "chat") == "v1")
    }

    /// A file of the current layout, given to a build that knows one layout fewer, is refused
    /// before anything is written, by the read-only look and by opening alike.
    @Test func aReplicaOfANewerLayoutThanTheBuildIsRefusedUntouched() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("new.db")
        try Replica(path: path, options: ReplicaOptions(node: "hq", role: .hq)).close()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let older = Array(ReplicaSchema.migrations.dropLast())
        do {
            _ = try Replica(path: path, options: ReplicaOptions(migrations: older))
            Issue.record("a newer replica was opened")
        } catch let ReplicaError.newerSchema(p, found, supported) {
            #expect(p == path && found == Self.currentLayout && supported == Self.currentLayout - 1)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
    }

    @Test func theCurrentLayoutsPlainTablesHaveExactlyTheColumnsTheDataModelNames() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let replica = try Replica(path: dir.path("r.db"), options: ReplicaOptions(node: "hq", role: .hq))
        defer { replica.close() }
        // A change to `Table.columns` needs a migration: the frozen layouts do not follow it.
        for table in Table.allCases {
            let columns = try replica.db.prepare("SELECT name FROM pragma_table_info('\(table.rawValue)') ORDER BY cid").rows().compactMap(\.first?.stringValue)
            #expect(columns == table.columns.map(\.name), "table \(table.rawValue)")
        }
    }
}
