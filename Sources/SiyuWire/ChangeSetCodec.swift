import SiyuCore

/// The compact binary form of a change set (see Protocol/SPEC.md, "Change sets").
///
///     schema_version   varint
///     string_count     varint, then each string: varint length + UTF-8
///     base_hlc         varint (the first op's clock; 0 when there are no ops)
///     op_count         varint, then each op
///
/// Each op starts with a header byte: bits 0–3 the op kind, bit 4 role (1 = store), bit 5 "same
/// origin as the previous op", bit 6 "sequence = previous + 1", bit 7 "same author as the previous
/// op". Clocks are zigzag deltas against the previous op's clock; ids, fields and text values are
/// indexes into the string table, so an id repeated in a batch costs one small integer.
///
/// Guarantees: `decode(encode(cs)) == cs`; decoding never traps, never reads past the input, and
/// refuses any count larger than the remaining bytes could hold before allocating for it.
public enum ChangeSetCodec {
    enum Kind: UInt8 {
        case write = 0, addTag, removeTag, addMember, removeMember, addLine, removeLine
        case status, points, deleteCustomer, acknowledge, tagDeletion
    }

    static let roleBit: UInt8 = 0x10, sameOriginBit: UInt8 = 0x20, nextSeqBit: UInt8 = 0x40, sameAuthorBit: UInt8 = 0x80

    // MARK: Encoding

    public static func encode(_ cs: ChangeSet) -> [UInt8] {
        var table = StringTable()
        for op in cs.ops { table.collect(op) }
        var w = ByteWriter(capacity: 16 + cs.ops.count * 8)
        w.varint(UInt64(cs.schemaVersion))
        w.varint(UInt64(table.strings.count))
        for s in table.strings { w.string(s) }
        let base = cs.ops.first?.hlc.raw ?? 0
        w.varint(base)
        w.varint(UInt64(cs.ops.count))
        var prev: Op?
        var prevHLC = base
        for op in cs.ops {
            let (kind, entity) = classify(op.body)
            var header = kind.rawValue
            if op.role == .store { header |= roleBit }
            let sameOrigin = prev?.origin == op.origin
            if sameOrigin { header |= sameOriginBit }
            if sameOrigin, let p = prev, op.seq == p.seq &+ 1 { header |= nextSeqBit }
            if let p = prev, p.author == op.author { header |= sameAuthorBit }
            w.byte(header)
            if !sameOrigin { w.varint(table.index(op.origin)) }
            if header & nextSeqBit == 0 { w.varint(op.seq) }
            w.signed(Int64(bitPattern: op.hlc.raw &- prevHLC))
            if header & sameAuthorBit == 0 { w.varint(table.index(op.author)) }
            encodeBody(op, entity: entity, table: table, to: &w)
            prev = op
            prevHLC = op.hlc.raw
        }
        return w.bytes
    }

    static func classify(_ body: OpBody) -> (Kind, Entity?) {
        switch body {
        case let .write(t, _, _, _): return (.write, t.entity)
        case let .add(t, _):
            return (t.entity == .groupMember ? .addMember : t.entity == .orderLine ? .addLine : .addTag, t.entity)
        case let .remove(t, _):
            return (t.entity == .groupMember ? .removeMember : t.entity == .orderLine ? .removeLine : .removeTag, t.entity)
        case .status: return (.status, nil)
        case .points: return (.points, nil)
        case .deleteCustomer: return (.deleteCustomer, nil)
        case .acknowledge: return (.acknowledge, nil)
        case .tagDeletion: return (.tagDeletion, nil)
        }
    }

    static func encodeBody(_ op: Op, entity: Entity?, table: StringTable, to w: inout ByteWriter) {
        func stamps(_ list: [Stamp]) {
            w.varint(UInt64(list.count))
            for s in list {
                w.signed(Int64(bitPattern: s.hlc.raw &- op.hlc.raw))
                w.varint(table.index(s.node))
            }
        }
        switch op.body {
        case let .write(t, field, value, overwrites):
            w.byte(t.entity.rawValue)
            w.varint(table.index(t.id))
            if t.entity.hasSub { w.varint(table.index(t.sub)) }
            w.varint(table.index(field))
            switch value {
            case .null: w.byte(0)
            case let .int(i): w.byte(1); w.signed(i)
            case let .text(s): w.byte(2); w.varint(table.index(s))
            case let .bytes(b): w.byte(3); w.data(b)
            case let .bool(b): w.byte(b ? 5 : 4)
            }
            stamps(overwrites)
        case let .add(t, removes), let .remove(t, removes):
            w.varint(table.index(t.id))
            w.varint(table.index(t.sub))
            stamps(removes)
        case let .status(id, from, to, seen):
            w.varint(table.index(id)); w.byte(from.rawValue); w.byte(to.rawValue); stamps(seen)
        case let .points(id, delta):
            w.varint(table.index(id)); w.signed(delta)
        case let .deleteCustomer(id, observed):
            w.varint(table.index(id)); stamps(observed)
        case let .acknowledge(ref, conflictID):
            w.byte(ref.kind.rawValue); w.varint(table.index(ref.id)); w.varint(table.index(conflictID))
        case let .tagDeletion(ref, seen):
            w.byte(ref.kind.rawValue); w.varint(table.index(ref.id)); stamps(seen)
        }
    }

    /// Strings in order of first use, so encoding is deterministic.
    struct StringTable {
        private(set) var strings: [String] = []
        private var indexes: [String: UInt64] = [:]

        mutating func add(_ s: String) {
            if indexes[s] == nil { indexes[s] = UInt64(strings.count); strings.append(s) }
        }

        func index(_ s: String) -> UInt64 { indexes[s]! }

        mutating func collect(_ op: Op) {
            add(op.origin)
            add(op.author)
            func stamps(_ list: [Stamp]) { for s in list { add(s.node) } }
            switch op.body {
            case let .write(t, field, value, overwrites):
                add(t.id); if t.entity.hasSub { add(t.sub) }; add(field)
                if case let .text(s) = value { add(s) }
                stamps(overwrites)
            case let .add(t, removes), let .remove(t, removes): add(t.id); add(t.sub); stamps(removes)
            case let .status(id, _, _, seen): add(id); stamps(seen)
            case let .points(id, _): add(id)
            case let .deleteCustomer(id, observed): add(id); stamps(observed)
            case let .acknowledge(ref, conflictID): add(ref.id); add(conflictID)
            case let .tagDeletion(ref, seen): add(ref.id); stamps(seen)
            }
        }
    }

    // MARK: Decoding

    public static func decode(_ bytes: [UInt8]) throws -> ChangeSet {
        var r = PayloadReader(bytes)
        let cs = try decode(from: &r)
        return cs
    }

    /// Decodes a change set at the reader's position (used inside message payloads).
    public static func decode(from r: inout PayloadReader) throws -> ChangeSet {
        let schema = try r.varint("change set schema version")
        guard schema <= UInt64(Int32.max) else { throw WireError.invalidValue(field: "schema version", detail: "\(schema)") }
        let stringCount = try r.count("string table count")
        var strings: [String] = []
        strings.reserveCapacity(stringCount)
        for _ in 0..<stringCount { strings.append(try r.string("string table entry")) }
        func str(_ field: String) throws -> String {
            let i = try r.varint(field)
            guard i < UInt64(strings.count) else { throw WireError.stringIndexOutOfRange(index: i, count: strings.count) }
            return strings[Int(i)]
        }
        var hlc = try r.varint("base clock")
        let opCount = try r.count("op count", minItemBytes: 3)
        var ops: [Op] = []
        ops.reserveCapacity(opCount)
        var prev: Op?
        for _ in 0..<opCount {
            let header = try r.u8("op header")
            guard let kind = Kind(rawValue: header & 0x0f) else {
                throw WireError.invalidValue(field: "op kind", detail: "\(header & 0x0f)")
            }
            let role: Role = header & roleBit != 0 ? .store : .hq
            let origin: String
            if header & sameOriginBit != 0 {
                guard let p = prev else { throw WireError.invalidValue(field: "op header", detail: "first op says 'same origin'") }
                origin = p.origin
            } else {
                origin = try str("op origin")
            }
            let seq: UInt64
            if header & nextSeqBit != 0 {
                guard let p = prev, header & sameOriginBit != 0 else {
                    throw WireError.invalidValue(field: "op header", detail: "'next sequence' without a previous op of the same origin")
                }
                seq = p.seq &+ 1
            } else {
                seq = try r.varint("op sequence")
            }
            hlc = hlc &+ UInt64(bitPattern: try r.signed("op clock"))
            let author: String
            if header & sameAuthorBit != 0 {
                guard let p = prev else { throw WireError.invalidValue(field: "op header", detail: "first op says 'same author'") }
                author = p.author
            } else {
                author = try str("op author")
            }
            let stamp = Stamp(hlc: HLC(raw: hlc), node: origin)
            func stamps(_ field: String) throws -> [Stamp] {
                let n = try r.count(field, minItemBytes: 2)
                var out: [Stamp] = []
                out.reserveCapacity(n)
                for _ in 0..<n {
                    let h = hlc &+ UInt64(bitPattern: try r.signed(field))
                    out.append(Stamp(hlc: HLC(raw: h), node: try str(field)))
                }
                return out
            }
            func entity(_ field: String) throws -> Entity {
                let e = try r.u8(field)
                guard let entity = Entity(rawValue: e) else { throw WireError.invalidValue(field: field, detail: "unknown entity \(e)") }
                return entity
            }
            func instanceKind() throws -> InstanceKind {
                let k = try r.u8("instance kind")
                guard let kind = InstanceKind(rawValue: k) else { throw WireError.invalidValue(field: "instance kind", detail: "\(k)") }
                return kind
            }
            func status(_ field: String) throws -> OrderStatus {
                let s = try r.u8(field)
                guard let st = OrderStatus(rawValue: s) else { throw WireError.invalidValue(field: field, detail: "unknown order status \(s)") }
                return st
            }
            let body: OpBody
            switch kind {
            case .write:
                let e = try entity("write entity")
                let id = try str("write id")
                let sub = e.hasSub ? try str("write sub id") : ""
                let field = try str("write field")
                let value: Value
                switch try r.u8("value type") {
                case 0: value = .null
                case 1: value = .int(try r.signed("integer value"))
                case 2: value = .text(try str("text value"))
                case 3: value = .bytes(try r.data("bytes value"))
                case 4: value = .bool(false)
                case 5: value = .bool(true)
                case let t: throw WireError.invalidValue(field: "value type", detail: "\(t)")
                }
                body = .write(Target(e, id, sub), field: field, value: value, overwrites: try stamps("overwrites"))
            case .addTag, .removeTag, .addMember, .removeMember, .addLine, .removeLine:
                let e: Entity = [.addTag, .removeTag].contains(kind) ? .customerTag
                    : [.addMember, .removeMember].contains(kind) ? .groupMember : .orderLine
                let target = Target(e, try str("element id"), try str("element sub id"))
                let removes = try stamps("removes")
                body = [.addTag, .addMember, .addLine].contains(kind) ? .add(target, removes: removes) : .remove(target, removes: removes)
            case .status:
                body = .status(orderID: try str("order id"), from: try status("from status"), to: try status("to status"), seen: try stamps("seen"))
            case .points:
                body = .points(customerID: try str("customer id"), delta: try r.signed("points delta"))
            case .deleteCustomer:
                body = .deleteCustomer(customerID: try str("customer id"), observed: try stamps("observed"))
            case .acknowledge:
                let k = try instanceKind()
                body = .acknowledge(InstanceRef(k, try str("instance id")), conflictID: try str("conflict id"))
            case .tagDeletion:
                let k = try instanceKind()
                body = .tagDeletion(InstanceRef(k, try str("instance id")), seen: try stamps("seen"))
            }
            let op = Op(stamp: stamp, seq: seq, role: role, author: author, body: body)
            ops.append(op)
            prev = op
        }
        return ChangeSet(schemaVersion: Int(schema), ops: ops)
    }
}
