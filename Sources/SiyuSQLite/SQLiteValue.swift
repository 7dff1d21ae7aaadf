/// One SQLite value, as stored in a column or bound to a statement parameter.
///
/// Guarantees: the five cases map one-to-one onto SQLite's storage classes
/// (`NULL`, `INTEGER`, `REAL`, `TEXT`, `BLOB`). Text is bound and read as UTF-8
/// with an explicit byte length, so non-ASCII text (e.g. Chinese) and embedded
/// zero bytes survive a round trip unchanged; blobs are copied byte for byte,
/// including zero bytes, and an empty blob stays an empty blob (not `NULL`).
public enum SQLiteValue: Hashable, Sendable {
    /// SQL `NULL`.
    case null
    /// A 64-bit signed integer.
    case integer(Int64)
    /// An IEEE 754 double.
    case real(Double)
    /// UTF-8 text.
    case text(String)
    /// Raw bytes.
    case blob([UInt8])
}

extension SQLiteValue {
    /// Whether the value is SQL `NULL`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The integer payload, or `nil` if the value is not `.integer`.
    public var int64Value: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The real payload, or `nil` if the value is not `.real`.
    public var doubleValue: Double? {
        if case .real(let value) = self { return value }
        return nil
    }

    /// The text payload, or `nil` if the value is not `.text`.
    public var stringValue: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    /// The blob payload, or `nil` if the value is not `.blob`.
    public var blobValue: [UInt8]? {
        if case .blob(let value) = self { return value }
        return nil
    }
}
