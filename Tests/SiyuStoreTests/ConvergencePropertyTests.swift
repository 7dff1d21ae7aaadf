import Foundation
import Testing
import SiyuCore
import SiyuStore

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

/// What the generator did that the checks need: how many edits succeeded, and, for each payment,
/// the lines its payer held when it paid.
final class EditJournal {
    var edits = 0
    /// Per order, one entry per payment: the payer's order lines at the moment it paid.
    var paidLines: [String: [[[String: Value]]]] = [:]
}

/// Random edits of every kind over a small universe of ids, so that they collide often.
enum RandomEdit {
    static let customers = ["c0", "c1", "c2", "c3"]
    static let tags = ["silver", "gold", "platinum", "tea", "coffee", "cake", "ghost"]
    static let chats = ["g0", "g1"]
    static let members = ["m0", "m1", "m2", "m3", "m4"]
    static let orders = ["o0", "o1"]
    static let lines = ["l0", "l1", "l2"]
    static let staff = ["chenjing", "liuyang", "wangfang"]

    /// Makes one edit that succeeds: a random edit the replica refuses (say, a tag on a deleted
    /// customer) or that changes nothing is replaced by another, up to 30 tries; then a group notice, which always succeeds
    /// (the groups are never deleted). So every seed makes as many edits as its steps ask for.
    static func performOne(on r: Replica, rng: inout SeededRandom, journal: EditJournal) throws {
        for _ in 0..<30 {
            let before = try r.versionVector()[r.node]
            // An edit that is refused, or that changes nothing (re-adding a present tag), does not count.
            if (try? perform(on: r, rng: &rng, journal: journal)) != nil, try r.versionVector()[r.node] > before {
                journal.edits += 1
                return
            }
        }
        journal.edits += 1
        try r.editGroupChat(chats[0], ["notice": .text("notice \(journal.edits)")], by: staff[0])
    }

    static func perform(on r: Replica, rng: inout SeededRandom, journal: EditJournal) throws {
        let by = staff.randomElement(using: &rng)!
        let cust = customers.randomElement(using: &rng)!
        let text = ["林", "周", "王", "陈", "A", "B"].randomElement(using: &rng)! + String(Int.random(in: 0..<3, using: &rng))
        switch Int.random(in: 0..<26, using: &rng) {
        case 0: try r.createCustomer(cust, ["name": .text(text), "owner_store": .text(r.node)], by: by)
        case 1, 2: try r.editCustomer(cust, [["name", "phone", "unionid"].randomElement(using: &rng)!: .text(text)], by: by)
        case 3: try r.setFollowRelation(customer: cust, userid: by, ["remark": .text(text), "add_way": .int(1)], by: by)
        case 4, 5, 6: try r.addTag(tags.randomElement(using: &rng)!, to: cust, by: by)
        case 7, 8: try r.removeTag(tags.randomElement(using: &rng)!, from: cust, by: by)
        case 9:
            if r.role == .hq {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: try r.deleteTag(["cake", "platinum"].randomElement(using: &rng)!)
                case 1: try r.defineTag("ghost", group: "pref", name: "ghost\(text)")
                default: try r.defineTagGroup("pref", name: "消费偏好", exclusive: Bool.random(using: &rng))
                }
            } else {
                try r.defineTag("x", group: "pref", name: "x")   // refused: stores do not write the library
            }
        case 10: try r.createGroupChat(chats.randomElement(using: &rng)!, ["name": .text(text), "capacity": .int(3)], by: by)
        case 11: try r.editGroupChat(chats.randomElement(using: &rng)!, ["notice": .text(text)], by: by)
        case 12, 13: try r.addMember(members.randomElement(using: &rng)!, to: chats.randomElement(using: &rng)!,
                                     ["nickname": .text(text), "join_scene": .int(1)], by: by)
        case 14: try r.removeMember(members.randomElement(using: &rng)!, from: chats.randomElement(using: &rng)!, by: by)
        case 15: try r.createOrder(orders.randomElement(using: &rng)!, ["customer_id": .text(cust), "store_id": .text(r.node)], by: by)
        case 16: try r.editOrder(orders.randomElement(using: &rng)!, [["address", "note"].randomElement(using: &rng)!: .text(text)], by: by)
        case 17, 18: try r.setOrderLine(lines.randomElement(using: &rng)!, of: orders.randomElement(using: &rng)!,
                                        ["sku": .text(text), "qty": .int(Int64.random(in: 1...5, using: &rng))], by: by)
        case 19: try r.removeOrderLine(lines.randomElement(using: &rng)!, of: orders.randomElement(using: &rng)!, by: by)
        case 20:
            let order = orders.randomElement(using: &rng)!
            let before = try r.state(of: InstanceRef(.order, order)).status ?? .draft
            let next = OrderStatus.allCases.randomElement(using: &rng)!
            try r.moveOrder(order, to: next, by: by)
            if !before.isPaidOrLater && next.isPaidOrLater {
                journal.paidLines[order, default: []].append(try r.rows(of: .orderLines, where: "order_id", equals: order))
            }
        case 21:
            if r.role == .hq { try r.redeemPoints(Int64.random(in: 1...30, using: &rng), from: cust, by: by) }
            else { try r.awardPoints(Int64.random(in: 1...30, using: &rng), to: cust, by: by) }
        case 22: if Int.random(in: 0..<4, using: &rng) == 0 { try r.deleteCustomer(cust, by: by) }
        default:
            let open = try r.conflicts(state: .open)
            guard let pick = open.randomElement(using: &rng) else { return }
            if Bool.random(using: &rng) { try r.acknowledgeConflict(pick.id, by: by) }
            else { try r.overrideConflict(pick.id, by: by) }
        }
    }
}

/// "No edit lost": every field write is the current value, was overwritten by a write that named
/// it, equals the current value, or sits in the conflict log as a loser.
enum NoEditLost {
    static func check(_ r: Replica, seed: UInt64) throws {
        let losers = Set(try r.conflicts().map(\.loser.stamp))
        for kind in [InstanceKind.customer, .groupChat, .order] {
            for id in ids(kind) {
                let state = try r.state(of: InstanceRef(kind, id))
                var named = Set<Stamp>()
                var writes: [(FieldKey, Stamp, Value)] = []
                for (key, _) in state.registers {
                    for h in try r.history(of: key.target, field: key.field) {
                        if case let .write(_, _, v, over) = h.op.body { named.formUnion(over); writes.append((key, h.op.stamp, v)) }
                    }
                }
                for (key, stamp, value) in writes {
                    let current = state.registers[key]?.winner
                    let accounted = current?.stamp == stamp || named.contains(stamp) || current?.value == value || losers.contains(stamp)
                    #expect(accounted, "seed \(seed): write \(stamp) of \(key.target).\(key.field) = \(value) is lost")
                }
            }
        }
    }

    static func ids(_ kind: InstanceKind) -> [String] {
        switch kind {
        case .customer: return RandomEdit.customers
        case .groupChat: return RandomEdit.chats
        default: return RandomEdit.orders
        }
    }
}
