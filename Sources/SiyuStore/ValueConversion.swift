import SiyuCore
import SiyuSQLite

extension Value {
    /// How a value is stored in a plain table column (bools as 0/1).
    var sqlite: SQLiteValue {
        switch self {
        case .null: return .null
        case let .int(i): return .integer(i)
        case let .text(s): return .text(s)
        case let .bytes(b): return .blob(b)
        case let .bool(b): return .integer(b ? 1 : 0)
        }
    }

    init(_ v: SQLiteValue) {
        switch v {
        case .null: self = .null
        case let .integer(i): self = .int(i)
        case let .real(d): self = .text(String(d))
        case let .text(s): self = .text(s)
        case let .blob(b): self = .bytes(b)
        }
    }
}
