// CRC-32C (Castagnoli) in pure Swift: table-driven, slicing-by-8. No I/O, no C, deterministic.
//
// Parameters (the "CRC-32/ISCSI" entry of the Rocksoft/Williams model catalogue):
//   width   32
//   poly    0x1EDC6F41 (normal form; 0x82F63B78 reflected, which is what the tables use)
//   init    0xFFFFFFFF
//   refin   true
//   refout  true
//   xorout  0xFFFFFFFF
//   check   0xE3069283 (the checksum of the nine ASCII bytes "123456789")
//   residue 0xB798B438
// Byte-for-byte the same checksum as iSCSI (RFC 3720 §12.1 and appendix B.4), SCTP (RFC 4960),
// ext4 and btrfs metadata, and the SSE4.2 `crc32` instruction wrapped in the usual ~init/~final.

/// CRC-32C (Castagnoli), as used by iSCSI (RFC 3720) and ext4: the checksum of every Siyu frame.
///
/// Guarantees:
/// - `value` is exactly the CRC-32C (poly 0x1EDC6F41, reflected 0x82F63B78; init 0xFFFFFFFF;
///   input and output reflected; final XOR 0xFFFFFFFF) of the concatenation of every byte passed
///   to the `update` methods, in call order. How the input is split across `update` calls, and
///   which of the `update` overloads is used, never changes the result.
/// - The checksum of the empty input is 0x00000000; the checksum of ASCII "123456789" is
///   0xE3069283.
/// - Reading `value` does not end the computation: more `update` calls may follow, and `value`
///   then covers those bytes too. There is no single-use restriction and nothing traps.
/// - Pure and deterministic: no I/O, no randomness, no mutable global state (the lookup tables
///   are immutable and built once, thread-safely, on first use). A value type: copying a
///   partially-fed checksum forks it, and both copies continue independently.
/// - Inputs of any length are supported; the byte buffers need no particular alignment.
///
/// A CRC detects accidental corruption (every burst error of up to 32 bits, every odd number of
/// flipped bits, and random damage with probability 1 - 2^-32); it is not a cryptographic MAC and
/// gives no protection against deliberate tampering.
public struct CRC32C: Sendable {

    /// The reflected generator polynomial: 0x1EDC6F41 with its 32 bits in reverse order.
    public static let reflectedPolynomial: UInt32 = 0x82F6_3B78

    /// The running register, before the final XOR. Starts at the initial value 0xFFFFFFFF.
    private var state: UInt32 = 0xFFFF_FFFF

    /// Creates a checksum of the empty input (its `value` is 0x00000000).
    public init() {}

    // MARK: - Feeding input

    /// Appends `bytes` to the checksummed input.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Appends `bytes` to the checksummed input (in place; the slice is not copied).
    public mutating func update(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Appends the bytes of `bytes` to the checksummed input. The buffer may start at any address
    /// and may be empty (including a buffer with a nil base address). The memory is only read
    /// during the call and is not retained.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        state = CRC32C.tables.withUnsafeBufferPointer { tables in
            CRC32C.advance(state, base, bytes.count, tables)
        }
    }

    // MARK: - Result

    /// The finished CRC-32C of every byte fed so far. Reading it does not end the computation:
    /// more `update` calls may follow.
    public var value: UInt32 {
        state ^ 0xFFFF_FFFF
    }

    // MARK: - One-shot

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// The CRC-32C of `bytes` (computed in place; the slice is not copied).
    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    // MARK: - Tables (slicing-by-8)

    /// Eight 256-entry tables laid end to end (2,048 words, 8 KiB), built once on first use
    /// (Swift initializes `static let` lazily and thread-safely).
    ///
    /// Table 0 is the classic byte-at-a-time table: `T0[b]` is the register after shifting the
    /// byte `b` through eight rounds of the reflected polynomial. Table k (k ≥ 1) is
    /// `Tk[b] = (T(k-1)[b] >> 8) ^ T0[T(k-1)[b] & 0xFF]`, i.e. the effect of byte `b` followed by
    /// k zero bytes, which lets the main loop fold eight input bytes with eight independent lookups.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ reflectedPolynomial : crc >> 1
            }
            t[byte] = crc
        }
        for k in 1..<8 {
            for byte in 0..<256 {
                let previous = t[(k - 1) * 256 + byte]
                t[k * 256 + byte] = (previous >> 8) ^ t[Int(previous & 0xFF)]
            }
        }
        return t
    }()

    /// Runs `count` bytes starting at `base` through the register `crc` (no initial or final XOR).
    @inline(__always)
    private static func advance(
        _ crc: UInt32,
        _ base: UnsafeRawPointer,
        _ count: Int,
        _ t: UnsafeBufferPointer<UInt32>
    ) -> UInt32 {
        var crc = crc
        var p = base
        var remaining = count

        // Eight bytes per step. The load is unaligned-safe and read as little-endian so that the
        // low 32 bits are input bytes 0...3 (the reflected CRC consumes the low byte first) on
        // every host, whatever its byte order.
        while remaining >= 8 {
            let word = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
            let lo = crc ^ UInt32(truncatingIfNeeded: word)
            let hi = UInt32(truncatingIfNeeded: word &>> 32)
            crc = t[7 * 256 + Int(lo & 0xFF)]
                ^ t[6 * 256 + Int((lo &>> 8) & 0xFF)]
                ^ t[5 * 256 + Int((lo &>> 16) & 0xFF)]
                ^ t[4 * 256 + Int(lo &>> 24)]
                ^ t[3 * 256 + Int(hi & 0xFF)]
                ^ t[2 * 256 + Int((hi &>> 8) & 0xFF)]
                ^ t[1 * 256 + Int((hi &>> 16) & 0xFF)]
                ^ t[Int(hi &>> 24)]
            p += 8
            remaining -= 8
        }

        // The 0...7 byte tail, one byte at a time through table 0.
        while remaining > 0 {
            let byte = p.load(as: UInt8.self)
            crc = (crc &>> 8) ^ t[Int((crc ^ UInt32(byte)) & 0xFF)]
            p += 1
            remaining -= 1
        }
        return crc
    }
}
