import Foundation
import SiyuCore
import SiyuSQLite

/// A hub's answer to DIGEST_REQUEST (SPEC section 7, "Digests"): the state digest of a node's
/// scope together with the log position it describes.
///
/// Guarantees: `digest` is the SHA-256 state digest (`Replica.digest()`) of the ops of the scope
/// held with log positions up to `position`, read in one read transaction, so no PUSH stored
/// between the two reads can make them disagree.
public struct ScopeDigest: Equatable, Sendable {
    /// The hub's log head when the digest was taken.
    public var position: UInt64
    /// 32 bytes.
    public var digest: [UInt8]

    public init(position: UInt64, digest: [UInt8]) {
        self.position = position
        self.digest = digest
    }
}

extension Replica {
    /// The state digest of `scope` and the log position it holds at (a hub answering
    /// DIGEST_REQUEST): for `.everything` the whole replica's (`digest()`), for a store's scope
    /// the rows of that scope (`digest(ofStore:)`) — equal to the digest of a node that holds the
    /// same ops of the scope.
    public func scopeDigest(_ scope: SyncScope = .everything) throws -> ScopeDigest {
        try ReplicaError.wrap("computing the state digest of a node's scope") {
            // A read transaction of its own (BEGIN DEFERRED takes no write lock), unless the
            // caller already holds one: the head and the tables are then read from one snapshot.
            try db.readTransaction {
                switch scope {
                case .everything:
                    return ScopeDigest(position: try logHead(), digest: try digest())
                case let .store(store):
                    return ScopeDigest(position: try logHead(), digest: try digest(ofStore: store))
                }
            }
        }
    }

    /// `scopeDigest` for a connection that must not write (a hub's reader): nil while customers
    /// holding a changed tag wait to be re-merged (the tables are not yet the merge of the ops),
    /// checked in the same read transaction as the digest, so nothing is ever written.
    public func settledScopeDigest(_ scope: SyncScope = .everything) throws -> ScopeDigest? {
        try ReplicaError.wrap("computing the state digest of a node's scope") {
            try db.readTransaction {
                guard try pendingRemerges().isEmpty else { return nil }
                return try scopeDigest(scope)
            }
        }
    }

}
