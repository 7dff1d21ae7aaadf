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
/// 8-character ids. Each clerk workload also has a *next day*: a second batch of as many edits over
/// the same customers, made by the same replica one day later, continuing the same edit stream (so
/// it removes tags the first day added, with stamps pointing a day back); (b) the mixed change set
/// of the merge section.
///
/// Each workload is measured with every encoding in `WireEncoding.all` that applies to it: the
/// plain `ChangeSetCodec.encode(_:)` (every change set stands alone: a cold connection), and, for
/// the clerk batches (a store's pushes), the per-connection string dictionary — the batch pushed
/// 50 ops at a time on one connection ("live"), and the next day's batch, whole, on a connection
/// that already carried the first ("warm"). Every change set measured is also decoded by a
/// receiver-side dictionary and checked against what was encoded.
struct WireSizeBench {
    let edits: Int
    let customerCount: Int
    let mix: ChangeSet
    let directory: TemporaryDirectory

    static let preferenceTags = ["et_tea", "et_bakery", "et_coffee", "et_1111", "et_vip"]
    static let levelTags = ["et_silver", "et_gold", "et_platinum"]
    static let clerks = ["chenjing", "liuyang", "zhoumin"]
    /// Bytes per tag op at a clerk's pace with WeCom ids: on a fresh connection, and on a warm one.
    static let coldTarget = 10.0, warmTarget = 8.0

    func run() throws -> SectionReport {
        progress("wire size: clerk batches with 32-character ids (\(grouped(edits)) edits over \(grouped(customerCount)) customers, and as many the next day)")
        let long = try clerkBatches(ids: CustomerIDs.weCom(customerCount, seed: 32), name: "long")
        progress("wire size: clerk batches with 8-character ids")
        let short = try clerkBatches(ids: CustomerIDs.short(customerCount), name: "short")
        progress("wire size: clerk batches with 32-character ids at a clerk's pace (1–30 s between edits)")
        let paced = try clerkBatches(ids: CustomerIDs.weCom(customerCount, seed: 32), name: "paced", pace: 1_000...30_000)
        let workloads = [
            WireWorkload(name: "fast tag batch, 32-char ids", key: "tag", batch: long.first, nextDay: long.nextDay),
            WireWorkload(name: "fast tag batch, 8-char ids", key: "tag_short", batch: short.first, nextDay: short.nextDay),
            WireWorkload(name: "clerk's pace, 32-char ids", key: "tag_paced", batch: paced.first, nextDay: paced.nextDay),
            WireWorkload(name: "merge mix (section 2)", key: "mix", batch: mix),
        ]
        progress("wire size: encoding (and decoding to check)")
        var measurements: [WireMeasurement] = []
        for encoding in WireEncoding.all {
            for workload in workloads {
                guard let measured = encoding.workload(workload) else { continue }
                measurements.append(WireMeasurement(encoding: encoding, workload: measured, encodedBytes: try encoding.size(measured)))
            }
        }
        return report(measurements)
    }

    // MARK: The clerk's batches, through a real store replica

    /// The first batch, and the next day's: the same store replica and edit stream, its clock a day on.
    /// `pace`: milliseconds between two edits, drawn at random (nil: as fast as the replica goes,
    /// a bulk tagging action).
    private func clerkBatches(ids: [String], name: String, pace: ClosedRange<UInt64>? = nil) throws -> (first: ChangeSet, nextDay: ChangeSet) {
        let day = ShiftedClock()
        let hq = try Replica(path: directory.path("wire-\(name)-hq.db"), options: ReplicaOptions(node: "hq", role: .hq))
        let store = try Replica(path: directory.path("wire-\(name)-xihu.db"),
                                options: ReplicaOptions(node: "xihu", role: .store, wallClock: day.now))
        defer { hq.close(); store.close() }
        try defineLibraryAndCustomers(on: hq, ids: ids)
        try store.apply(try hq.changeSet(since: VersionVector()))
        var clerks = ClerkEdits(ids: ids)
        var rng = SeededRandom(seed: 30)
        if let pace {
            clerks.beforeEach = { day.offsetMillis += pace.lowerBound + rng.next() % (pace.upperBound - pace.lowerBound + 1) }
        }
        let before = try store.versionVector()
        try clerks.make(edits, on: store)
        let first = try store.changeSet(since: before)
        day.offsetMillis += 86_400_000
        let afterFirst = try store.versionVector()
        try clerks.make(edits, on: store)
        let nextDay = try store.changeSet(since: afterFirst)
        return (first, nextDay)
    }

    private func defineLibraryAndCustomers(on hq: Replica, ids: [String]) throws {
        try hq.defineTagGroup("pref", name: "消费偏好")
        for (i, tag) in WireSizeBench.preferenceTags.enumerated() { try hq.defineTag(tag, group: "pref", name: "偏好\(i)") }
        try hq.defineTagGroup("level", name: "会员等级", exclusive: true)
        for (i, tag) in WireSizeBench.levelTags.enumerated() { try hq.defineTag(tag, group: "level", name: "等级\(i)") }
        for (i, id) in ids.enumerated() { try hq.createCustomer(id, ["name": .text("客户\(i)")], by: "zhaolei") }
    }

    // MARK: Report

    private func report(_ measurements: [WireMeasurement]) -> SectionReport {
        var r = SectionReport("wire size: bytes per op, next to the same ops as JSON lines")
        // Rows by workload (each workload's encodings together), in the order measured within it.
        let workloadOrder = measurements.map(\.workload.key).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let rows = workloadOrder.flatMap { key in measurements.filter { $0.workload.key == key } }
        let width = max(24, measurements.map(\.encoding.name.count).max() ?? 0)
        r.line("encoding".padding(toLength: width, withPad: " ", startingAt: 0)
               + " workload                          ops   encoded B   B/op  JSON B/op  JSON/encoded")
        for m in rows {
            r.line(m.encoding.name.padding(toLength: width, withPad: " ", startingAt: 0) + " "
                   + m.workload.name.padding(toLength: 30, withPad: " ", startingAt: 0)
                   + String(format: " %7d %11d %6.2f %10.1f %12.1f×", m.workload.batch.ops.count, m.encodedBytes,
                            m.bytesPerOp, m.jsonBytesPerOp, m.jsonRatio))
        }
        r.line("targets: at a clerk's pace (1–30 s between edits) with WeCom ids, ≤ 10 B/op cold (a fresh connection) and ≤ 8 B/op on a")
        r.line("warm connection; every tag batch ≤ 1/10 of its JSON (JSON/encoded ≥ 10×). Fast batches (edits back to back) are information")
        for encoding in WireEncoding.all where !encoding.note.isEmpty { r.line("\(encoding.name): \(encoding.note)") }

        for m in measurements {
            let suffix = m.encoding.key.isEmpty ? "" : "_" + m.encoding.key
            switch m.workload.key {
            case "tag":
                if suffix.isEmpty || m.encoding.measuresAnotherBatch { r.figure("tag_ops" + suffix, m.workload.batch.ops.count) }
                r.figure("tag_bytes_per_op" + suffix, m.bytesPerOp)
                r.figure("json_size_ratio" + suffix, m.jsonRatio, digits: 2)
                if suffix.isEmpty { r.figure("tag_json_bytes_per_op", m.jsonBytesPerOp, digits: 1) }
            case "tag_short", "tag_paced":
                let kind = m.workload.key.dropFirst("tag".count)
                if m.encoding.measuresAnotherBatch { r.figure("tag_ops\(kind)" + suffix, m.workload.batch.ops.count) }
                r.figure("tag_bytes_per_op\(kind)" + suffix, m.bytesPerOp)
                r.figure("json_size_ratio\(kind)" + suffix, m.jsonRatio, digits: 2)
            default:
                if suffix.isEmpty { r.figure("mix_ops", m.workload.batch.ops.count) }
                r.figure("mix_bytes_per_op" + suffix, m.bytesPerOp)
                r.figure("mix_json_size_ratio" + suffix, m.jsonRatio, digits: 2)
            }
        }
        // The judged rows first: the clerk's pace with WeCom ids, cold and warm.
        let tagRows = rows.filter { $0.workload.key.hasPrefix("tag") }
        for m in tagRows.filter({ $0.workload.key == "tag_paced" }) + tagRows.filter({ $0.workload.key != "tag_paced" }) {
            let warm = m.encoding.key == "warm"
            let state = warm ? "warm connection (next day)" : m.encoding.key == "live" ? "cold, 50-op pushes" : "cold, one batch"
            let what = "wire: \(m.workload.name), \(state)"
            // The peer measures the batch on its own: its figure sits next to the cold rows only.
            let peerKey = !m.encoding.key.isEmpty ? nil : m.workload.key == "tag" ? "loro_tag_bytes_per_op"
                : m.workload.key == "tag_short" ? "loro_tag_bytes_per_op_short" : nil
            let key = "wire_" + m.workload.key + (m.encoding.key.isEmpty ? "" : "_" + m.encoding.key)
            if m.workload.key == "tag_paced" {
                let limit = warm ? WireSizeBench.warmTarget : WireSizeBench.coldTarget
                r.summary.append(SummaryRow(what: what, siyu: "\(fixed(m.bytesPerOp, 2)) B/op",
                                            baseline: "JSON \(fixed(m.jsonBytesPerOp, 1)) B/op", ratio: "1/\(fixed(m.jsonRatio, 1))",
                                            target: "≤ \(Int(limit)) B, ≤ 1/10", met: m.bytesPerOp <= limit && m.jsonRatio >= 10,
                                            key: key, peerKey: peerKey, peerUnit: " B/op"))
            } else {
                r.summary.append(SummaryRow(what: what, siyu: "\(fixed(m.bytesPerOp, 2)) B/op",
                                            baseline: "JSON \(fixed(m.jsonBytesPerOp, 1)) B/op", ratio: "1/\(fixed(m.jsonRatio, 1))",
                                            target: "≤ 1/10 (B/op: information)", met: m.jsonRatio >= 10,
                                            key: key, peerKey: peerKey, peerUnit: " B/op"))
            }
        }
        return r
    }
}

/// The clerks' edit stream: random customer, random tag of the 8: remove it if present, else add it
/// (adding a level tag removes the customer's other level tag, as the replica does). Clerks take
/// turns of 50 edits. `make` continues the stream where the previous call left it.
struct ClerkEdits {
    let ids: [String]
    private var rng = SeededRandom(seed: 7)
    private var present = Set<[String]>()
    private var made = 0
    /// Runs before each edit (say, to move the replica's clock on by a clerk's pause).
    var beforeEach: () -> Void = {}

    init(ids: [String]) { self.ids = ids }

    mutating func make(_ count: Int, on store: Replica) throws {
        let tags = WireSizeBench.preferenceTags + WireSizeBench.levelTags
        for _ in 0..<count {
            beforeEach()
            let customer = ids[Int(rng.next() % UInt64(ids.count))]
            let tag = tags[Int(rng.next() % UInt64(tags.count))]
            let clerk = WireSizeBench.clerks[(made / 50) % WireSizeBench.clerks.count]
            made += 1
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
}

/// A wall clock that can be moved on (the clerks' next day), for `ReplicaOptions.wallClock`.
final class ShiftedClock {
    var offsetMillis: UInt64 = 0
    func now() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) + offsetMillis }
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
    /// The same sender's next batch over the same records (the clerks' next day), if the workload
    /// has one: the batches a store pushes over time, which the connection encodings measure.
    var nextDay: ChangeSet? = nil
}

/// One way of putting change sets on the wire.
struct WireEncoding {
    var name: String
    /// Appended to the JSON keys of this encoding's figures ("" for the plain codec).
    var key: String
    /// Appended to the workload's name in the summary ("" for the plain codec).
    var summaryName: String = ""
    /// Printed under the table (what the rows mean), if not empty.
    var note: String = ""
    /// Whether `workload` measures another batch than the workload's own (its op count is then a
    /// figure of its own).
    var measuresAnotherBatch = false
    /// What this encoding measures of a workload (the workload itself, or say its next day after
    /// the first), or nil where it does not apply.
    var workload: (WireWorkload) -> WireWorkload? = { $0 }
    /// The encoded size of the workload's batch, after whatever the connection carried earlier.
    /// Throws if a change set does not decode to what was encoded.
    var size: (WireWorkload) throws -> Int

    /// `ChangeSetCodec.encode(_:)`: every change set stands alone (a fresh dictionary each).
    static let plain = WireEncoding(name: "ChangeSetCodec", key: "") { try connectionBytes($0, pushOps: nil) }

    /// The clerk batch pushed 50 ops at a time on one connection, one dictionary across the pushes;
    /// the bytes of every push added up.
    static let live = WireEncoding(
        name: "connection, 50-op pushes", key: "live", summaryName: "live connection",
        note: "one connection, one string dictionary across the batch's pushes of 50 ops; bytes of all pushes",
        workload: { $0.nextDay == nil ? nil : $0 }) { try connectionBytes($0, pushOps: 50) }

    /// The next day's clerk batch, whole, on a connection that already carried the first day's.
    static let warm = WireEncoding(
        name: "connection, warm (day 2)", key: "warm", summaryName: "warm connection",
        note: "the next day's batch on a connection that carried the first day's; its bytes only",
        measuresAnotherBatch: true,
        workload: { w in w.nextDay.map { WireWorkload(name: w.name, key: w.key, batch: $0, earlier: [w.batch]) } }) {
        try connectionBytes($0, pushOps: nil)
    }

    /// Every encoding measured, in the order printed.
    static let all: [WireEncoding] = [.plain, .live, .warm]

    /// Sends the workload's earlier change sets, then its batch (whole, or in pushes of `pushOps`
    /// ops), on one fresh connection; returns the bytes of the batch's change sets.
    static func connectionBytes(_ workload: WireWorkload, pushOps: Int?) throws -> Int {
        var connection = WireConnection()
        for cs in workload.earlier { _ = try connection.send(cs) }
        let ops = workload.batch.ops
        let size = max(pushOps ?? ops.count, 1)
        var bytes = 0
        for start in stride(from: 0, to: max(ops.count, 1), by: size) {
            let push = ChangeSet(schemaVersion: workload.batch.schemaVersion, ops: Array(ops[start..<min(start + size, ops.count)]))
            bytes += try connection.send(push)
        }
        return bytes
    }
}

/// One direction of a connection: the sender's string dictionary and the receiver's. Every change
/// set sent is decoded on the receiver's side and must come out as it went in, with both
/// dictionaries equal afterwards.
struct WireConnection {
    private var sender = StringDictionary()
    private var receiver = StringDictionary()
    private var sent = 0

    /// Encodes `cs` for the connection, checks the receiver decodes it, and returns its size in bytes.
    mutating func send(_ cs: ChangeSet) throws -> Int {
        sent += 1
        let bytes = ChangeSetCodec.encode(cs, dictionary: &sender)
        var reader = PayloadReader(bytes)
        let decoded: ChangeSet
        do {
            decoded = try ChangeSetCodec.decode(from: &reader, dictionary: &receiver)
        } catch {
            throw BenchError("wire check: change set \(sent) on the connection (\(cs.ops.count) ops, \(bytes.count) bytes) does not decode: \(error)")
        }
        guard reader.isAtEnd else {
            throw BenchError("wire check: change set \(sent) on the connection decoded with \(reader.remaining) of \(bytes.count) bytes left over")
        }
        guard decoded == cs else {
            let detail: String
            if decoded.schemaVersion != cs.schemaVersion {
                detail = "schema version \(decoded.schemaVersion), encoded \(cs.schemaVersion)"
            } else if decoded.ops.count != cs.ops.count {
                detail = "\(decoded.ops.count) ops, encoded \(cs.ops.count)"
            } else {
                let i = cs.ops.indices.first { decoded.ops[$0] != cs.ops[$0] } ?? 0
                detail = "op \(i) is \(decoded.ops[i]), encoded \(cs.ops[i])"
            }
            throw BenchError("wire check: change set \(sent) on the connection decoded differently from what was encoded: \(detail)")
        }
        guard receiver == sender else {
            throw BenchError("wire check: after change set \(sent) the receiver's string dictionary (\(receiver.count) strings) differs from the sender's (\(sender.count))")
        }
        return bytes.count
    }
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
