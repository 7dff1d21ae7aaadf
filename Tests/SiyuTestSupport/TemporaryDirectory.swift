// Helpers shared by the test targets (never by a product: only test targets depend on this
// target, and tools/check-layering.sh refuses an import of it from Sources/).
import Foundation

/// A fresh, empty directory of its own under the system's temporary directory
/// (`FileManager.default.temporaryDirectory`, which honours `TMPDIR`), for the files of one test.
///
/// Guarantees:
/// - The directory exists when `init` returns, and no other `TemporaryDirectory` has it: its last
///   path component is the prefix and a new UUID, and it is created without intermediate
///   directories, so creating one that already exists fails instead of sharing it.
/// - `remove()` deletes it and all it holds; calling it again, or after someone else removed the
///   directory, does nothing. The object also removes it when it goes away, as a safety net for
///   fixtures that hold one.
/// - `withTemporaryDirectory { dir in … }` removes it when the body returns or throws.
///
/// Swift may end an object's life right after its last use, not at the end of its scope; so a
/// test that keeps only a path or URL of the directory uses `withTemporaryDirectory` or
/// `defer { dir.remove() }` (which also keeps the object alive), not the removal on `deinit`.
public final class TemporaryDirectory: Sendable {
    /// The directory.
    public let url: URL
    /// Whether `remove()` leaves the files in place (and says where they are), to look at them after a run.
    public let keepsFiles: Bool

    /// Creates the directory, named `prefix-UUID`. With `keepingFiles`, `remove()` prints where
    /// the files are instead of deleting them.
    public init(prefix: String = "siyu-test", keepingFiles: Bool = false) throws {
        let parent = FileManager.default.temporaryDirectory
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        url = parent.appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        keepsFiles = keepingFiles
    }

    /// The directory's path.
    public var path: String { url.path }

    /// The URL of `name` (a file name or a relative path) inside the directory.
    public func url(for name: String) -> URL { url.appendingPathComponent(name) }

    /// The path of `name` (a file name or a relative path) inside the directory.
    public func path(_ name: String) -> String { url(for: name).path }

    /// Deletes the directory and everything in it (unless it keeps its files). Idempotent.
    public func remove() {
        if keepsFiles {
            if FileManager.default.fileExists(atPath: path) { print("files kept in \(path)") }
            return
        }
        try? FileManager.default.removeItem(at: url)
    }

    deinit { remove() }
}

/// Runs `body` with a new `TemporaryDirectory` and removes the directory afterwards, whether
/// `body` returns or throws.
public func withTemporaryDirectory<T>(prefix: String = "siyu-test", _ body: (TemporaryDirectory) throws -> T) throws -> T {
    let directory = try TemporaryDirectory(prefix: prefix)
    defer { directory.remove() }
    return try body(directory)
}

/// Runs the asynchronous `body` with a new `TemporaryDirectory` on the caller's actor and removes
/// the directory afterwards, whether `body` returns or throws.
public func withTemporaryDirectory<T>(prefix: String = "siyu-test", isolation: isolated (any Actor)? = #isolation,
                                      _ body: (TemporaryDirectory) async throws -> T) async throws -> T {
    let directory = try TemporaryDirectory(prefix: prefix)
    defer { directory.remove() }
    return try await body(directory)
}
