import CSQLite

/// A view of the current result row, valid only inside the `Statement.query` callback that
/// received it. Columns are read straight from SQLite on access; the row is never copied
/// as a whole unless you ask for `values`.
///
/// Guarantees: reads never trap. An out-of-range column index, or a `Row` kept and used
/// after its callback returned, reads as `NULL` (`.null`, `0`, `nil`, `[]`, `""`).
/// Text is decoded as UTF-8 using SQLite's byte count, so non-ASCII text and embedded zero
/// bytes are preserved; blobs are copied byte for byte.
public struct Row {
    private let statement: Statement
    private let handle: OpaquePointer
    private let generation: UInt64
    /// The column count, captured when the row was produced.
    public let columnCount: Int32

    init(statement: Statement, handle: OpaquePointer, generation: UInt64) {
        self.statement = statement
        self.handle = handle
        self.generation = generation
        self.columnCount = sqlite3_column_count(handle)
    }

    /// The value of column `index` (0-based), in its SQLite storage class.
    public subscript(_ index: Int32) -> SQLiteValue {
        guard isReadable(index) else { return .null }
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER:
            return .integer(sqlite3_column_int64(handle, index))
        case SQLITE_FLOAT:
            return .real(sqlite3_column_double(handle, index))
        case SQLITE_TEXT:
            return .text(readText(index))
        case SQLITE_BLOB:
            return .blob(readBlob(index))
        default:
            return .null
        }
    }

    /// Column `index` as an integer (`sqlite3_column_int64`, with SQLite's conversions; 0 for NULL).
    public func int64(_ index: Int32) -> Int64 {
        guard isReadable(index) else { return 0 }
        return sqlite3_column_int64(handle, index)
    }

    /// Column `index` as a double (`sqlite3_column_double`, with SQLite's conversions; 0 for NULL).
    public func double(_ index: Int32) -> Double {
        guard isReadable(index) else { return 0 }
        return sqlite3_column_double(handle, index)
    }

    /// Column `index` as text, or `nil` for NULL. Non-text values are converted by SQLite.
    public func text(_ index: Int32) -> String? {
        guard isReadable(index), sqlite3_column_type(handle, index) != SQLITE_NULL else { return nil }
        return readText(index)
    }

    /// Column `index` as bytes; empty for NULL or a zero-length value.
    public func blob(_ index: Int32) -> [UInt8] {
        guard isReadable(index) else { return [] }
        return readBlob(index)
    }

    /// Whether column `index` is NULL (also `true` for an invalid index or a stale row).
    public func isNull(_ index: Int32) -> Bool {
        guard isReadable(index) else { return true }
        return sqlite3_column_type(handle, index) == SQLITE_NULL
    }

    /// The name of column `index` (its `AS` name if given); `""` for an invalid index.
    public func columnName(_ index: Int32) -> String {
        guard isReadable(index), let name = sqlite3_column_name(handle, index) else { return "" }
        return String(cString: name)
    }

    /// A copy of all column values.
    public var values: [SQLiteValue] {
        (0..<columnCount).map { self[$0] }
    }

    // MARK: - Private

    private func isReadable(_ index: Int32) -> Bool {
        index >= 0 && index < columnCount && statement.isCurrent(generation: generation)
    }

    private func readText(_ index: Int32) -> String {
        // Per the SQLite docs: call the conversion first, then ask for the byte count.
        guard let bytes = sqlite3_column_text(handle, index) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    private func readBlob(_ index: Int32) -> [UInt8] {
        guard let bytes = sqlite3_column_blob(handle, index) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, index))
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }
}
