import Foundation
import SiyuCore
import SiyuStore
import Testing
import SiyuTestSupport

/// POSIX locks belong to the process, and closing any descriptor of a file drops all of them: a
/// replica opened a second time in a process that already has it open (a hub's reader beside its
/// writer) must not open and close the file itself, or the first connection's locks go, another
/// process takes the file for unused and deletes its write-ahead log, and the first connection's
/// later commits go to a deleted file.
@Suite struct FileLockTests {
    static func siyu(_ arguments: [String]) throws -> (code: Int32, out: String) {
        let r = try ChildProcess.run(try Binaries.url("siyu").path, arguments, timeout: 60)
        return (r.termination.status, String(decoding: r.out, as: UTF8.self))
    }

    @Test(.timeLimit(.minutes(1))) func aSecondOpenInTheSameProcessKeepsTheFirstConnectionsCommitsInTheFile() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let path = scratch.path("hq.db")
        let writer = try Replica(path: path, options: ReplicaOptions(node: "hq", role: .hq))
        defer { writer.close() }
        try writer.createCustomer("wm_1", ["name": .text("一")], by: "zhaolei")
        var options = ReplicaOptions()
        options.readOnly = true
        let reader = try Replica(path: path, options: options)
        defer { reader.close() }
        // Another process writes and closes the file, as `siyu-hub add-node` does while a hub serves:
        // it may delete the write-ahead log only if no other process has the file open.
        let added = try Self.siyu(["customer", "add", "--db", path, "wm_2"])
        #expect(added.code == 0)
        try writer.createCustomer("wm_3", ["name": .text("三")], by: "zhaolei")
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        let listed = try Self.siyu(["customers", "--db", path])
        #expect(listed.code == 0)
        for id in ["wm_1", "wm_2", "wm_3"] { #expect(listed.out.contains(id), "\(id) missing from another process's view:\n\(listed.out)") }
        #expect(try reader.opCounts().total == writer.opCounts().total)
    }
}
