import SiyuCore

/// Reads payload fields with bounds checks on every access. It never traps and never reads past the
/// end; every failure is a `WireError` naming the field. Lengths and counts are checked against the
/// bytes actually present before anything is allocated.
public struct PayloadReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    private let end: Int

    public init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.offset = start
        self.end = min(end ?? bytes.count, bytes.count)
    }

    public var remaining: Int { end - offset }
    public var isAtEnd: Bool { offset >= end }

    public mutating func u8(_ field: String) throws -> UInt8 {
        guard offset < end else { throw WireError.truncated(field: field) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func bool(_ field: String) throws -> Bool {
        switch try u8(field) {
        case 0: return false
        case 1: return true
        case let b: throw WireError.invalidValue(field: field, detail: "boolean byte \(b) (expected 0 or 1)")
        }
    }

    public mutating func varint(_ field: String) throws -> UInt64 {
        switch Varint.read(bytes, at: &offset, end: end) {
        case let .success(value): return value
        case .failure(.truncated): throw WireError.truncated(field: field)
        case .failure(.tooLong): throw WireError.varintTooLong(field: field)
        }
    }

    public mutating func signed(_ field: String) throws -> Int64 { Varint.unzigzag(try varint(field)) }

    /// A count of items each at least `minItemBytes` long: refused if the remaining bytes cannot hold them.
    public mutating func count(_ field: String, minItemBytes: Int = 1) throws -> Int {
        let n = try varint(field)
        guard n <= UInt64(remaining / max(minItemBytes, 1)) else { throw WireError.truncated(field: field) }
        return Int(n)
    }

    public mutating func raw(_ n: Int, _ field: String) throws -> [UInt8] {
        guard n >= 0, n <= remaining else { throw WireError.truncated(field: field) }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    public mutating func data(_ field: String) throws -> [UInt8] {
        try raw(try count(field), field)
    }

    public mutating func string(_ field: String) throws -> String {
        let n = try count(field)
        guard let s = String(validating: bytes[offset..<offset + n], as: UTF8.self) else {
            throw WireError.invalidUTF8(field: field)
        }
        offset += n
        return s
    }
}
