// The convergence property test's generator and checks, shared by the property test
// (Tests/SiyuStoreTests/ConvergencePropertyTests.swift) and the simulator (Tests/SiyuSimulationTests),
// so both state "no edit lost" and the merge invariants in exactly the same words.
import Foundation
import Testing
import SiyuCore
import SiyuStore

/// What the generator did that the checks need: how many edits succeeded, and, for each payment,
/// the lines its payer held when it paid.
public final class EditJournal {
    public init() {}
    public var edits = 0
    /// Per order, one entry per payment: the payer's order lines at the moment it paid.
    public var paidLines: [String: [[[String: Value]]]] = [:]
}

/// Random edits of every kind over a small universe of ids, so that they collide often.
public enum RandomEdit {
    public static let customers = ["c0", "c1", "c2", "c3"]
    public static let tags = ["silver", "gold", "platinum", "tea", "coffee", "cake", "ghost"]
    public static let chats = ["g0", "g1"]
    public static let members = ["m0", "m1", "m2", "m3", "m4"]
    public static let orders = ["o0", "o1"]
    public static let lines = ["l0", "l1", "l2"]
    public static let staff = ["chenjing", "liuyang", "wangfang"]

    /// Makes one edit that succeeds: a random edit the replica refuses (say, a tag on a deleted
    /// customer) or that changes nothing is replaced by another, up to 30 tries; then a group notice, which always succeeds
    /// (the groups are never deleted). So every seed makes as many edits as its steps ask for.
    public static func performOne(on r: Replica, rng: inout SeededRandom, journal: EditJournal) throws {
        for _ in 0..<30 {
            let before = try r.versionVector()[r.node]
            // An edit that is refused, or that changes nothing (re-adding a present tag), does not count.
            if (try? perform(on: r, rng: &rng, journal: journal)) != nil, try r.versionVector()[r.node] > before {
                journal.edits += 1
                return
            }
        }
        // (A simulator's node may edit before it has pulled HQ's group chats: then nothing is made.)
        if (try? r.editGroupChat(chats[0], ["notice": .text("notice \(journal.edits + 1)")], by: staff[0])) != nil { journal.edits += 1 }
    }

    public static func perform(on r: Replica, rng: inout SeededRandom, journal: EditJournal) throws {
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
public enum NoEditLost {
    /// `instances`: the instances to check (nil: the generator's customers, group chats and orders).
    public static func check(_ r: Replica, seed: UInt64, instances: [InstanceRef]? = nil) throws {
        let losers = Set(try r.conflicts().map(\.loser.stamp))
        let all = instances ?? [InstanceKind.customer, .groupChat, .order].flatMap { kind in ids(kind).map { InstanceRef(kind, $0) } }
        for instance in all {
            let state = try r.state(of: instance)
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

    public static func ids(_ kind: InstanceKind) -> [String] {
        switch kind {
        case .customer: return RandomEdit.customers
        case .groupChat: return RandomEdit.chats
        default: return RandomEdit.orders
        }
    }
}
/// Checks of the merge's outcome that the property test runs on a converged replica, each stated
/// from the ops and the generator's journal rather than from the merge code.
public enum MergeInvariants {
    /// An order paid once holds exactly the lines its payer held when it paid: line edits the payer
    /// had not seen — concurrent, made after, or held back by a gap — are not applied. (Orders paid
    /// concurrently by two replicas hold the merge of both views, which has no simpler statement;
    /// they are skipped.) Returns how many orders were checked.
    public static func paidOrdersHoldWhatTheirPayerSaw(_ r: Replica, journal: EditJournal, seed: UInt64) throws -> Int {
        var checked = 0
        for (order, payments) in journal.paidLines.sorted(by: { $0.key < $1.key }) where payments.count == 1 {
            let lines = try r.rows(of: .orderLines, where: "order_id", equals: order)
            #expect(lines == payments[0], "seed \(seed): order \(order) holds \(lines), its payer saw \(payments[0])")
            checked += 1
        }
        return checked
    }

    /// A closed field or exclusive-group conflict whose latest resolution is still what is shown
    /// records that resolution, and its state says what is shown: acknowledged when the shown value
    /// is the entry's winner, overridden otherwise. A resolution of an entry is a write (or an add
    /// in the group) that named both of its sides: one that saw the loser but not the winner did not
    /// resolve that conflict. Returns how many entries were checked.
    public static func closedConflictsAgreeWithTheValueShown(_ r: Replica, seed: UInt64) throws -> Int {
        var opsByInstance: [InstanceRef: [Op]] = [:]
        for op in try r.changeSet(since: VersionVector()).ops { opsByInstance[op.instance, default: []].append(op) }
        var groupOfTag: [String: String] = [:]
        for row in try r.rows(of: .tags) {
            if let tag = row["tag_id"]?.textValue, let group = row["group_id"]?.textValue { groupOfTag[tag] = group }
        }
        var checked = 0
        for entry in try r.conflicts() where entry.state != .open {
            let ops = opsByInstance[entry.instance] ?? []
            let state = try r.state(of: entry.instance)
            switch entry.rule {
            case .lastWriterWins:
                let resolvers = ops.filter {
                    if case let .write(t, f, _, over) = $0.body {
                        return t == entry.target && f == entry.field && over.contains(entry.loser.stamp)
                            && entry.winner.map { over.contains($0.stamp) } == true
                    }
                    return false
                }
                guard let latest = resolvers.max(by: { $0.stamp < $1.stamp }),
                      let shown = state.registers[FieldKey(entry.target, entry.field)]?.winner,
                      shown.stamp == latest.stamp else { continue }
                #expect(entry.closedBy?.stamp == latest.stamp, "seed \(seed): \(entry.id) is closed by \(String(describing: entry.closedBy?.stamp)), not by the latest resolution \(latest.stamp)")
                #expect((entry.state == .acknowledged) == (shown.value == entry.winner?.value),
                        "seed \(seed): \(entry.id) is \(entry.state) but shows \(shown.value) (winner \(String(describing: entry.winner?.value)))")
                checked += 1
            case .exclusiveTagGroup:
                guard let group = groupOfTag[entry.target.sub] else { continue }
                let resolvers = ops.filter {
                    guard case let .add(t, removes) = $0.body, t.entity == .customerTag else { return false }
                    return removes.contains(entry.loser.stamp) && entry.winner.map { removes.contains($0.stamp) } == true
                }
                let shownTags = try r.rows(of: .customerTags, where: "customer_id", equals: entry.target.id)
                    .compactMap { $0["tag_id"]?.textValue }.filter { groupOfTag[$0] == group }
                guard let latest = resolvers.max(by: { $0.stamp < $1.stamp }), shownTags.count == 1,
                      let shown = state.elements[Target(.customerTag, entry.target.id, shownTags[0])]?.latest,
                      shown.stamp == latest.stamp else { continue }
                #expect(entry.closedBy?.stamp == latest.stamp, "seed \(seed): \(entry.id) is closed by \(String(describing: entry.closedBy?.stamp)), not by the latest resolution \(latest.stamp)")
                #expect((entry.state == .acknowledged) == (.text(shownTags[0]) == entry.winner?.value),
                        "seed \(seed): \(entry.id) is \(entry.state) but shows \(shownTags[0]) (winner \(String(describing: entry.winner?.value)))")
                checked += 1
            default:
                continue
            }
        }
        return checked
    }
}
