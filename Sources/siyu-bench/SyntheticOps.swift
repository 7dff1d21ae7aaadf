// Ops synthesized exactly as the Replica API would make them, for sizes where making them through
// the API would take minutes (the bootstrap snapshot, the scaling replicas), and the splitting of
// ops into protocol frames under the 1 MiB limit. Measures nothing by itself.

import Foundation
import SiyuCore
import SiyuStore
import SiyuWire

/// Numbers and stamps ops as one node's replica does: sequence 1, 2, 3, … and strictly increasing
/// hybrid clocks (the logical counter counts up within a millisecond, as `HybridClock.tick` does
/// when the wall clock has not moved).
struct OpSynthesizer {
    let origin: NodeID
    let role: Role
    let author: String
    private(set) var seq: UInt64
    private(set) var clock: HLC

    /// Continues after `seq` and `clock` (a node's last op), or starts at now.
    init(origin: NodeID, role: Role, author: String, after seq: UInt64 = 0, clock: HLC = .zero) {
        self.origin = origin
        self.role = role
        self.author = author
        self.seq = seq
        let now = HLC(millis: UInt64(Date().timeIntervalSince1970 * 1000), logical: 0)
        self.clock = max(clock, now)
    }

    /// Continues the numbering of the node that made `changeSet` (the last op of `origin` in it).
    init(continuing changeSet: ChangeSet, origin: NodeID, role: Role, author: String) {
        let last = changeSet.ops.last { $0.origin == origin }
        self.init(origin: origin, role: role, author: author, after: last?.seq ?? 0, clock: last?.hlc ?? .zero)
    }

    /// This synthesizer as it would be after making `count` more ops.
    func skipping(_ count: Int) -> OpSynthesizer {
        var later = self
        later.seq += UInt64(count)
        later.clock = HLC(raw: clock.raw + UInt64(count))
        return later
    }

    mutating func make(_ body: OpBody) -> Op {
        seq += 1
        clock = clock.logical == UInt16.max ? HLC(millis: clock.millis + 1, logical: 0) : HLC(raw: clock.raw + 1)
        return Op(stamp: Stamp(hlc: clock, node: origin), seq: seq, role: role, author: author, body: body)
    }

    /// What `Replica.createCustomer(id, fields)` writes on a new customer: one write per field, in
    /// field-name order, overwriting nothing.
    mutating func createCustomer(_ id: String, _ fields: [String: Value]) -> [Op] {
        fields.sorted { $0.key < $1.key }.map { make(.write(Target(.customer, id), field: $0.key, value: $0.value, overwrites: [])) }
    }

    /// What `Replica.addTag` writes for a tag of a non-exclusive group the customer does not hold.
    mutating func addTag(_ tag: String, to customer: String) -> Op {
        make(.add(Target(.customerTag, customer, tag), removes: []))
    }

    /// What `Replica.editCustomer(id, [field: value])` writes over a field nobody wrote before.
    mutating func write(_ field: String, _ value: Value, of customer: String) -> Op {
        make(.write(Target(.customer, customer), field: field, value: value, overwrites: []))
    }
}

/// A tag library defined through a real HQ replica ("hq"): one non-exclusive group "pref" holding
/// `tags`. Returns HQ's change set, which synthesized HQ ops then continue.
func tagLibrary(_ tags: [String], at path: String) throws -> ChangeSet {
    let hq = try Replica(path: path, options: ReplicaOptions(node: "hq", role: .hq))
    defer { hq.close() }
    try hq.defineTagGroup("pref", name: "消费偏好")
    for (i, tag) in tags.enumerated() { try hq.defineTag(tag, group: "pref", name: "标签\(i)") }
    return try hq.changeSet(since: VersionVector())
}

/// The ops that create `customers` at HQ, each with a name and every tag of `tags`.
func customerOps(_ customers: ArraySlice<String>, tags: [String], owner: String? = nil, using synthesizer: inout OpSynthesizer) -> [Op] {
    var ops: [Op] = []
    ops.reserveCapacity(customers.count * (1 + tags.count))
    for id in customers {
        var fields: [String: Value] = ["name": .text("客户" + id.suffix(6))]
        if let owner { fields["owner_store"] = .text(owner) }
        ops += synthesizer.createCustomer(id, fields)
        for tag in tags { ops.append(synthesizer.addTag(tag, to: id)) }
    }
    return ops
}

/// Splits ops into consecutive protocol messages whose frames stay under the 1 MiB frame limit.
/// With `opsPerChunk`, chunks hold at most that many ops; without, each chunk is sized from the
/// bytes per op of the previous one to fill about 7/8 of the limit (as a hub filling a pull's byte
/// budget would). A chunk whose payload would still be too large is halved.
struct FrameChunker {
    let opsPerChunk: Int?
    /// Chunks made so far (the next chunk's index).
    private(set) var chunkCount = 0
    /// The op count of each chunk made so far.
    private(set) var chunkSizes: [Int] = []
    /// The payload a chunk sized by bytes aims at.
    static let targetPayload = Frame.maxPayload / 8 * 7
    /// The size of a byte-sized chunk before anything was measured.
    static let firstGuess = 20_000
    private var nextSize: Int

    init(opsPerChunk: Int? = nil) {
        self.opsPerChunk = opsPerChunk
        nextSize = opsPerChunk ?? FrameChunker.firstGuess
    }

    /// The encoded frames for `ops`. `message` makes chunk `index` holding `changeSet`; `more` says
    /// whether further chunks of this call follow it.
    mutating func frames(for ops: [Op], message: (_ index: Int, _ changeSet: ChangeSet, _ more: Bool) -> Message) throws -> [[UInt8]] {
        var frames: [[UInt8]] = []
        var start = 0
        while start < ops.count {
            let end = min(start + nextSize, ops.count)
            let bytes = message(chunkCount, ChangeSet(ops: Array(ops[start..<end])), end < ops.count).encoded()
            let payload = bytes.count - Frame.headerSize - Frame.trailerSize
            if payload > Frame.maxPayload {
                guard end - start > 1 else { throw BenchError("one op does not fit a frame") }
                nextSize = (end - start) / 2
                continue
            }
            frames.append(bytes)
            chunkSizes.append(end - start)
            chunkCount += 1
            if opsPerChunk == nil {
                nextSize = max(1, Int(Double(FrameChunker.targetPayload) * Double(end - start) / Double(payload)))
            }
            start = end
        }
        return frames
    }
}
