import Foundation
import SiyuCore
import SiyuSQLite

/// A node registered with a hub.
///
/// Guarantees: `verifiers` is all the hub keeps of the node's secret — SCRAM's salt, iteration
/// count, StoredKey and ServerKey (SPEC section 6). They verify the node's AUTH and let the hub
/// prove itself; they cannot be used to log in as the node, and neither the secret nor its HMAC
/// key is stored.
public struct HubNodeRecord: Equatable, Sendable {
    public var node: NodeID
    public var role: Role
    /// The store the node serves (nil for HQ nodes, or when none was given).
    public var store: String?
    public var verifiers: SCRAMVerifiers
    /// The node's acked_seq (SPEC section 7, "Upload"): every op of the node up to it is held, or
    /// refused and settled.
    public var ackedSeq: UInt64
    /// The cursor of the node's last PULL.
    public var cursor: UInt64
}

/// The hub's node registry (SPEC section 6): who may connect, in which role, for which store,
/// and what the hub keeps to verify them.
///
/// Guarantees: registering, rotating and removing are each one write transaction that reads
/// what it checks; a store node's store must be one the hub's replica holds (a `stores` row, as
/// HQ creates them) unless the caller says it is new; an id whose ops the hub holds is never
/// registered afresh (a node keeps its id: rotate its secret instead).
extension Replica {
    /// The key the hub verified a node's AUTH with up to file layout 6: the HMAC-SHA256 key as
    /// RFC 2104 normalises it — the secret's SHA-256 if it is longer than 64 bytes, else the
    /// secret. HMAC under it equals HMAC under the secret, which is why layout 7's migration can
    /// turn it into verifiers (PBKDF2 uses the secret only as an HMAC key).
    static func normalisedHMACKey(forSecret secret: [UInt8]) -> [UInt8] {
        secret.count > SHA256.blockByteCount ? SHA256.hash(secret) : secret
    }

    /// Fresh random salt for a registration.
    static func freshSalt() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<SCRAMVerifiers.saltSize).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
    }

    // MARK: - Registry

    /// Registers a node with its role, store and secret (of which only verifiers are stored).
    /// Refused: an id already registered or whose ops the hub holds, an id or store breaking the
    /// id rule, a store the hub does not know (unless `newStore`), an empty secret. `salt`: a fresh
    /// random one unless given (a simulation that replays a run byte for byte gives its own).
    public func registerNode(_ id: NodeID, role: Role, store: String? = nil, newStore: Bool = true, secret: [UInt8],
                             iterations: Int = SCRAMVerifiers.defaultIterations, salt: [UInt8]? = nil) throws {
        try ReplicaError.wrap("registering node \(IdentifierRule.printable(id))") {
            try IdentifierRule.validate(id, as: "node id")
            if let store { try IdentifierRule.validate(store, as: "store id") }
            guard !secret.isEmpty else {
                throw ReplicaError.invalid("an empty secret", "give the node a secret of 32 random bytes or more")
            }
            let verifiers = SCRAMVerifiers(secret: secret, salt: salt ?? Replica.freshSalt(), iterations: max(1, iterations))
            try transaction {
                guard try registeredNode(id) == nil else {
                    throw ReplicaError.invalid("node \(IdentifierRule.printable(id)) is already registered",
                                               "a node keeps its id; to give it a new secret: siyu-hub rotate-secret")
                }
                if try hubLog.hasLogged(origin: id) {
                    throw ReplicaError.invalid("the hub holds ops of \(IdentifierRule.printable(id)), a node registered before and removed",
                                               "a removed node's id is not given out again; register the new node under a new id")
                }
                if let store, !newStore,
                   try db.cached("SELECT 1 FROM stores WHERE store_id = ?").scalar([.text(store)]) == nil {
                    throw ReplicaError.invalid("the hub knows no store \(IdentifierRule.printable(store))",
                                               "check the store id: stores exist once HQ has created them and the hub holds HQ's ops; pass --new-store to register a store HQ has not created yet")
                }
                try hubLog.register(id, role: role, store: store, verifiers: verifiers, at: wallClock())
            }
        }
    }

    /// Replaces a registered node's verifiers with those of `secret` (new salt). A running hub
    /// closes the node's open sessions when it sees the change (`HubServer`).
    public func rotateSecret(of id: NodeID, secret: [UInt8], iterations: Int = SCRAMVerifiers.defaultIterations) throws {
        try ReplicaError.wrap("rotating the secret of node \(IdentifierRule.printable(id))") {
            guard !secret.isEmpty else {
                throw ReplicaError.invalid("an empty secret", "give the node a secret of 32 random bytes or more")
            }
            let verifiers = SCRAMVerifiers(secret: secret, salt: Replica.freshSalt(), iterations: max(1, iterations))
            try transaction {
                guard try registeredNode(id) != nil else {
                    throw ReplicaError.invalid("node \(IdentifierRule.printable(id)) is not registered", "siyu-hub nodes lists the registered nodes")
                }
                try hubLog.setVerifiers(verifiers, of: id)
            }
        }
    }

    /// Removes a node's registration (its ops stay in the log; its refusals are kept). A running
    /// hub closes the node's open sessions when it sees the change (`HubServer`).
    public func removeNode(_ id: NodeID) throws {
        try ReplicaError.wrap("removing node \(IdentifierRule.printable(id))") {
            try transaction {
                guard try registeredNode(id) != nil else {
                    throw ReplicaError.invalid("node \(IdentifierRule.printable(id)) is not registered", "siyu-hub nodes lists the registered nodes")
                }
                try hubLog.remove(id)
            }
        }
    }

    /// The store ids the hub's replica holds (`stores` rows, created by HQ's ops), by id.
    public func knownStores() throws -> [String] {
        try ReplicaError.wrap("reading the stores") {
            try db.cached("SELECT store_id FROM stores ORDER BY store_id").rows().compactMap { $0[0].stringValue }
        }
    }

    /// The registration of `id`, nil if it is not registered.
    public func registeredNode(_ id: NodeID) throws -> HubNodeRecord? {
        try ReplicaError.wrap("reading the registry") {
            try hubLog.node(id)
        }
    }

    /// Every registered node, by id.
    public func registeredNodes() throws -> [HubNodeRecord] {
        try ReplicaError.wrap("reading the registry") {
            try hubLog.nodes()
        }
    }
}
