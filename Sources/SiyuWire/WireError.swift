import SiyuCore

/// The single error type of the wire layer: every way bytes can fail to be a valid frame, message
/// or change set. Each case says where, and whether a retry could help (`isRetryable`).
public enum WireError: Error, Equatable, CustomStringConvertible {
    case badMagic(found: [UInt8])
    case unsupportedVersion(UInt8)
    case frameTooLarge(length: UInt64, limit: Int)
    case badChecksum(expected: UInt32, computed: UInt32)
    case truncated(field: String)
    case varintTooLong(field: String)
    case stringIndexOutOfRange(index: UInt64, count: Int)
    case stringBaseMismatch(base: UInt64, held: Int)
    case invalidUTF8(field: String)
    case unknownMessageType(UInt8)
    case invalidValue(field: String, detail: String)

    public var description: String {
        switch self {
        case let .badMagic(found):
            return "bad magic byte(s) \(found.map { [$0].hexString }.joined(separator: " ")) (expected 53 59, \"SY\"): not a Siyu stream"
        case let .unsupportedVersion(v): return "unsupported protocol version \(v)"
        case let .frameTooLarge(length, limit): return "frame payload of \(length) bytes exceeds the limit of \(limit)"
        case let .badChecksum(expected, computed):
            return "bad checksum: frame says \(String(expected, radix: 16)), computed \(String(computed, radix: 16))"
        case let .truncated(field): return "truncated \(field)"
        case let .varintTooLong(field): return "varint longer than 10 bytes (or over 64 bits) in \(field)"
        case let .stringIndexOutOfRange(index, count): return "string index \(index) out of range (the dictionary and the new strings hold \(count))"
        case let .stringBaseMismatch(base, held):
            return "string base \(base) does not match the \(held) strings this connection's dictionary holds (a change set was lost, reordered or decoded out of turn)"
        case let .invalidUTF8(field): return "invalid UTF-8 in \(field)"
        case let .unknownMessageType(t): return "unknown message type 0x\([t].hexString)"
        case let .invalidValue(field, detail): return "invalid \(field): \(detail)"
        }
    }

    /// A corrupted frame (bad checksum) may succeed if resent; every other error is in the sender.
    public var isRetryable: Bool { if case .badChecksum = self { return true }; return false }
}
