import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuCommandLine
@testable import SiyuCLI
import SiyuTestSupport

/// `siyu sync` and `siyu verify` refusals that need no hub (the network runs are in IntegrationTests).
@Suite struct SyncCommandTests {
    @Test func syncWithoutNowIsAUsageErrorThatNamesTheDaemon() {
        let r = siyu(["sync", "--db", "x.db"])
        #expect(r.code == 2)
        #expect(r.err.contains("needs --now") && r.err.contains("siyu-node run"))
    }

    @Test func aTimeoutBelowOneSecondAndAnUnknownLogLevelAreUsageErrors() {
        #expect(siyu(["verify", "--db", "x.db", "--timeout", "0"]).code == 2)
        #expect(siyu(["sync", "--now", "--db", "x.db", "--log-level", "loud"]).code == 2)
    }

    @Test func aReplicaWithoutAHubIsRefusedWithTheCommandThatRecordsOneAndIsLeftAsItWas() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("plain.db")
        #expect(siyu(["init", "--db", path, "--node", "plain", "--role", "store"]).code == 0)
        let before = FileManager.default.contents(atPath: path)
        for command in [["sync", "--now"], ["verify"]] {
            let r = siyu(command + ["--db", path])
            #expect(r.code == 1)
            #expect(r.err.contains("has no hub recorded") && r.err.contains("hint: run: siyu-node init"))
            #expect(r.out.isEmpty)
        }
        #expect(FileManager.default.contents(atPath: path) == before)
        #expect(!FileManager.default.fileExists(atPath: path + "-sync-lock"), "refused before the lock is taken")
    }

    @Test func aMissingFileIsRefusedAsForEveryOtherCommand() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = siyu(["verify", "--db", dir.path("missing.db")])
        #expect(r.code == 1 && r.err.contains("missing.db"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("missing.db")))
    }
}
