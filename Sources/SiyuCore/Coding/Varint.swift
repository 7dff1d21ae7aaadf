/// LEB128 varints, the one reader both the op log (`ByteReader`) and the wire (`PayloadReader`
/// in SiyuWire) use: seven bits per byte, least significant first, at most 10 bytes, and nothing
/// past 64 bits (the tenth byte may only be 0 or 1).
public enum Varint {
    /// Why a varint could not be read.
    public enum Failure: Error, Equatable {
        /// The bytes ended before its last byte.
        case truncated
        /// More than 10 bytes, or a tenth byte above 1 (past 64 bits).
        case tooLong
    }

    /// Reads the varint at `offset` in `bytes[..<end]` and moves `offset` past it. On failure
    /// `offset` is left after the bytes read. Never traps and never reads at or past `end`.
    @inlinable
    public static func read(_ bytes: [UInt8], at offset: inout Int, end: Int) -> Result<UInt64, Failure> {
        var result: UInt64 = 0
        for i in 0..<10 {
            guard offset < end else { return .failure(.truncated) }
            let b = bytes[offset]
            offset += 1
            if i == 9 && b > 1 { return .failure(.tooLong) }
            result |= UInt64(b & 0x7f) << (7 * UInt64(i))
            if b < 0x80 { return .success(result) }
        }
        return .failure(.tooLong)
    }

    /// Appends `value` as a varint.
    @inlinable
    public static func write(_ value: UInt64, to bytes: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Zigzag: small signed numbers as small unsigned ones (0, −1, 1, −2, … → 0, 1, 2, 3, …).
    @inlinable
    public static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }

    /// The signed number `zigzag` made `value` from.
    @inlinable
    public static func unzigzag(_ value: UInt64) -> Int64 { Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1))) }
}

/// A clock written against a reference clock, as the op log (`OpCoding` version 2: a stamp an op
/// names, against the op's own) and the wire (a change set: an op's clock against the op before,
/// a stamp against its op) both write it: a head varint — the milliseconds apart, zigzagged,
/// shifted left one bit, the low bit saying that a logical counter (1…65,535) follows as a
/// second varint. Which clock is subtracted from which is the caller's: the formats differ there
/// and are frozen.
public enum ClockDelta {
    /// The head for `millisApart` and whether a logical counter follows.
    @inlinable
    public static func head(millisApart: Int64, hasLogical: Bool) -> UInt64 {
        Varint.zigzag(millisApart) << 1 | (hasLogical ? 1 : 0)
    }

    /// The milliseconds apart a head carries, and whether a logical counter follows.
    @inlinable
    public static func split(_ head: UInt64) -> (millisApart: Int64, hasLogical: Bool) {
        (Varint.unzigzag(head >> 1), head & 1 == 1)
    }

    /// `base` moved by `apart` milliseconds; nil outside an HLC's 48 bits of milliseconds.
    @inlinable
    public static func millis(_ base: UInt64, movedBy apart: Int64) -> UInt64? {
        let (millis, overflow) = Int64(clamping: base).addingReportingOverflow(apart)
        guard !overflow, millis >= 0, millis < 1 << 48 else { return nil }
        return UInt64(millis)
    }

    /// A logical counter read after a head that said one follows; nil unless 1…65,535.
    @inlinable
    public static func logical(_ raw: UInt64) -> UInt16? {
        raw >= 1 && raw <= UInt64(UInt16.max) ? UInt16(raw) : nil
    }

    /// Writes `clock` against `reference` (milliseconds apart = clock − reference; the wire's way).
    public static func write(_ clock: HLC, against reference: HLC, to w: inout ByteWriter) {
        w.varint(head(millisApart: Int64(bitPattern: clock.millis &- reference.millis), hasLogical: clock.logical != 0))
        if clock.logical != 0 { w.varint(UInt64(clock.logical)) }
    }
}
