import Foundation
import SiyuCore
import SiyuSQLite

/// A node registered with a hub.
///
/// Guarantees: `authenticationKey` is all the hub keeps of the node's secret — the HMAC key as
/// RFC 2104 normalises it (`Replica.authenticationKey(forSecret:)`), which verifies AUTH's MAC
/// exactly as the secret does; for a secret over 64 bytes that is its SHA-256, and the secret
/// itself is not stored.
public struct HubNodeRecord: Equatable, Sendable {
    public var node: NodeID
    public var role: Role
    /// The store the node serves (nil for HQ nodes, or when none was given).
    public var store: String?
    public var authenticationKey: [UInt8]
    /// The node's acked_seq (SPEC section 7, "Upload"): every op of the node up to it is held, or
    /// refused and settled.
    public var ackedSeq: UInt64
    /// The cursor of the node's last PULL.
    public var cursor: UInt64
}

/// The hub's node registry (SPEC section 6): who may connect, in which role, for which store,
/// and what the hub keeps to verify them.
extension Replica {
    /// The key the hub verifies a node's AUTH with: the HMAC-SHA256 key as RFC 2104 normalises
    /// it — the secret's SHA-256 if it is longer than 64 bytes, else the secret. The MAC computed
    /// with it equals the MAC computed with the secret.
    public static func authenticationKey(forSecret secret: [UInt8]) -> [UInt8] {
        secret.count > SHA256.blockByteCount ? SHA256.hash(secret) : secret
    }

    // MARK: - Registry

    /// Registers a node with its role, store and secret (of which only the authentication key is
    /// stored). An id already registered, an id or store breaking the id rule, or an empty
    /// secret is refused.
    public func registerNode(_ id: NodeID, role: Role, store: String? = nil, secret: [UInt8]) throws {
        try ReplicaError.wrap("registering node \(IdentifierRule.printable(id))") {
            try IdentifierRule.validate(id, as: "node id")
            if let store { try IdentifierRule.validate(store, as: "store id") }
            guard !secret.isEmpty else {
                throw ReplicaError.invalid("an empty secret", "give the node a secret of 32 random bytes or more")
            }
            guard try registeredNode(id) == nil else {
                throw ReplicaError.invalid("node \(IdentifierRule.printable(id)) is already registered",
                                           "a node keeps its id; register a new node under a new id")
            }
            try transaction {
                try db.cached("INSERT INTO hub_nodes(node_id, role, store_id, mac_key, registered_at) VALUES (?, ?, ?, ?, ?)")
                    .run([.text(id), .text(role.description), store.map { .text($0) } ?? .null,
                          .blob(Replica.authenticationKey(forSecret: secret)), .integer(Int64(clamping: wallClock()))])
            }
        }
    }

    /// The registration of `id`, nil if it is not registered.
    public func registeredNode(_ id: NodeID) throws -> HubNodeRecord? {
        try ReplicaError.wrap("reading the registry") {
            try db.cached("SELECT node_id, role, store_id, mac_key, acked_seq, cursor FROM hub_nodes WHERE node_id = ?")
                .rows([.text(id)]).first.map(Replica.nodeRecord)
        }
    }

    /// Every registered node, by id.
    public func registeredNodes() throws -> [HubNodeRecord] {
        try ReplicaError.wrap("reading the registry") {
            try db.cached("SELECT node_id, role, store_id, mac_key, acked_seq, cursor FROM hub_nodes ORDER BY node_id")
                .rows().map(Replica.nodeRecord)
        }
    }

    static func nodeRecord(_ row: [SQLiteValue]) -> HubNodeRecord {
        var key: [UInt8] = []
        if case let .blob(b) = row[3] { key = b }
        return HubNodeRecord(node: row[0].stringValue ?? "", role: Role(name: row[1].stringValue ?? "") ?? .store,
                             store: row[2].stringValue, authenticationKey: key,
                             ackedSeq: UInt64(clamping: row[4].int64Value ?? 0), cursor: UInt64(clamping: row[5].int64Value ?? 0))
    }
}
