// Shared helpers of the benchmark: timing, progress on stderr, the temporary directory, the plain
// SQLite baseline databases, peak memory, WeCom-like ids and number formatting. Measures nothing
// by itself.

import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore

// MARK: - Timing and progress

/// Wall-clock seconds taken by `body`.
func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Progress for the person watching: always stderr, so stdout stays the report (or the JSON).
func progress(_ message: String) {
    FileHandle.standardError.write(Data("siyu-bench: \(message)\n".utf8))
}

/// An error of the benchmark itself (a check that failed, a child that misbehaved).
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Temporary directory and interruption

/// A directory under the system temporary directory, removed by `remove()`, on deinit, and when the
/// process is interrupted while it exists (see `Interruption`).
final class TemporaryDirectory {
    let url: URL
    private var removed = false

    init(prefix: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        Interruption.removeOnInterrupt(url.path)
    }

    deinit { remove() }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() {
        guard !removed else { return }
        removed = true
        Interruption.removeDirectory(url.path)
    }
}

/// On SIGINT or SIGTERM: stops the child processes being run (they may be writing into a temporary
/// directory), removes the temporary directories, and exits with 128 + the signal number. Removals
/// and the handler hold one lock, so a removal on the main thread never races the handler's.
enum Interruption {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var directories: Set<String> = []
    nonisolated(unsafe) private static var children: [Int32: Process] = [:]
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func removeOnInterrupt(_ path: String) {
        lock.lock()
        defer { lock.unlock() }
        directories.insert(path)
        installHandlers()
    }

    static func removeDirectory(_ path: String) {
        lock.lock()
        defer { lock.unlock() }
        try? FileManager.default.removeItem(atPath: path)
        directories.remove(path)
    }

    /// Starts `process` (already configured) and runs `body` while it is tracked.
    static func run(_ process: Process, while body: () throws -> Void) throws {
        lock.lock()
        installHandlers()
        lock.unlock()
        try process.run()
        let pid = process.processIdentifier
        lock.lock(); children[pid] = process; lock.unlock()
        defer { lock.lock(); children[pid] = nil; lock.unlock() }
        try body()
    }

    /// Must be called with the lock held.
    private static func installHandlers() {
        guard sources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                lock.lock()   // never released: the process ends here
                cleanUp()
                _exit(128 + sig)
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Must be called with the lock held.
    private static func cleanUp() {
        for process in children.values where process.isRunning {
            process.terminate()
            for _ in 0..<250 where process.isRunning { usleep(20_000) }
        }
        for path in directories { try? FileManager.default.removeItem(atPath: path) }
    }
}

// MARK: - Plain SQLite baselines

/// A plain SQLite database with the PRAGMAs the replica sets (see `ReplicaSchema.open`): WAL,
/// `synchronous = NORMAL`, a 64 MiB page cache. Tables are created with the replica's own DDL,
/// copied from a replica file, so the baseline writes the same rows into the same table shape.
enum PlainSQLite {
    static func open(_ path: String) throws -> Database {
        let db = try Database(path: path)
        _ = try db.prepare("PRAGMA journal_mode = WAL").scalar()
        try db.execute("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;")
        return db
    }

    /// Opens a plain database holding `tables` (and their indexes) exactly as the replica at
    /// `replicaPath` defines them — the plain tables only, no op log, no merge metadata — plus the
    /// replica tables named in `alsoTables` (say "ops", the op log, with its indexes).
    static func open(_ path: String, tables: [Table], alsoTables: [String] = [], likeReplicaAt replicaPath: String) throws -> Database {
        let source = try Database(path: replicaPath, mode: .readOnly)
        defer { source.close() }
        let names = tables.map(\.rawValue) + alsoTables
        let placeholders = Array(repeating: "?", count: names.count).joined(separator: ", ")
        let ddl = try source.prepare("""
            SELECT sql FROM sqlite_master WHERE tbl_name IN (\(placeholders)) AND sql IS NOT NULL
            ORDER BY type = 'index', name
            """).rows(names.map { .text($0) }).compactMap { $0.first?.stringValue }
        let db = try open(path)
        for statement in ddl { try db.execute(statement) }
        return db
    }

    /// An upsert statement for every column of `table`.
    static func upsert(_ table: Table, in db: Database) throws -> Statement {
        let placeholders = Array(repeating: "?", count: table.columns.count).joined(separator: ", ")
        return try db.cached("INSERT OR REPLACE INTO \(table.rawValue) VALUES (\(placeholders))")
    }
}

/// The plain-SQLite stand-in for applying remote ops: one upsert of a `customer_tags` row per op,
/// in transactions of `transactionSizes` upserts each (the sizes the replica's applies had).
/// Returns the seconds taken.
func plainUpserts(_ ops: [Op], into db: Database, transactionSizes: [Int]) throws -> Double {
    let upsert = try PlainSQLite.upsert(.customerTags, in: db)
    return try seconds {
        var start = 0
        for size in transactionSizes {
            let end = min(start + size, ops.count)
            try db.transaction {
                for i in start..<end {
                    let op = ops[i]
                    try upsert.run([.text(op.instance.id), .text(op.body.target.sub + "\(i % 97)"), .text(op.author),
                                    .text(op.origin), .integer(Int64(bitPattern: op.hlc.raw))])
                }
            }
            start = end
        }
    }
}

// MARK: - The same rows, for merging and catching up

/// The plain-SQLite stand-in for applying remote ops that writes the same rows the replica ends up
/// with: per op, the row it writes in the plain tables (its entity's table, keyed by the op's
/// target) — upserted with the values the replica holds after the apply, or deleted where the
/// replica holds no such row (a removed tag, say). As many statements as ops, into the same tables
/// with the replica's own DDL and indexes, starting from the rows the replica held before.
struct SameRowsBaseline {
    /// What the plain database executes for one op (planned before the timing).
    struct Step {
        let table: Table
        /// The row to upsert, or nil: delete the row with `key`.
        let row: [SQLiteValue]?
        let key: [SQLiteValue]
    }

    /// Every row of every plain table of `replica`, by table and key.
    static func rows(of replica: Replica) throws -> [Table: [[String]: [SQLiteValue]]] {
        var out: [Table: [[String]: [SQLiteValue]]] = [:]
        for table in Table.allCases {
            var rows: [[String]: [SQLiteValue]] = [:]
            for row in try replica.rows(of: table) {
                let key = table.columns.prefix(table.keyColumnCount).map { row[$0.name]?.textValue ?? "" }
                rows[key] = table.columns.map { sqliteValue(row[$0.name] ?? .null) }
            }
            out[table] = rows
        }
        return out
    }

    /// The plain table an op writes.
    static func table(of entity: Entity) -> Table {
        switch entity {
        case .store: return .stores
        case .staff: return .staff
        case .customer: return .customers
        case .followRelation: return .followRelations
        case .tagGroup: return .tagGroups
        case .tag: return .tags
        case .customerTag: return .customerTags
        case .groupChat: return .groupChats
        case .groupMember: return .groupMembers
        case .order: return .orders
        case .orderLine: return .orderLines
        case .points: return .points
        }
    }

    /// One step per op: the row its target has in `after` (the replica's tables after the apply).
    static func plan(_ ops: [Op], after: [Table: [[String]: [SQLiteValue]]]) -> [Step] {
        ops.map { op in
            let target = op.body.target
            let table = table(of: target.entity)
            let key = target.entity.hasSub ? [target.id, target.sub] : [target.id]
            return Step(table: table, row: after[table]?[key], key: key.map { .text($0) })
        }
    }

    /// A plain database holding every plain table as the replica at `replicaPath` defines it,
    /// filled with `rows` (the replica's rows before the apply).
    static func database(_ path: String, likeReplicaAt replicaPath: String, rows: [Table: [[String]: [SQLiteValue]]]) throws -> Database {
        let db = try PlainSQLite.open(path, tables: Table.allCases, likeReplicaAt: replicaPath)
        try db.transaction {
            for (table, tableRows) in rows where !tableRows.isEmpty {
                let upsert = try PlainSQLite.upsert(table, in: db)
                for row in tableRows.values { try upsert.run(row) }
            }
        }
        return db
    }

    /// Runs the steps in transactions of `transactionSizes` steps each; returns the seconds taken.
    static func run(_ steps: [Step], into db: Database, transactionSizes: [Int]) throws -> Double {
        var upserts: [Table: Statement] = [:], deletes: [Table: Statement] = [:]
        for table in Table.allCases {
            upserts[table] = try PlainSQLite.upsert(table, in: db)
            let key = table.columns.prefix(table.keyColumnCount).map { "\($0.name) = ?" }.joined(separator: " AND ")
            deletes[table] = try db.cached("DELETE FROM \(table.rawValue) WHERE \(key)")
        }
        return try seconds {
            var start = 0
            for size in transactionSizes {
                let end = min(start + size, steps.count)
                try db.transaction {
                    for step in steps[start..<end] {
                        if let row = step.row { try upserts[step.table]!.run(row) } else { try deletes[step.table]!.run(step.key) }
                    }
                }
                start = end
            }
        }
    }
}

// MARK: - Disk

/// The bytes a database file takes once its write-ahead log is checkpointed into it (the file as
/// it rests on disk), checkpointed through a connection of its own.
func restingFileBytes(_ path: String) throws -> Int {
    let db = try Database(path: path)
    _ = try db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").rows()
    db.close()
    return fileBytes(path)
}

/// The plain tables of `replica` alone, copied into a plain database: its bytes on disk.
func plainTablesBytes(of replica: Replica, at path: String) throws -> Int {
    let db = try SameRowsBaseline.database(path, likeReplicaAt: replica.path, rows: try SameRowsBaseline.rows(of: replica))
    db.close()
    defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
    return try restingFileBytes(path)
}

/// A replica's bytes on disk per op it holds (file size after a checkpoint ÷ ops held), next to
/// its plain tables alone (the same rows copied into a plain database with the replica's DDL).
struct DiskFigures {
    var replicaBytes = 0, plainBytes = 0, ops = 0
    static let targetBytesPerOp = 120.0

    var bytesPerOp: Double { Double(replicaBytes) / Double(max(ops, 1)) }
    var plainBytesPerOp: Double { Double(plainBytes) / Double(max(ops, 1)) }
    var met: Bool { bytesPerOp <= DiskFigures.targetBytesPerOp }

    init(replicaBytes: Int, plainBytes: Int, ops: Int) {
        (self.replicaBytes, self.plainBytes, self.ops) = (replicaBytes, plainBytes, ops)
    }

    init(of replica: Replica, plainAt path: String) throws {
        ops = try replica.opCounts().total
        replicaBytes = try restingFileBytes(replica.path)
        plainBytes = try plainTablesBytes(of: replica, at: path)
    }

    static func megabytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 1) + " MB" }

    func line(what: String) -> String {
        "disk          \(what): \(DiskFigures.megabytes(replicaBytes)) for \(grouped(ops)) ops held = \(fixed(bytesPerOp, 1)) B/op "
            + "(target ≤ \(Int(DiskFigures.targetBytesPerOp)) B: \(verdict(met))); its plain tables alone \(DiskFigures.megabytes(plainBytes)) "
            + "= \(fixed(plainBytesPerOp, 1)) B/op"
    }

    func figures(prefix: String, into r: inout SectionReport) {
        r.figure(prefix + "_ops_held", ops)
        r.figure(prefix + "_replica_bytes", replicaBytes)
        r.figure(prefix + "_plain_bytes", plainBytes)
        r.figure(prefix + "_bytes_per_op", bytesPerOp, digits: 1)
        r.figure(prefix + "_plain_bytes_per_op", plainBytesPerOp, digits: 1)
    }

    func summaryRow(what: String, key: String, judged: Bool) -> SummaryRow {
        SummaryRow(what: what, siyu: "\(fixed(bytesPerOp, 1)) B/op", baseline: "plain \(fixed(plainBytesPerOp, 1)) B/op",
                   ratio: "\(fixed(Double(replicaBytes) / Double(max(plainBytes, 1)), 2))×", target: "≤ \(Int(DiskFigures.targetBytesPerOp)) B/op held",
                   met: judged ? met : nil, unjudged: "not judged at this size", key: key)
    }
}

// MARK: - Machine

/// The CPU model (the first "model name" of /proc/cpuinfo), or "unknown".
func cpuModel() -> String {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
    for line in info.split(separator: "\n") where line.hasPrefix("model name") {
        if let colon = line.firstIndex(of: ":") { return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
    }
    return "unknown"
}

/// The load averages over 1, 5 and 15 minutes (/proc/loadavg), or nil.
func loadAverages() -> [Double]? {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
    let numbers = text.split(separator: " ").prefix(3).compactMap { Double($0) }
    return numbers.count == 3 ? numbers : nil
}

// MARK: - Memory

/// The process's peak resident set size in kilobytes (VmHWM in /proc/self/status), if readable.
func peakResidentKilobytes() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
    return nil
}

/// The size of a replica's files (database and WAL) in bytes.
func fileBytes(_ path: String) -> Int {
    [path, path + "-wal"].reduce(0) { total, p in
        total + ((try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0)
    }
}

// MARK: - Ids

/// WeCom-like external userids.
enum CustomerIDs {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

    /// WeCom-length (32-character) ids: "wmQm7wCAAA" + 21 random characters + "A".
    static func weCom(_ count: Int, seed: UInt64) -> [String] {
        var rng = SeededRandom(seed: seed)
        var seen = Set<String>()
        var ids: [String] = []
        ids.reserveCapacity(count)
        while ids.count < count {
            let id = "wmQm7wCAAA" + String((0..<21).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }) + "A"
            if seen.insert(id).inserted { ids.append(id) }
        }
        return ids
    }

    /// Short (8-character) ids: "wm" + 6 digits.
    static func short(_ count: Int) -> [String] {
        (0..<count).map { "wm" + String(format: "%06d", $0) }
    }
}

// MARK: - Formatting

func fixed(_ x: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", x) }

/// "12,345" style grouping for counts.
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

/// A figure for a table: grouped digits from 1,000 up, else two decimals.
func figureText(_ x: Double) -> String { abs(x) >= 1000 ? grouped(Int(x.rounded())) : fixed(x, 2) }

/// `text` right-aligned in `width` characters.
func padLeft(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

/// "met" / "NOT met" for a target.
func verdict(_ met: Bool) -> String { met ? "met" : "NOT met" }

/// A target stated for 100k ops is judged only on runs of about that size (not on `--quick`).
func judgedAt100k(ops: Int, _ met: Bool) -> Bool? { ops >= 90_000 ? met : nil }

/// "met", "NOT met", or "not judged at this size".
func verdict(_ met: Bool?) -> String { met.map(verdict) ?? "not judged at this size" }
