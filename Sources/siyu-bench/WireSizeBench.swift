import Foundation
import SiyuCore
import SiyuStore
import SiyuWire

/// Section 3 — bytes per op on the wire, next to the same ops as JSON lines.
///
/// Workloads: (a) a clerk's tagging batch made through a real store replica — customers and a tag
/// library (a non-exclusive group of 5 tags, an exclusive group "level" of 3) defined at HQ and
/// copied to the store, then clerk edits on random customers and tags (remove if present, else add),
/// taken with `store.changeSet(since:)` — once with WeCom-length (32-character) ids and once with
/// 8-character ids; (b) the mixed change set of the merge section.
///
/// Each workload is measured with every encoding in `WireEncoding.all`: today the plain
/// `ChangeSetCodec.encode(_:)`. Another encoding (say, with a per-connection string dictionary) is
/// added by appending one `WireEncoding` there; its figures get their own rows and JSON keys.
struct WireSizeBench {
    let edits: Int
    let customerCount: Int
    let mix: ChangeSet
    let directory: TemporaryDirectory

    static let preferenceTags = ["et_tea", "et_bakery", "et_coffee", "et_1111", "et_vip"]
    static let levelTags = ["et_silver", "et_gold", "et_platinum"]
    static let clerks = ["chenjing", "liuyang", "zhoumin"]

    func run() throws -> SectionReport {
        progress("wire size: clerk batch with 32-character ids (\(grouped(edits)) edits over \(grouped(customerCount)) customers)")
        let long = try clerkBatch(ids: CustomerIDs.weCom(customerCount, seed: 32), name: "long")
        progress("wire size: clerk batch with 8-character ids")
        let short = try clerkBatch(ids: CustomerIDs.short(customerCount), name: "short")
        let workloads = [
            WireWorkload(name: "clerk tag batch, 32-char ids", key: "tag", batch: long),
            WireWorkload(name: "clerk tag batch, 8-char ids", key: "tag_short", batch: short),
            WireWorkload(name: "merge mix (section 2)", key: "mix", batch: mix),
        ]
        progress("wire size: encoding")
        let measurements = WireEncoding.all.flatMap { encoding in
            workloads.map { WireMeasurement(encoding: encoding, workload: $0, encodedBytes: encoding.size($0)) }
        }
        return report(measurements)
    }

    // MARK: The clerk's batch, through a real store replica

    private func clerkBatch(ids: [String], name: String) throws -> ChangeSet {
        let hq = try Replica(path: directory.path("wire-\(name)-hq.db"), options: ReplicaOptions(node: "hq", role: .hq))
        let store = try Replica(path: directory.path("wire-\(name)-xihu.db"), options: ReplicaOptions(node: "xihu", role: .store))
        defer { hq.close(); store.close() }
        try defineLibraryAndCustomers(on: hq, ids: ids)
        try store.apply(try hq.changeSet(since: VersionVector()))
        let before = try store.versionVector()
        try makeClerkEdits(on: store, ids: ids)
        return try store.changeSet(since: before)
    }

    private func defineLibraryAndCustomers(on hq: Replica, ids: [String]) throws {
        try hq.defineTagGroup("pref", name: "消费偏好")
        for (i, tag) in WireSizeBench.preferenceTags.enumerated() { try hq.defineTag(tag, group: "pref", name: "偏好\(i)") }
        try hq.defineTagGroup("level", name: "会员等级", exclusive: true)
        for (i, tag) in WireSizeBench.levelTags.enumerated() { try hq.defineTag(tag, group: "level", name: "等级\(i)") }
        for (i, id) in ids.enumerated() { try hq.createCustomer(id, ["name": .text("客户\(i)")], by: "zhaolei") }
    }

    /// Random customer, random tag of the 8: remove it if present, else add it (adding a level tag
    /// removes the customer's other level tag, as the replica does). Clerks take turns of 50 edits.
    private func makeClerkEdits(on store: Replica, ids: [String]) throws {
        var rng = SeededRandom(seed: 7)
        let tags = WireSizeBench.preferenceTags + WireSizeBench.levelTags
        var present = Set<[String]>()
        for i in 0..<edits {
            let customer = ids[Int(rng.next() % UInt64(ids.count))]
            let tag = tags[Int(rng.next() % UInt64(tags.count))]
            let clerk = WireSizeBench.clerks[(i / 50) % WireSizeBench.clerks.count]
            if present.remove([customer, tag]) != nil {
                try store.removeTag(tag, from: customer, by: clerk)
            } else {
                try store.addTag(tag, to: customer, by: clerk)
                if WireSizeBench.levelTags.contains(tag) {
                    for other in WireSizeBench.levelTags { present.remove([customer, other]) }
                }
                present.insert([customer, tag])
            }
        }
    }

    // MARK: Report

    private func report(_ measurements: [WireMeasurement]) -> SectionReport {
        var r = SectionReport("wire size: bytes per op, next to the same ops as JSON lines")
        r.line("encoding                 workload                          ops   encoded B   B/op  JSON B/op  JSON/encoded")
        for m in measurements {
            r.line(m.encoding.name.padding(toLength: 24, withPad: " ", startingAt: 0) + " "
                   + m.workload.name.padding(toLength: 30, withPad: " ", startingAt: 0)
                   + String(format: " %7d %11d %6.2f %10.1f %12.1f×", m.workload.batch.ops.count, m.encodedBytes,
                            m.bytesPerOp, m.jsonBytesPerOp, m.jsonRatio))
        }
        r.line("targets: tag ops ≤ 8 B/op and JSON/encoded ≥ 10×")

        for m in measurements {
            let suffix = m.encoding.key.isEmpty ? "" : "_" + m.encoding.key
            switch m.workload.key {
            case "tag":
                if suffix.isEmpty { r.figure("tag_ops", m.workload.batch.ops.count) }
                r.figure("tag_bytes_per_op" + suffix, m.bytesPerOp)
                r.figure("json_size_ratio" + suffix, m.jsonRatio, digits: 2)
                if suffix.isEmpty { r.figure("tag_json_bytes_per_op", m.jsonBytesPerOp, digits: 1) }
            case "tag_short":
                r.figure("tag_bytes_per_op_short" + suffix, m.bytesPerOp)
                r.figure("json_size_ratio_short" + suffix, m.jsonRatio, digits: 2)
            default:
                if suffix.isEmpty { r.figure("mix_ops", m.workload.batch.ops.count) }
                r.figure("mix_bytes_per_op" + suffix, m.bytesPerOp)
                r.figure("mix_json_size_ratio" + suffix, m.jsonRatio, digits: 2)
            }
        }
        for m in measurements where m.workload.key.hasPrefix("tag") {
            let what = "wire: \(m.workload.name)" + (m.encoding.key.isEmpty ? "" : " (\(m.encoding.name))")
            r.summary.append(SummaryRow(what: what, siyu: "\(fixed(m.bytesPerOp, 2)) B/op",
                                        baseline: "JSON \(fixed(m.jsonBytesPerOp, 1)) B/op", ratio: "1/\(fixed(m.jsonRatio, 1))",
                                        target: "≤ 8 B, ≤ 1/10", met: m.bytesPerOp <= 8 && m.jsonRatio >= 10,
                                        peerKey: m.workload.key == "tag" ? "loro_tag_bytes_per_op" : "loro_tag_bytes_per_op_short",
                                        peerUnit: " B/op"))
        }
        return r
    }
}

/// A change set whose encoded size is measured.
struct WireWorkload {
    var name: String
    /// The workload's part of the JSON keys ("tag", "tag_short", "mix").
    var key: String
    var batch: ChangeSet
    /// Change sets the same connection direction carried before `batch` (none: a fresh
    /// connection). An encoding with per-connection state encodes these first, unmeasured.
    var earlier: [ChangeSet] = []
}

/// One way of putting change sets on the wire.
struct WireEncoding {
    var name: String
    /// Appended to the JSON keys of this encoding's figures ("" for the plain codec).
    var key: String
    /// The encoded size of the workload's batch, after whatever the connection carried earlier.
    var size: (WireWorkload) -> Int

    /// `ChangeSetCodec.encode(_:)`: every change set stands alone.
    static let plain = WireEncoding(name: "ChangeSetCodec", key: "") { ChangeSetCodec.encode($0.batch).count }

    /// Every encoding measured, in the order printed.
    static let all: [WireEncoding] = [.plain]
}

struct WireMeasurement {
    var encoding: WireEncoding
    var workload: WireWorkload
    var encodedBytes: Int
    var jsonBytes: Int

    init(encoding: WireEncoding, workload: WireWorkload, encodedBytes: Int) {
        self.encoding = encoding
        self.workload = workload
        self.encodedBytes = encodedBytes
        jsonBytes = JSONLines.byteCount(of: workload.batch.ops)
    }

    var bytesPerOp: Double { Double(encodedBytes) / Double(max(workload.batch.ops.count, 1)) }
    var jsonBytesPerOp: Double { Double(jsonBytes) / Double(max(workload.batch.ops.count, 1)) }
    var jsonRatio: Double { Double(jsonBytes) / Double(max(encodedBytes, 1)) }
}

/// The JSON baseline: one JSON object per op and line, compact, keys sorted, in the shape of the
/// codec test's `tagOpsAreCompact` generalised to every op kind: origin, seq, hlc, role, author,
/// kind, entity, id, sub (for sub-entities), field and value (where the op has them), and its stamp
/// list as `stamps: [{hlc, node}]`. (Written by hand: `JSONSerialization` with sorted keys gives the
/// same bytes but took a fifth of the quick run.)
enum JSONLines {
    static func byteCount(of ops: [Op]) -> Int {
        ops.reduce(0) { $0 + line(for: $1).utf8.count + 1 }
    }

    static func line(for op: Op) -> String {
        var fields: [(String, JSONValue)] = [
            ("origin", .string(op.origin)), ("seq", .int(Int(op.seq))), ("hlc", .int(Int(bitPattern: UInt(op.hlc.raw)))),
            ("role", .string(op.role.description)), ("author", .string(op.author)), ("kind", .string(op.body.kindName)),
        ]
        let target = op.body.target
        fields.append(("entity", .string(target.entity.name)))
        fields.append(("id", .string(target.id)))
        if target.entity.hasSub { fields.append(("sub", .string(target.sub))) }
        var stamps: [Stamp] = []
        switch op.body {
        case let .write(_, field, value, overwrites):
            fields += [("field", .string(field)), ("value", json(value))]
            stamps = overwrites
        case let .add(_, removes), let .remove(_, removes):
            stamps = removes
        case let .status(_, from, to, seen):
            fields += [("field", .string("status")), ("value", .string("\(from.name)->\(to.name)"))]
            stamps = seen
        case let .points(_, delta):
            fields.append(("value", .int(Int(delta))))
        case let .deleteCustomer(_, observed):
            stamps = observed
        case let .acknowledge(_, conflictID):
            fields.append(("value", .string(conflictID)))
        case let .tagDeletion(_, seen):
            stamps = seen
        }
        fields.append(("stamps", .array(stamps.map {
            .object([("hlc", .int(Int(bitPattern: UInt($0.hlc.raw)))), ("node", .string($0.node))])
        })))
        return JSONValue.object(fields.sorted { $0.0 < $1.0 }).serialized(compact: true)
    }

    private static func json(_ value: Value) -> JSONValue {
        switch value {
        case .null: return .null
        case let .int(i): return .int(Int(i))
        case let .text(s): return .string(s)
        case let .bytes(b): return .string(b.hexString)
        case let .bool(b): return .bool(b)
        }
    }
}
