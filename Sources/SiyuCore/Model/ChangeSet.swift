/// The data model's version (entities, fields, op kinds) this build writes and understands. It
/// travels with every change set and in HELLO. A replica file's layout has its own version
/// (`ReplicaSchema.migrations`), which changes without this one and never leaves the machine.
public let currentSchemaVersion: Int = 1

/// A batch of ops sent from one replica to another, with the sender's schema version.
/// Applying a change set is idempotent and order-independent.
public struct ChangeSet: Hashable, Sendable {
    public var schemaVersion: Int
    public var ops: [Op]

    public init(schemaVersion: Int = currentSchemaVersion, ops: [Op]) {
        self.schemaVersion = schemaVersion
        self.ops = ops
    }
}

/// What a replica has seen: per origin, the highest sequence number up to which it holds every op.
public struct VersionVector: Hashable, Sendable {
    public var entries: [NodeID: UInt64]

    public init(_ entries: [NodeID: UInt64] = [:]) { self.entries = entries }

    public subscript(node: NodeID) -> UInt64 { entries[node] ?? 0 }
}
