import Foundation
import SiyuCore
import SiyuSQLite

/// What a replica file says about itself, read without writing to it.
public struct ReplicaFileInfo: Sendable, Equatable {
    /// The node the replica belongs to.
    public var node: NodeID
    public var role: Role
    /// The file layout version recorded in the file (`ReplicaSchema.migrations`).
    public var fileLayout: Int
    /// The store whose data this node holds, when it was recorded at creation; nil for HQ and
    /// for replicas created without one.
    public var store: String?
    /// How many nodes a hub's file has registered (`siyu-hub add-node`); 0 for a node's replica.
    public var registeredNodes: Int = 0
}

/// Opening replica files for tools: looking at a file without changing it, and creating a new
/// replica only where no file exists.
extension Replica {
    /// The meta key under which `create(at:node:role:store:)` records the store a node serves.
    static let storeMetaKey = "store_id"

    /// Reads a replica file's identity through a read-only connection.
    ///
    /// Guarantee: writes nothing, whatever the path names. A missing path is `notFound`; a
    /// directory, an empty file, a file that is not SQLite, an SQLite database without Siyu's
    /// metadata, or a replica without a node identity is `notAReplica`; a replica of a newer file
    /// layout is `newerSchema`.
    public static func inspect(path: String) throws -> ReplicaFileInfo {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ReplicaError.notFound(what: "replica file \(path)",
                                        hint: "check the path, or create a replica with: siyu init --db FILE --node NODE --role store")
        }
        if isDirectory.boolValue { throw ReplicaError.notAReplica(path: path, reason: "it is a directory") }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        if size == 0 { throw ReplicaError.notAReplica(path: path, reason: "the file is empty") }
        try ReplicaSchema.refuseIfNotSQLite(path: path)
        let db: Database
        do {
            db = try Database(path: path, mode: ReplicaSchema.readingMode(for: path))
        } catch let e as SQLiteError {
            throw ReplicaError.storage(e, context: "opening \(path) to read")
        }
        defer { db.close() }
        do {
            let version = try ReplicaSchema.storedVersion(db, path: path)
            let supported = ReplicaSchema.migrations.last?.version ?? 0
            if version > supported { throw ReplicaError.newerSchema(path: path, found: version, supported: supported) }
            let meta = try readMeta(db)
            guard let node = meta["node_id"]?.stringValue else {
                throw ReplicaError.notAReplica(path: path, reason: "it records no node identity")
            }
            var info = ReplicaFileInfo(node: node, role: Role(name: meta["role"]?.stringValue ?? "") ?? .store,
                                       fileLayout: version, store: meta[storeMetaKey]?.stringValue)
            let tables = try db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'hub_nodes'").rows()
            if !tables.isEmpty {
                info.registeredNodes = Int(clamping: try db.prepare("SELECT count(*) FROM hub_nodes").scalar()?.int64Value ?? 0)
            }
            return info
        } catch let e as SQLiteError {
            if e.isNotADatabase { throw ReplicaError.notAReplica(path: path, reason: "not an SQLite database") }
            throw ReplicaError.storage(e, context: "reading the identity of \(path)")
        }
    }

    /// Creates a new, empty replica for `node` at `path`, where no file may exist yet.
    ///
    /// Guarantees: an existing file (even an empty one) is refused and left untouched; the node
    /// id and store id are checked before anything is created; if creating fails midway, the new
    /// file is removed.
    public static func create(at path: String, node: NodeID, role: Role, store: String? = nil,
                              options: ReplicaOptions = ReplicaOptions()) throws -> Replica {
        try ReplicaError.wrap("checking the node id") {
            try IdentifierRule.validate(node, as: "node id")
            if let store { try IdentifierRule.validate(store, as: "store id") }
        }
        // O_EXCL: the file is ours only if this call made it. 0600: a replica holds customers'
        // data and a node's secret or a hub's verifiers; SQLite gives FILE-wal and FILE-shm the
        // mode of the database file.
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST {
                throw ReplicaError.rejected(.invalidEdit(what: "\(path) already exists; a new replica needs a new file",
                                                         hint: "choose another path; to look at the existing file: siyu status --db \(path)"))
            }
            throw ReplicaError.rejected(.invalidEdit(what: "cannot create \(path): \(String(cString: strerror(code)))",
                                                     hint: "check that the directory exists and is writable"))
        }
        try? FileHandle(fileDescriptor: fd, closeOnDealloc: false).close()
        do {
            var options = options
            options.node = node
            options.role = role
            let replica = try Replica(path: path, options: options)
            if let store {
                try ReplicaError.wrap("recording the store of \(path)") {
                    try replica.db.cached("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?)")
                        .run([.text(storeMetaKey), .text(store)])
                }
                replica.store = store
            }
            return replica
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            throw error
        }
    }

    /// The store this node serves, as recorded at creation (nil when none was).
    public func recordedStore() throws -> String? {
        store
    }

    /// Every op of one instance held by this replica, in stamp order (what its merge reads): for
    /// explaining a value, where an op on one element may remove adds of another (an exclusive
    /// tag group) or resolve a conflict of a field.
    public func instanceOps(_ instance: InstanceRef) throws -> [Op] {
        try ReplicaError.wrap("reading the ops of \(instance)") {
            InstanceState.canonicalOps(instance, try loadOps(instance))
        }
    }

    /// The sync cursors this replica holds, per peer: `position` in the peer's log up to which
    /// its changes were received, and `acked`, the own sequence number the peer has acknowledged.
    /// Empty until the node has synced.
    public func storedCursors() throws -> [(peer: String, position: Int64, acked: Int64)] {
        try ReplicaError.wrap("reading the sync cursors") {
            try nodeSync.all()
        }
    }
}
