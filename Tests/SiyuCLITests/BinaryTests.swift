import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuTestSupport

/// The real `siyu` executable (built with the tests), run as a user would.
@Suite struct BinaryTests {
    struct Output {
        var code: Int32
        var out: String
        var err: String
    }

    static func run(_ arguments: [String]) throws -> Output {
        let r = try ChildProcess.run(try Binaries.url("siyu").path, arguments)
        return Output(code: r.termination.status, out: String(decoding: r.out, as: UTF8.self), err: String(decoding: r.err, as: UTF8.self))
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
        let path = dir.path("hq.db")
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

    /// Starts every command at once as its own `siyu` process and waits for all of them.
    static func runConcurrently(_ commands: [[String]]) throws -> [Output] {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let siyu = try Binaries.url("siyu").path
        var running: [(ChildProcess, String, String)] = []
        defer { for (child, _, _) in running { child.send(SIGKILL) } }
        for (index, arguments) in commands.enumerated() {
            let out = scratch.path("\(index).out"), err = scratch.path("\(index).err")
            running.append((try ChildProcess(executable: siyu, arguments: arguments, standardOutput: .file(out), standardError: .file(err)), out, err))
        }
        return try running.map { child, out, err in
            guard let ended = child.waitForExit(timeout: 120) else { throw ChildProcessError("siyu did not finish within 120 s") }
            return Output(code: ended.status, out: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                          err: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
        }
    }

    /// One winner: 20 `siyu` processes resolve one conflict at once (all ack, all override, or
    /// half and half). Exactly one exits 0, exactly one op is written, the others say the conflict
    /// is already closed, and the closed conflict agrees with the field's value.
    @Test(arguments: ["ack", "override", "mixed"])
    func twentyProcessesResolvingOneConflictHaveExactlyOneWinner(_ mix: String) throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let phone = try f.conflict("phone", in: f.hq)
        let before = try Replica(existing: f.hq)
        let ownBefore = try before.opCounts()
        before.close()
        let commands: [[String]] = (0..<20).map { i in
            let ack = mix == "ack" || (mix == "mixed" && i % 2 == 0)
            return ack ? ["ack", "--db", f.hq, phone.id, "--by", "zhaolei"]
                       : ["override", "--db", f.hq, phone.id, "--value", "1370000\(String(format: "%04d", i))", "--by", "zhaolei"]
        }
        let results = try BinaryTests.runConcurrently(commands)
        let winners = results.indices.filter { results[$0].code == 0 }
        #expect(winners.count == 1, "exit codes: \(results.map(\.code)); errors: \(results.map(\.err))")
        for r in results where r.code != 0 {
            #expect(r.code == 1)
            #expect(r.err.contains("is already acknowledged") || r.err.contains("is already overridden"), "\(r.err)")
        }
        let replica = try Replica(existing: f.hq)
        defer { replica.close() }
        let after = try replica.opCounts()
        #expect(after.own == ownBefore.own + 1)
        #expect(after.total == ownBefore.total + 1)
        let closed = try replica.conflict(phone.id)
        let value = try #require(try replica.rows(of: .customers, where: "customer_id", equals: "wm_lin").first?["phone"])
        let winner = try #require(winners.first)
        if commands[winner][0] == "ack" {
            #expect(closed.state == .acknowledged)
            #expect(value == phone.winner?.value)
        } else {
            #expect(closed.state == .overridden)
            #expect(value == .text(commands[winner][5]))
        }
    }
}
