// PBKDF2 with HMAC-SHA256 (RFC 8018 section 5.2), in pure Swift.

/// PBKDF2-HMAC-SHA256, one 32-byte block: `Hi(key, salt, iterations)` of RFC 5802 section 2.2
/// (SCRAM's salted password).
///
/// Guarantees: the result equals RFC 8018's PBKDF2 with PRF HMAC-SHA256 and dkLen 32 (RFC 7914
/// section 11 vectors); the key enters only as an HMAC key, so the RFC 2104 normalised key (the
/// key's SHA-256 if it is longer than 64 bytes, else the key) gives the same result as the key.
/// `iterations` below 1 is treated as 1. Pure; no I/O.
public enum PBKDF2SHA256 {
    public static func derive(key: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let mac = PrecomputedHMAC(key: key)
        var u = mac.code(for: salt + [0, 0, 0, 1])
        var result = u
        var i = 1
        while i < iterations {
            u = mac.code(for: u)
            for j in 0..<result.count { result[j] ^= u[j] }
            i += 1
        }
        return result
    }
}

/// HMAC-SHA256 with the key's inner and outer blocks absorbed once: the same codes as
/// `HMACSHA256.authenticationCode(for:key:)`, at half the compressions for short messages (a
/// frame's MAC, each PBKDF2 iteration).
public struct PrecomputedHMAC: Sendable {
    private var inner = SHA256()
    private var outer = SHA256()

    public init(key: [UInt8]) {
        let blockSize = SHA256.blockByteCount
        var keyBlock = key.count > blockSize ? SHA256.hash(key) : key
        keyBlock.append(contentsOf: repeatElement(0, count: blockSize - keyBlock.count))
        inner.update(keyBlock.map { $0 ^ 0x36 })
        outer.update(keyBlock.map { $0 ^ 0x5c })
    }

    public func code(for message: [UInt8]) -> [UInt8] { code(for: [message]) }

    /// The code of the concatenation of `parts` (none of them copied together).
    public func code(for parts: [[UInt8]]) -> [UInt8] {
        var i = inner
        for part in parts { i.update(part) }
        var o = outer
        o.update(i.finalize())
        return o.finalize()
    }
}

/// A node's SCRAM-SHA-256 keys (RFC 5802 section 3) for one salt and iteration count:
/// `salted = Hi(secret, salt, iterations)`, `clientKey = HMAC(salted, "Client Key")`,
/// `storedKey = SHA-256(clientKey)`, `serverKey = HMAC(salted, "Server Key")`.
public struct SCRAMKeys: Equatable, Sendable {
    public var clientKey: [UInt8]
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]

    public init(secret: [UInt8], salt: [UInt8], iterations: Int) {
        let salted = PBKDF2SHA256.derive(key: secret, salt: salt, iterations: iterations)
        clientKey = HMACSHA256.authenticationCode(for: Array("Client Key".utf8), key: salted)
        storedKey = SHA256.hash(clientKey)
        serverKey = HMACSHA256.authenticationCode(for: Array("Server Key".utf8), key: salted)
    }
}

/// What a server keeps to verify a node and prove itself to it (RFC 5802's StoredKey and
/// ServerKey with their salt and iteration count). Guarantees: enough to verify a proof and to
/// compute the server's signature; not enough to compute a proof (that needs `clientKey`, whose
/// SHA-256 `storedKey` is).
public struct SCRAMVerifiers: Equatable, Sendable {
    /// Bytes of salt drawn for a registration.
    public static let saltSize = 16
    /// The iteration count of a new registration (RFC 7677's minimum recommendation).
    public static let defaultIterations = 4096

    public var salt: [UInt8]
    public var iterations: Int
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]

    public init(salt: [UInt8], iterations: Int, storedKey: [UInt8], serverKey: [UInt8]) {
        self.salt = salt
        self.iterations = iterations
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    public init(secret: [UInt8], salt: [UInt8], iterations: Int) {
        let keys = SCRAMKeys(secret: secret, salt: salt, iterations: iterations)
        self.init(salt: salt, iterations: iterations, storedKey: keys.storedKey, serverKey: keys.serverKey)
    }
}
