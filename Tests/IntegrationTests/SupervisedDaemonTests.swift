import Foundation
import Glibc
import Testing
import SiyuStore

/// `--stop-when-input-closes`: a supervisor (`siyu demo`) holds a pipe to each daemon's standard
/// input; when the pipe closes — the supervisor closed it, or died — the daemon stops as cleanly
/// as on SIGTERM.
@Suite(.serialized) struct SupervisedDaemonTests {
    @Test(.timeLimit(.minutes(1))) func theHubAndANodeStopCleanlyWhenTheirInputPipeCloses() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("xihu", role: "store")
        let hubChild = try n.p.start("siyu-hub", ["serve", "--db", n.hubDB, "--listen", "127.0.0.1:0", "--stop-when-input-closes"],
                                     name: "hub", input: true)
        let out = try hubChild.waitFor("listening line", timeout: 20, in: \.out) { $0.contains("listening on ") && $0.hasSuffix("\n") }
        let address = String(out.split(separator: "\n").first { $0.hasPrefix("listening on ") }!.dropFirst("listening on ".count))
        try n.initNode("xihu", role: "store", hub: address)
        let node = try n.p.start("siyu-node", ["run", "--db", n.db("xihu"), "--stop-when-input-closes"], name: "xihu", input: true)
        try node.waitFor("the node's first pull") { $0.contains("auth ok") }
        // Bytes on the pipe are read and ignored.
        node.input!.write(Data("anything\n".utf8))
        usleep(200_000)
        #expect(node.isRunning)

        try node.input!.close()
        #expect(node.waitForExit(timeout: 10) == 0)
        #expect(node.err.contains("standard input closed"))
        try hubChild.input!.close()
        #expect(hubChild.waitForExit(timeout: 10) == 0)
        #expect(hubChild.err.contains("hub stopped"))
    }

    /// Without a pipe to watch (standard input is /dev/null), asking for it is refused at once
    /// rather than stopping the daemon the moment it starts.
    @Test(.timeLimit(.minutes(1))) func aDaemonWhoseInputIsNotAPipeRefusesTheOption() throws {
        let n = try Network()
        defer { n.close() }
        let hubChild = try n.p.start("siyu-hub", ["serve", "--db", n.hubDB, "--listen", "127.0.0.1:0", "--stop-when-input-closes"], name: "hub")
        #expect(hubChild.waitForExit(timeout: 10) == 1)
        #expect(hubChild.err.contains("standard input"))
    }
}
