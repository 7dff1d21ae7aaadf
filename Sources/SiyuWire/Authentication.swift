import Foundation
import SiyuCore

/// Mutual authentication of protocol version 2 (SPEC section 6), after SCRAM-SHA-256 (RFC 5802,
/// RFC 7677), and the keys that authenticate every later frame (SPEC section 3, "Sealed frames").
///
/// From the node's secret, a salt and an iteration count:
///
///     salted     = PBKDF2-HMAC-SHA256(secret, salt, iterations, 32 bytes)   (RFC 5802 "Hi")
///     client_key = HMAC(salted, "Client Key")      stored_key = SHA-256(client_key)
///     server_key = HMAC(salted, "Server Key")
///
/// The hub keeps only salt, iterations, stored_key and server_key (`Verifiers`). Neither logs in:
/// AUTH must carry `client_key ⊕ HMAC(stored_key, transcript)`, and `client_key` is not derivable
/// from `stored_key` (it is its SHA-256 preimage). The transcript is the HELLO and CHALLENGE
/// payloads exactly as sent, so it binds both nonces, both ids, the role, the versions offered and
/// chosen, the node's schema version, the salt and the iteration count.
///
/// Guarantees: pure and deterministic; every comparison of secret-derived bytes is constant-time.
public enum Authentication {
    /// Bytes of salt the hub draws for a registration.
    public static let saltSize = SCRAMVerifiers.saltSize
    /// The iteration count of a new registration (RFC 7677's minimum recommendation).
    public static let defaultIterations = SCRAMVerifiers.defaultIterations
    /// The most iterations a node accepts in a CHALLENGE: a hostile hub cannot make it spin.
    public static let maxIterations = 100_000
    /// Bytes of a sealed frame's MAC (HMAC-SHA-256 truncated to 128 bits, as RFC 4868).
    public static let tagSize = 16
    static let transcriptLabel = Array("siyu-auth-v2".utf8)
    static let sessionLabel = Array("siyu-session-v2".utf8)

    /// What the hub keeps of a node's secret.
    public typealias Verifiers = SCRAMVerifiers
    /// What the node derives from its secret for one salt and iteration count.
    public typealias NodeKeys = SCRAMKeys

    /// The node's keys for `salt` and `iterations`.
    public static func nodeKeys(secret: [UInt8], salt: [UInt8], iterations: Int) -> NodeKeys {
        SCRAMKeys(secret: secret, salt: salt, iterations: iterations)
    }

    /// The verifiers a hub stores for `secret` with `salt` and `iterations`.
    public static func verifiers(secret: [UInt8], salt: [UInt8], iterations: Int) -> Verifiers {
        SCRAMVerifiers(secret: secret, salt: salt, iterations: iterations)
    }

    /// `"siyu-auth-v2" ‖ 0x00 ‖ u32be(len) ‖ HELLO payload ‖ u32be(len) ‖ CHALLENGE payload`.
    public static func transcript(hello: [UInt8], challenge: [UInt8]) -> [UInt8] {
        transcriptLabel + [0] + bigEndian(UInt32(clamping: hello.count)) + hello
            + bigEndian(UInt32(clamping: challenge.count)) + challenge
    }

    /// AUTH's proof: `client_key ⊕ HMAC(stored_key, transcript)`.
    public static func proof(_ keys: NodeKeys, transcript: [UInt8]) -> [UInt8] {
        xor(keys.clientKey, HMACSHA256.authenticationCode(for: transcript, key: keys.storedKey))
    }

    /// The client key a proof reveals if it verifies against `verifiers` (SHA-256 of the recovered
    /// key equals `stored_key`), else nil.
    public static func clientKey(fromProof proof: [UInt8], _ verifiers: Verifiers, transcript: [UInt8]) -> [UInt8]? {
        guard proof.count == SHA256.byteCount, verifiers.storedKey.count == SHA256.byteCount else { return nil }
        let candidate = xor(proof, HMACSHA256.authenticationCode(for: transcript, key: verifiers.storedKey))
        return constantTimeEquals(SHA256.hash(candidate), verifiers.storedKey) ? candidate : nil
    }

    /// The two directions' frame keys of a session:
    ///
    ///     session      = HMAC(client_key, "siyu-session-v2" ‖ 0x00 ‖ server_key ‖ transcript)
    ///     node_to_hub  = HMAC(session, "node to hub")      hub_to_node = HMAC(session, "hub to node")
    ///
    /// Only a party holding the secret, or the hub's verifiers and a proof of this transcript, can
    /// compute them: WELCOME sealed under `hub_to_node` is the hub's proof of itself.
    public static func sessionKeys(clientKey: [UInt8], serverKey: [UInt8], transcript: [UInt8]) -> SessionKeys {
        let session = HMACSHA256.authenticationCode(for: sessionLabel + [0] + serverKey + transcript, key: clientKey)
        return SessionKeys(nodeToHub: HMACSHA256.authenticationCode(for: Array("node to hub".utf8), key: session),
                           hubToNode: HMACSHA256.authenticationCode(for: Array("hub to node".utf8), key: session))
    }

    static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] { zip(a, b).map { $0 ^ $1 } }
}

/// The frame keys of one session, one per direction.
public struct SessionKeys: Equatable, Sendable {
    public var nodeToHub: [UInt8]
    public var hubToNode: [UInt8]

    public init(nodeToHub: [UInt8], hubToNode: [UInt8]) {
        self.nodeToHub = nodeToHub
        self.hubToNode = hubToNode
    }
}

/// Computes the MAC of the sealed frames of one direction:
/// `HMAC-SHA256(key, u64be(sequence) ‖ frame bytes 0 ..< 8+N)`, its first 16 bytes. The sequence
/// number is implicit: 0 for the first sealed frame of the direction, then 1, 2, … — so a frame
/// dropped, replayed, reordered or moved to the other direction fails.
public struct FrameAuthenticator: Sendable {
    private let mac: PrecomputedHMAC

    public init(key: [UInt8]) { mac = PrecomputedHMAC(key: key) }

    /// The tag of `frame` (its `tag` ignored) as the `sequence`-th sealed frame of the direction.
    public func tag(for frame: Frame, sequence: UInt64) -> [UInt8] {
        var seq = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { seq[i] = UInt8(truncatingIfNeeded: sequence >> (56 - 8 * i)) }
        return Array(mac.code(for: [seq, frame.header, frame.payload]).prefix(Authentication.tagSize))
    }

    /// `frame` with its tag set.
    public func seal(_ frame: Frame, sequence: UInt64) -> Frame {
        var sealed = frame
        sealed.tag = tag(for: frame, sequence: sequence)
        return sealed
    }

    /// Whether `frame`'s tag is the one of the `sequence`-th sealed frame (constant-time).
    public func verify(_ frame: Frame, sequence: UInt64) -> Bool {
        constantTimeEquals(frame.tag, tag(for: frame, sequence: sequence))
    }
}
