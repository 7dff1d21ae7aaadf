/// A field value. Typed, so that an integer and the text of its digits never compare equal.
/// Values have a total order (by type, then content) used only to break ties deterministically.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case null
    case int(Int64)
    case text(String)
    case bytes([UInt8])
    case bool(Bool)

    /// The value's type, as an error message names it ("text", "an integer", …).
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .int: return "an integer"
        case .text: return "text"
        case .bytes: return "bytes"
        case .bool: return "a boolean"
        }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case let .int(v): return String(v)
        case let .text(s): return s
        case let .bytes(b): return "0x" + b.hexString
        case let .bool(b): return b ? "true" : "false"
        }
    }

    /// A rendering for logs and the CLI that shows the type: text is quoted.
    public var quoted: String {
        if case let .text(s) = self { return "\"\(s)\"" }
        return description
    }

    public var intValue: Int64? {
        switch self {
        case let .int(v): return v
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    public var textValue: String? {
        if case let .text(s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        switch self {
        case let .bool(b): return b
        case let .int(v): return v != 0
        default: return nil
        }
    }
}
