import SiyuCore

/// The compact binary form of a change set (see Protocol/SPEC.md, "Change sets").
///
///     schema_version   varint
///     string_base      varint (how many strings of the connection's dictionary this one builds on)
///     string_count     varint, then each new string: bytes shared with the previous one (varint),
///                      then the rest (varint length + UTF-8)
///     base_hlc         varint (the first op's clock; 0 when there are no ops)
///     op_count         varint, then each op
///
/// Each op starts with a header byte: bits 0–3 the op kind, bit 4 "a stamp list follows" (else the
/// op's list is empty), bit 5 "same origin as the previous op" (else origin and role follow), bit 6
/// "sequence = previous + 1", bit 7 "same author as the previous op". A clock is written as the
/// zigzag difference in milliseconds from a reference clock, shifted left one bit, with the low bit
/// saying whether a logical counter follows (else it is 0). A stamp in a list is a back-reference
/// to an earlier op of the batch or an inline clock (with the node, unless it is the op's own
/// origin), and says whether another stamp follows. Ids, fields and text values are
/// indexes into the dictionary followed by this change set's new strings, so an id costs one small
/// integer after the first time a connection carries it. On its own (a file, a test) a change set
/// is encoded against an empty dictionary and lists every string it uses.
///
/// Guarantees: `decode(encode(cs)) == cs`, also through a `StringDictionary` carried from change
/// set to change set; decoding never traps, never reads past the input, refuses any count larger
/// than the remaining bytes could hold before allocating for it, and changes the dictionary only
/// when the whole change set decoded.
public enum ChangeSetCodec {
    enum Kind: UInt8 {
        case write = 0, addTag, removeTag, addMember, removeMember, addLine, removeLine
        case status, points, deleteCustomer, acknowledge, tagDeletion
    }

    /// The most bytes of UTF-8 the new strings of one change set may hold (with shared prefixes
    /// written out). Senders split larger batches.
    public static let maxStringBytes = 1 << 20

    static let listBit: UInt8 = 0x10, sameOriginBit: UInt8 = 0x20, nextSeqBit: UInt8 = 0x40, sameAuthorBit: UInt8 = 0x80

    // MARK: Encoding

    /// Encodes a change set on its own, listing every string it uses.
    public static func encode(_ cs: ChangeSet) -> [UInt8] {
        var fresh = StringDictionary()
        return encode(cs, dictionary: &fresh)
    }

    /// Encodes a change set for a connection whose receiver holds `dictionary`, and appends the
    /// strings it defines. Send the bytes, or discard the dictionary with them. As with the frame
    /// limit, keeping a batch within `maxStringBytes` of new strings is the caller's job: a receiver
    /// refuses a bigger one, so split it.
    public static func encode(_ cs: ChangeSet, dictionary: inout StringDictionary) -> [UInt8] {
        let (bytes, defined, startedAfresh) = encode(cs, against: dictionary)
        if startedAfresh { dictionary.removeAll() }
        dictionary.append(defined)   // uniquely referenced again here, so this appends in place
        return bytes
    }

    /// The bytes, the strings they define, and whether they start a fresh dictionary (string_base 0
    /// with a non-empty dictionary, because building on it would go over its limits).
    static func encode(_ cs: ChangeSet, against dictionary: StringDictionary) -> ([UInt8], [String], Bool) {
        var table = StringTable(base: dictionary)
        for op in cs.ops { table.collect(op) }
        let startAfresh = dictionary.count > 0 && dictionary.wouldOverflow(adding: table.defined.count, bytes: table.definedBytes)
        if startAfresh {
            table = StringTable(base: StringDictionary())
            for op in cs.ops { table.collect(op) }
        }
        var w = ByteWriter(capacity: 16 + cs.ops.count * 8)
        w.varint(UInt64(cs.schemaVersion))
        w.varint(UInt64(table.base.count))
        w.varint(UInt64(table.defined.count))
        var previous: [UInt8] = []
        for s in table.defined {   // front-coded: the bytes shared with the previous string, then the rest
            let bytes = Array(s.utf8)
            var shared = 0
            while shared < min(previous.count, bytes.count), previous[shared] == bytes[shared] { shared += 1 }
            w.varint(UInt64(shared))
            w.data(Array(bytes[shared...]))
            previous = bytes
        }
        let base = cs.ops.first?.hlc.raw ?? 0
        w.varint(base)   // the first op's clock is then written as a delta of 0
        w.varint(UInt64(cs.ops.count))
        var prev: Op?
        var prevHLC = base
        var positions: [StampKey: Int] = [:]   // stamp of each op already written → its index
        // Only a stamp list refers back to an earlier op: a change set with none keeps no positions.
        let refersBack = cs.ops.contains { !stampList($0.body).isEmpty }
        if refersBack { positions.reserveCapacity(cs.ops.count) }
        for (index, op) in cs.ops.enumerated() {
            let (kind, entity) = classify(op.body)
            var header = kind.rawValue
            if !stampList(op.body).isEmpty { header |= listBit }
            // The role is written with the origin, so "same origin" means same node id and role.
            let sameOrigin = prev.map { sameBytes($0.origin, op.origin) && $0.role == op.role } ?? false
            if sameOrigin { header |= sameOriginBit }
            if sameOrigin, let p = prev, op.seq == p.seq &+ 1 { header |= nextSeqBit }
            if let p = prev, sameBytes(p.author, op.author) { header |= sameAuthorBit }
            w.byte(header)
            if !sameOrigin { w.varint(table.index(op.origin)); w.byte(op.role.rawValue) }
            if header & nextSeqBit == 0 { w.varint(op.seq) }
            ClockDelta.write(op.hlc, against: HLC(raw: prevHLC), to: &w)
            if header & sameAuthorBit == 0 { w.varint(table.index(op.author)) }
            encodeBody(op, entity: entity, table: table, to: &w)
            if header & listBit != 0 {
                let list = stampList(op.body)
                for (k, s) in list.enumerated() {
                    let more: UInt64 = k + 1 < list.count ? 1 : 0      // bit 0: another stamp follows
                    if let earlier = positions[StampKey(s)] {
                        w.varint(UInt64(index - earlier) << 2 | 2 | more)   // bit 1: back-reference
                    } else {
                        // Inline: the clock, and the node unless it is the op's own origin (bit 2).
                        let (value, logical) = clockValue(s.hlc, from: op.hlc)
                        let ownOrigin = sameBytes(s.node, op.origin)
                        w.varint(value << 3 | (ownOrigin ? 4 : 0) | more)
                        if let logical { w.varint(logical) }
                        if !ownOrigin { w.varint(table.index(s.node)) }
                    }
                }
            }
            if refersBack { positions[StampKey(op.stamp)] = index }
            prev = op
            prevHLC = op.hlc.raw
        }
        return (w.bytes, table.defined, startAfresh)
    }

    /// Byte equality: `String ==` is canonical equivalence, which would merge NFC and NFD spellings.
    /// Native strings are compared as two runs of bytes; others element by element.
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        let fast = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in x.count == y.count && x.elementsEqual(y) }
        }
        if let same = fast ?? nil { return same }
        return a.utf8.elementsEqual(b.utf8)
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

    /// The op's list of stamps (overwrites, removes, seen, observed), written after its body.
    static func stampList(_ body: OpBody) -> [Stamp] {
        switch body {
        case let .write(_, _, _, list), let .add(_, list), let .remove(_, list), let .status(_, _, _, list),
             let .deleteCustomer(_, list), let .tagDeletion(_, list):
            return list
        case .points, .acknowledge:
            return []
        }
    }

    /// A stamp as a dictionary key that compares node ids by bytes.
    struct StampKey: Hashable {
        let raw: UInt64
        let node: UTF8Key
        init(_ s: Stamp) { raw = s.hlc.raw; node = UTF8Key(s.node) }
    }

    /// A clock's head against `reference` (`ClockDelta`: milliseconds apart = clock − reference),
    /// and the logical counter to write after it if non-zero.
    static func clockValue(_ clock: HLC, from reference: HLC) -> (UInt64, UInt64?) {
        (ClockDelta.head(millisApart: Int64(bitPattern: clock.millis &- reference.millis), hasLogical: clock.logical != 0),
         clock.logical == 0 ? nil : UInt64(clock.logical))
    }

    static func readClock(_ r: inout PayloadReader, from reference: HLC, _ field: String) throws -> HLC {
        try clock(fromValue: try r.varint(field), &r, reference: reference, field)
    }

    static func clock(fromValue v: UInt64, _ r: inout PayloadReader, reference: HLC, _ field: String) throws -> HLC {
        let (apart, hasLogical) = ClockDelta.split(v)
        guard let millis = ClockDelta.millis(reference.millis, movedBy: apart) else {
            throw WireError.invalidValue(field: field, detail: "clock out of range")
        }
        var logical: UInt16 = 0
        if hasLogical {
            let raw = try r.varint(field)
            guard let counter = ClockDelta.logical(raw) else { throw WireError.invalidValue(field: field, detail: "logical counter \(raw)") }
            logical = counter
        }
        return HLC(millis: millis, logical: logical)
    }

    static func encodeBody(_ op: Op, entity: Entity?, table: StringTable, to w: inout ByteWriter) {
        switch op.body {
        case let .write(t, field, value, _):
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
        case let .add(t, _), let .remove(t, _):
            w.varint(table.index(t.id))
            w.varint(table.index(t.sub))
        case let .status(id, from, to, _):
            w.varint(table.index(id)); w.byte(from.rawValue); w.byte(to.rawValue)
        case let .points(id, delta):
            w.varint(table.index(id)); w.signed(delta)
        case let .deleteCustomer(id, _):
            w.varint(table.index(id))
        case let .acknowledge(ref, conflictID):
            w.byte(ref.kind.rawValue); w.varint(table.index(ref.id)); w.varint(table.index(conflictID))
        case let .tagDeletion(ref, _):
            w.byte(ref.kind.rawValue); w.varint(table.index(ref.id))
        }
    }

    /// The dictionary a change set builds on, plus the strings it defines in order of first use (so
    /// encoding is deterministic). Keyed by UTF-8 bytes: Swift's `String` equality is canonical
    /// equivalence, and two byte-different strings (NFC and NFD "é") must stay two strings.
    struct StringTable {
        let base: StringDictionary
        private(set) var defined: [String] = []
        private(set) var definedBytes = 0
        private var positions: [UTF8Key: UInt64] = [:]

        init(base: StringDictionary) { self.base = base }

        mutating func add(_ s: String) {
            let key = UTF8Key(s)
            guard base.position(of: key) == nil, positions[key] == nil else { return }
            positions[key] = UInt64(base.count + defined.count)
            defined.append(s)
            definedBytes += key.bytes.count
        }

        func index(_ s: String) -> UInt64 {
            let key = UTF8Key(s)
            return base.position(of: key) ?? positions[key]!
        }

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

    /// Decodes a change set on its own (it must not build on a dictionary).
    public static func decode(_ bytes: [UInt8]) throws -> ChangeSet {
        var r = PayloadReader(bytes)
        var fresh = StringDictionary()
        return try decode(from: &r, dictionary: &fresh)
    }

    /// Decodes a change set at the reader's position (used inside message payloads), resolving
    /// strings through the connection's `dictionary` and, if it decodes, appending what it defines.
    public static func decode(from r: inout PayloadReader, dictionary: inout StringDictionary) throws -> ChangeSet {
        let schema = try r.varint("change set schema version")
        guard schema <= UInt64(Int32.max) else { throw WireError.invalidValue(field: "schema version", detail: "\(schema)") }
        let stringBase = try r.varint("string base")
        guard stringBase == 0 || stringBase == UInt64(dictionary.count) else {
            throw WireError.stringBaseMismatch(base: stringBase, held: dictionary.count)
        }
        let knownCount = stringBase == 0 ? 0 : dictionary.count
        let stringCount = try r.count("string table count", minItemBytes: 2)
        var strings: [String] = []
        strings.reserveCapacity(stringCount)
        var previous: [UInt8] = []
        var stringBytes = 0
        for _ in 0..<stringCount {
            let shared = try r.varint("string table shared prefix")
            guard shared <= UInt64(previous.count) else {
                throw WireError.invalidValue(field: "string table shared prefix", detail: "\(shared) bytes, but the previous string has \(previous.count)")
            }
            // The previous string's buffer becomes this one: its shared prefix, then the rest.
            previous.removeSubrange(Int(shared)...)
            previous += try r.data("string table entry")
            stringBytes += previous.count
            guard stringBytes <= maxStringBytes else {
                throw WireError.invalidValue(field: "string table", detail: "over \(maxStringBytes) bytes of strings")
            }
            guard let s = String(validating: previous, as: UTF8.self) else { throw WireError.invalidUTF8(field: "string table entry") }
            strings.append(s)
        }
        func str(_ field: String) throws -> String {
            let i = try r.varint(field)
            if i < UInt64(knownCount) { return dictionary.strings[Int(i)] }
            let j = i - UInt64(knownCount)
            guard j < UInt64(strings.count) else {
                throw WireError.stringIndexOutOfRange(index: i, count: knownCount + strings.count)
            }
            return strings[Int(j)]
        }
        var hlc = HLC(raw: try r.varint("base clock"))
        let opCount = try r.count("op count", minItemBytes: 3)
        var ops: [Op] = []
        ops.reserveCapacity(opCount)
        var prev: Op?
        for _ in 0..<opCount {
            let header = try r.u8("op header")
            guard let kind = Kind(rawValue: header & 0x0f) else {
                throw WireError.invalidValue(field: "op kind", detail: "\(header & 0x0f)")
            }
            let origin: String
            let role: Role
            if header & sameOriginBit != 0 {
                guard let p = prev else { throw WireError.invalidValue(field: "op header", detail: "first op says 'same origin'") }
                origin = p.origin
                role = p.role
            } else {
                origin = try str("op origin")
                let roleByte = try r.u8("op role")
                guard let parsed = Role(rawValue: roleByte) else { throw WireError.invalidValue(field: "op role", detail: "\(roleByte)") }
                role = parsed
            }
            let seq: UInt64
            if header & nextSeqBit != 0 {
                guard let p = prev, header & sameOriginBit != 0 else {
                    throw WireError.invalidValue(field: "op header", detail: "'next sequence' without a previous op of the same origin")
                }
                seq = p.seq &+ 1
            } else {
                seq = try r.varint("op sequence")
                guard seq >= 1 else { throw WireError.invalidValue(field: "op sequence", detail: "0 (sequences start at 1)") }
            }
            hlc = try readClock(&r, from: hlc, "op clock")
            let author: String
            if header & sameAuthorBit != 0 {
                guard let p = prev else { throw WireError.invalidValue(field: "op header", detail: "first op says 'same author'") }
                author = p.author
            } else {
                author = try str("op author")
            }
            let stamp = Stamp(hlc: hlc, node: origin)
            let opClock = hlc
            let hasList = header & listBit != 0
            func stamps(_ field: String) throws -> [Stamp] {
                guard hasList else { return [] }
                var out: [Stamp] = []
                while true {
                    let v = try r.varint(field)
                    if v & 2 != 0 {
                        let distance = v >> 2
                        guard distance >= 1, distance <= UInt64(ops.count) else {
                            throw WireError.invalidValue(field: field, detail: "back-reference \(distance) ops back, with \(ops.count) before it")
                        }
                        out.append(ops[ops.count - Int(distance)].stamp)
                    } else {
                        let clock = try clock(fromValue: v >> 3, &r, reference: opClock, field)
                        out.append(Stamp(hlc: clock, node: v & 4 != 0 ? origin : try str(field)))
                    }
                    if v & 1 == 0 { return out }
                }
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
                guard !hasList else { throw WireError.invalidValue(field: "op header", detail: "a points op has no stamp list") }
                body = .points(customerID: try str("customer id"), delta: try r.signed("points delta"))
            case .deleteCustomer:
                body = .deleteCustomer(customerID: try str("customer id"), observed: try stamps("observed"))
            case .acknowledge:
                guard !hasList else { throw WireError.invalidValue(field: "op header", detail: "an acknowledge op has no stamp list") }
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
        if stringBase == 0 { dictionary.removeAll() }
        dictionary.append(strings)
        return ChangeSet(schemaVersion: Int(schema), ops: ops)
    }
}
