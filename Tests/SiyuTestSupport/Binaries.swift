import Foundation

/// The package's built executables (`siyu`, `siyu-hub`, `siyu-node`), found beside the test
/// bundle: `swift build` and `swift test` put products and tests in the same directory.
public enum Binaries {
    /// The executable `name` beside the running tests; throws `BinaryNotFound` (naming every
    /// directory searched) when none of them holds an executable of that name.
    public static func url(_ name: String) throws -> URL {
        var candidates: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for dir in candidates {
            let url = dir.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw BinaryNotFound(name: name, searched: candidates.map(\.path))
    }
}

/// A built executable that is not beside the tests.
public struct BinaryNotFound: Error, CustomStringConvertible {
    public var name: String
    public var searched: [String]
    public var description: String { "the \(name) binary was not found beside the tests (searched \(searched))" }
}
