import CSQLite

/// An error reported by SQLite, or by this wrapper when it refuses misuse.
///
/// Guarantees: `code` is always a primary result code (`extendedCode & 0xff`),
/// `message` is never empty, and `sql` carries the statement text whenever the
/// failure belongs to one. Wrapper-level errors (a closed database, a finalized
/// statement, a wrong number of bindings, …) use SQLite's own codes
/// (`SQLITE_MISUSE`, `SQLITE_RANGE`) with a message written by the wrapper, so
/// callers handle one error type only.
public struct SQLiteError: Error, CustomStringConvertible, Equatable {
    /// The primary result code, e.g. `SQLITE_CONSTRAINT` (19).
    public let code: Int32
    /// The extended result code, e.g. `SQLITE_CONSTRAINT_UNIQUE` (2067).
    /// Equal to `code` when SQLite gave no extended information.
    public let extendedCode: Int32
    /// SQLite's `sqlite3_errmsg` text, or the wrapper's own text.
    public let message: String
    /// The SQL statement that failed, when there is one.
    public let sql: String?

    /// Creates an error. `code` is reduced to its primary part.
    public init(code: Int32, extendedCode: Int32? = nil, message: String, sql: String? = nil) {
        let extended = extendedCode ?? code
        self.code = code & 0xff
        self.extendedCode = extended
        self.message = message.isEmpty ? SQLiteError.name(ofCode: code & 0xff) : message
        self.sql = sql
    }

    /// For example
    /// `SQLite error 19 (constraint): UNIQUE constraint failed: t.a — in: INSERT INTO t (a) VALUES (?)`.
    public var description: String {
        var text = "SQLite error \(code) (\(SQLiteError.name(ofCode: code))): \(message)"
        if let sql {
            text += " — in: \(sql)"
        }
        return text
    }

    /// The file is not a database (`SQLITE_NOTADB`): wrong format or encrypted.
    public var isNotADatabase: Bool { code == SQLITE_NOTADB }

    /// The database file is locked by another connection (`SQLITE_BUSY`),
    /// even after the busy timeout expired.
    public var isBusy: Bool { code == SQLITE_BUSY }

    /// A constraint (UNIQUE, NOT NULL, CHECK, FOREIGN KEY, …) was violated (`SQLITE_CONSTRAINT`).
    public var isConstraintViolation: Bool { code == SQLITE_CONSTRAINT }

    /// A short lowercase name for a primary result code, e.g. `"constraint"` for 19.
    public static func name(ofCode code: Int32) -> String {
        switch code & 0xff {
        case SQLITE_OK: return "ok"
        case SQLITE_ERROR: return "error"
        case SQLITE_INTERNAL: return "internal"
        case SQLITE_PERM: return "perm"
        case SQLITE_ABORT: return "abort"
        case SQLITE_BUSY: return "busy"
        case SQLITE_LOCKED: return "locked"
        case SQLITE_NOMEM: return "nomem"
        case SQLITE_READONLY: return "readonly"
        case SQLITE_INTERRUPT: return "interrupt"
        case SQLITE_IOERR: return "ioerr"
        case SQLITE_CORRUPT: return "corrupt"
        case SQLITE_NOTFOUND: return "notfound"
        case SQLITE_FULL: return "full"
        case SQLITE_CANTOPEN: return "cantopen"
        case SQLITE_PROTOCOL: return "protocol"
        case SQLITE_EMPTY: return "empty"
        case SQLITE_SCHEMA: return "schema"
        case SQLITE_TOOBIG: return "toobig"
        case SQLITE_CONSTRAINT: return "constraint"
        case SQLITE_MISMATCH: return "mismatch"
        case SQLITE_MISUSE: return "misuse"
        case SQLITE_NOLFS: return "nolfs"
        case SQLITE_AUTH: return "auth"
        case SQLITE_FORMAT: return "format"
        case SQLITE_RANGE: return "range"
        case SQLITE_NOTADB: return "notadb"
        case SQLITE_NOTICE: return "notice"
        case SQLITE_WARNING: return "warning"
        case SQLITE_ROW: return "row"
        case SQLITE_DONE: return "done"
        default: return "code \(code & 0xff)"
        }
    }
}

extension SQLiteError {
    /// The error SQLite currently reports for `handle` after a call returned `resultCode`.
    /// Must be called right after the failing call, before any other call on `handle`.
    static func from(resultCode: Int32, handle: OpaquePointer?, sql: String?) -> SQLiteError {
        guard let handle else {
            return SQLiteError(code: resultCode, message: String(cString: sqlite3_errstr(resultCode)), sql: sql)
        }
        let extended = sqlite3_extended_errcode(handle)
        // Prefer the extended code when it belongs to the same primary code as the result.
        let extendedCode = (extended & 0xff) == (resultCode & 0xff) ? extended : resultCode
        let message = sqlite3_errmsg(handle).map { String(cString: $0) } ?? ""
        return SQLiteError(code: resultCode, extendedCode: extendedCode, message: message, sql: sql)
    }

    /// A wrapper-level misuse error (`SQLITE_MISUSE`).
    static func misuse(_ message: String, sql: String? = nil) -> SQLiteError {
        SQLiteError(code: SQLITE_MISUSE, message: message, sql: sql)
    }
}
