import SiyuCore
import SiyuSQLite

/// One op of a field's history, for "why is this value what it is?".
public struct HistoryEntry: Sendable {
    public var op: Op
    /// Whether this write is the field's current value.
    public var isCurrent: Bool
}

/// Every op a replica holds of one instance, oldest first (`InstanceState.canonicalOps`), and the
/// state they merge to.
public struct InstanceHistory: Sendable {
    public let ops: [Op]
    public let state: InstanceState

    /// The ops that concern `target`, oldest first. With a `field`, only the writes of that field
    /// (`status` for an order's status); without one, every op of the target and, for a tag, the
    /// adds of other tags of its exclusive group that replaced its adds. A write that is its
    /// field's current value is marked `isCurrent`.
    public func entries(for target: Target, field: String?) -> [HistoryEntry] {
        var adds = Set<Stamp>()
        for op in ops where op.body.target == target { if case .add = op.body { adds.insert(op.stamp) } }
        return ops.compactMap { op in
            let t = op.body.target
            var relevant = false
            if t == target {
                switch (op.body, field) {
                case (_, nil): relevant = true
                case let (.write(_, f, _, _), field?): relevant = f == field
                case (.status, let field?): relevant = field == "status"
                default: relevant = false
                }
            } else if field == nil, case let .add(_, removes) = op.body {
                relevant = removes.contains(where: adds.contains)
            }
            guard relevant else { return nil }
            var current = false
            if case let .write(t, f, _, _) = op.body { current = state.registers[FieldKey(t, f)]?.winner?.stamp == op.stamp }
            return HistoryEntry(op: op, isCurrent: current)
        }
    }
}

/// Read-only queries over a replica: conflicts, field history, plain rows, digests.
extension Replica {

    /// The conflict log, optionally only entries in one state, ordered by the losing op's clock.
    public func conflicts(state: ConflictState? = nil) throws -> [ConflictEntry] {
        try ReplicaError.wrap("reading conflicts") {
            var sql = "SELECT * FROM conflicts"
            var args: [SQLiteValue] = []
            if let state { sql += " WHERE state = ?"; args.append(.text(state.rawValue)) }
            sql += " ORDER BY loser_hlc, conflict_id"
            var out: [ConflictEntry] = []
            try db.cached(sql).query(args) { row in out.append(try Replica.conflict(from: row)) }
            return out
        }
    }

    /// One conflict by id (or unique id prefix).
    public func conflict(_ id: String) throws -> ConflictEntry {
        let matches = try ReplicaError.wrap("reading conflict \(id)") { () -> [ConflictEntry] in
            var out: [ConflictEntry] = []
            try db.cached("SELECT * FROM conflicts WHERE conflict_id >= ? AND conflict_id < ? ORDER BY conflict_id")
                .query([.text(id), .text(id + "\u{7f}")]) { row in out.append(try Replica.conflict(from: row)) }
            return out
        }
        guard matches.count == 1 else {
            if matches.isEmpty { throw ReplicaError.notFound(what: "conflict '\(id)'", hint: "list conflicts with: siyu conflicts") }
            throw ReplicaError.invalid("conflict id '\(id)' is ambiguous (\(matches.count) match)", "give more digits")
        }
        return matches[0]
    }

    static func conflict(from row: Row) throws -> ConflictEntry {
        func side(_ at: Int32) -> ConflictSide? {
            if row.isNull(at + 1) { return nil }
            return ConflictSide(stamp: Stamp(hlc: HLC(raw: UInt64(bitPattern: row.int64(at + 3))), node: row.text(at + 1) ?? ""),
                                author: row.text(at + 2) ?? "", value: Value(row[at]))
        }
        guard let rule = ConflictRule(rawValue: row.text(3) ?? ""), let entity = Entity(name: row.text(4) ?? ""),
              let state = ConflictState(rawValue: row.text(8) ?? ""), let loser = side(13) else {
            throw ReplicaError.invalid("conflict row \(row.text(0) ?? "?") is unreadable", "the replica may be damaged; resync it")
        }
        var closed: ConflictSide?
        if !row.isNull(17) {
            closed = ConflictSide(stamp: Stamp(hlc: HLC(raw: UInt64(bitPattern: row.int64(19))), node: row.text(17) ?? ""),
                                  author: row.text(18) ?? "", value: .null)
        }
        var entry = ConflictEntry(rule: rule, target: Target(entity, row.text(5) ?? "", row.text(6) ?? ""),
                                  field: row.text(7) ?? "", winner: side(9), loser: loser, state: state, closedBy: closed)
        entry.id = row.text(0) ?? entry.id
        return entry
    }

    /// The history of one instance: every op held of it and its merged state, read in one go.
    /// `siyu history` explains from it; `history(of:field:)` lists a target's part of it.
    public func history(of instance: InstanceRef) throws -> InstanceHistory {
        try ReplicaError.wrap("reading the history of \(instance)") {
            let ops = InstanceState.canonicalOps(instance, try loadOps(instance))
            return InstanceHistory(ops: ops, state: InstanceState.merge(instance, canonical: ops, catalog: try catalog()))
        }
    }

    /// The ops that concern a target (and field, if given), oldest first, with the current write
    /// marked: `history(of: target.instance).entries(for: target, field: field)`.
    public func history(of target: Target, field: String? = nil) throws -> [HistoryEntry] {
        try history(of: target.instance).entries(for: target, field: field)
    }

    /// All rows of a plain table, in key order, as column name → value.
    public func rows(of table: Table, where column: String? = nil, equals value: String? = nil) throws -> [[String: Value]] {
        try ReplicaError.wrap("reading \(table.rawValue)") {
            let names = table.columns.map(\.name)
            let key = names.prefix(table.keyColumnCount).joined(separator: ", ")
            var sql = "SELECT \(names.joined(separator: ", ")) FROM \(table.rawValue)"
            var args: [SQLiteValue] = []
            if let column, let value, names.contains(column) { sql += " WHERE \(column) = ?"; args.append(.text(value)) }
            sql += " ORDER BY \(key)"
            var out: [[String: Value]] = []
            try db.cached(sql).query(args) { row in
                var dict: [String: Value] = [:]
                for (i, n) in names.enumerated() { dict[n] = Value(row[Int32(i)]) }
                out.append(dict)
            }
            return out
        }
    }

    /// Customers rows (as `rows(of: .customers)`) matching every condition given, found in SQL:
    /// `id` exactly (a primary-key lookup), `name` containing the text (ASCII letters case-folded, as
    /// SQL's LIKE does), `phone` containing the text, owned by `store`, showing any of `tagIDs`.
    public func customerRows(id: String? = nil, name: String? = nil, phone: String? = nil, store: String? = nil,
                             tagIDs: [String]? = nil) throws -> [[String: Value]] {
        try ReplicaError.wrap("reading customers") {
            let names = Table.customers.columns.map(\.name)
            var conditions: [String] = [], args: [SQLiteValue] = []
            func escaped(_ s: String) -> String {
                s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            }
            if let id { conditions.append("customer_id = ?"); args.append(.text(id)) }
            if let name { conditions.append("name LIKE ? ESCAPE '\\'"); args.append(.text("%\(escaped(name))%")) }
            if let phone { conditions.append("instr(phone, ?) > 0"); args.append(.text(phone)) }
            if let store { conditions.append("owner_store = ?"); args.append(.text(store)) }
            if let tagIDs {
                let marks = Array(repeating: "?", count: max(1, tagIDs.count)).joined(separator: ", ")
                conditions.append("customer_id IN (SELECT customer_id FROM customer_tags WHERE tag_id IN (\(marks)))")
                args += tagIDs.isEmpty ? [.null] : tagIDs.map { .text($0) }
            }
            var sql = "SELECT \(names.joined(separator: ", ")) FROM customers"
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY customer_id"
            var out: [[String: Value]] = []
            try db.prepare(sql).query(args) { row in
                var dict: [String: Value] = [:]
                for (i, n) in names.enumerated() { dict[n] = Value(row[Int32(i)]) }
                out.append(dict)
            }
            return out
        }
    }

    /// How many rows `table` holds (customers: those not deleted), counted in SQL.
    public func rowCount(of table: Table) throws -> Int {
        try ReplicaError.wrap("counting \(table.rawValue)") {
            let filter = table == .customers ? " WHERE deleted = 0" : ""
            return Int(clamping: try db.cached("SELECT count(*) FROM \(table.rawValue)\(filter)").scalar()?.int64Value ?? 0)
        }
    }

    /// How many ops this replica holds, and how many of them are its own.
    public func opCounts() throws -> (total: Int, own: Int) {
        try ReplicaError.wrap("counting ops") {
            let total = try opLog.count()
            let own = try opLog.count(of: node)
            return (Int(clamping: total), Int(clamping: own))
        }
    }

    /// What the state digest reads, in order (SPEC section 7, "The state digest, byte for byte"):
    /// each table of the data model, then the conflict log — name, key columns, column count.
    static let digestSources: [(String, String, Int)] = Table.allCases.map { t in
        (t.rawValue, t.columns.prefix(t.keyColumnCount).map(\.name).joined(separator: ", "), t.columns.count)
    } + [("conflicts", "conflict_id", 20)]

    /// A SHA-256 digest of the merged state: every plain table and the conflict log, in key order,
    /// with typed values, serialized as SPEC section 7 ("The state digest, byte for byte") defines
    /// (vector: Protocol/state-digest.txt). Equal on two replicas exactly when they hold the same merged state.
    /// Customers still to be re-merged after a tag-library change (a hub's sliced re-merge) are
    /// re-merged first (a write), so the digest is always of the settled state.
    public func digest() throws -> [UInt8] { try digest(ofStore: nil) }

    /// The state digest of the rows in store `store`'s scope (SPEC section 7, "Scope"): what
    /// `digest()` is on a replica that holds exactly that scope. Nil: every row (`digest()`).
    public func digest(ofStore store: String?) throws -> [UInt8] {
        try settlePendingRemerges(limit: nil)
        return try ReplicaError.wrap("computing the digest") {
            var hasher = SHA256()
            var w = ByteWriter(capacity: 4096)
            func flush() { hasher.update(w.bytes); w = ByteWriter(capacity: 4096) }
            func put(_ v: SQLiteValue) {
                switch v {
                case .null: w.byte(0)
                case let .integer(i): w.byte(1); w.signed(i)
                case let .real(d): w.byte(2); w.varint(d.bitPattern)
                case let .text(s): w.byte(3); w.string(s)
                case let .blob(b): w.byte(4); w.data(b)
                }
            }
            for (name, key, _) in Replica.digestSources {
                w.string(name)
                var count: UInt64 = 0
                let condition = store.flatMap { _ in Replica.scopeCondition(of: name) }.map { " WHERE \($0)" } ?? ""
                try db.prepare("SELECT * FROM \(name)\(condition) ORDER BY \(key)").query(condition.isEmpty ? [] : [.text(store ?? "")]) { row in
                    count += 1
                    w.varint(UInt64(row.columnCount))
                    for i in 0..<row.columnCount { put(row[i]) }
                    if w.bytes.count > 3500 { flush() }
                }
                w.byte(0xff)
                w.varint(count)
            }
            flush()
            return hasher.finalize()
        }
    }
}
