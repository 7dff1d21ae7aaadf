import Foundation
import SiyuCore
import SiyuStore

/// A local edit's cost against the length of the edited instance's history: one customer whose
/// phone has been written 1,000 times, and one written 100,000 times (a long-lived HQ record, or
/// a peer that sent a chain of writes); then the same local edits on each. The design asks that a
/// local edit cost the same whatever the history (the issue's bound: within 10× of the short one).
/// Then the same for a peer's one-op change sets applied to each (what a hub does for every PUSH):
/// the bound there is 2× (issue 21).
struct HistoryBench {
    /// History lengths: the short one (the baseline) and the long one.
    let short: Int
    let long: Int
    let edits: Int
    let directory: TemporaryDirectory

    func run() throws -> SectionReport {
        var r = SectionReport("local edit after a long history (one customer, chained phone writes)")
        r.figure("history_short_ops", short)
        r.figure("history_long_ops", long)
        try compare(into: &r, what: "local edit", unit: "edit", key: "history", figureSuffix: "_edit_us", target: 10, timing: microsPerEdit)
        try compare(into: &r, what: "a peer's one-op change set", unit: "apply", key: "history_remote", figureSuffix: "_us", target: 2,
                    timing: microsPerRemoteApply)
        return r
    }

    /// As `microsPerEdit`, but the timed ops come from the peer that wrote the history, one op per
    /// change set, each naming the write before (the first one pays for merging the history once,
    /// before the clock starts, as the local edits' warm-up does).
    private func microsPerRemoteApply(history: Int) throws -> Double {
        let path = directory.path("history-remote-\(history).db")
        let base: UInt64 = 1_764_000_000_000
        var wall = base - 1_000   // the customer is created before the peer's writes
        let replica = try Replica(path: path, options: ReplicaOptions(node: "hq", role: .hq, wallClock: { wall }))
        defer { replica.close() }
        try replica.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        wall = base + UInt64(history + edits) + 1_000
        var previous: [Stamp] = []
        func write(_ i: Int) -> Op {
            let stamp = Stamp(hlc: HLC(millis: base + UInt64(i), logical: 0), node: "crm")
            defer { previous = [stamp] }
            return Op(stamp: stamp, seq: UInt64(i + 1), role: .hq, author: "system",
                      body: .write(Target(.customer, "c1"), field: "phone", value: .text("138\(String(format: "%08d", i))"), overwrites: previous))
        }
        try replica.apply(ChangeSet(ops: (0..<history).map(write)))
        try replica.apply(ChangeSet(ops: [write(history)]))   // warm-up
        let seconds = try seconds {
            for i in 0..<edits { try replica.apply(ChangeSet(ops: [write(history + 1 + i)])) }
        }
        return seconds * 1_000_000 / Double(edits)
    }

    /// Times `timing` after the short and the long history and reports both and their ratio
    /// against `target` (`KEY_short…`, `KEY_long…`, `KEY_ratio`).
    private func compare(into r: inout SectionReport, what: String, unit: String, key: String, figureSuffix: String, target: Double,
                         timing: (Int) throws -> Double) throws {
        let shortMicros = try timing(short), longMicros = try timing(long)
        let ratio = longMicros / shortMicros
        for (n, micros) in [(short, shortMicros), (long, longMicros)] {
            r.line("\(what) after \(grouped(n)) writes: \(fixed(micros, 1)) µs per \(unit) (\(edits) of them)")
        }
        r.line("ratio \(fixed(ratio, 2))× (target ≤ \(fixed(target, 0))×)")
        r.figure("\(key)_short\(figureSuffix)", shortMicros, digits: 1)
        r.figure("\(key)_long\(figureSuffix)", longMicros, digits: 1)
        r.figure("\(key)_ratio", ratio, digits: 2)
        r.summary.append(SummaryRow(what: "\(what) after \(grouped(long)) ops on its customer", siyu: "\(fixed(longMicros, 1)) µs",
                                    baseline: "\(fixed(shortMicros, 1)) µs after \(grouped(short))", ratio: "\(fixed(ratio, 2))×",
                                    target: "≤ \(fixed(target, 0))×", met: ratio <= target))
    }

    /// Builds a replica whose customer's phone has `history` chained writes (sent by a peer as one
    /// change set, each write naming the one before), then times `edits` local edits of it.
    private func microsPerEdit(history: Int) throws -> Double {
        let path = directory.path("history-\(history).db")
        let base: UInt64 = 1_764_000_000_000
        var wall = base + UInt64(history) + 1_000
        let replica = try Replica(path: path, options: ReplicaOptions(node: "hq", role: .hq, wallClock: { wall }))
        defer { replica.close() }
        try replica.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        var ops: [Op] = []
        var previous: [Stamp] = []
        for i in 0..<history {
            let stamp = Stamp(hlc: HLC(millis: base + UInt64(i), logical: 0), node: "crm")
            ops.append(Op(stamp: stamp, seq: UInt64(i + 1), role: .hq, author: "system",
                          body: .write(Target(.customer, "c1"), field: "phone", value: .text("138\(String(format: "%08d", i))"), overwrites: previous)))
            previous = [stamp]
        }
        try replica.apply(ChangeSet(ops: ops))
        try replica.editCustomer("c1", ["phone": .text("warm-up")], by: "zhaolei")   // the state is now cached
        let seconds = try seconds {
            for i in 0..<edits {
                wall += 1
                try replica.editCustomer("c1", ["phone": .text("139\(String(format: "%08d", i))")], by: "zhaolei")
            }
        }
        return seconds * 1_000_000 / Double(edits)
    }
}
