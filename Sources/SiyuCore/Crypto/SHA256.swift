// SHA-256 (FIPS 180-4) in pure Swift. No I/O, no system crypto, deterministic.

/// The SHA-256 round constants (FIPS 180-4 §4.2.2).
private let sha256RoundConstants: [UInt32] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]

/// Incremental SHA-256 (FIPS 180-4).
///
/// Guarantees:
/// - `finalize()` returns exactly the 32-byte SHA-256 digest of the concatenation of every byte
///   passed to the `update` methods, in call order. How the input is split across `update` calls
///   never changes the result.
/// - Strings are hashed as their UTF-8 encoding (no terminator, no normalization).
/// - Pure and deterministic: no I/O, no global mutable state, no randomness; a value type, so
///   copying a partially-fed hasher forks it (both copies continue independently).
/// - Messages of any length up to 2^64 - 1 bits are supported, as in the standard.
///
/// Usage contract: a hasher is single-use. Calling any `update` method or `finalize()` again after
/// `finalize()` is a programmer error and traps (`precondition`). Create a new `SHA256()` instead.
public struct SHA256: Sendable {
    /// Size of a digest in bytes.
    public static let byteCount = 32
    /// Size of a compression block in bytes.
    public static let blockByteCount = 64

    /// Chaining state H0...H7 (stored as a struct of scalars to avoid array copy-on-write).
    @usableFromInline
    internal struct State: Sendable {
        var h0: UInt32 = 0x6a09e667, h1: UInt32 = 0xbb67ae85
        var h2: UInt32 = 0x3c6ef372, h3: UInt32 = 0xa54ff53a
        var h4: UInt32 = 0x510e527f, h5: UInt32 = 0x9b05688c
        var h6: UInt32 = 0x1f83d9ab, h7: UInt32 = 0x5be0cd19
    }

    private var state = State()
    /// Holds a partial block (always exactly 64 bytes long; only `bufferCount` are meaningful).
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var bufferCount = 0
    /// Total message length in bytes fed so far (mod 2^64).
    private var totalByteCount: UInt64 = 0
    private var finalized = false

    /// Creates a hasher with the standard SHA-256 initial state.
    public init() {}

    // MARK: - Feeding input

    /// Appends `bytes` to the message.
    /// - Precondition: `finalize()` has not been called on this hasher.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { update(bufferPointer: $0) }
    }

    /// Appends the bytes of any collection (e.g. `ArraySlice<UInt8>`, `Data`, `UnsafeBufferPointer`)
    /// to the message. Contiguous collections are hashed in place without copying.
    /// - Precondition: `finalize()` has not been called on this hasher.
    public mutating func update<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { update(bufferPointer: $0) }
        if handled != nil { return }
        // Non-contiguous collection: stream through a small stack chunk, no heap copy of the input.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { chunk in
            var n = 0
            for byte in bytes {
                chunk[n] = byte
                n += 1
                if n == chunk.count {
                    update(bufferPointer: UnsafeBufferPointer(chunk))
                    n = 0
                }
            }
            if n > 0 {
                update(bufferPointer: UnsafeBufferPointer(rebasing: chunk[0..<n]))
            }
        }
    }

    /// Appends the UTF-8 encoding of `string` to the message.
    /// - Precondition: `finalize()` has not been called on this hasher.
    public mutating func update(_ string: String) {
        var s = string
        s.withUTF8 { update(bufferPointer: $0) }
    }

    /// Appends raw bytes to the message. Core of all `update` variants.
    /// - Precondition: `finalize()` has not been called on this hasher.
    internal mutating func update(bufferPointer input: UnsafeBufferPointer<UInt8>) {
        precondition(!finalized, "SHA256.update called after finalize(); create a new SHA256()")
        guard var src = input.baseAddress, input.count > 0 else { return }
        var remaining = input.count
        totalByteCount &+= UInt64(remaining)

        // 1. Top up a pending partial block.
        if bufferCount > 0 {
            let take = Swift.min(64 - bufferCount, remaining)
            let offset = bufferCount
            buffer.withUnsafeMutableBufferPointer { b in
                (b.baseAddress! + offset).update(from: src, count: take)
            }
            bufferCount += take
            src += take
            remaining -= take
            if bufferCount < 64 { return }
            buffer.withUnsafeBufferPointer { b in
                SHA256.compress(&state, b.baseAddress!, blockCount: 1)
            }
            bufferCount = 0
        }

        // 2. Whole blocks straight from the caller's memory.
        let blocks = remaining / 64
        if blocks > 0 {
            SHA256.compress(&state, src, blockCount: blocks)
            src += blocks * 64
            remaining -= blocks * 64
        }

        // 3. Keep the tail for later.
        if remaining > 0 {
            buffer.withUnsafeMutableBufferPointer { b in
                b.baseAddress!.update(from: src, count: remaining)
            }
            bufferCount = remaining
        }
    }

    // MARK: - Finishing

    /// Pads the message, returns its 32-byte digest (big-endian H0...H7), and ends this hasher.
    /// - Precondition: `finalize()` has not already been called on this hasher; after it returns,
    ///   calling `update` or `finalize()` again traps.
    public mutating func finalize() -> [UInt8] {
        precondition(!finalized, "SHA256.finalize called twice; create a new SHA256()")
        let bitLength = totalByteCount &* 8
        // 0x80, zeros up to 56 mod 64, then the 64-bit big-endian bit length.
        let padCount = bufferCount < 56 ? 56 - bufferCount : 120 - bufferCount
        var padding = [UInt8](repeating: 0, count: padCount + 8)
        padding[0] = 0x80
        for i in 0..<8 {
            padding[padCount + i] = UInt8(truncatingIfNeeded: bitLength >> (56 - 8 * UInt64(i)))
        }
        update(padding)
        assert(bufferCount == 0)
        finalized = true

        let s = state
        let words = [s.h0, s.h1, s.h2, s.h3, s.h4, s.h5, s.h6, s.h7]
        return [UInt8](unsafeUninitializedCapacity: 32) { out, initialized in
            for (i, w) in words.enumerated() {
                out[4 * i] = UInt8(truncatingIfNeeded: w >> 24)
                out[4 * i + 1] = UInt8(truncatingIfNeeded: w >> 16)
                out[4 * i + 2] = UInt8(truncatingIfNeeded: w >> 8)
                out[4 * i + 3] = UInt8(truncatingIfNeeded: w)
            }
            initialized = 32
        }
    }

    // MARK: - One-shot

    /// The SHA-256 digest (32 bytes) of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var h = SHA256()
        h.update(bytes)
        return h.finalize()
    }

    /// The SHA-256 digest (32 bytes) of the UTF-8 encoding of `string`.
    public static func hash(_ string: String) -> [UInt8] {
        var h = SHA256()
        h.update(string)
        return h.finalize()
    }

    // MARK: - Compression function

    /// Processes `blockCount` consecutive 64-byte blocks starting at `data` (FIPS 180-4 §6.2.2).
    private static func compress(_ state: inout State, _ data: UnsafePointer<UInt8>, blockCount: Int) {
        sha256RoundConstants.withUnsafeBufferPointer { kBuf in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { wBuf in
                let k = kBuf.baseAddress!
                let w = wBuf.baseAddress!
                var h0 = state.h0, h1 = state.h1, h2 = state.h2, h3 = state.h3
                var h4 = state.h4, h5 = state.h5, h6 = state.h6, h7 = state.h7
                var p = data
                for _ in 0..<blockCount {
                    // Message schedule.
                    for t in 0..<16 {
                        let q = p + 4 * t
                        w[t] = UInt32(q[0]) &<< 24 | UInt32(q[1]) &<< 16 | UInt32(q[2]) &<< 8 | UInt32(q[3])
                    }
                    for t in 16..<64 {
                        let x = w[t - 15], y = w[t - 2]
                        let s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x &>> 3)
                        let s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y &>> 10)
                        w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                    }

                    var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
                    for t in 0..<64 {
                        let bigS1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                        let ch = (e & f) ^ (~e & g)
                        let t1 = h &+ bigS1 &+ ch &+ k[t] &+ w[t]
                        let bigS0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                        let maj = (a & b) ^ (a & c) ^ (b & c)
                        let t2 = bigS0 &+ maj
                        h = g; g = f; f = e; e = d &+ t1
                        d = c; c = b; b = a; a = t1 &+ t2
                    }
                    h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d
                    h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= h
                    p += 64
                }
                state.h0 = h0; state.h1 = h1; state.h2 = h2; state.h3 = h3
                state.h4 = h4; state.h5 = h5; state.h6 = h6; state.h7 = h7
            }
        }
    }

    @inline(__always)
    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 {
        (x &>> n) | (x &<< (32 &- n))
    }
}

// MARK: - Hex encoding

private let lowercaseHexDigits: [UInt8] = Array("0123456789abcdef".utf8)

extension Array where Element == UInt8 {
    /// The bytes as lowercase hexadecimal, two characters per byte, no separators or prefix
    /// (e.g. `[0x0a, 0xff]` → `"0aff"`; `[]` → `""`).
    public var hexString: String {
        if isEmpty { return "" }
        return withUnsafeBufferPointer { bytes in
            lowercaseHexDigits.withUnsafeBufferPointer { digits in
                String(unsafeUninitializedCapacity: bytes.count * 2) { out in
                    for (i, byte) in bytes.enumerated() {
                        out[2 * i] = digits[Int(byte &>> 4)]
                        out[2 * i + 1] = digits[Int(byte & 0x0f)]
                    }
                    return bytes.count * 2
                }
            }
        }
    }

    /// Decodes a hexadecimal string (upper- or lowercase digits, no prefix, separators or
    /// whitespace). Returns `nil` if the length is odd or any character is not a hex digit.
    /// The empty string decodes to `[]`.
    public init?(hexString: String) {
        let utf8 = hexString.utf8
        guard utf8.count % 2 == 0 else { return nil }
        var result = [UInt8]()
        result.reserveCapacity(utf8.count / 2)
        var high: UInt8? = nil
        for c in utf8 {
            let nibble: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = c &- UInt8(ascii: "A") &+ 10
            default: return nil
            }
            if let hi = high {
                result.append(hi &<< 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        self = result
    }
}
