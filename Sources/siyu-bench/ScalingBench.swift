import Foundation
import SiyuCore
import SiyuStore

/// Section 6 — how the costs grow with the replica: HQ replicas of 10k, 100k and 1M customers (one
/// tag each; built by applying synthesized change sets of HQ's creates and tag adds in chunks, as
/// the bootstrap does, into a second HQ device "hq-2"), and at each size:
/// - a local tag edit (`addTag`/`removeTag` of a second tag on random customers, one transaction each);
/// - merging M remote ops from a store (tag adds and phone writes on random customers) as one change set;
/// - `changeSet(since:)` of the last M ops (the store's, as a peer that holds everything else asks).
/// Each replica is deleted as soon as it is measured.
struct ScalingBench {
    let sizes: [Int]
    let mergeOps: Int
    let directory: TemporaryDirectory

    static let customersPerChunk = 10_000
    static let localEdits = 500
    static let tags = ["t0", "t1", "t2"]

    struct Row {
        var customers = 0, ops = 0
        var buildSeconds = 0.0, localEditMicros = 0.0, mergeSeconds = 0.0, changeSetSeconds = 0.0
        var fileBytes = 0
    }

    func run() throws -> SectionReport {
        var rows: [Row] = []
        for size in sizes { rows.append(try measure(customers: size)) }
        return report(rows)
    }

    private func measure(customers count: Int) throws -> Row {
        var row = Row(customers: count)
        let path = directory.path("scale-\(count).db")
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let ids = (0..<count).map { "wm" + String(format: "%08d", $0) }
        // A second HQ device: the replica is built from ops of node "hq", which a replica only
        // accepts from a peer (its own ops are never relayed to it beyond what it issued).
        let hq = try Replica(path: path, options: ReplicaOptions(node: "hq-2", role: .hq))
        defer { hq.close() }

        progress("scaling: building \(grouped(count)) customers")
        row.buildSeconds = try seconds { try build(hq, ids: ids, libraryAt: directory.path("scale-\(count)-library.db")) }
        row.ops = try hq.opCounts().total
        progress("scaling: \(grouped(count)) customers built in \(fixed(row.buildSeconds, 1)) s; measuring")
        row.localEditMicros = try localEditMicros(hq, ids: ids)
        row.mergeSeconds = try mergeSeconds(hq, ids: ids)
        row.changeSetSeconds = try changeSetSeconds(hq)
        row.fileBytes = fileBytes(path)
        return row
    }

    /// The tag library from a real HQ replica, then per chunk of customers a change set of HQ's
    /// creates and one tag add each, continuing HQ's numbering and clock.
    func build(_ hq: Replica, ids: [String], libraryAt libraryPath: String) throws {
        let library = try tagLibrary(ScalingBench.tags, at: libraryPath)
        try? FileManager.default.removeItem(atPath: libraryPath)
        try hq.apply(library)
        var synthesizer = OpSynthesizer(continuing: library, origin: "hq", role: .hq, author: "zhaolei")
        for start in stride(from: 0, to: ids.count, by: ScalingBench.customersPerChunk) {
            let slice = ids[start..<min(start + ScalingBench.customersPerChunk, ids.count)]
            try hq.apply(ChangeSet(ops: customerOps(slice, tags: ["t0"], using: &synthesizer)))
        }
    }

    /// Toggles tag t1 on random customers; a warm-up on other customers runs first.
    private func localEditMicros(_ hq: Replica, ids: [String]) throws -> Double {
        var rng = SeededRandom(seed: UInt64(ids.count))
        var present = Set<String>()
        func toggle(_ id: String) throws {
            if present.remove(id) != nil { try hq.removeTag("t1", from: id, by: "zhaolei") }
            else { try hq.addTag("t1", to: id, by: "zhaolei"); present.insert(id) }
        }
        for _ in 0..<20 { try toggle(ids[Int(rng.next() % UInt64(ids.count))]) }
        let picks = (0..<ScalingBench.localEdits).map { _ in ids[Int(rng.next() % UInt64(ids.count))] }
        let elapsed = try seconds { for id in picks { try toggle(id) } }
        return elapsed * 1e6 / Double(picks.count)
    }

    /// M ops from store "xihu" — tag t2 adds and phone writes on random customers — in one change set.
    private func mergeSeconds(_ hq: Replica, ids: [String]) throws -> Double {
        var rng = SeededRandom(seed: UInt64(ids.count) &+ 1)
        var store = OpSynthesizer(origin: "xihu", role: .store, author: "chenjing")
        let ops = (0..<mergeOps).map { i -> Op in
            let id = ids[Int(rng.next() % UInt64(ids.count))]
            return i % 2 == 0 ? store.addTag("t2", to: id) : store.write("phone", .text("139\(String(format: "%08d", i))"), of: id)
        }
        return try seconds { try hq.apply(ChangeSet(ops: ops)) }
    }

    /// The last M ops: everything of "xihu", asked by a peer that holds all of HQ's ops.
    private func changeSetSeconds(_ hq: Replica) throws -> Double {
        var peer = try hq.versionVector()
        peer.entries["xihu"] = 0
        var count = 0
        let elapsed = try seconds { count = try hq.changeSet(since: peer).ops.count }
        guard count == mergeOps else { throw BenchError("scaling: changeSet(since:) returned \(count) ops, expected \(mergeOps)") }
        return elapsed
    }

    private func report(_ rows: [Row]) -> SectionReport {
        var r = SectionReport("scaling: HQ replicas with 1 tag per customer (built from synthesized change sets)")
        r.line("customers       ops  build s  file MB  local edit µs  merge \(grouped(mergeOps)) ops s  changeSet(since:) last \(grouped(mergeOps)) s")
        for row in rows {
            r.line(padLeft(grouped(row.customers), 9) + padLeft(grouped(row.ops), 10)
                   + String(format: " %8.1f %8.1f %14.1f %17.3f %28.4f", row.buildSeconds, Double(row.fileBytes) / 1_048_576,
                            row.localEditMicros, row.mergeSeconds, row.changeSetSeconds))
        }
        r.figure("scaling_merge_ops", mergeOps)
        r.figure("scaling", .array(rows.map { row in
            .object([("customers", .int(row.customers)), ("ops", .int(row.ops)),
                     ("build_seconds", .rounded(row.buildSeconds, 2)), ("local_edit_us", .rounded(row.localEditMicros, 2)),
                     ("merge_10k_seconds", .rounded(row.mergeSeconds, 4)), ("change_set_seconds", .rounded(row.changeSetSeconds, 4))])
        }))
        return r
    }
}
