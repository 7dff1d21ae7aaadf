import Foundation
import Testing
import SiyuCore

/// The deterministic simulator (issue 12, item 8; scopes, issue 17): a hub, HQ and 4–6 stores,
/// each registered with its store, in one process over MemoryTransport, real replicas on disk, one
/// virtual clock and one seeded generator. Stores edit their own customers, chats and orders, HQ
/// edits anything and transfers customers between stores, while messages are dropped, duplicated,
/// delayed, reordered and split, links are partitioned and reset, nodes and the hub crash
/// (between steps, and inside a store effect or an edit), restart from their files, and lose
/// power. The hub is split as `HubServer` splits it (issue 20): reads on a read-only connection
/// of their own (`HubReader`), PUSHes as group commits (`writeBatch`) that also record the PULL
/// cursors gathered since the last one. After healing, HQ must equal the hub and each store the
/// hub's projection of its scope.
@Suite struct SimulationTests {
    /// A small fixed sample in `swift test`; `tools/sim/run.sh` sets SIYU_SIM_SEEDS (a count N for
    /// seeds 0..N-1, FIRST-LAST, or a list of seeds and ranges: 10,36,500-510) for long runs.
    static let seeds: [UInt64] = {
        let spec = ProcessInfo.processInfo.environment["SIYU_SIM_SEEDS"] ?? "8"
        func range(_ item: Substring) -> [UInt64] {
            let parts = item.split(separator: "-").compactMap { UInt64($0) }
            return parts.count == 2 && parts[0] <= parts[1] ? Array(parts[0]...parts[1]) : parts.prefix(1).map { $0 }
        }
        if spec.contains(",") { return spec.split(separator: ",").flatMap(range) }
        let parts = spec.split(separator: "-").compactMap { UInt64($0) }
        if parts.count == 2, parts[0] <= parts[1] { return Array(parts[0]...parts[1]) }
        return Array(0..<(parts.first ?? 8))
    }()

    @Test(arguments: seeds)
    func everyReplicaEqualsTheHubAfterTheFaultsHeal(seed: UInt64) throws {
        let sim = try Simulation(seed: seed)
        defer {
            // The whole run's events (with SIYU_SIM_VERBOSE=1, every frame sent), for one seed.
            if let path = ProcessInfo.processInfo.environment["SIYU_SIM_TRACE"] {
                try? sim.trace.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
            }
        }
        do {
            let stats = try sim.run()
            if ProcessInfo.processInfo.environment["SIYU_SIM_STATS"] != nil { print("seed \(seed): \(stats)") }
        } catch let failure as SimulationFailure {
            Issue.record("\(failure)")
        } catch {
            let text = "simulation seed \(seed) threw \(error); rerun with SIYU_SIM_SEEDS=\(seed)-\(seed)\n    "
                + sim.trace.suffix(30).joined(separator: "\n    ")
            Issue.record("\(text)")
        }
    }

    @Test func aSeedReplaysExactlyTheSameRun() throws {
        func trace(_ seed: UInt64) throws -> [String] {
            let sim = try Simulation(seed: seed)
            _ = try? sim.run()
            return sim.trace
        }
        let first = try trace(3)
        #expect(first.count > 100)
        #expect(try trace(3) == first)
        #expect(try trace(4) != first)
    }
}
