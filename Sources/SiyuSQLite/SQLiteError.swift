import CSQLite

/// An SQLite result code, primary (`SQLITE_BUSY`, 5) or extended (`SQLITE_CONSTRAINT_UNIQUE`,
/// 2067), as GRDB's `ResultCode`: compare with the named constants, never with raw numbers.
///
/// Guarantees: `primary` is the code's low byte (an extended code's family); two codes are
/// equal only if their raw values are (use `primary` to compare families).
public struct ResultCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The primary code of this code's family (itself for a primary code).
    public var primary: ResultCode { ResultCode(rawValue: rawValue & 0xff) }

    public static let ok = ResultCode(rawValue: SQLITE_OK)
    public static let error = ResultCode(rawValue: SQLITE_ERROR)
    public static let `internal` = ResultCode(rawValue: SQLITE_INTERNAL)
    public static let permission = ResultCode(rawValue: SQLITE_PERM)
    public static let abort = ResultCode(rawValue: SQLITE_ABORT)
    public static let busy = ResultCode(rawValue: SQLITE_BUSY)
    public static let locked = ResultCode(rawValue: SQLITE_LOCKED)
    public static let noMemory = ResultCode(rawValue: SQLITE_NOMEM)
    public static let readOnly = ResultCode(rawValue: SQLITE_READONLY)
    public static let interrupt = ResultCode(rawValue: SQLITE_INTERRUPT)
    public static let ioError = ResultCode(rawValue: SQLITE_IOERR)
    public static let corrupt = ResultCode(rawValue: SQLITE_CORRUPT)
    public static let notFound = ResultCode(rawValue: SQLITE_NOTFOUND)
    public static let full = ResultCode(rawValue: SQLITE_FULL)
    public static let cantOpen = ResultCode(rawValue: SQLITE_CANTOPEN)
    public static let `protocol` = ResultCode(rawValue: SQLITE_PROTOCOL)
    public static let empty = ResultCode(rawValue: SQLITE_EMPTY)
    public static let schema = ResultCode(rawValue: SQLITE_SCHEMA)
    public static let tooBig = ResultCode(rawValue: SQLITE_TOOBIG)
    public static let constraint = ResultCode(rawValue: SQLITE_CONSTRAINT)
    public static let mismatch = ResultCode(rawValue: SQLITE_MISMATCH)
    public static let misuse = ResultCode(rawValue: SQLITE_MISUSE)
    public static let noLargeFileSupport = ResultCode(rawValue: SQLITE_NOLFS)
    public static let authorization = ResultCode(rawValue: SQLITE_AUTH)
    public static let format = ResultCode(rawValue: SQLITE_FORMAT)
    public static let range = ResultCode(rawValue: SQLITE_RANGE)
    public static let notADatabase = ResultCode(rawValue: SQLITE_NOTADB)
    public static let notice = ResultCode(rawValue: SQLITE_NOTICE)
    public static let warning = ResultCode(rawValue: SQLITE_WARNING)
    public static let row = ResultCode(rawValue: SQLITE_ROW)
    public static let done = ResultCode(rawValue: SQLITE_DONE)
    /// Extended codes this project tells apart.
    public static let constraintUnique = ResultCode(rawValue: 19 | (8 << 8))      // SQLITE_CONSTRAINT_UNIQUE
    public static let constraintPrimaryKey = ResultCode(rawValue: 19 | (6 << 8))  // SQLITE_CONSTRAINT_PRIMARYKEY
    public static let constraintNotNull = ResultCode(rawValue: 19 | (5 << 8))     // SQLITE_CONSTRAINT_NOTNULL
    public static let constraintCheck = ResultCode(rawValue: 19 | (1 << 8))       // SQLITE_CONSTRAINT_CHECK
    public static let readOnlyDatabaseMoved = ResultCode(rawValue: 8 | (4 << 8))  // SQLITE_READONLY_DBMOVED

    /// SQLite's own short text for the code (`sqlite3_errstr`), e.g. "database is locked".
    public var text: String { String(cString: sqlite3_errstr(rawValue)) }

    /// A short lowercase name of the primary code, e.g. "constraint" (for any constraint code).
    public var name: String {
        switch primary {
        case .ok: return "ok"
        case .error: return "error"
        case .internal: return "internal"
        case .permission: return "perm"
        case .abort: return "abort"
        case .busy: return "busy"
        case .locked: return "locked"
        case .noMemory: return "nomem"
        case .readOnly: return "readonly"
        case .interrupt: return "interrupt"
        case .ioError: return "ioerr"
        case .corrupt: return "corrupt"
        case .notFound: return "notfound"
        case .full: return "full"
        case .cantOpen: return "cantopen"
        case .protocol: return "protocol"
        case .empty: return "empty"
        case .schema: return "schema"
        case .tooBig: return "toobig"
        case .constraint: return "constraint"
        case .mismatch: return "mismatch"
        case .misuse: return "misuse"
        case .noLargeFileSupport: return "nolfs"
        case .authorization: return "auth"
        case .format: return "format"
        case .range: return "range"
        case .notADatabase: return "notadb"
        case .notice: return "notice"
        case .warning: return "warning"
        case .row: return "row"
        case .done: return "done"
        default: return "code \(primary.rawValue)"
        }
    }

    /// "19 (constraint)"; an extended code adds its number: "2067 (constraint)".
    public var description: String { "\(rawValue) (\(name))" }

    /// Whether `error` is an `SQLiteError` of this code: its extended code if this is one, else
    /// its primary code — so `catch ResultCode.constraint` catches a UNIQUE failure too, as
    /// GRDB's `DatabaseError.SQLITE_CONSTRAINT` pattern does.
    public static func ~= (code: ResultCode, error: any Error) -> Bool {
        guard let error = error as? SQLiteError else { return false }
        return code == code.primary ? error.code == code : error.extendedCode == code
    }
}

/// An error reported by SQLite, or by this wrapper when it refuses misuse.
///
/// Guarantees: `code` is always a primary result code (`extendedCode.primary`),
/// `message` is never empty, and `sql` carries the statement text whenever the
/// failure belongs to one. Wrapper-level errors (a closed database, a finalized
/// statement, a wrong number of bindings, …) use SQLite's own codes
/// (`.misuse`, `.range`) with a message written by the wrapper, so callers handle
/// one error type only.
public struct SQLiteError: Error, CustomStringConvertible, Equatable {
    /// The primary result code, e.g. `.constraint` (19).
    public let code: ResultCode
    /// The extended result code, e.g. `.constraintUnique` (2067); equal to `code` when SQLite gave
    /// no extended information.
    public let extendedCode: ResultCode
    /// SQLite's `sqlite3_errmsg` text, or the wrapper's own text.
    public let message: String
    /// The SQL statement that failed, when there is one.
    public let sql: String?

    /// Creates an error. `code` is reduced to its primary part.
    public init(code: ResultCode, extendedCode: ResultCode? = nil, message: String, sql: String? = nil) {
        self.code = code.primary
        self.extendedCode = extendedCode ?? code
        self.message = message.isEmpty ? code.primary.name : message
        self.sql = sql
    }

    /// For example
    /// `SQLite error 19 (constraint): UNIQUE constraint failed: t.a — in: INSERT INTO t (a) VALUES (?)`.
    public var description: String {
        var text = "SQLite error \(code): \(message)"
        if let sql {
            text += " — in: \(sql)"
        }
        return text
    }

    /// The file is not a database (`.notADatabase`): wrong format or encrypted.
    public var isNotADatabase: Bool { code == .notADatabase }

    /// The database file is locked by another connection (`.busy`), even after the busy timeout expired.
    public var isBusy: Bool { code == .busy }

    /// A constraint (UNIQUE, NOT NULL, CHECK, FOREIGN KEY, …) was violated (`.constraint`).
    public var isConstraintViolation: Bool { code == .constraint }
}

extension SQLiteError {
    /// The error SQLite currently reports for `handle` after a call returned `resultCode`.
    /// Must be called right after the failing call, before any other call on `handle`.
    static func from(resultCode: Int32, handle: OpaquePointer?, sql: String?) -> SQLiteError {
        let result = ResultCode(rawValue: resultCode)
        guard let handle else {
            return SQLiteError(code: result, message: result.text, sql: sql)
        }
        let extended = ResultCode(rawValue: sqlite3_extended_errcode(handle))
        // Prefer the extended code when it belongs to the same primary code as the result.
        let message = sqlite3_errmsg(handle).map { String(cString: $0) } ?? ""
        return SQLiteError(code: result, extendedCode: extended.primary == result.primary ? extended : result, message: message, sql: sql)
    }

    /// A wrapper-level misuse error (`SQLITE_MISUSE`).
    static func misuse(_ message: String, sql: String? = nil) -> SQLiteError {
        SQLiteError(code: .misuse, message: message, sql: sql)
    }
}
