import Foundation

/// Deletes the SQLite database at `path` with its write-ahead log (`-wal`) and shared-memory index
/// (`-shm`), those that exist, so that a file put in its place is not read with a stale log.
/// Whatever of them is missing is no error; close every connection to the database first.
public func removeDatabaseFiles(atPath path: String) {
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
}
