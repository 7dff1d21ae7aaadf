import Foundation
import SiyuCore
import SiyuSQLite

/// What `Replica.check(path:)` found wrong with a replica file.
public struct ReplicaDamage: Sendable, Equatable {
    /// One problem, in words ("table customer_tags is missing").
    public var problems: [String]
    /// Problems `Replica.repair(path:)` cannot fix: the op log itself, or the hub's log and
    /// registry, are gone or damaged. The file must then be restored from a backup (or, for a
    /// node, made again and synced).
    public var beyondRepair: [String]

    public var isHealthy: Bool { problems.isEmpty && beyondRepair.isEmpty }
}

/// Checking and repairing a replica file whose tables or indexes were dropped, altered or damaged
/// (by hand, a tool, or a bad disk), from the op log — the one thing every table is a function of.
///
/// Guarantees: `check` never writes (it opens the file read-only); `repair` recreates every
/// missing or altered table and index of the current layout with its exact definition, recomputes
/// the version vector when it is gone, recomputes every table, the conflict log and the tag index
/// from the op log, and does it all in one transaction — nothing of a repair that fails is kept.
/// Tables that hold what the op log cannot give back (the op log itself, a hub's log and node
/// registry, the node identity) are never recreated empty: their loss is reported as beyond repair.
extension Replica {
    /// Tables whose every row follows from the op log (`rebuild` recomputes them).
    static let derivedTables: Set<String> = Set(Table.allCases.map(\.rawValue) + ["conflicts", "tagged_customers"])
    /// Tables that may be recreated empty: what they held is learned again (cursors: the node pulls
    /// from the start and skips what it holds; quarantine: the hub refuses those ops again;
    /// bridge_state: the next import re-reads; hub_refusals: the nodes push again).
    static let refillableTables: Set<String> = ["cursors", "quarantine", "bridge_state", "hub_refusals"]
    /// Recomputed from the op log by `repair`.
    static let recomputedTables: Set<String> = ["versions"]

    /// Every table and index of the current layout: name → (type, SQL), as a new file has them.
    static func expectedSchema() throws -> [String: (type: String, sql: String)] {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        defer { db.close() }
        for m in ReplicaSchema.migrations { try m.apply(db) }
        return try schema(of: db)
    }

    static func schema(of db: Database) throws -> [String: (type: String, sql: String)] {
        var out: [String: (type: String, sql: String)] = [:]
        try db.prepare("SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL").query { row in
            out[row.text(1) ?? ""] = (row.text(0) ?? "", normalized(row.text(2) ?? ""))
        }
        return out
    }

    private static func normalized(_ sql: String) -> String {
        sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
    }

    /// What is wrong with the replica at `path`, read without writing (the file must already be
    /// recognised as a replica: `inspect(path:)`).
    public static func check(path: String) throws -> ReplicaDamage {
        _ = try inspect(path: path)
        let db: Database
        do { db = try Database(path: path, mode: ReplicaSchema.readingMode(for: path)) } catch let e as SQLiteError {
            throw ReplicaError.storage(e, context: "opening \(path) to read")
        }
        defer { db.close() }
        return try ReplicaError.wrap("checking \(path)") { try damage(of: db) }
    }

    static func damage(of db: Database) throws -> ReplicaDamage {
        var damage = ReplicaDamage(problems: [], beyondRepair: [])
        let expected = try expectedSchema()
        let found = try schema(of: db)
        for (name, want) in expected.sorted(by: { $0.key < $1.key }) {
            let repairable = want.type == "index" || derivedTables.contains(name) || refillableTables.contains(name) || recomputedTables.contains(name)
            let problem: String
            if let have = found[name] {
                guard have.type != want.type || have.sql != want.sql else { continue }
                problem = "\(want.type) \(name) differs from its definition"
            } else {
                problem = "\(want.type) \(name) is missing"
            }
            if repairable { damage.problems.append(problem) } else { damage.beyondRepair.append(problem) }
        }
        // SQLite's own check of pages and indexes (bounded: at most 20 messages).
        let messages = try db.prepare("PRAGMA quick_check(20)").rows().compactMap { $0.first?.stringValue }
        if messages != ["ok"] {
            damage.problems += messages.map { "SQLite reports: \($0)" }
        }
        return damage
    }

    /// Repairs the replica at `path` (see the extension's guarantees) and returns what was wrong
    /// before. Throws, with nothing changed, when the damage is beyond repair.
    @discardableResult
    public static func repair(path: String) throws -> ReplicaDamage {
        _ = try inspect(path: path)
        let db = try ReplicaSchema.open(path: path)
        let before: ReplicaDamage
        // Whether an instance table was remade empty: then which instances a store node had
        // dropped (SPEC section 7, "Transfers") cannot be read from its rows.
        var remadeInstanceTables = false
        do {
            before = try ReplicaError.wrap("checking \(path)") { try damage(of: db) }
            guard before.beyondRepair.isEmpty else {
                throw ReplicaError.invalid("\(path) is damaged beyond repair: \(before.beyondRepair.joined(separator: "; "))",
                                           "restore it from a backup; a node's replica can also be made again (moved aside, siyu-node init) and synced, losing its unpushed edits")
            }
            let expected = try expectedSchema()
            let found = try schema(of: db)
            let corrupt = before.problems.contains { $0.hasPrefix("SQLite reports") }
            try ReplicaError.wrap("repairing \(path)") {
                try db.transaction {
                    // Tables first (dropping a table drops its indexes), then indexes.
                    for (name, want) in expected.sorted(by: { $0.key < $1.key }) where want.type == "table" {
                        // A derived table is also remade when SQLite finds pages damaged: its rows come back from the op log.
                        if let have = found[name], have.sql == want.sql, !(corrupt && derivedTables.contains(name)) { continue }
                        try db.execute("DROP TABLE IF EXISTS \"\(name)\"")
                        try db.execute(want.sql)
                        if ["customers", "staff", "orders", "group_chats"].contains(name) { remadeInstanceTables = true }
                        if name == "versions" { try recomputeVersions(db) }
                    }
                    let now = try schema(of: db)
                    for (name, want) in expected.sorted(by: { $0.key < $1.key }) where want.type == "index" {
                        if let have = now[name], have.sql == want.sql { continue }
                        try db.execute("DROP INDEX IF EXISTS \"\(name)\"")
                        try db.execute(want.sql)
                    }
                }
            }
            db.close()
        } catch {
            db.close()
            throw error
        }
        let replica = try Replica(path: path, options: ReplicaOptions())
        defer { replica.close() }
        try replica.rebuild(keepingDropped: !remadeInstanceTables)
        return before
    }

    /// The version vector from the op log: per origin, the highest number held and the end of the
    /// run 1, 2, 3, … held without a gap.
    private static func recomputeVersions(_ db: Database) throws {
        let insert = try db.prepare("INSERT INTO versions(origin, contiguous, highest) VALUES (?, ?, ?)")
        for (origin, contiguous, highest) in try OpLog(db: db).numbering() {
            try insert.run([.text(origin), .integer(Int64(clamping: contiguous)), .integer(Int64(clamping: highest))])
        }
    }
}
