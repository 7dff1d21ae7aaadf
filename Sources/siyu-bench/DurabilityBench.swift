import Foundation
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuStore

/// What the hub's durable commits cost (issue 18, section 4): one store node's PUSHes of `opsPerPush`
/// ops each, stored through `HubStoreExecutor` (the path `siyu-hub serve` runs) into a hub file
/// with `synchronous = FULL` (the hub's setting: the WAL is synced at every commit, so an
/// acknowledged PUSH survives a power cut) and, as the anchor, the same PUSHes with
/// `synchronous = NORMAL` (synced only at checkpoints). The difference is the price of an
/// acknowledgement that survives a power cut, per PUSH. It depends mostly on the disk's flush
/// latency, not the CPU.
struct DurabilityBench {
    let pushes: Int
    let opsPerPush: Int
    let directory: TemporaryDirectory

    func run() throws -> SectionReport {
        var r = SectionReport("hub durability: a PUSH acknowledged only once it survives a power cut")
        let normal = try millisPerPush(.normal)
        let full = try millisPerPush(.full)
        r.line("synchronous = NORMAL: \(fixed(normal, 3)) ms per PUSH of \(opsPerPush) ops (\(pushes) PUSHes; not power-cut safe)")
        r.line("synchronous = FULL:   \(fixed(full, 3)) ms per PUSH of \(opsPerPush) ops (the hub's setting)")
        r.line("cost of durability: \(fixed(full - normal, 3)) ms per PUSH (\(fixed(full / max(normal, 0.000_001), 2))×)")
        r.figure("durability_pushes", pushes)
        r.figure("durability_ops_per_push", opsPerPush)
        r.figure("durability_normal_push_ms", normal, digits: 3)
        r.figure("durability_full_push_ms", full, digits: 3)
        r.summary.append(SummaryRow(what: "hub PUSH of \(opsPerPush) ops, durable (FULL)", siyu: "\(fixed(full, 2)) ms",
                                    baseline: "\(fixed(normal, 2)) ms with NORMAL", ratio: "\(fixed(full / max(normal, 0.000_001), 2))×",
                                    target: "—", met: nil))
        return r
    }

    private func millisPerPush(_ durability: CommitDurability) throws -> Double {
        let path = directory.path("durability-\(durability.rawValue).db")
        let base: UInt64 = 1_764_000_000_000
        var wall = base + 10_000_000
        let replica = try Replica(path: path, options: ReplicaOptions(node: "hub", role: .hq, wallClock: { wall }))
        defer { replica.close() }
        try replica.registerNode("xihu", role: .store, secret: Array("secret-of-xihu".utf8))
        let executor = try HubStoreExecutor(replica: replica, options: .init(bootstrapSnapshotOps: nil))
        try replica.setCommitDurability(durability)   // after the executor, which sets FULL
        var seq: UInt64 = 0
        func push() -> HubEffectResult {
            let ops = (0..<opsPerPush).map { _ -> Op in
                seq += 1
                return Op(stamp: Stamp(hlc: HLC(millis: base + seq, logical: 0), node: "xihu"), seq: seq, role: .store, author: "chenjing",
                          body: .write(Target(.customer, "wm_\(seq % 500)"), field: "phone", value: .text("139\(seq)"), overwrites: []))
            }
            return executor.execute(.storePush(node: "xihu", ChangeSet(ops: ops)))
        }
        for _ in 0..<20 { _ = push() }   // warm up
        let seconds = try seconds {
            for _ in 0..<pushes {
                wall += 1
                guard case .pushStored = push() else { throw BenchError("a PUSH was not stored") }
            }
        }
        return seconds * 1_000 / Double(pushes)
    }
}
