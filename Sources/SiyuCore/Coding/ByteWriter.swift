/// Appends primitive values to a byte buffer: LEB128 varints, zigzag signed varints,
/// length-prefixed UTF-8 strings and byte strings.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func byte(_ b: UInt8) { bytes.append(b) }

    public mutating func varint(_ value: UInt64) { Varint.write(value, to: &bytes) }

    public mutating func signed(_ value: Int64) { varint(Varint.zigzag(value)) }

    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    public mutating func data(_ d: [UInt8]) {
        varint(UInt64(d.count))
        bytes.append(contentsOf: d)
    }
}

/// Reads what `ByteWriter` wrote. Never reads past the end and never traps: every malformed or
/// truncated input becomes `CoreError.malformed`.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var isAtEnd: Bool { offset >= bytes.count }
    public var remaining: Int { bytes.count - offset }

    public mutating func byte() throws -> UInt8 {
        guard offset < bytes.count else { throw CoreError.malformed(what: "truncated at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func varint() throws -> UInt64 {
        let start = offset
        switch Varint.read(bytes, at: &offset, end: bytes.count) {
        case let .success(value): return value
        case .failure(.truncated): throw CoreError.malformed(what: "truncated at byte \(offset) (a varint from byte \(start))")
        case .failure(.tooLong): throw CoreError.malformed(what: "varint longer than 10 bytes or 64 bits at byte \(start)")
        }
    }

    public mutating func signed() throws -> Int64 { Varint.unzigzag(try varint()) }

    public mutating func count(limit: Int) throws -> Int {
        let n = try varint()
        guard n <= UInt64(limit), n <= UInt64(remaining) else {
            throw CoreError.malformed(what: "length \(n) at byte \(offset) exceeds the \(min(limit, remaining)) bytes available")
        }
        return Int(n)
    }

    public mutating func data() throws -> [UInt8] {
        let n = try count(limit: remaining)
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    public mutating func string() throws -> String {
        let n = try count(limit: remaining)
        defer { offset += n }
        guard let s = String(validating: bytes[offset..<offset + n], as: UTF8.self) else {
            throw CoreError.malformed(what: "invalid UTF-8 in a string at byte \(offset)")
        }
        return s
    }
}
