import CSQLite

/// Tells SQLite to copy text and blob bytes during binding, so Swift buffers need not outlive the call.
private let transientDestructor = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A compiled SQL statement, prepared by `Database.prepare(_:)` or `Database.cached(_:)`.
///
/// Guarantees:
/// - Holds exactly one SQL statement; `sql` is its text, carried by every error it throws.
/// - `run`, `query`, `rows` and `scalar` always leave the statement reset (ready to run
///   again with the same bindings), also when they throw or the `query` callback throws.
/// - Text and blobs are bound with `SQLITE_TRANSIENT` (copied by SQLite) and with explicit
///   byte lengths, so non-ASCII text and zero bytes are preserved.
/// - Misuse never traps: using a finalized statement (explicitly, or because its database
///   was closed), a wrong number of bindings, or re-entering the statement from its own
///   `query` callback throws a `SQLiteError`.
/// - Like its `Database`, a statement is not thread-safe.
public final class Statement {
    /// The SQL text the statement was prepared from.
    public let sql: String

    /// The compiled statement; `nil` once finalized.
    private(set) var handle: OpaquePointer?
    /// The connection that prepared this statement (for the fault injector and bookkeeping).
    private weak var database: Database?
    /// Whether `run`/`query`/`rows`/`scalar` is currently stepping this statement.
    private(set) var isExecuting = false
    /// Bumped on every step, reset and finalize, so a `Row` can tell whether it is still current.
    private(set) var rowGeneration: UInt64 = 0

    init(handle: OpaquePointer, sql: String, database: Database) {
        self.handle = handle
        self.sql = sql
        self.database = database
    }

    deinit {
        if let handle {
            sqlite3_finalize(handle)
        }
        database?.forget(self)
    }

    /// Whether the statement has been finalized (explicitly or by closing its database).
    public var isFinalized: Bool { handle == nil }

    /// The number of `?` / `:name` parameters (`sqlite3_bind_parameter_count`); 0 once finalized.
    public var parameterCount: Int32 {
        guard let handle else { return 0 }
        return sqlite3_bind_parameter_count(handle)
    }

    /// The number of result columns; 0 for statements that return no data, or once finalized.
    public var columnCount: Int32 {
        guard let handle else { return 0 }
        return sqlite3_column_count(handle)
    }

    /// The names of the result columns.
    public var columnNames: [String] {
        guard let handle else { return [] }
        return (0..<sqlite3_column_count(handle)).map { index in
            sqlite3_column_name(handle, index).map { String(cString: $0) } ?? ""
        }
    }

    /// Binds `values` to parameters 1...n, replacing every old binding.
    /// - Throws: `SQLITE_RANGE` if `values.count` differs from `parameterCount`.
    public func bind(_ values: [SQLiteValue]) throws {
        let handle = try bindableHandle()
        let expected = Int(sqlite3_bind_parameter_count(handle))
        guard values.count == expected else {
            throw SQLiteError(code: .range,
                              message: "statement expects \(expected) parameter(s) but \(values.count) were given",
                              sql: sql)
        }
        sqlite3_reset(handle)
        // Every parameter is bound below, so clearing the old bindings first would be wasted work.
        for (offset, value) in values.enumerated() {
            try bind(value, at: Int32(offset + 1), handle: handle)
        }
    }

    /// Binds one value to the parameter at `index` (1-based), keeping the other bindings.
    /// - Throws: `SQLITE_RANGE` if `index` is not in `1...parameterCount`.
    public func bind(_ value: SQLiteValue, at index: Int32) throws {
        let handle = try bindableHandle()
        let count = sqlite3_bind_parameter_count(handle)
        guard index >= 1 && index <= count else {
            throw SQLiteError(code: .range,
                              message: "parameter index \(index) is out of range 1...\(count)",
                              sql: sql)
        }
        sqlite3_reset(handle)
        try bind(value, at: index, handle: handle)
    }

    /// Binds `values` (unless empty: then the current bindings are kept), steps the statement
    /// to completion ignoring any result rows, and resets it.
    public func run(_ values: [SQLiteValue] = []) throws {
        try execution(values) {
            while try step() {}
        }
    }

    /// Binds `values` (unless empty: then the current bindings are kept) and calls `body`
    /// for each result row. The statement is reset at the end, also if `body` throws.
    /// A `Row` is valid only inside the callback that received it.
    public func query(_ values: [SQLiteValue] = [], _ body: (Row) throws -> Void) throws {
        try execution(values) {
            while try step() {
                try body(try currentRow())
            }
        }
    }

    /// Like `query`, but stops stepping as soon as `body` returns false (the rest of the result
    /// is not computed). The statement is reset at the end, also if `body` throws.
    public func queryWhile(_ values: [SQLiteValue] = [], _ body: (Row) throws -> Bool) throws {
        try execution(values) {
            while try step() {
                guard try body(try currentRow()) else { break }
            }
        }
    }

    /// All result rows, each as an array of column values.
    public func rows(_ values: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        var result: [[SQLiteValue]] = []
        try query(values) { row in
            result.append(row.values)
        }
        return result
    }

    /// The first column of the first result row, or `nil` if there is no row.
    /// Stops after the first row.
    public func scalar(_ values: [SQLiteValue] = []) throws -> SQLiteValue? {
        try execution(values) {
            guard try step() else { return nil }
            let row = try currentRow()
            return row.columnCount > 0 ? row[0] : SQLiteValue.null
        }
    }

    /// Releases the compiled statement. Idempotent; later use throws `SQLITE_MISUSE`.
    public func finalize() {
        guard let handle else { return }
        sqlite3_finalize(handle)
        self.handle = nil
        rowGeneration &+= 1
        database?.forget(self)
    }

    // MARK: - Internal

    /// Resets the statement and clears its bindings (used by `Database.cached(_:)`).
    func resetAndClearBindings() throws {
        let handle = try bindableHandle()
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        rowGeneration &+= 1
    }

    /// The live handle, or a misuse error if the statement was finalized or is mid-iteration.
    private func bindableHandle() throws -> OpaquePointer {
        guard let handle else {
            throw SQLiteError.misuse("statement is finalized", sql: sql)
        }
        guard !isExecuting else {
            throw SQLiteError.misuse("cannot bind while the statement is being executed", sql: sql)
        }
        return handle
    }

    private func bind(_ value: SQLiteValue, at index: Int32, handle: OpaquePointer) throws {
        let rc: Int32
        switch value {
        case .null:
            rc = sqlite3_bind_null(handle, index)
        case .integer(let number):
            rc = sqlite3_bind_int64(handle, index, number)
        case .real(let number):
            rc = sqlite3_bind_double(handle, index, number)
        case .text(let string):
            var utf8 = string
            rc = utf8.withUTF8 { buffer -> Int32 in
                guard let base = buffer.baseAddress, buffer.count > 0 else {
                    // A nil pointer would bind NULL; bind an empty string explicitly.
                    return sqlite3_bind_text(handle, index, "", 0, transientDestructor)
                }
                return base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { chars in
                    sqlite3_bind_text64(handle, index, chars, sqlite3_uint64(buffer.count),
                                        transientDestructor, UInt8(SQLITE_UTF8))
                }
            }
        case .blob(let bytes):
            rc = bytes.withUnsafeBytes { buffer -> Int32 in
                guard let base = buffer.baseAddress, buffer.count > 0 else {
                    // A nil pointer would bind NULL; an empty blob is a zero-length blob.
                    return sqlite3_bind_zeroblob(handle, index, 0)
                }
                return sqlite3_bind_blob64(handle, index, base, sqlite3_uint64(buffer.count),
                                           transientDestructor)
            }
        }
        guard rc == SQLITE_OK else {
            throw SQLiteError.from(resultCode: rc, handle: sqlite3_db_handle(handle), sql: sql)
        }
    }

    /// Prepares one execution: binds, consults the fault injector, marks the statement as
    /// executing, runs `body`, and always resets the statement afterwards.
    private func execution<Result>(_ values: [SQLiteValue], _ body: () throws -> Result) throws -> Result {
        let handle = try bindableHandle()
        if values.isEmpty {
            sqlite3_reset(handle)
        } else {
            try bind(values)
        }
        if let faultInjector = database?.faultInjector {
            try faultInjector(sql)
        }
        isExecuting = true
        defer {
            isExecuting = false
            rowGeneration &+= 1
            // The handle may have been finalized from inside `body` (e.g. by closing the database).
            if let current = self.handle {
                database?.recordWork(of: current)
                sqlite3_reset(current)
            }
        }
        return try body()
    }

    /// Advances to the next row. Returns `true` for a row, `false` when done.
    private func step() throws -> Bool {
        guard let handle else {
            throw SQLiteError.misuse("statement was finalized during execution", sql: sql)
        }
        rowGeneration &+= 1
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW:
            return true
        case SQLITE_DONE:
            return false
        default:
            throw SQLiteError.from(resultCode: rc, handle: sqlite3_db_handle(handle), sql: sql)
        }
    }

    /// A view of the row the statement currently points at.
    private func currentRow() throws -> Row {
        guard let handle else {
            throw SQLiteError.misuse("statement was finalized during execution", sql: sql)
        }
        return Row(statement: self, handle: handle, generation: rowGeneration)
    }

    /// Whether a `Row` created at `generation` may still read from the statement.
    func isCurrent(generation: UInt64) -> Bool {
        handle != nil && rowGeneration == generation
    }
}
