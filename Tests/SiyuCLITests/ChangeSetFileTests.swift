import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuWire
import SiyuTestSupport

/// Change-set files: a store whose network is down carries its ops to HQ by hand, HQ carries back
/// what the store lacks, and later syncs change nothing.
@Suite struct ChangeSetFileTests {
    /// HQ and store xihu, each with edits the other lacks.
    static func pair(in dir: TemporaryDirectory) throws -> (hq: String, xihu: String) {
        let clock = TestClock()
        let hq = try Replica(path: dir.path("hq.db"), options: ReplicaOptions(node: "hq", role: .hq, wallClock: clock.read))
        let xihu = try Replica(path: dir.path("xihu.db"), options: ReplicaOptions(node: "xihu", role: .store, wallClock: clock.read))
        defer { hq.close(); xihu.close() }
        try hq.createCustomer("wm_lin", ["name": .text("林小文"), "phone": .text("13800000001")], by: "zhaolei")
        _ = try xihu.apply(try hq.changeSet(since: try xihu.versionVector()))
        try xihu.editCustomer("wm_lin", ["phone": .text("13800000011")], by: "chenjing")
        try xihu.createCustomer("wm_zhou", ["name": .text("周子豪")], by: "chenjing")
        try hq.editCustomer("wm_lin", ["name": .text("林晓雯")], by: "zhaolei")
        return (dir.path("hq.db"), dir.path("xihu.db"))
    }

    @Test func aStoreCarriesItsOpsToHQAndHQCarriesBackWhatTheStoreLacks() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (hq, xihu) = try ChangeSetFileTests.pair(in: dir)
        let toHQ = dir.path("xihu-to-hq.siyuchanges"), back = dir.path("hq-to-xihu.siyuchanges")
        let out = siyu(["export-changes", "--db", xihu, "--out", toHQ])
        #expect(out.code == 0, "\(out.err)")
        let imported = siyu(["import-changes", "--db", hq, toHQ])
        #expect(imported.code == 0, "\(imported.err)")
        #expect(imported.out.contains("2 new ops from xihu"))
        // HQ exports exactly what xihu lacked when it wrote its file: HQ's later edit.
        #expect(siyu(["export-changes", "--db", hq, "--out", back, "--for", toHQ]).code == 0)
        let (header, sets) = try ChangeSetFile.read([UInt8](FileManager.default.contents(atPath: back)!))
        #expect(header.node == "hq")
        #expect(sets.flatMap(\.ops).map(\.origin).filter { $0 == "hq" }.count == 1)
        #expect(siyu(["import-changes", "--db", xihu, back]).code == 0)
        let again = siyu(["import-changes", "--db", xihu, back])
        #expect(again.out.contains("0 new ops"))
        let digests = try [hq, xihu].map { try Replica(existing: $0).digest() }
        #expect(digests[0] == digests[1])
    }

    @Test func aDamagedFileIsRefusedWholeAndNothingIsApplied() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (hq, xihu) = try ChangeSetFileTests.pair(in: dir)
        let file = dir.path("x.siyuchanges")
        #expect(siyu(["export-changes", "--db", xihu, "--out", file]).code == 0)
        var bytes = [UInt8](FileManager.default.contents(atPath: file)!)
        let before = snapshot(hq)
        bytes[bytes.count - 20] ^= 0xFF                     // inside the last chunk: its CRC fails
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let r = siyu(["import-changes", "--db", hq, file])
        #expect(r.code == 1)
        #expect(r.err.contains("not a valid change-set file"))
        try Data(bytes.prefix(bytes.count - 30)).write(to: URL(fileURLWithPath: file))   // cut short
        let cut = siyu(["import-changes", "--db", hq, file])
        #expect(cut.code == 1)
        #expect(cut.err.contains("truncated"))
        try Data("not a change set".utf8).write(to: URL(fileURLWithPath: file))
        #expect(siyu(["import-changes", "--db", hq, file]).err.contains("does not start with SIYUCHG"))
        #expect(snapshot(hq) == before)
    }

    @Test func anExportNeverOverwritesAFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (_, xihu) = try ChangeSetFileTests.pair(in: dir)
        let file = dir.path("keep.txt")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: file))
        let r = siyu(["export-changes", "--db", xihu, "--out", file])
        #expect(r.code == 1)
        #expect(FileManager.default.contents(atPath: file) == Data("precious".utf8))
    }

    @Test func theFileHeaderRoundTripsAndAnUnknownFormatVersionIsRefused() throws {
        let op = Op(stamp: Stamp(hlc: HLC(millis: 1_795_000_000_000, logical: 0), node: "xihu"), seq: 1, role: .store,
                    author: "chenjing", body: .write(Target(.customer, "wm_lin"), field: "phone", value: .text("1"), overwrites: []))
        let bytes = ChangeSetFile.encode([op], node: "xihu", role: .store, createdMillis: 7,
                                         held: VersionVector(["xihu": 1, "hq": 9]), since: VersionVector(["hq": 9]))
        let (header, sets) = try ChangeSetFile.read(bytes)
        #expect(header == ChangeSetFileHeader(node: "xihu", role: .store, createdMillis: 7, held: VersionVector(["xihu": 1, "hq": 9]),
                                              since: VersionVector(["hq": 9]), chunkCount: 1, opCount: 1))
        #expect(sets.flatMap(\.ops) == [op])
        var newer = bytes
        newer[ChangeSetFile.magic.count] = 2
        #expect(throws: WireError.self) { try ChangeSetFile.read(newer) }
        #expect(throws: WireError.self) { try ChangeSetFile.read(bytes + [0]) }   // bytes after the last chunk
        for cut in 0..<bytes.count {                                              // every prefix: an error, never a trap
            #expect(throws: WireError.self) { try ChangeSetFile.read(Array(bytes.prefix(cut))) }
        }
    }

    @Test func mergingTwoReplicaFilesLeavesBothWithEveryOp() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (hq, xihu) = try ChangeSetFileTests.pair(in: dir)
        let r = siyu(["merge", hq, xihu])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("digests equal"))
        #expect(siyu(["merge", hq, hq]).code == 1)
    }
}
