import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuPropertySupport

/// Property: replicas making random edits of every kind and exchanging change sets in random
/// orders — whole, or as random subsets of their ops shuffled out of origin order (gaps), late and
/// duplicated — converge to equal digests and equal conflict logs; no edit is lost; every paid
/// order holds exactly the lines its payer saw; a closed conflict's record agrees with the value
/// shown. Each case is one seed; a failure names its seed, and rerunning that seed reproduces it
/// exactly.
@Suite struct ConvergencePropertyTests {
    /// 300 seeds in `swift test`; `tools/soak/run.sh` sets SIYU_PROPERTY_SEEDS (a count, or
    /// FIRST-LAST) for long runs.
    static let seeds: [UInt64] = {
        let spec = ProcessInfo.processInfo.environment["SIYU_PROPERTY_SEEDS"] ?? "300"
        let parts = spec.split(separator: "-").compactMap { UInt64($0) }
        if parts.count == 2, parts[0] <= parts[1] { return Array(parts[0]...parts[1]) }
        return Array(0..<(parts.first ?? 300))
    }()

    @Test(arguments: seeds)
    func replicasConverge(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let storeCount = Int.random(in: 2...4, using: &rng)
        var nodes: [(String, Role)] = [("hq", .hq)]
        if Bool.random(using: &rng) { nodes.append(("crm", .hq)) }   // a second HQ writer (the CRM)
        for i in 0..<storeCount { nodes.append(("s\(i)", .store)) }
        let c = try Cluster(nodes)
        for (n, _) in nodes { c.skew[n] = Int64.random(in: -2000...2000, using: &rng) }
        let names = nodes.map(\.0)
        var pending: [(ChangeSet, String)] = []
        let journal = EditJournal()
        var gapped = 0

        // HQ seeds a small library so edits have something to act on.
        let hq = c["hq"]
        try hq.defineTagGroup("level", name: "会员等级", exclusive: true)
        for t in ["silver", "gold", "platinum"] { try hq.defineTag(t, group: "level", name: t) }
        try hq.defineTagGroup("pref", name: "消费偏好")
        for t in ["tea", "coffee", "cake"] { try hq.defineTag(t, group: "pref", name: t) }
        for cust in RandomEdit.customers.dropLast() { try hq.createCustomer(cust, ["name": .text(cust)], by: "zhaolei") }
        for chat in RandomEdit.chats { try hq.createGroupChat(chat, ["name": .text(chat), "capacity": .int(3)], by: "zhaolei") }
        for order in RandomEdit.orders { try hq.createOrder(order, ["customer_id": .text("c0")], by: "zhaolei") }
        try c.syncAll()

        let steps = Int.random(in: 60...100, using: &rng)
        for _ in 0..<steps {
            c.clock.advance(UInt64.random(in: 0...30, using: &rng))
            let roll = Int.random(in: 0..<100, using: &rng)
            if roll < 62 {
                try RandomEdit.performOne(on: c[names.randomElement(using: &rng)!], rng: &rng, journal: journal)
            } else if roll < 85 {
                let from = names.randomElement(using: &rng)!, to = names.randomElement(using: &rng)!
                guard from != to else { continue }
                var cs = try c[from].changeSet(since: try c[to].versionVector())
                if Bool.random(using: &rng) {
                    // A random subset, out of origin order: the receiver is left with gaps.
                    let keep = Double.random(in: 0.2...0.9, using: &rng)
                    cs.ops = cs.ops.filter { _ in Double.random(in: 0..<1, using: &rng) < keep }
                    cs.ops.shuffle(using: &rng)
                    gapped += 1
                }
                if Bool.random(using: &rng) { try c[to].apply(cs) } else { pending.append((cs, to)) }
                if Int.random(in: 0..<4, using: &rng) == 0 { pending.append((cs, to)) }   // duplicate later
            } else if !pending.isEmpty {
                let i = Int.random(in: 0..<pending.count, using: &rng)
                let (cs, to) = pending.remove(at: i)
                try c[to].apply(cs)                                             // late, reordered
            }
        }
        pending.shuffle(using: &rng)
        for (cs, to) in pending { try c[to].apply(cs) }
        try c.syncAll()

        let digests = try c.digests()
        #expect(Set(digests.values).count == 1, "seed \(seed): digests differ \(digests)")
        let logs = try names.map { try c[$0].conflicts().map { "\($0.id):\($0.state.rawValue)" }.sorted() }
        #expect(logs.allSatisfy { $0 == logs[0] }, "seed \(seed): conflict logs differ")
        let r = c[names[0]]
        try NoEditLost.check(r, seed: seed)
        let paidChecked = try MergeInvariants.paidOrdersHoldWhatTheirPayerSaw(r, journal: journal, seed: seed)
        let closedChecked = try MergeInvariants.closedConflictsAgreeWithTheValueShown(r, seed: seed)
        if ProcessInfo.processInfo.environment["SIYU_PROPERTY_STATS"] != nil {
            let rules = try c["hq"].conflicts().map(\.rule.rawValue)
            print("seed \(seed): \(journal.edits) edits, \(gapped) gapped deliveries, \(paidChecked) paid orders and "
                  + "\(closedChecked) current resolutions checked, conflicts \(Dictionary(grouping: rules, by: { $0 }).mapValues(\.count))")
        }
        // Incremental merging (diffed row writes) must equal recomputing everything from the op log.
        for name in names {
            let incremental = try c[name].digest()
            try c[name].rebuild()
            #expect(try c[name].digest() == incremental, "seed \(seed): \(name)'s tables differ from a rebuild")
        }
        let counts = try names.map { try c[$0].opCounts().total }
        #expect(Set(counts).count == 1, "seed \(seed): op counts differ \(counts)")
    }
}
