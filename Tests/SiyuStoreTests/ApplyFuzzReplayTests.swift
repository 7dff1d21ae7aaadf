import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuTestSupport

/// Replays the apply fuzz target's seeds (issue 11's hostile change sets, `tools/fuzz/apply-seeds/`)
/// against fresh replicas, as HQ and as a store: each is refused whole (a `ReplicaError`, nothing
/// stored) or applied, never a trap; a local edit works afterwards; the file reopens with its
/// identity; and `rebuild()` gives the digest incremental merging gave.
///
/// The seeds are written by `tools/fuzz/run.sh apply` (tools/fuzz/ApplySeeds.swift). This target
/// cannot decode a `.changeset` (SiyuStoreTests does not depend on SiyuWire), so it replays the
/// `.ops` file beside each: the same ops in the op-log encoding (`OpCoding` version 1, each
/// preceded by its length, 4 bytes little-endian), checked by the generator to be exactly what the
/// `.changeset` decodes to. Seeds whose ops would take more than 512 KB that way (60k origins, the
/// 100 KB author reused 200 times, 20k tag holders) have no `.ops`; the fuzz binary replays them.
@Suite struct ApplyFuzzReplayTests {
    static let seedsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("tools/fuzz/apply-seeds")
    /// The fuzz harness's wall time for the first input after a reset; the seeds' clocks are relative to it.
    static let now: UInt64 = 1_764_000_000_000 + 1000

    /// What each seed must do on the receiver (`nil`: refused on both).
    static let expectations: [String: (hq: Bool, store: Bool)] = [
        "benign-customer-tag-order": (true, true),
        "two-awards-at-bound": (true, true),
        "remove-1024-same-clock-stamps": (true, true),
        "delete-16384-same-clock-stamps": (true, true),
        "clock-299.9s-ahead": (true, true),
        "clock-300.1s-ahead": (true, true),
        "own-origin-seq-int64-max-hq": (false, true),
        "own-origin-seq-int64-max-xihu": (true, false),
    ]

    static func seedNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: seedsDir.path)) ?? []
        return names.filter { $0.hasSuffix(".ops") }.map { String($0.dropLast(4)) }.sorted()
    }

    static func ops(_ name: String) throws -> [Op] {
        let bytes = [UInt8](try Data(contentsOf: seedsDir.appendingPathComponent("\(name).ops")))
        var ops: [Op] = []
        var at = 0
        while at < bytes.count {
            #expect(at + 4 <= bytes.count, "truncated length in \(name).ops")
            guard at + 4 <= bytes.count else { break }
            let n = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
            at += 4
            #expect(at + n <= bytes.count, "truncated op in \(name).ops")
            guard at + n <= bytes.count else { break }
            ops.append(try OpCoding.decode(Array(bytes[at ..< at + n])))
            at += n
        }
        return ops
    }

    @Test func theSeedsAreThere() {
        let names = ApplyFuzzReplayTests.seedNames()
        #expect(names.count >= 20, "\(names)")
        for expected in ApplyFuzzReplayTests.expectations.keys { #expect(names.contains(expected), "\(expected)") }
    }

    @Test(arguments: ApplyFuzzReplayTests.seedNames())
    func aSeedIsRefusedOrAppliedAndTheReplicaEditsReopensAndRebuilds(_ name: String) throws {
        let ops = try ApplyFuzzReplayTests.ops(name)
        #expect(!ops.isEmpty)
        for (node, role) in [("hq", Role.hq), ("xihu", Role.store)] {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let path = dir.path("\(node).db")
            let clock = WallClock()
            clock.now = ApplyFuzzReplayTests.now
            let options = { (creating: Bool) in
                ReplicaOptions(node: creating ? node : nil, role: role, wallClock: { clock.now })
            }
            let replica = try Replica(path: path, options: options(true))
            let applied: Bool
            do {
                let report = try replica.apply(ChangeSet(ops: ops))
                #expect(report.applied + report.duplicates + report.refused.count == ops.count)
                if name.hasPrefix("clock-") {   // the op ahead is refused alone (the clock window), the honest one applied
                    #expect(report.refused.count == 1 && report.applied == 1, "\(name) on \(node): \(report)")
                }
                applied = true
            } catch let e as ReplicaError {
                #expect(try replica.opCounts().total == 0, "\(name) on \(node): refused but stored ops")
                #expect(e.description.contains("Hint:"), "\(name) on \(node): \(e.description.prefix(200))")
                applied = false
            }
            let expected = ApplyFuzzReplayTests.expectations[name].map { role == .hq ? $0.hq : $0.store } ?? false
            #expect(applied == expected, "\(name) on \(node): \(applied ? "applied" : "refused"), expected \(expected ? "applied" : "refused")")

            // A local edit, then the file reopens with its identity and edits again.
            clock.advance(1000)
            do { try replica.createCustomer("c1", ["name": .text("客户")], by: "fz0") }
            catch is ReplicaError { try replica.editCustomer("c1", ["name": .text("客户")], by: "fz0") }   // the seed made c1
            try replica.awardPoints(5, to: "c1", by: "fz0")
            let own = try replica.opCounts().own
            replica.close()
            let reopened = try Replica(path: path, options: options(false))
            #expect(reopened.node == node && reopened.role == role)
            try reopened.editCustomer("c1", ["name": .text("客户2")], by: "fz0")
            #expect(try reopened.opCounts().own == own + 1)
            #expect(try reopened.outbox(after: 0).map(\.seq) == Array(1...UInt64(own + 1)))
            let incremental = try reopened.digest()
            try reopened.rebuild()
            #expect(try reopened.digest() == incremental, "\(name) on \(node): rebuild changed the digest")
            reopened.close()
        }
    }
}
