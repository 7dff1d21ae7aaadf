import Foundation
import Glibc
import Testing
import SiyuTestSupport

/// What `ChildProcess` promises: a child holds no descriptor of the test process but its three
/// streams, its end is seen as soon as it happens, and how it ended is reported as it was.
@Suite struct ChildProcessTests {
    /// A descriptor this process opened without close-on-exec (as Foundation's pipes and its
    /// process-watching socket pairs are) is not inherited: the read end of a pipe sees its end
    /// while a long-lived child runs. Were the write end inherited, the read would wait for the
    /// child — the hang an integration test met when a neighbour's hub held another child's socket.
    @Test(.timeLimit(.minutes(1))) func aChildInheritsNoDescriptorButItsStandardStreams() throws {
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        let sleeper = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        defer { sleeper.send(SIGKILL); _ = sleeper.waitForExit(timeout: 10) }
        close(ends[1])
        var pollfd = Glibc.pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
        #expect(poll(&pollfd, 1, 5_000) == 1, "the pipe's write end lives on in the child")
        var byte: UInt8 = 0
        #expect(read(ends[0], &byte, 1) == 0)
        #expect(sleeper.isRunning)
    }

    @Test(.timeLimit(.minutes(1))) func anExitStatusAndAnEndingSignalAreReportedAsTheyWere() throws {
        let exits = try ChildProcess.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], timeout: 30)
        #expect(exits.termination == .exit(3))
        #expect(String(decoding: exits.out, as: UTF8.self) == "out\n")
        #expect(String(decoding: exits.err, as: UTF8.self) == "err\n")
        let sleeper = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        #expect(sleeper.waitForExit(timeout: 0.05) == nil)
        sleeper.send(SIGTERM)
        #expect(sleeper.waitForExit(timeout: 10) == .signal(SIGTERM))
        #expect(!sleeper.isRunning)
    }

    @Test(.timeLimit(.minutes(1))) func standardInputFromAPipeEndsWhenTheTestClosesIt() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let cat = try ChildProcess(executable: "/bin/cat", arguments: [], standardInput: .pipe, standardOutput: .file(scratch.path("out")))
        defer { cat.send(SIGKILL) }
        try #require(cat.input).write(contentsOf: Data("line\n".utf8))
        try #require(cat.input).close()
        #expect(cat.waitForExit(timeout: 10) == .exit(0))
        #expect(FileManager.default.contents(atPath: scratch.path("out")) == Data("line\n".utf8))
    }

    @Test func aProgramThatCannotBeStartedThrows() {
        #expect(throws: ChildProcessError.self) { try ChildProcess(executable: "/nonexistent/siyu", arguments: []) }
    }
}
