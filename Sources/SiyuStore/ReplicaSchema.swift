import Foundation
import SiyuCore
import SiyuSQLite

/// One step of the replica's schema history: it brings a replica from `version - 1` to `version`.
public struct SchemaMigration {
    public let version: Int
    public let apply: (Database) throws -> Void

    public init(version: Int, apply: @escaping (Database) throws -> Void) {
        self.version = version
        self.apply = apply
    }
}

/// The replica file's layout: the plain tables of the data model, the merge metadata, and how an
/// existing file is recognised, refused or migrated.
///
/// Guarantees: a file that is not a Siyu replica, or one from a newer Siyu, is refused before
/// anything is written to it; an older replica is migrated in one transaction.
public enum ReplicaSchema {
    static let formatName = "siyu-replica"

    /// The file layout's history (not the data model's version, `currentSchemaVersion`, which
    /// travels with change sets). Version 1 creates everything; version 2 drops two indexes that every
    /// local edit paid for and nothing read (a field's history is read through `ops_by_instance`;
    /// customers with a tag are found through `customer_tags` or `ops_by_tag`). Version 3 slims the
    /// op log to its keys and the encoded op, clustered by instance (see `version3`). Version 4 adds
    /// the tables of sync (see `version4`). Version 5 adds `bridge_state`, the bookkeeping of a
    /// bridge to another system (see `version5`). Version 6 indexes a hub's log by scope (see
    /// `version6`). Version 7 replaces each registered node's HMAC key with SCRAM verifiers (see
    /// `version7`). Version 8 indexes the tables a store's scope is read from by store (see
    /// `version8`). Version 9 adds the tombstones of ops a hub's log compaction dropped (see
    /// `version9`). Every step is frozen SQL text (layout 7 with a frozen conversion of each row): a
    /// later change comes with a step of its own.
    public static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1) { db in try db.execute(version1) },
        SchemaMigration(version: 2) { db in try db.execute(version2) },
        SchemaMigration(version: 3) { db in try db.execute(version3) },
        SchemaMigration(version: 4) { db in try db.execute(version4) },
        SchemaMigration(version: 5) { db in try db.execute(version5) },
        SchemaMigration(version: 6) { db in try db.execute(version6) },
        SchemaMigration(version: 7) { db in try migrateToVerifiers(db) },
        SchemaMigration(version: 8) { db in try db.execute(version8) },
        SchemaMigration(version: 9) { db in try db.execute(version9) },
    ]

    /// Layout 9: `hub_dropped`, one row per op a hub's log compaction dropped (docs/OPERATIONS.md,
    /// "Compacting the log"): its origin and number, its stamp's clock and the first 8 bytes of the
    /// SHA-256 of its encoding with the number zeroed (`digest`). The number stays held — a PUSH of it
    /// again is a duplicate when it is the same op, an identity conflict when it is another — and
    /// an op pushed under a new number with a dropped op's stamp and content is that op again (a
    /// node that renumbered it while recovering its own ops: looked for by scanning the origin's
    /// range, only for an op older than the origin's acknowledged ones, so no index by stamp).
    /// `hub_first_clocks`: per instance whose first op compaction dropped, that op's clock (what
    /// the restore grace reads as the instance's earliest held op). `own_set_aside` (a node's): its
    /// own ops a replacing snapshot made it forget (the hub had dropped them), each whole, out of
    /// every merge, pushed again should a hub's acked_seq ever be below them (a hub restored from a
    /// backup taken before it dropped them).
    static let version9 = """
        CREATE TABLE hub_dropped(origin TEXT NOT NULL, seq INTEGER NOT NULL, hlc INTEGER NOT NULL, digest BLOB NOT NULL,
                                 PRIMARY KEY(origin, seq)) WITHOUT ROWID;
        CREATE TABLE hub_first_clocks(inst_kind TEXT NOT NULL, inst_id TEXT NOT NULL, hlc INTEGER NOT NULL,
                                      PRIMARY KEY(inst_kind, inst_id)) WITHOUT ROWID;
        CREATE TABLE own_set_aside(seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
        """

    /// Layout 8: the rows of a store's scope found by store (SPEC section 7, "Scope"): customers
    /// by `owner_store`, staff and orders by `store_id`, group chats by `owner` (the chats of a
    /// store's staff). A hub reads a store's snapshot and digest through them, so their cost is
    /// that store's rows, not every store's (`QueryPlanTests`). Each index holds the table's key
    /// after the indexed column, so a store's rows come in key order, as snapshots and digests
    /// read them. The indexes exist on every replica (a store node holds one store's rows, and
    /// pays one index entry per row for them).
    static let version8 = """
        CREATE INDEX customers_by_owner_store ON customers(owner_store);
        CREATE INDEX staff_by_store ON staff(store_id);
        CREATE INDEX orders_by_store ON orders(store_id);
        CREATE INDEX group_chats_by_owner ON group_chats(owner);
        """

    /// Layout 6: `hub_log_homes`, a hub's index of its log by scope (SPEC section 7, "Scope"): one
    /// row (home, position) per home an op's instance had when the op was logged — '' for the
    /// shared instances (tag library, stores), a store id for a store's — and none for HQ-only
    /// homes. An op that moved its instance to another home has a row for each. A store's PULL reads
    /// the '' range and its own range after its cursor, so it costs the ops of its scope, not the
    /// log. The rows of a hub's existing log are made from its tables as they are (a log of
    /// layout 5 held no transfers, so the homes now are the homes then). Transfers (an instance
    /// moving from one home to another): `hub_scope_entries` (per store, the log positions at
    /// which an instance with a history elsewhere entered its scope: a PULL from before one is
    /// answered with a snapshot of reason 1) and `hub_scope_exits` (per store and instance that
    /// left it, the position it left at and the hub's wall time when a node of the store first
    /// pulled past it: what decides whether the store's late edits of it are taken).
    static let version6 = """
        CREATE TABLE hub_scope_entries(home TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY(home, position)) WITHOUT ROWID;
        CREATE TABLE hub_scope_exits(home TEXT NOT NULL, inst_kind TEXT NOT NULL, inst_id TEXT NOT NULL,
            position INTEGER NOT NULL, seen_at INTEGER, PRIMARY KEY(home, inst_kind, inst_id)) WITHOUT ROWID;
        CREATE TABLE hub_log_homes(home TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY(home, position)) WITHOUT ROWID;
        INSERT OR IGNORE INTO hub_log_homes(home, position)
            SELECT home, position FROM (
                SELECT h.position AS position, CASE o.inst_kind
                    WHEN 'tag_group' THEN '' WHEN 'tag' THEN '' WHEN 'store' THEN ''
                    WHEN 'customer' THEN (SELECT NULLIF(owner_store, '') FROM customers WHERE customer_id = o.inst_id)
                    WHEN 'staff' THEN (SELECT NULLIF(store_id, '') FROM staff WHERE userid = o.inst_id)
                    WHEN 'order' THEN (SELECT NULLIF(store_id, '') FROM orders WHERE order_id = o.inst_id)
                    WHEN 'group_chat' THEN (SELECT NULLIF(s.store_id, '') FROM group_chats g JOIN staff s ON s.userid = g.owner
                                            WHERE g.chat_id = o.inst_id)
                    END AS home
                FROM hub_log h JOIN ops o ON o.origin = h.origin AND o.seq = h.seq)
            WHERE home IS NOT NULL ORDER BY home, position;
        """

    /// Layout 7: `hub_nodes` keeps, per node, SCRAM verifiers (salt, iteration count, StoredKey,
    /// ServerKey; SPEC section 6) instead of `mac_key`, the HMAC key as RFC 2104 normalises the
    /// secret — which for a secret of at most 64 bytes is the secret itself. Every registered node
    /// keeps working without a new secret: PBKDF2 uses the secret only as an HMAC key, and HMAC
    /// under the normalised key equals HMAC under the secret, so the verifiers computed from
    /// `mac_key` are exactly those of the secret. The old table is dropped with `secure_delete`
    /// on (its pages are zeroed) and the file checkpointed, so no copy of a key stays behind.
    static let version7 = """
        CREATE TABLE hub_nodes_v7(
            node_id TEXT PRIMARY KEY, role TEXT NOT NULL, store_id TEXT,
            salt BLOB NOT NULL, iterations INTEGER NOT NULL, stored_key BLOB NOT NULL, server_key BLOB NOT NULL,
            acked_seq INTEGER NOT NULL DEFAULT 0, cursor INTEGER NOT NULL DEFAULT 0,
            registered_at INTEGER NOT NULL) WITHOUT ROWID;
        """
    static let version7Finish = "DROP TABLE hub_nodes; ALTER TABLE hub_nodes_v7 RENAME TO hub_nodes;"

    /// The frozen conversion of layout 7: each row's verifiers from its `mac_key`, a fresh 16-byte
    /// salt and 4,096 iterations.
    static func migrateToVerifiers(_ db: Database) throws {
        try db.execute("PRAGMA secure_delete = ON;")
        try db.execute(version7)
        let insert = try db.prepare("""
            INSERT INTO hub_nodes_v7(node_id, role, store_id, salt, iterations, stored_key, server_key, acked_seq, cursor, registered_at)
            VALUES (?, ?, ?, ?, 4096, ?, ?, ?, ?, ?)
            """)
        for row in try db.prepare("SELECT node_id, role, store_id, mac_key, acked_seq, cursor, registered_at FROM hub_nodes").rows() {
            guard case let .blob(key) = row[3] else { continue }
            var generator = SystemRandomNumberGenerator()
            let salt = (0..<16).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            let verifiers = SCRAMVerifiers(secret: key, salt: salt, iterations: 4096)
            try insert.run([row[0], row[1], row[2], .blob(salt), .blob(verifiers.storedKey), .blob(verifiers.serverKey),
                            row[4], row[5], row[6]])
        }
        try db.execute(version7Finish)
    }

    /// Layout 5: `bridge_state`, what a bridge to another system keeps beside the replicated data
    /// (for WeCom: each group chat's member version, the op ranges its imports wrote); never part
    /// of the digest, never sent. Before layout 5 the WeCom import created this table itself, with
    /// this same definition, the first time it wrote to it: a layout-4 file may hold it already,
    /// with rows, hence `IF NOT EXISTS` (its rows are kept).
    static let version5 = """
        CREATE TABLE IF NOT EXISTS bridge_state(
            kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(kind, key)) WITHOUT ROWID;
        """

    /// Layout 4: what sync needs (SPEC section 7). On a node: `cursors` (already there, now used:
    /// per hub, the log position received up to and the node's acked_seq there) and `quarantine`
    /// (own ops a hub refused for good: kept out of the outbox, shown to people). On a hub:
    /// `hub_log` (every accepted op's log position; the position is the rowid), `hub_nodes` (the
    /// registry: role, store, the key AUTH's MAC is verified with, acked_seq and last known
    /// cursor) and `hub_refusals` (refused op numbers per node, and whether each is settled).
    static let version4 = """
        CREATE TABLE quarantine(
            seq INTEGER PRIMARY KEY, code INTEGER NOT NULL, message TEXT NOT NULL, at INTEGER NOT NULL);
        CREATE TABLE hub_log(position INTEGER PRIMARY KEY, origin TEXT NOT NULL, seq INTEGER NOT NULL);
        CREATE UNIQUE INDEX hub_log_by_op ON hub_log(origin, seq);
        CREATE TABLE hub_nodes(
            node_id TEXT PRIMARY KEY, role TEXT NOT NULL, store_id TEXT, mac_key BLOB NOT NULL,
            acked_seq INTEGER NOT NULL DEFAULT 0, cursor INTEGER NOT NULL DEFAULT 0,
            registered_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE hub_refusals(
            node_id TEXT NOT NULL, seq INTEGER NOT NULL, code INTEGER NOT NULL, message TEXT NOT NULL,
            settled INTEGER NOT NULL DEFAULT 0, at INTEGER NOT NULL,
            PRIMARY KEY(node_id, seq)) WITHOUT ROWID;
        """

    /// Frozen like `version1`. The op log keeps an op's keys and its encoded body only (the other columns repeated what the
    /// body holds), and is clustered by instance: the ops every merge reads lie together, and a
    /// snapshot sent in instance order appends instead of writing random pages. `ops_by_origin`
    /// serves change sets and the version vector; `tagged_customers` (every customer that ever had
    /// an op on a tag) replaces the `ops_by_tag` index, and a repeated edit of the same pair writes
    /// nothing to it.
    static let version3 = """
        CREATE TABLE ops_v3(
            inst_kind TEXT NOT NULL, inst_id TEXT NOT NULL, origin TEXT NOT NULL, seq INTEGER NOT NULL,
            hlc INTEGER NOT NULL, body BLOB NOT NULL,
            PRIMARY KEY(inst_kind, inst_id, origin, seq)) WITHOUT ROWID;
        INSERT INTO ops_v3 SELECT inst_kind, inst_id, origin, seq, hlc, body FROM ops ORDER BY inst_kind, inst_id, origin, seq;
        CREATE TABLE tagged_customers(tag_id TEXT NOT NULL, customer_id TEXT NOT NULL,
                                      PRIMARY KEY(tag_id, customer_id)) WITHOUT ROWID;
        INSERT OR IGNORE INTO tagged_customers SELECT sub, target_id FROM ops WHERE entity = 'customer_tag' ORDER BY sub, target_id;
        DROP TABLE ops;
        ALTER TABLE ops_v3 RENAME TO ops;
        CREATE UNIQUE INDEX ops_by_origin ON ops(origin, seq);
        """

    /// Layout 1 as it was written from commit 93de6e9 to 947c7b4, frozen as text: later changes to
    /// `Table.columns` must come with a migration of their own, never by editing this. (Files
    /// written by 0ce8fc9, the first commit, lack `ops_by_tag`; nothing later reads it, and
    /// layout 3 drops the table it indexes.)
    static let version1 = """
        CREATE TABLE siyu_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
        CREATE TABLE ops(
            origin TEXT NOT NULL, seq INTEGER NOT NULL, hlc INTEGER NOT NULL,
            inst_kind TEXT NOT NULL, inst_id TEXT NOT NULL,
            entity TEXT NOT NULL, target_id TEXT NOT NULL, sub TEXT NOT NULL, field TEXT NOT NULL,
            kind TEXT NOT NULL, value, author TEXT NOT NULL, body BLOB NOT NULL,
            PRIMARY KEY(origin, seq)) WITHOUT ROWID;
        CREATE INDEX ops_by_instance ON ops(inst_kind, inst_id);
        CREATE INDEX ops_by_field ON ops(entity, target_id, sub, field, hlc);
        CREATE INDEX ops_by_tag ON ops(sub, target_id) WHERE entity = 'customer_tag';
        CREATE TABLE versions(origin TEXT PRIMARY KEY, contiguous INTEGER NOT NULL, highest INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE cursors(peer TEXT PRIMARY KEY, position INTEGER NOT NULL DEFAULT 0,
                             acked INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
        CREATE TABLE conflicts(
            conflict_id TEXT PRIMARY KEY, inst_kind TEXT NOT NULL, inst_id TEXT NOT NULL,
            rule TEXT NOT NULL, entity TEXT NOT NULL, target_id TEXT NOT NULL, sub TEXT NOT NULL, field TEXT NOT NULL,
            state TEXT NOT NULL,
            winner_value, winner_node TEXT, winner_staff TEXT, winner_hlc INTEGER,
            loser_value, loser_node TEXT NOT NULL, loser_staff TEXT NOT NULL, loser_hlc INTEGER NOT NULL,
            closed_node TEXT, closed_staff TEXT, closed_hlc INTEGER) WITHOUT ROWID;
        CREATE INDEX conflicts_by_instance ON conflicts(inst_kind, inst_id);
        CREATE INDEX conflicts_by_state ON conflicts(state);
        CREATE TABLE stores(store_id TEXT NOT NULL, name TEXT, region TEXT, PRIMARY KEY(store_id)) WITHOUT ROWID;
        CREATE TABLE staff(userid TEXT NOT NULL, name TEXT, store_id TEXT, PRIMARY KEY(userid)) WITHOUT ROWID;
        CREATE TABLE customers(customer_id TEXT NOT NULL, name TEXT, gender INTEGER, phone TEXT, unionid TEXT, owner_store TEXT, owner_staff TEXT, deleted INTEGER, PRIMARY KEY(customer_id)) WITHOUT ROWID;
        CREATE TABLE follow_relations(customer_id TEXT NOT NULL, userid TEXT NOT NULL, remark TEXT, description TEXT, add_way INTEGER, createtime INTEGER, state TEXT, PRIMARY KEY(customer_id, userid)) WITHOUT ROWID;
        CREATE TABLE tag_groups(group_id TEXT NOT NULL, name TEXT, sort_order INTEGER, exclusive INTEGER, deleted INTEGER, PRIMARY KEY(group_id)) WITHOUT ROWID;
        CREATE TABLE tags(tag_id TEXT NOT NULL, group_id TEXT, name TEXT, sort_order INTEGER, deleted INTEGER, PRIMARY KEY(tag_id)) WITHOUT ROWID;
        CREATE TABLE customer_tags(customer_id TEXT NOT NULL, tag_id TEXT NOT NULL, added_by TEXT, added_node TEXT, added_at INTEGER, PRIMARY KEY(customer_id, tag_id)) WITHOUT ROWID;
        CREATE TABLE group_chats(chat_id TEXT NOT NULL, name TEXT, owner TEXT, notice TEXT, capacity INTEGER, PRIMARY KEY(chat_id)) WITHOUT ROWID;
        CREATE TABLE group_members(chat_id TEXT NOT NULL, member_id TEXT NOT NULL, member_type INTEGER, join_time INTEGER, join_scene INTEGER, invitor TEXT, nickname TEXT, overflow INTEGER, PRIMARY KEY(chat_id, member_id)) WITHOUT ROWID;
        CREATE TABLE orders(order_id TEXT NOT NULL, customer_id TEXT, store_id TEXT, staff_id TEXT, address TEXT, note TEXT, status TEXT, PRIMARY KEY(order_id)) WITHOUT ROWID;
        CREATE TABLE order_lines(order_id TEXT NOT NULL, line_id TEXT NOT NULL, sku TEXT, qty INTEGER, unit_price_cents INTEGER, PRIMARY KEY(order_id, line_id)) WITHOUT ROWID;
        CREATE TABLE points(customer_id TEXT NOT NULL, balance INTEGER, awarded INTEGER, redeemed INTEGER, PRIMARY KEY(customer_id)) WITHOUT ROWID;
        CREATE INDEX customer_tags_by_tag ON customer_tags(tag_id);
        """

    /// Layout 2 (947c7b4): two indexes nothing read are dropped.
    static let version2 = "DROP INDEX ops_by_field; DROP INDEX customer_tags_by_tag;"

    /// Opens (creating or migrating as needed) the replica at `path`.
    static func open(path: String, migrations: [SchemaMigration] = ReplicaSchema.migrations) throws -> Database {
        try refuseIfNotSQLite(path: path)
        let db: Database
        do {
            db = try Database(path: path, mode: .readWriteCreate)
        } catch let e as SQLiteError {
            throw ReplicaError.storage(e, context: "opening \(path)")
        }
        do {
            let target = migrations.last?.version ?? 0
            let found = try storedVersion(db, path: path)
            if found > target {
                throw ReplicaError.newerSchema(path: path, found: found, supported: target)
            }
            if found < target {
                try db.transaction {
                    for m in migrations where m.version > found {
                        try m.apply(db)
                    }
                    try db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES ('format', ?), ('schema_version', ?)")
                        .run([.text(formatName), .integer(Int64(target))])
                    try db.execute("PRAGMA user_version = \(target)")
                }
            }
            if found > 0 && found < 7 {
                // Layout 6 dropped the nodes' HMAC keys: copy the zeroed pages into the file and
                // empty the WAL, so no copy of a key stays in either (a no-op for a file not in WAL
                // mode). Before any other statement runs on the connection.
                try db.execute("PRAGMA wal_checkpoint(TRUNCATE);")
            }
            _ = try db.prepare("PRAGMA journal_mode = WAL").scalar()
            try db.execute("PRAGMA synchronous = NORMAL;")
            return db
        } catch let e as SQLiteError {
            db.close()
            if e.isNotADatabase { throw ReplicaError.notAReplica(path: path, reason: "not an SQLite database") }
            throw ReplicaError.storage(e, context: "opening \(path)")
        } catch {
            db.close()
            throw error
        }
    }

    /// How to open `path` without writing anything beside it: immutable (no `-wal`/`-shm` made or
    /// read, no locks) when its write-ahead log is absent or empty and the file or its directory
    /// is not writable by this process (so no SQLite writer of ours can be changing it); otherwise
    /// SQLite's ordinary read-only mode.
    public static func readingMode(for path: String) -> Database.OpenMode {
        let fm = FileManager.default
        let wal = (try? fm.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber)?.intValue ?? 0
        let directory = (path as NSString).deletingLastPathComponent
        let writable = fm.isWritableFile(atPath: path) && fm.isWritableFile(atPath: directory.isEmpty ? "." : directory)
        return wal == 0 && !writable ? .immutable : .readOnly
    }

    /// Opens an existing replica of the current layout to read it only (`readingMode`): nothing is
    /// migrated or written. An older layout is refused (a command that writes migrates it).
    static func openForReading(path: String, migrations: [SchemaMigration] = ReplicaSchema.migrations) throws -> Database {
        try refuseIfNotSQLite(path: path)
        let db: Database
        do {
            db = try Database(path: path, mode: readingMode(for: path))
        } catch let e as SQLiteError {
            throw ReplicaError.storage(e, context: "opening \(path) to read")
        }
        do {
            let target = migrations.last?.version ?? 0
            let found = try storedVersion(db, path: path)
            if found > target { throw ReplicaError.newerSchema(path: path, found: found, supported: target) }
            if found < target {
                throw ReplicaError.invalid("\(path) has file layout \(found), older than this build's \(target), and cannot be migrated where it is (read-only)",
                                           "copy it somewhere writable and open the copy")
            }
            return db
        } catch let e as SQLiteError {
            db.close()
            if e.isNotADatabase { throw ReplicaError.notAReplica(path: path, reason: "not an SQLite database") }
            throw ReplicaError.storage(e, context: "opening \(path) to read")
        } catch {
            db.close()
            throw error
        }
    }

    /// Refuses an existing file whose header is not SQLite's, before anything is written to it
    /// (nor beside it: the probe opens as a read-only command would, `readingMode`).
    ///
    /// The header is read through SQLite itself (a read-only connection that reads the schema
    /// cookie), never by opening the file separately: closing any descriptor of a file drops every
    /// POSIX lock this process holds on it, including those of a connection already open here (a
    /// hub's writer when its reader opens); another process could then take the file for unused,
    /// checkpoint it and delete its write-ahead log under the writer, whose later commits would be
    /// lost. SQLite's own descriptors are shared between its connections and never closed while one
    /// holds a lock.
    static func refuseIfNotSQLite(path: String) throws {
        guard FileManager.default.fileExists(atPath: path),
              let probe = try? Database(path: path, mode: readingMode(for: path)) else { return }   // the real open reports it
        defer { probe.close() }
        do {
            _ = try probe.prepare("PRAGMA schema_version").scalar()
        } catch let e as SQLiteError where e.isNotADatabase {
            throw ReplicaError.notAReplica(path: path, reason: "not an SQLite database")
        } catch {
            return   // locked, unreadable, …: the real open reports it
        }
    }

    /// 0 for an empty database; the recorded version for a replica; refuses anything else.
    static func storedVersion(_ db: Database, path: String) throws -> Int {
        let tables = try db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").rows().compactMap(\.first?.stringValue)
        if tables.isEmpty { return 0 }
        guard tables.contains("siyu_meta") else {
            throw ReplicaError.notAReplica(path: path, reason: "an SQLite database without Siyu's metadata table")
        }
        let meta = try db.prepare("SELECT key, value FROM siyu_meta WHERE key IN ('format', 'schema_version')").rows()
        var format: String?, version: Int64?
        for row in meta {
            if row[0].stringValue == "format" { format = row[1].stringValue }
            if row[0].stringValue == "schema_version" { version = row[1].int64Value }
        }
        guard format == formatName, let version else {
            throw ReplicaError.notAReplica(path: path, reason: "siyu_meta does not name the replica format")
        }
        return Int(version)
    }
}
