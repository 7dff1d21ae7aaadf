// The hub's log compaction (issue 20): the hub's bytes per store per month before and after
// `siyu-hub compact`, on a clerk's month of edits.

import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore
import SiyuWire

/// A hub holding `stores` stores' month: each day each store's clerks make `opsPerDay` ops on its
/// `customersPerStore` customers — a mix the bench states (`mix`), not measured from a shop — all
/// pushed through `acceptPush` in PUSHes of 10, every node's cursor then at the head. Measured:
/// the size of a `VACUUM INTO` copy of the hub's file (what its data takes) before and after one
/// `compactLog`, per store and month, and the pages in use; the compaction's time; that the state
/// digest did not change.
struct CompactionBench {
    let stores: Int
    let days: Int
    let opsPerDay: Int
    let customersPerStore: Int
    let directory: TemporaryDirectory

    /// The clerk's mix, in per cent of a day's ops: tags added, tags removed (of those the
    /// customer holds), a follow-up note written again (the customer's `unionid`-free text fields:
    /// `name` and `phone` stand for the remark and description WeCom keeps), points awarded.
    static let mix = (addTag: 35, removeTag: 20, rewrite: 30, points: 15)

    func run() throws -> SectionReport {
        var r = SectionReport("hub log compaction: a clerk's month, before and after siyu-hub compact")
        let path = directory.path("compaction-hub.db")
        var wall = UInt64(Date().timeIntervalSince1970 * 1000)
        let hub = try Replica(path: path, options: ReplicaOptions(node: "hub", role: .hq, wallClock: { wall }))
        defer { hub.close() }
        try hub.registerNode("hq", role: .hq, secret: Array("secret-of-hq".utf8), iterations: 8)
        for s in 0..<stores { try hub.registerNode("s\(s)", role: .store, store: "s\(s)", newStore: true, secret: Array("secret-of-s\(s)".utf8), iterations: 8) }
        // HQ's setup: the stores, a tag library of 20 tags, each store's customers.
        var hq = OpSynthesizer(origin: "hq", role: .hq, author: "zhaolei", clock: HLC(millis: wall, logical: 0))
        var setup: [Op] = [hq.make(.write(Target(.tagGroup, "g"), field: "name", value: .text("兴趣"), overwrites: []))]
        let tags = (0..<20).map { "t\($0)" }
        for t in tags {
            setup.append(hq.make(.write(Target(.tag, t), field: "group_id", value: .text("g"), overwrites: [])))
            setup.append(hq.make(.write(Target(.tag, t), field: "name", value: .text("标签\(t)"), overwrites: [])))
        }
        for s in 0..<stores {
            setup.append(hq.make(.write(Target(.store, "s\(s)"), field: "name", value: .text("门店\(s)"), overwrites: [])))
            setup.append(hq.make(.write(Target(.staff, "clerk-s\(s)"), field: "store_id", value: .text("s\(s)"), overwrites: [])))
            for c in 0..<customersPerStore {
                setup += hq.createCustomer("c\(s)_\(c)", ["name": .text("客户\(c)"), "owner_store": .text("s\(s)")])
            }
        }
        for chunk in stride(from: 0, to: setup.count, by: 500) {
            try push(hub, "hq", Array(setup[chunk..<min(chunk + 500, setup.count)]))
        }
        // The month: per store, per customer, the tags held (add stamps) and each field's last write.
        var random = SeededRandom(seed: 20)
        var clerks = (0..<stores).map { OpSynthesizer(origin: "s\($0)", role: .store, author: "clerk-s\($0)", clock: HLC(millis: wall, logical: 0)) }
        var held: [String: [String: [Stamp]]] = [:]       // customer → tag → live add stamps
        var heads: [String: Stamp] = [:]                   // "customer field" → last write
        for op in setup { if case .write = op.body { heads["\(op.body.target.id) \(fieldName(op))"] = op.stamp } }
        var monthOps = 0
        let started = Date()
        for _ in 0..<days {
            for s in 0..<stores {
                var pending: [Op] = []
                for _ in 0..<opsPerDay {
                    let customer = "c\(s)_\(Int.random(in: 0..<customersPerStore, using: &random))"
                    let roll = Int.random(in: 0..<100, using: &random)
                    let op: Op
                    if roll < Self.mix.addTag {
                        let tag = tags[Int.random(in: 0..<tags.count, using: &random)]
                        op = clerks[s].addTag(tag, to: customer)
                        held[customer, default: [:]][tag, default: []].append(op.stamp)
                    } else if roll < Self.mix.addTag + Self.mix.removeTag, let (tag, adds) = held[customer]?.first(where: { !$0.value.isEmpty }) {
                        op = clerks[s].make(.remove(Target(.customerTag, customer, tag), removes: adds))
                        held[customer]?[tag] = []
                    } else if roll < Self.mix.addTag + Self.mix.removeTag + Self.mix.rewrite {
                        let field = Bool.random(using: &random) ? "name" : "phone"
                        let key = "\(customer) \(field)"
                        op = clerks[s].make(.write(Target(.customer, customer), field: field, value: .text("跟进\(monthOps)"),
                                                   overwrites: heads[key].map { [$0] } ?? []))
                        heads[key] = op.stamp
                    } else {
                        op = clerks[s].make(.points(customerID: customer, delta: Int64(1 + Int.random(in: 0..<20, using: &random))))
                    }
                    pending.append(op)
                    if pending.count == 10 {
                        try push(hub, "s\(s)", pending)
                        pending = []
                    }
                }
                if !pending.isEmpty { try push(hub, "s\(s)", pending) }
                monthOps += opsPerDay
            }
            wall += 86_400_000
        }
        let built = Date().timeIntervalSince(started)
        let head = try hub.logHead()
        var cursors = ["hq": head]
        for s in 0..<stores { cursors["s\(s)"] = head }
        try hub.recordCursors(cursors)
        let before = try bytes(hub, copy: directory.path("compaction-before.db"))
        let digestBefore = try hub.digest()
        let opsBefore = try hub.opCounts().total
        let clock = ContinuousClock()
        var compacted: Result<CompactionReport, any Error>?
        let took = clock.measure { compacted = Result { try hub.compactLog() } }
        guard let report = try compacted?.get() else { throw BenchError("the compaction did not run") }
        let after = try bytes(hub, copy: directory.path("compaction-after.db"))
        let same = try hub.digest() == digestBefore
        let perStoreMonth = { (b: Int) in Int(Double(b) / Double(stores) / (Double(days) / 30)) }
        r.line("workload      \(grouped(stores)) stores × \(grouped(days)) days × \(grouped(opsPerDay)) ops a day (\(grouped(monthOps)) ops; mix: \(Self.mix.addTag) % tag adds, \(Self.mix.removeTag) % tag removes, \(Self.mix.rewrite) % a field written again, \(Self.mix.points) % points), \(grouped(customersPerStore)) customers a store; built in \(fixed(built, 1)) s")
        r.line("before        \(grouped(opsBefore)) ops held; the file vacuumed \(mb(before.vacuumed)) (\(grouped(perStoreMonth(before.vacuumed))) B per store and month, HQ's setup included); in use now \(mb(before.live))")
        r.line("compact       \(grouped(report.opsDropped)) ops dropped (\(fixed(100 * Double(report.opsDropped) / Double(max(1, opsBefore)), 1)) %) in \(fixed(seconds(took), 2)) s; \(grouped(report.instancesExamined)) instances examined, \(report.instancesKeptByCheck) kept whole by the check; state digest \(same ? "unchanged" : "CHANGED")")
        r.line("after         the file vacuumed \(mb(after.vacuumed)) (\(grouped(perStoreMonth(after.vacuumed))) B per store and month, \(fixed(100 * (1 - Double(after.vacuumed) / Double(max(1, before.vacuumed))), 1)) % less); in use now \(mb(after.live)) (freed pages are reused; the file shrinks only with VACUUM)")
        r.line("not dropped by this compaction: tag adds and removes, points (a counter), the writes that decide a home (docs/SCALING.md)")
        r.figure("compaction_ops", monthOps)
        r.figure("compaction_ops_dropped", report.opsDropped)
        r.figure("compaction_bytes_per_store_month_before", perStoreMonth(before.vacuumed))
        r.figure("compaction_bytes_per_store_month_after", perStoreMonth(after.vacuumed))
        r.figure("compaction_seconds", seconds(took), digits: 3)
        r.figure("compaction_digest_unchanged", same ? 1 : 0)
        r.summary.append(SummaryRow(what: "hub bytes per store and month, compacted", siyu: "\(grouped(perStoreMonth(after.vacuumed))) B",
                                    baseline: "\(grouped(perStoreMonth(before.vacuumed))) B before", ratio: "\(fixed(Double(after.vacuumed) / Double(max(1, before.vacuumed)), 2))×",
                                    target: "—", met: nil))
        return r
    }

    /// A PUSH that must be stored whole.
    private func push(_ hub: Replica, _ node: NodeID, _ ops: [Op]) throws {
        guard case let .stored(_, newOps) = try hub.acceptPush(from: node, ChangeSet(ops: ops)), newOps == ops.count else {
            throw BenchError("the hub did not store a PUSH of \(node): \(try hub.acceptPush(from: node, ChangeSet(ops: ops)))")
        }
    }

    private func fieldName(_ op: Op) -> String {
        if case let .write(_, field, _, _) = op.body { return field }
        return ""
    }

    /// The live bytes of the replica's file (pages in use) and the size of a vacuumed copy.
    private func bytes(_ replica: Replica, copy: String) throws -> (live: Int, vacuumed: Int) {
        _ = try replica.checkpointPassively()
        let db = try Database(path: replica.path, mode: .readOnly)
        defer { db.close() }
        let pages = try db.prepare("PRAGMA page_count").scalar()?.int64Value ?? 0
        let free = try db.prepare("PRAGMA freelist_count").scalar()?.int64Value ?? 0
        let size = try db.prepare("PRAGMA page_size").scalar()?.int64Value ?? 4096
        try? FileManager.default.removeItem(atPath: copy)
        try db.execute("VACUUM INTO '\(copy)'")
        let vacuumed = (try FileManager.default.attributesOfItem(atPath: copy)[.size] as? NSNumber)?.intValue ?? 0
        try? FileManager.default.removeItem(atPath: copy)
        return (Int((pages - free) * size), vacuumed)
    }

    private func mb(_ bytes: Int) -> String { "\(fixed(Double(bytes) / 1_048_576, 1)) MB" }
    private func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}
