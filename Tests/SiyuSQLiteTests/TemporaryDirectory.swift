import Foundation

/// Runs `body` with a fresh, empty directory under the system temp directory and removes it
/// afterwards, whether `body` returns or throws.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("siyu-sqlite-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// A distinct error type, so tests can check that the original error is rethrown.
struct TestFailure: Error, Equatable {
    let reason: String
}
