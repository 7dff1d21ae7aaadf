// HMAC-SHA256 (RFC 2104 / FIPS 198-1) and constant-time comparison, in pure Swift.

/// HMAC with SHA-256 as the hash function (RFC 2104, RFC 4231 test vectors).
///
/// Guarantees:
/// - `authenticationCode(for:key:)` returns the full 32-byte HMAC-SHA-256 tag
///   `H((K' ^ opad) || H((K' ^ ipad) || message))`, with block size 64, where `K'` is the key
///   zero-padded to 64 bytes, or `SHA256(key)` zero-padded if the key is longer than 64 bytes.
/// - Any key length is accepted, including empty. Pure and deterministic; no I/O.
/// - To truncate (e.g. RFC 4231 case 5), take a prefix of the result. Compare tags with
///   `constantTimeEquals(_:_:)`, never with `==`.
public enum HMACSHA256 {
    /// Computes the 32-byte HMAC-SHA-256 of `message` under `key`.
    public static func authenticationCode(for message: [UInt8], key: [UInt8]) -> [UInt8] {
        let blockSize = SHA256.blockByteCount
        var keyBlock = key.count > blockSize ? SHA256.hash(key) : key
        keyBlock.append(contentsOf: repeatElement(0, count: blockSize - keyBlock.count))

        var innerPad = [UInt8](repeating: 0, count: blockSize)
        var outerPad = [UInt8](repeating: 0, count: blockSize)
        for i in 0..<blockSize {
            innerPad[i] = keyBlock[i] ^ 0x36
            outerPad[i] = keyBlock[i] ^ 0x5c
        }

        var inner = SHA256()
        inner.update(innerPad)
        inner.update(message)
        let innerDigest = inner.finalize()

        var outer = SHA256()
        outer.update(outerPad)
        outer.update(innerDigest)
        return outer.finalize()
    }
}

/// Constant-time comparison of two byte arrays (for MAC checks).
///
/// Returns `true` iff `a` and `b` have the same length and the same bytes. For equal lengths the
/// running time depends only on the length, never on where (or whether) the contents differ: every
/// byte is examined and differences are accumulated without early exit. The lengths themselves are
/// not treated as secret: arrays of different lengths return `false` immediately.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            for i in 0..<pa.count {
                difference |= pa[i] ^ pb[i]
            }
        }
    }
    return difference == 0
}
