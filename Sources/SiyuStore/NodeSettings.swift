import Foundation
import SiyuSQLite

/// Where a node syncs and with which secret, kept in its replica's `siyu_meta` table (keys
/// `node.hub` and `node.secret`) by `siyu-node init`, so that `siyu-node run`, `siyu-node sync`,
/// `siyu sync` and `siyu verify` need no flag and the secret never appears on a command line.
///
/// The replica file is therefore a credential as well as the store's data: protect it (and its
/// backups) like the secret. `write` makes the file readable by its owner only.
///
/// Guarantees: `read` never writes to the file; `write` replaces both keys in one transaction.
public struct NodeSettings: Equatable, Sendable {
    static let hubKey = "node.hub"
    static let secretKey = "node.secret"

    /// The hub's address as `HOST:PORT` (checked by whoever connects).
    public var hub: String
    public var secret: [UInt8]

    public init(hub: String, secret: [UInt8]) {
        self.hub = hub
        self.secret = secret
    }

    /// Reads the settings; nil if `siyu-node init` never recorded them.
    public static func read(path: String) throws -> NodeSettings? {
        let db = try Database(path: path, mode: ReplicaSchema.readingMode(for: path))
        defer { db.close() }
        let hub = try db.prepare("SELECT value FROM siyu_meta WHERE key = ?").scalar([.text(hubKey)])?.stringValue
        let secret = try db.prepare("SELECT value FROM siyu_meta WHERE key = ?").scalar([.text(secretKey)])
        guard let hub, case let .blob(bytes)? = secret else { return nil }
        return NodeSettings(hub: hub, secret: bytes)
    }

    /// Records the settings (replacing earlier ones) in one transaction.
    public func write(path: String) throws {
        let db = try Database(path: path, mode: .readWrite)
        defer { db.close() }
        try db.transaction {
            try db.prepare("INSERT OR REPLACE INTO siyu_meta(key, value) VALUES (?, ?), (?, ?)")
                .run([.text(NodeSettings.hubKey), .text(hub), .text(NodeSettings.secretKey), .blob(secret)])
        }
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            chmod(file, 0o600)
        }
    }
}
