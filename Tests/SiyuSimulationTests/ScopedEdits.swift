import Foundation
import SiyuCore
import SiyuStore
import SiyuPropertySupport

/// The brand a simulation runs (issue 17): HQ and 4–6 stores, each store with two clerks, its
/// own customers, a group chat owned by one of its clerks and an order; HQ's staff member and two
/// customers of HQ alone. A store node is registered with its store (`add-node --store`), so its
/// scope is its own data (SPEC section 7, "Scope"); HQ's is everything.
struct Brand {
    static let hqStaff = "zhaolei"
    static let hqCustomers = ["c_hq_0", "c_hq_1"]
    static let tags = ["silver", "gold", "platinum", "tea", "coffee", "cake", "ghost"]
    static let texts = ["林", "周", "王", "陈", "A", "B"]
    let stores: [String]

    func clerks(of store: String) -> [String] { ["\(store)_a", "\(store)_b"] }
    var allStaff: [String] { [Brand.hqStaff] + stores.flatMap(clerks) }
    func customers(of store: String) -> [String] { (0..<3).map { "c_\(store)_\($0)" } }
    func chat(of store: String) -> String { "g_\(store)" }
    func order(of store: String) -> String { "o_\(store)" }
}

/// An edit that found nothing to edit (a store that has not pulled its customers yet).
struct NothingToEdit: Error {}

extension Simulation {
    /// HQ's starting library, stores, staff and instances, made offline before anything connects.
    func seedBrand(_ r: Replica) throws {
        try r.defineTagGroup("level", name: "会员等级", exclusive: true)
        for t in ["silver", "gold", "platinum"] { try r.defineTag(t, group: "level", name: t) }
        try r.defineTagGroup("pref", name: "消费偏好")
        for t in ["tea", "coffee", "cake"] { try r.defineTag(t, group: "pref", name: t) }
        try r.defineStaff(Brand.hqStaff, name: "赵磊", storeID: nil)
        for c in Brand.hqCustomers { try r.createCustomer(c, ["name": .text(c)], by: Brand.hqStaff) }
        for store in brand.stores {
            try r.defineStore(store, name: "门店 \(store)")
            for clerk in brand.clerks(of: store) { try r.defineStaff(clerk, name: clerk, storeID: store) }
            for c in brand.customers(of: store) { try r.createCustomer(c, ["name": .text(c), "owner_store": .text(store)], by: Brand.hqStaff) }
            try r.createGroupChat(brand.chat(of: store), ["name": .text("群 \(store)"), "owner": .text(brand.clerks(of: store)[0]), "capacity": .int(3)],
                                  by: Brand.hqStaff)
            try r.createOrder(brand.order(of: store), ["customer_id": .text(brand.customers(of: store)[0]), "store_id": .text(store)], by: Brand.hqStaff)
        }
        knownCustomers = Brand.hqCustomers + brand.stores.flatMap(brand.customers)
    }

    /// One edit at node `n` that numbers an op, as `siyu` on the node's file would make it: a
    /// random edit its replica refuses (outside its rights, or nothing to edit) is replaced by
    /// another, up to 30 tries.
    func scopedEdit(_ n: SimNode, _ r: Replica) throws {
        for _ in 0..<30 {
            let before = try r.lastIssuedSeq()
            let made = (try? (n.store.map { try storeEdit(n, r, store: $0) } ?? hqEdit(n, r))) != nil
            if try r.lastIssuedSeq() > before {
                if made { journal.edits += 1 }
                return
            }
        }
    }

    private func ids(_ r: Replica, _ table: Table, _ column: String, _ keep: ([String: Value]) -> Bool = { _ in true }) throws -> [String] {
        try r.rows(of: table).filter(keep).compactMap { $0[column]?.textValue }.sorted()
    }

    private func pick(_ xs: [String]) throws -> String {
        guard let x = xs.randomElement(using: &rng) else { throw NothingToEdit() }
        return x
    }

    private static func isLive(_ row: [String: Value]) -> Bool { row["deleted"]?.intValue ?? 0 == 0 }

    /// A store's edit: its own customers (as its replica holds them: those it believes are its
    /// own, also while it has not learned of a transfer), its group chats and orders, new ones of
    /// each, by its own clerks; now and then an edit of a customer it does not hold, which its
    /// own rights check must refuse without numbering an op.
    private func storeEdit(_ n: SimNode, _ r: Replica, store: String) throws {
        let by = brand.clerks(of: store).randomElement(using: &rng)!
        let customers = try ids(r, .customers, "customer_id") { $0["owner_store"] == .text(store) && Simulation.isLive($0) }
        let text = Brand.texts.randomElement(using: &rng)! + String(Int.random(in: 0..<3, using: &rng))
        switch Int.random(in: 0..<24, using: &rng) {
        case 0:
            n.created += 1
            let id = "c_\(store)_n\(n.created)"
            try r.createCustomer(id, ["name": .text(text), "phone": .text("139\(n.created)")], by: by)
            knownCustomers.append(id)
        case 1, 2, 3, 4: try r.editCustomer(try pick(customers), [["name", "phone", "unionid"].randomElement(using: &rng)!: .text(text)], by: by)
        case 5: try r.setFollowRelation(customer: try pick(customers), userid: by, ["remark": .text(text), "add_way": .int(1)], by: by)
        case 6, 7, 8: try r.addTag(Brand.tags.randomElement(using: &rng)!, to: try pick(customers), by: by)
        case 9: try r.removeTag(Brand.tags.randomElement(using: &rng)!, from: try pick(customers), by: by)
        case 10: try r.awardPoints(Int64.random(in: 1...30, using: &rng), to: try pick(customers), by: by)
        case 11:
            n.created += 1
            try r.createGroupChat("g_\(store)_n\(n.created)", ["name": .text(text), "owner": .text(by), "capacity": .int(3)], by: by)
        case 12: try r.editGroupChat(try pick(try ids(r, .groupChats, "chat_id")), ["notice": .text(text)], by: by)
        case 13: try r.addMember(RandomEdit.members.randomElement(using: &rng)!, to: try pick(try ids(r, .groupChats, "chat_id")),
                                 ["nickname": .text(text), "join_scene": .int(1)], by: by)
        case 14: try r.removeMember(RandomEdit.members.randomElement(using: &rng)!, from: try pick(try ids(r, .groupChats, "chat_id")), by: by)
        case 15:
            n.created += 1
            try r.createOrder("o_\(store)_n\(n.created)", ["customer_id": .text(try pick(customers)), "store_id": .text(store)], by: by)
        case 16: try r.editOrder(try pick(try ids(r, .orders, "order_id")), [["address", "note"].randomElement(using: &rng)!: .text(text)], by: by)
        case 17, 18: try r.setOrderLine(RandomEdit.lines.randomElement(using: &rng)!, of: try pick(try ids(r, .orders, "order_id")),
                                        ["sku": .text(text), "qty": .int(Int64.random(in: 1...5, using: &rng))], by: by)
        case 19: try r.removeOrderLine(RandomEdit.lines.randomElement(using: &rng)!, of: try pick(try ids(r, .orders, "order_id")), by: by)
        case 20: try payOrMove(r, order: try pick(try ids(r, .orders, "order_id")), by: by)
        case 21:
            // A customer this store does not hold as its own: refused by its own check (or not found), nothing numbered.
            let held = try ids(r, .customers, "customer_id") { $0["owner_store"] == .text(store) }
            let foreign = try pick(knownCustomers.filter { !held.contains($0) })
            let before = try r.lastIssuedSeq()
            _ = try? r.editCustomer(foreign, ["phone": .text(text)], by: by)
            if try r.lastIssuedSeq() != before {
                problems.append("\(n.name) numbered an op on customer \(foreign), outside its scope, at its own edit")
            }
            throw NothingToEdit()
        default: try resolveConflict(r, by: by)
        }
    }

    /// HQ's edit: any customer, order or group chat, the tag library, points both ways, deletions,
    /// and transfers of customers between stores (at most twice per customer in a run, which lasts
    /// far less than WeCom's 90 days).
    private func hqEdit(_ n: SimNode, _ r: Replica) throws {
        let by = Int.random(in: 0..<4, using: &rng) == 0 ? brand.allStaff.randomElement(using: &rng)! : Brand.hqStaff
        let rows = try r.rows(of: .customers).filter(Simulation.isLive)
        let customers = rows.compactMap { $0["customer_id"]?.textValue }.sorted()
        let text = Brand.texts.randomElement(using: &rng)! + String(Int.random(in: 0..<3, using: &rng))
        switch Int.random(in: 0..<30, using: &rng) {
        case 0..<6:
            let c = try pick(customers.filter { transfers[$0, default: 0] < 2 })
            let from = rows.first { $0["customer_id"]?.textValue == c }?["owner_store"]?.textValue
            let to = try pick(brand.stores.filter { $0 != from })
            try r.transferCustomer(c, to: brand.clerks(of: to).randomElement(using: &rng)!, by: Brand.hqStaff)
            transfers[c, default: 0] += 1
            stats.transfers += 1
            note("hq: transfers \(c) from \(from ?? "HQ") to \(to)")
        case 6:
            n.created += 1
            let id = "c_hq_n\(n.created)"
            var fields: [String: Value] = ["name": .text(text)]
            if Bool.random(using: &rng) { fields["owner_store"] = .text(brand.stores.randomElement(using: &rng)!) }
            try r.createCustomer(id, fields, by: by)
            knownCustomers.append(id)
        case 7, 8, 9: try r.editCustomer(try pick(customers), [["name", "phone", "unionid"].randomElement(using: &rng)!: .text(text)], by: by)
        case 10: try r.setFollowRelation(customer: try pick(customers), userid: brand.allStaff.randomElement(using: &rng)!,
                                         ["remark": .text(text), "add_way": .int(1)], by: by)
        case 11, 12: try r.addTag(Brand.tags.randomElement(using: &rng)!, to: try pick(customers), by: by)
        case 13: try r.removeTag(Brand.tags.randomElement(using: &rng)!, from: try pick(customers), by: by)
        case 14:
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: try r.deleteTag(["cake", "platinum"].randomElement(using: &rng)!)
            case 1: try r.defineTag("ghost", group: "pref", name: "ghost\(text)")
            default: try r.defineTagGroup("pref", name: "消费偏好", exclusive: Bool.random(using: &rng))
            }
        case 15:
            if Bool.random(using: &rng) { try r.redeemPoints(Int64.random(in: 1...30, using: &rng), from: try pick(customers), by: by) }
            else { try r.awardPoints(Int64.random(in: 1...30, using: &rng), to: try pick(customers), by: by) }
        case 16: if Int.random(in: 0..<4, using: &rng) == 0 { try r.deleteCustomer(try pick(customers), by: by) }
        case 17: try r.editOrder(try pick(try ids(r, .orders, "order_id")), [["address", "note"].randomElement(using: &rng)!: .text(text)], by: by)
        case 18: try r.setOrderLine(RandomEdit.lines.randomElement(using: &rng)!, of: try pick(try ids(r, .orders, "order_id")),
                                    ["sku": .text(text), "qty": .int(Int64.random(in: 1...5, using: &rng))], by: by)
        case 19: try payOrMove(r, order: try pick(try ids(r, .orders, "order_id")), by: by)
        case 20: try r.editGroupChat(try pick(try ids(r, .groupChats, "chat_id")), ["notice": .text(text)], by: by)
        case 21: try r.addMember(RandomEdit.members.randomElement(using: &rng)!, to: try pick(try ids(r, .groupChats, "chat_id")),
                                 ["nickname": .text(text), "join_scene": .int(1)], by: by)
        default: try resolveConflict(r, by: by)
        }
    }

    /// A status move of an order; a payment records the lines its payer saw (the property test's journal).
    private func payOrMove(_ r: Replica, order: String, by: String) throws {
        let before = try r.state(of: InstanceRef(.order, order)).status ?? .draft
        let next = OrderStatus.allCases.randomElement(using: &rng)!
        try r.moveOrder(order, to: next, by: by)
        if !before.isPaidOrLater && next.isPaidOrLater {
            journal.paidLines[order, default: []].append(try r.rows(of: .orderLines, where: "order_id", equals: order))
        }
    }

    private func resolveConflict(_ r: Replica, by: String) throws {
        guard let pick = try r.conflicts(state: .open).randomElement(using: &rng) else { throw NothingToEdit() }
        if Bool.random(using: &rng) { try r.acknowledgeConflict(pick.id, by: by) } else { try r.overrideConflict(pick.id, by: by) }
    }

    /// An edit that the process dies in the middle of: a phone number of a customer the node
    /// holds as its own (any, for HQ), by one of its staff. Nil when it holds none.
    func crashingEdit(_ n: SimNode, _ r: Replica) throws -> (customer: String, by: String)? {
        if let store = n.store {
            let own = try ids(r, .customers, "customer_id") { $0["owner_store"] == .text(store) && Simulation.isLive($0) }
            guard let c = own.randomElement(using: &rng) else { return nil }
            return (c, brand.clerks(of: store).randomElement(using: &rng)!)
        }
        guard let c = try ids(r, .customers, "customer_id", Simulation.isLive).randomElement(using: &rng) else { return nil }
        return (c, Brand.hqStaff)
    }
}
