import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore
import SiyuWire

/// Section 4 — catch-up after a week offline: HQ holds N ops the store ("xihu") has not seen, all
/// in the store's scope, and the store pulls them.
///
/// HQ and the store share a base (the tag library and the store's customers). Then HQ and a second
/// device of the store ("xihu-2", the other clerks) edit those customers through the Replica API —
/// tag toggles, phone edits, follow-relation remarks and descriptions, points awards — and HQ receives
/// xihu-2's ops. Timed, from `hq.changeSet(since: store.versionVector())` to the last apply: split
/// into CHANGES messages filling frames to about 7/8 of the 1 MiB limit, encoded, read back through
/// a `FrameReader`, decoded and applied chunk by chunk (one transaction each); the time of each stage
/// is reported too. Anchor (target ≤ 3×): plain SQLite upserting the same rows (`SameRowsBaseline`:
/// per op the plain-table row it writes, with the values the store holds afterwards) in transactions
/// of the same sizes; the old baseline (as many `customer_tags` upserts) is kept as information. HQ holds exactly the store's scope, so the two digests must then be equal; the benchmark
/// fails if they are not.
struct CatchUpBench {
    let targetOps: Int
    let customerCount: Int
    let directory: TemporaryDirectory

    static let targetRatio = 3.0

    struct Outcome {
        var ops = 0, chunks = 0, bytes = 0
        var chunkSizes: [Int] = []
        var siyuSeconds = 0.0, plainSeconds = 0.0, sameRowsSeconds = 0.0
        var disk = DiskFigures(replicaBytes: 0, plainBytes: 0, ops: 0)
        var digestsEqual = false
        var stages = Stages()
    }

    /// Where the pipeline's time went.
    struct Stages {
        var extract = 0.0, encode = 0.0, decode = 0.0, apply = 0.0
    }

    func run() throws -> SectionReport {
        let hq = try Replica(path: directory.path("catchup-hq.db"), options: ReplicaOptions(node: "hq", role: .hq))
        let store = try Replica(path: directory.path("catchup-xihu.db"), options: ReplicaOptions(node: "xihu", role: .store))
        let colleague = try Replica(path: directory.path("catchup-xihu-2.db"), options: ReplicaOptions(node: "xihu-2", role: .store))
        defer { hq.close(); store.close(); colleague.close() }

        progress("catch-up: base of \(grouped(customerCount)) customers")
        let customers = CustomerIDs.weCom(customerCount, seed: 4)
        try defineBase(on: hq, customers: customers)
        let base = try hq.changeSet(since: VersionVector())
        try store.apply(base)
        try colleague.apply(base)

        progress("catch-up: HQ and xihu-2 make \(grouped(targetOps)) ops while the store is offline")
        let buildSeconds = try seconds { try makeWeekOfEdits(hq: hq, colleague: colleague, customers: customers) }
        try hq.apply(try colleague.changeSet(since: try hq.versionVector()))
        progress("catch-up: built in \(fixed(buildSeconds, 1)) s; the store catches up")

        let rowsBefore = try SameRowsBaseline.rows(of: store)
        var (outcome, ops) = try catchUp(store, from: hq)
        let plain = try PlainSQLite.open(directory.path("plain-catchup.db"), tables: [.customerTags], likeReplicaAt: hq.path)
        defer { plain.close() }
        outcome.plainSeconds = try plainUpserts(ops, into: plain, transactionSizes: outcome.chunkSizes)
        let steps = SameRowsBaseline.plan(ops, after: try SameRowsBaseline.rows(of: store))
        let sameRows = try SameRowsBaseline.database(directory.path("plain-catchup-rows.db"), likeReplicaAt: store.path, rows: rowsBefore)
        defer { sameRows.close() }
        outcome.sameRowsSeconds = try SameRowsBaseline.run(steps, into: sameRows, transactionSizes: outcome.chunkSizes)
        outcome.disk = try DiskFigures(of: store, plainAt: directory.path("plain-catchup-tables.db"))
        outcome.digestsEqual = try hq.digest() == store.digest()
        guard outcome.digestsEqual else {
            throw BenchError("catch-up: the store's digest differs from HQ's although HQ holds exactly the store's scope")
        }
        return report(outcome)
    }

    // MARK: Setup

    private func defineBase(on hq: Replica, customers: [String]) throws {
        try hq.defineTagGroup("pref", name: "消费偏好")
        for (i, tag) in WireSizeBench.preferenceTags.enumerated() { try hq.defineTag(tag, group: "pref", name: "偏好\(i)") }
        try hq.defineTagGroup("level", name: "会员等级", exclusive: true)
        for (i, tag) in WireSizeBench.levelTags.enumerated() { try hq.defineTag(tag, group: "level", name: "等级\(i)") }
        for (i, id) in customers.enumerated() {
            try hq.createCustomer(id, ["name": .text("客户\(i)"), "phone": .text("138\(String(format: "%08d", i))"),
                                       "owner_store": .text("xihu")], by: "zhaolei")
        }
    }

    /// One device's view of which tags its customers hold (each device sees only its own edits
    /// until they sync, and toggles from what it sees).
    private struct Device {
        let replica: Replica
        let staff: [String]
        var present = Set<[String]>()
        var made = 0
    }

    /// HQ makes 70% of the edits, xihu-2 30%: tag toggles 45%, phone edits 15%, follow-relation
    /// remarks 15%, remark + description 10% (two ops), points awards 15%. Values are unique, so
    /// every edit writes ops.
    private func makeWeekOfEdits(hq: Replica, colleague: Replica, customers: [String]) throws {
        var devices = [Device(replica: hq, staff: ["zhaolei", "hq-crm"]),
                       Device(replica: colleague, staff: WireSizeBench.clerks)]
        let tags = WireSizeBench.preferenceTags + WireSizeBench.levelTags
        var rng = SeededRandom(seed: 11)
        var k = 0
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        while devices.reduce(0, { $0 + $1.made }) < targetOps {
            let d = pick(10) < 7 ? 0 : 1
            let replica = devices[d].replica
            let staff = devices[d].staff[pick(devices[d].staff.count)]
            let customer = customers[pick(customers.count)]
            let roll = pick(100)
            k += 1
            switch roll {
            case 0..<45:
                let tag = tags[pick(tags.count)]
                if devices[d].present.remove([customer, tag]) != nil {
                    try replica.removeTag(tag, from: customer, by: staff)
                } else {
                    try replica.addTag(tag, to: customer, by: staff)
                    if WireSizeBench.levelTags.contains(tag) {
                        for other in WireSizeBench.levelTags { devices[d].present.remove([customer, other]) }
                    }
                    devices[d].present.insert([customer, tag])
                }
                devices[d].made += 1
            case 45..<60:
                try replica.editCustomer(customer, ["phone": .text("139\(String(format: "%08d", k))")], by: staff)
                devices[d].made += 1
            case 60..<75:
                try replica.setFollowRelation(customer: customer, userid: staff, ["remark": .text("备注\(k)")], by: staff)
                devices[d].made += 1
            case 75..<85:
                try replica.setFollowRelation(customer: customer, userid: staff,
                                              ["remark": .text("老客\(k)"), "description": .text("第\(k)次到店")], by: staff)
                devices[d].made += 2
            default:
                try replica.awardPoints(Int64(10 + pick(491)), to: customer, by: staff)
                devices[d].made += 1
            }
        }
    }

    // MARK: The measured pipeline

    /// The measured pipeline; returns its figures and the ops it carried (for the baseline).
    private func catchUp(_ store: Replica, from hq: Replica) throws -> (Outcome, [Op]) {
        var outcome = Outcome()
        var carried: [Op] = []
        var chunker = FrameChunker()
        var reader = FrameReader()
        outcome.siyuSeconds = try seconds {
            var changeSet = ChangeSet(ops: [])
            outcome.stages.extract = try seconds { changeSet = try hq.changeSet(since: try store.versionVector()) }
            outcome.ops = changeSet.ops.count
            carried = changeSet.ops
            var cursor: UInt64 = 0
            var frames: [[UInt8]] = []
            outcome.stages.encode = try seconds {
                frames = try chunker.frames(for: changeSet.ops) { _, chunk, more in
                    cursor += UInt64(chunk.ops.count)
                    return .changes(nextCursor: cursor, more: more, chunk)
                }
            }
            for bytes in frames {
                outcome.bytes += bytes.count
                reader.feed(bytes)
                var chunk = ChangeSet(ops: [])
                outcome.stages.decode += try seconds {
                    guard let frame = try reader.next(), case let .changes(_, _, decoded) = try Message(frame: frame) else {
                        throw BenchError("catch-up: expected one CHANGES message per frame")
                    }
                    chunk = decoded
                }
                outcome.stages.apply += try seconds { try store.apply(chunk) }
            }
        }
        outcome.chunks = chunker.chunkCount
        outcome.chunkSizes = chunker.chunkSizes
        return (outcome, carried)
    }

    // MARK: Report

    private func report(_ o: Outcome) -> SectionReport {
        let ratio = o.siyuSeconds / o.plainSeconds
        let sameRowsRatio = o.siyuSeconds / o.sameRowsSeconds
        let met = judgedAt100k(ops: o.ops, sameRowsRatio <= CatchUpBench.targetRatio)
        var r = SectionReport("catch-up after a week offline: \(grouped(o.ops)) ops in the store's scope (\(grouped(customerCount)) customers)")
        let frames = "\(o.chunks) CHANGES frame\(o.chunks == 1 ? "" : "s") (\(grouped(o.bytes)) bytes)"
        r.line("siyu          \(fixed(o.siyuSeconds)) s   changeSet(since:) → \(frames) → decode → apply")
        r.line("              of which changeSet(since:) \(fixed(o.stages.extract)) s, encode \(fixed(o.stages.encode)) s, "
               + "decode \(fixed(o.stages.decode)) s, apply \(fixed(o.stages.apply)) s")
        r.line("plain SQLite  \(fixed(o.sameRowsSeconds)) s   (the same rows upserted, one statement per op, same transaction sizes)")
        r.line("ratio         \(fixed(sameRowsRatio))×   (target ≤ \(CatchUpBench.targetRatio)×: \(verdict(met)))")
        r.line("old baseline  \(fixed(o.plainSeconds)) s   (as many customer_tags upserts, same transaction sizes; ratio \(fixed(ratio))×, information)")
        r.line("digest        store = HQ: \(o.digestsEqual ? "yes" : "NO")")
        r.line(o.disk.line(what: "the store's replica after it"))

        r.figure("catchup_ops", o.ops)
        r.figure("catchup_chunks", o.chunks)
        r.figure("catchup_bytes", o.bytes)
        r.figure("catchup_seconds", o.siyuSeconds, digits: 4)
        r.figure("catchup_extract_seconds", o.stages.extract, digits: 4)
        r.figure("catchup_encode_seconds", o.stages.encode, digits: 4)
        r.figure("catchup_decode_seconds", o.stages.decode, digits: 4)
        r.figure("catchup_apply_seconds", o.stages.apply, digits: 4)
        r.figure("catchup_plain_seconds", o.plainSeconds, digits: 4)
        r.figure("catchup_ratio", ratio)
        r.figure("catchup_same_rows_seconds", o.sameRowsSeconds, digits: 4)
        r.figure("catchup_same_rows_ratio", sameRowsRatio)
        o.disk.figures(prefix: "catchup_disk", into: &r)
        r.figure("catchup_digest_equal", .bool(o.digestsEqual))

        r.summary.append(SummaryRow(what: "catch-up \(grouped(o.ops)) ops (same rows)", siyu: "\(fixed(o.siyuSeconds, 3)) s",
                                    baseline: "\(fixed(o.sameRowsSeconds, 3)) s", ratio: "\(fixed(sameRowsRatio, 2))×",
                                    target: "≤ \(CatchUpBench.targetRatio)×", met: met, unjudged: "not judged at this size", key: "catchup"))
        r.summary.append(o.disk.summaryRow(what: "disk: store replica after the catch-up", key: "disk_catchup", judged: o.ops >= 90_000))
        return r
    }
}
