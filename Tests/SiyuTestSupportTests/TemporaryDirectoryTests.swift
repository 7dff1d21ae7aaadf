import Foundation
import Testing
import SiyuTestSupport

/// What `TemporaryDirectory` promises the tests that use it.
@Suite struct TemporaryDirectoryTests {
    struct Thrown: Error {}

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    @Test func aNewDirectoryIsEmptyAndUnderTheSystemTemporaryDirectory() throws {
        let dir = try TemporaryDirectory(prefix: "siyu-tdtest")
        defer { dir.remove() }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        #expect(dir.url.deletingLastPathComponent().standardizedFileURL.path
                == FileManager.default.temporaryDirectory.standardizedFileURL.path)
        #expect(dir.url.lastPathComponent.hasPrefix("siyu-tdtest-"))
        #expect(dir.path("a.db") == dir.url(for: "a.db").path)
        #expect(dir.url(for: "a.db").deletingLastPathComponent().path == dir.path)
    }

    @Test func twoDirectoriesAreDistinct() throws {
        let a = try TemporaryDirectory(), b = try TemporaryDirectory()
        defer { a.remove(); b.remove() }
        #expect(a.path != b.path)
        try Data("a".utf8).write(to: a.url(for: "f"))
        #expect(!Self.exists(b.path("f")))
    }

    @Test func removeDeletesTheDirectoryWithItsFilesAndCanBeCalledTwice() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(at: dir.url(for: "sub"), withIntermediateDirectories: false)
        try Data("x".utf8).write(to: dir.url(for: "sub/f"))
        dir.remove()
        #expect(!Self.exists(dir.path))
        dir.remove()
        #expect(!Self.exists(dir.path))
    }

    @Test func theDirectoryIsRemovedWhenTheObjectGoesAway() throws {
        var dir: TemporaryDirectory? = try TemporaryDirectory()
        let path = try #require(dir).path
        #expect(Self.exists(path))
        dir = nil
        #expect(!Self.exists(path))
    }

    @Test func aKeptDirectoryStaysAfterRemove() throws {
        let dir = try TemporaryDirectory(keepingFiles: true)
        defer { try? FileManager.default.removeItem(at: dir.url) }
        dir.remove()
        #expect(Self.exists(dir.path))
    }

    @Test func theScopedFormRemovesTheDirectoryWhenTheBodyReturns() throws {
        let path = try withTemporaryDirectory { dir in
            try Data("x".utf8).write(to: dir.url(for: "f"))
            #expect(Self.exists(dir.path("f")))
            return dir.path
        }
        #expect(!Self.exists(path))
    }

    @Test func theScopedFormRemovesTheDirectoryWhenTheBodyThrowsAndRethrows() throws {
        var seen: String?
        #expect(throws: Thrown.self) {
            try withTemporaryDirectory { dir in
                seen = dir.path
                try Data("x".utf8).write(to: dir.url(for: "f"))
                throw Thrown()
            }
        }
        #expect(!Self.exists(try #require(seen)))
    }

    @Test func theAsyncScopedFormRemovesTheDirectoryWhenTheBodyReturnsOrThrows() async throws {
        let path = try await withTemporaryDirectory { dir in
            await Task.yield()
            try Data("x".utf8).write(to: dir.url(for: "f"))
            return dir.path
        }
        #expect(!Self.exists(path))
        var seen: String?
        await #expect(throws: Thrown.self) {
            try await withTemporaryDirectory { dir in
                seen = dir.path
                await Task.yield()
                throw Thrown()
            }
        }
        #expect(!Self.exists(try #require(seen)))
    }

    @Test func theSyncScopedFormCanBeCalledFromAnAsyncTest() async throws {
        let path = try withTemporaryDirectory { dir in dir.path }
        #expect(!Self.exists(path))
    }
}
