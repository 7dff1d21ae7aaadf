import Foundation
import Testing
import SiyuCore
import SiyuStore

/// The real `siyu` executable (built with the tests), run as a user would.
@Suite struct BinaryTests {
    /// The `siyu` binary beside the test bundle.
    static func binary() throws -> URL {
        var candidates: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for dir in candidates {
            let url = dir.appendingPathComponent("siyu")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw BinaryMissing(searched: candidates.map(\.path))
    }

    struct BinaryMissing: Error, CustomStringConvertible {
        var searched: [String]
        var description: String { "the siyu binary was not found beside the tests (searched \(searched))" }
    }

    struct Output {
        var code: Int32
        var out: String
        var err: String
    }

    static func run(_ arguments: [String]) throws -> Output {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(code: process.terminationStatus, out: String(decoding: outData, as: UTF8.self),
                      err: String(decoding: errData, as: UTF8.self))
    }

    @Test func helpGoesToStandardOutputWithExitZeroAndWrongUsageToStandardErrorWithTwo() throws {
        let help = try BinaryTests.run(["status", "--help"])
        #expect(help.code == 0)
        #expect(help.out.hasPrefix("usage: siyu status"))
        #expect(help.err.isEmpty)
        let wrong = try BinaryTests.run(["status", "--db"])
        #expect(wrong.code == 2)
        #expect(wrong.out.isEmpty)
        #expect(wrong.err.contains("--db needs a value"))
    }

    @Test func aDirectoryAsTheReplicaIsAnErrorNotACrash() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try BinaryTests.run(["status", "--db", dir.path])
        #expect(r.code == 1)
        #expect(r.err.contains("is not a Siyu replica (it is a directory)"))
    }

    @Test func initThenStatusJSONThroughTheBinary() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("hq.db")
        #expect(try BinaryTests.run(["init", "--db", path, "--node", "hq", "--role", "hq"]).code == 0)
        let status = try BinaryTests.run(["status", "--db", path, "--json"])
        #expect(status.code == 0)
        let json = try #require(try parseJSON(status.out) as? [String: Any])
        #expect(json["role"] as? String == "hq")
        let again = try BinaryTests.run(["init", "--db", path, "--node", "hq", "--role", "hq"])
        #expect(again.code == 1)
        #expect(again.err.contains("already exists"))
    }

    @Test func refusedCommandsLeaveTheFileUnchanged() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let before = snapshot(f.store)
        let phone = try f.conflict("phone", in: f.store).id
        for arguments in [["ack", "--db", f.store, "0000000"], ["ack", "--db", f.store, phone, "--by", "x\ny"],
                          ["override", "--db", f.store, phone, "--value", String(repeating: "9", count: 40)],
                          ["ack", "--db", f.store, phone, "--bogus"], ["history", "--db", f.store, "customer", "nobody"]] {
            let r = try BinaryTests.run(arguments)
            #expect(r.code != 0, "\(arguments)")
            #expect(snapshot(f.store) == before, "\(arguments)")
        }
        let conflicts = try BinaryTests.run(["conflicts", "--db", f.store, "--json", "--state", "open"])
        #expect(conflicts.code == 0)
        #expect((try parseJSON(conflicts.out) as? [Any])?.count == 3)
    }
}
