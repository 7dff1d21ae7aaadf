import CSQLite
import Foundation

/// One connection to an SQLite database file.
///
/// Guarantees:
/// - The connection is opened with `SQLITE_OPEN_NOMUTEX` and is **not** thread-safe:
///   use a `Database` (and the statements it prepared) from one thread or actor at a time.
/// - A busy timeout of 5 seconds is set, so short lock contention waits instead of failing.
/// - Every failure is a thrown `SQLiteError` carrying SQLite's message and, when there is
///   one, the SQL; no method traps on bad input or on use after `close()`.
/// - `transaction(_:)` is atomic: either all of `body`'s writes are kept or none are.
/// - `close()` is idempotent, finalizes every statement this connection prepared (cached or
///   not), and runs on `deinit`. A `Statement` used after its database was closed throws.
public final class Database {
    /// How `init(path:mode:)` opens the file.
    public enum OpenMode: Sendable {
        /// Read only; the file must exist.
        case readOnly
        /// Read and write; the file must exist.
        case readWrite
        /// Read and write; the file is created if it does not exist.
        case readWriteCreate
        /// Read only, as a file nothing changes (SQLite's `immutable=1` URI): no locks are taken
        /// and no `-wal` or `-shm` file is created or read. Only for a file no process writes
        /// while it is open and whose write-ahead log holds nothing (absent): a copy on read-only
        /// media, a backup, a file in a read-only directory.
        case immutable
    }

    /// `path` as an SQLite URI filename (`file:` with `?`, `#` and `%` escaped).
    static func uri(_ path: String, query: String) -> String {
        var escaped = ""
        for scalar in path.unicodeScalars {
            switch scalar {
            case "%": escaped += "%25"
            case "?": escaped += "%3f"
            case "#": escaped += "%23"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return "file:\(escaped)?\(query)"
    }

    /// The path given to `init(path:mode:)` (may be `":memory:"`).
    public let path: String

    /// Test hook. When set, it is called with the SQL text before each statement
    /// execution — before the first `sqlite3_step` of every `run`/`query`/`rows`/`scalar`,
    /// before every `execute(_:)`, and before the `BEGIN IMMEDIATE`, `SAVEPOINT`, `COMMIT`
    /// and `RELEASE` issued by `transaction(_:)`. If it throws, that statement is not run and
    /// the error propagates (a surrounding `transaction` then rolls back). Rollbacks issued
    /// by `transaction(_:)` never go through the hook.
    public var faultInjector: ((String) throws -> Void)?

    /// The raw connection; `nil` once closed.
    private(set) var handle: OpaquePointer?
    /// Statements returned by `cached(_:)`, keyed by SQL text.
    private var statementCache: [String: Statement] = [:]
    /// Every statement prepared on this connection that is still alive, so `close()` can finalize them.
    private var liveStatements: [ObjectIdentifier: WeakStatement] = [:]
    /// How many `transaction(_:)` calls are currently running on this connection.
    private var transactionDepth = 0
    /// Distinguishes savepoint names across the connection's lifetime.
    private var savepointCounter = 0

    /// Opens (or, with `.readWriteCreate`, creates) the database at `path`.
    ///
    /// Opening a file that exists but is not a database succeeds; the first statement that
    /// reads it throws an error whose `isNotADatabase` is true.
    /// - Throws: `SQLiteError` (e.g. `SQLITE_CANTOPEN` for a missing file with `.readWrite`).
    public init(path: String, mode: OpenMode = .readWriteCreate) throws {
        self.path = path
        var flags = SQLITE_OPEN_NOMUTEX
        var filename = path
        switch mode {
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .immutable:
            flags |= SQLITE_OPEN_READONLY | SQLITE_OPEN_URI
            filename = Database.uri(path, query: "immutable=1")
        }
        var raw: OpaquePointer?
        let rc = sqlite3_open_v2(filename, &raw, flags, nil)
        guard rc == SQLITE_OK, let raw else {
            let error = SQLiteError.from(resultCode: rc == SQLITE_OK ? SQLITE_CANTOPEN : rc, handle: raw, sql: nil)
            sqlite3_close_v2(raw)
            throw SQLiteError(code: error.code, extendedCode: error.extendedCode,
                              message: "cannot open \(path): \(error.message)", sql: nil)
        }
        let timeoutRC = sqlite3_busy_timeout(raw, 5_000)
        guard timeoutRC == SQLITE_OK else {
            let error = SQLiteError.from(resultCode: timeoutRC, handle: raw, sql: nil)
            sqlite3_close_v2(raw)
            throw error
        }
        handle = raw
    }

    deinit {
        close()
    }

    /// The version of the linked SQLite library, e.g. `"3.40.1"`.
    public static var libraryVersion: String {
        String(cString: sqlite3_libversion())
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { handle == nil }

    /// Whether a transaction is open (`!sqlite3_get_autocommit`). `false` once closed.
    public var isInTransaction: Bool {
        guard let handle else { return false }
        return sqlite3_get_autocommit(handle) == 0
    }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE (`sqlite3_changes64`).
    public var changes: Int {
        guard let handle else { return 0 }
        return Int(sqlite3_changes64(handle))
    }

    /// The rowid of the most recent successful INSERT on this connection.
    public var lastInsertRowID: Int64 {
        guard let handle else { return 0 }
        return sqlite3_last_insert_rowid(handle)
    }

    /// What the statements run through `run`, `query`, `queryWhile`, `rows` and `scalar` on
    /// this connection have cost since it opened (`sqlite3_stmt_status`; not `execute(_:)`).
    /// Take it before and after a piece of work to see what that work read.
    public private(set) var work = StatementWork()

    /// The plan SQLite chooses for `sql` (`EXPLAIN QUERY PLAN`, parameters unbound), one line per
    /// step, e.g. `SEARCH ops USING PRIMARY KEY (inst_kind=? AND inst_id=?)` or `SCAN customers`.
    /// Runs nothing of `sql` itself.
    public func queryPlan(_ sql: String) throws -> [String] {
        try prepare("EXPLAIN QUERY PLAN " + sql).rows().map { $0.count > 3 ? ($0[3].stringValue ?? "") : "" }
    }

    /// Runs one or more `;`-separated statements without parameters (`sqlite3_exec`).
    /// Result rows, if any, are ignored.
    public func execute(_ sql: String) throws {
        try exec(sql, injectingFaults: true)
    }

    /// Compiles exactly one statement. The caller owns the returned statement; it is
    /// finalized when released or when this database is closed.
    /// - Throws: `SQLiteError` on a syntax error, if `sql` holds no statement, or more than one.
    public func prepare(_ sql: String) throws -> Statement {
        let handle = try openHandle(sql: sql)
        var raw: OpaquePointer?
        var tailOffset = 0
        let rc = sql.withCString { cString -> Int32 in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v2(handle, cString, -1, &raw, &tail)
            if let tail { tailOffset = cString.distance(to: tail) }
            return rc
        }
        guard rc == SQLITE_OK else {
            let error = SQLiteError.from(resultCode: rc, handle: handle, sql: sql)
            sqlite3_finalize(raw)
            throw error
        }
        guard let raw else {
            throw SQLiteError.misuse("no SQL statement to prepare (empty or only comments)", sql: sql)
        }
        if try containsAnotherStatement(sql, afterUTF8Offset: tailOffset, handle: handle) {
            sqlite3_finalize(raw)
            throw SQLiteError.misuse("prepare accepts exactly one statement; use execute(_:) for several", sql: sql)
        }
        let statement = Statement(handle: raw, sql: sql, database: self)
        liveStatements[ObjectIdentifier(statement)] = WeakStatement(statement)
        return statement
    }

    /// A prepared statement for `sql`, compiled once per connection and reused.
    ///
    /// The statement is reset and its bindings are cleared before it is returned. If the
    /// cached statement is still being iterated (e.g. `cached` is called with the same SQL
    /// from inside its own `query` callback), a fresh uncached statement is returned instead,
    /// so the running iteration is never disturbed.
    public func cached(_ sql: String) throws -> Statement {
        _ = try openHandle(sql: sql)
        if let statement = statementCache[sql], !statement.isFinalized {
            if statement.isExecuting {
                return try prepare(sql)
            }
            try statement.resetAndClearBindings()
            return statement
        }
        let statement = try prepare(sql)
        statementCache[sql] = statement
        return statement
    }

    /// Runs `body` atomically and returns its result.
    ///
    /// The outermost call opens `BEGIN IMMEDIATE` and ends with `COMMIT`; a nested call (or a
    /// call made while a transaction is already open) uses `SAVEPOINT` and `RELEASE`. If `body`
    /// throws, its work is rolled back (`ROLLBACK`, or `ROLLBACK TO` + `RELEASE` for a
    /// savepoint) and the original error is rethrown. If `COMMIT` itself fails, the
    /// transaction is rolled back and the commit error is thrown.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        _ = try openHandle(sql: nil)
        if transactionDepth == 0 && !isInTransaction {
            return try outermost(beginning: "BEGIN IMMEDIATE", body)
        } else {
            savepointCounter += 1
            let name = "siyu_sp_\(savepointCounter)"
            return try run(beginning: "SAVEPOINT \(name)", body, ending: "RELEASE \(name)") { rollback(toSavepoint: name) }
        }
    }

    /// Runs `body` in one deferred transaction (`BEGIN` … `COMMIT`), so every read in it sees one
    /// snapshot of the file; inside a transaction already open, just runs `body`. The transaction
    /// it opens always ends before this returns or throws: a failing `body` or `COMMIT` rolls it
    /// back (a transaction left open would hold the reader's snapshot for good, and turn every
    /// later write of this connection into a savepoint that never commits).
    public func readTransaction<T>(_ body: () throws -> T) throws -> T {
        _ = try openHandle(sql: nil)
        guard transactionDepth == 0 && !isInTransaction else { return try body() }
        return try outermost(beginning: "BEGIN", body)
    }

    /// The outermost transaction: `begin`, `body`, `COMMIT`; rolled back if `body` or `COMMIT`
    /// fails, and the error rethrown.
    private func outermost<T>(beginning begin: String, _ body: () throws -> T) throws -> T {
        try run(beginning: begin, body, ending: "COMMIT") { rollbackAll() }
    }

    /// `begin`, `body`, `end`, one level deeper; `undo` and the error rethrown if `body` or `end` fails.
    private func run<T>(beginning begin: String, _ body: () throws -> T, ending end: String, undo: () -> Void) throws -> T {
        try exec(begin, injectingFaults: true)
        transactionDepth += 1
        defer { transactionDepth -= 1 }
        do {
            let result = try body()
            try exec(end, injectingFaults: true)
            return result
        } catch {
            undo()
            throw error
        }
    }

    /// Copies the whole database into a new file at `destination` with SQLite's online backup API
    /// (`sqlite3_backup_*`), in one step: the copy is one consistent snapshot of this database,
    /// taken under a read transaction, so a writer in another connection or process (a hub that
    /// is serving, in WAL mode) goes on meanwhile. The file is created with mode 0600 (owner
    /// only); a file already at `destination` is refused, never overwritten.
    /// - Throws: `SQLiteError` (`SQLITE_CANTOPEN` if the file exists or cannot be created).
    public func backup(into destination: String) throws {
        let source = try openHandle(sql: nil)
        let files = FileManager.default
        guard !files.fileExists(atPath: destination),
              files.createFile(atPath: destination, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw SQLiteError(code: .cantOpen, message: "cannot create \(destination): it exists or its directory is not writable", sql: nil)
        }
        try? files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: destination)   // whatever the umask
        var raw: OpaquePointer?
        let rc = sqlite3_open_v2(destination, &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let target = raw else {
            let error = SQLiteError.from(resultCode: rc == SQLITE_OK ? SQLITE_CANTOPEN : rc, handle: raw, sql: nil)
            sqlite3_close_v2(raw)
            throw error
        }
        defer { sqlite3_close_v2(target) }
        guard let backup = sqlite3_backup_init(target, "main", source, "main") else {
            throw SQLiteError.from(resultCode: sqlite3_errcode(target), handle: target, sql: nil)
        }
        var step = sqlite3_backup_step(backup, -1)
        var waits = 0
        while (step == SQLITE_BUSY || step == SQLITE_LOCKED) && waits < 500 {   // at most about 5 s
            sqlite3_sleep(10)
            waits += 1
            step = sqlite3_backup_step(backup, -1)
        }
        let finish = sqlite3_backup_finish(backup)
        guard step == SQLITE_DONE, finish == SQLITE_OK else {
            throw SQLiteError.from(resultCode: step == SQLITE_DONE ? finish : step, handle: target, sql: nil)
        }
    }

    /// Closes the connection: finalizes every statement it prepared, then closes the handle.
    /// Idempotent. An open transaction is rolled back by SQLite.
    public func close() {
        guard let handle else { return }
        let statements = liveStatements.values.compactMap(\.statement)
        liveStatements.removeAll()
        statementCache.removeAll()
        for statement in statements {
            statement.finalize()
        }
        sqlite3_close_v2(handle)
        self.handle = nil
    }

    // MARK: - Internal

    /// Adds what the statement `handle` did since it was last counted to `work`, and restarts
    /// its counters.
    func recordWork(of handle: OpaquePointer) {
        work.virtualMachineSteps &+= Int64(sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_VM_STEP, 1))
        work.fullScanSteps &+= Int64(sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_FULLSCAN_STEP, 1))
        work.sorts &+= Int64(sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_SORT, 1))
        work.executions &+= 1
    }

    /// Called by a statement as it is finalized or deinitialized.
    func forget(_ statement: Statement) {
        liveStatements[ObjectIdentifier(statement)] = nil
    }

    /// The open handle, or a misuse error if the database is closed.
    func openHandle(sql: String?) throws -> OpaquePointer {
        guard let handle else {
            throw SQLiteError.misuse("database is closed: \(path)", sql: sql)
        }
        return handle
    }

    /// Runs `sql` with `sqlite3_exec`, optionally through the fault injector first.
    private func exec(_ sql: String, injectingFaults: Bool) throws {
        let handle = try openHandle(sql: sql)
        if injectingFaults, let faultInjector {
            try faultInjector(sql)
        }
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        guard rc == SQLITE_OK else {
            var error = SQLiteError.from(resultCode: rc, handle: handle, sql: sql)
            if let errorMessage {
                error = SQLiteError(code: error.code, extendedCode: error.extendedCode,
                                    message: String(cString: errorMessage), sql: sql)
            }
            sqlite3_free(errorMessage)
            throw error
        }
        sqlite3_free(errorMessage)
    }

    /// Rolls back the whole transaction if one is still open (SQLite may already have
    /// rolled it back on its own). Errors are ignored: the caller rethrows the original one.
    private func rollbackAll() {
        guard isInTransaction else { return }
        try? exec("ROLLBACK", injectingFaults: false)
    }

    /// Rolls back the transaction open on this connection, if any. Never fails and never goes
    /// through the fault injector: whatever went wrong, the transaction ends (SQLite ends it
    /// even when ROLLBACK reports an error).
    public func rollback() {
        rollbackAll()
    }

    /// Undoes and removes a savepoint. Errors are ignored (the savepoint may be gone already
    /// if SQLite rolled back the whole transaction); the caller rethrows the original error.
    private func rollback(toSavepoint name: String) {
        guard isInTransaction else { return }
        try? exec("ROLLBACK TO \(name)", injectingFaults: false)
        try? exec("RELEASE \(name)", injectingFaults: false)
    }

    /// Whether the text after the first statement holds another statement (not just
    /// whitespace, semicolons or comments).
    private func containsAnotherStatement(_ sql: String, afterUTF8Offset offset: Int,
                                          handle: OpaquePointer) throws -> Bool {
        let utf8 = Array(sql.utf8)
        guard offset < utf8.count else { return false }
        let rest = utf8[offset...]
        let whitespace: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D, 0x0C, 0x0B, 0x3B]  // incl. ';'
        guard rest.contains(where: { !whitespace.contains($0) }) else { return false }
        // Something other than whitespace follows: let SQLite decide whether it is a statement.
        var raw: OpaquePointer?
        let restText = String(decoding: rest, as: UTF8.self)
        let rc = sqlite3_prepare_v2(handle, restText, -1, &raw, nil)
        defer { sqlite3_finalize(raw) }
        // A tail that does not even compile is reported as "more than one statement" too.
        return rc != SQLITE_OK || raw != nil
    }
}

/// A weak reference to a statement, so the registry in `Database` does not keep statements alive.
struct WeakStatement {
    weak var statement: Statement?
    init(_ statement: Statement) { self.statement = statement }
}

/// What statements cost (`Database.work`), summed over the statements run.
///
/// Guarantees: every count only grows (wrapping at `Int64.max`, which no connection reaches).
public struct StatementWork: Equatable, Sendable {
    /// Virtual machine operations SQLite ran (`SQLITE_STMTSTATUS_VM_STEP`): a measure of the rows
    /// and index entries a statement visited.
    public var virtualMachineSteps: Int64 = 0
    /// Steps forward through a table or index in a full scan (`SQLITE_STMTSTATUS_FULLSCAN_STEP`).
    public var fullScanSteps: Int64 = 0
    /// Sorts SQLite made for an ORDER BY or GROUP BY no index served (`SQLITE_STMTSTATUS_SORT`).
    public var sorts: Int64 = 0
    /// How many statement executions were counted.
    public var executions: Int64 = 0

    public init() {}

    /// What was done between `earlier` and this.
    public func since(_ earlier: StatementWork) -> StatementWork {
        var out = StatementWork()
        out.virtualMachineSteps = virtualMachineSteps &- earlier.virtualMachineSteps
        out.fullScanSteps = fullScanSteps &- earlier.fullScanSteps
        out.sorts = sorts &- earlier.sorts
        out.executions = executions &- earlier.executions
        return out
    }
}
