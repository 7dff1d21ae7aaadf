/// The binary encodings of one op in the op log. Decoding is total: malformed bytes give
/// `CoreError.malformed`, never a trap.
///
/// Version 1 (`encode(_:)`) is self-contained: version byte 1, hlc varint, node string, seq varint,
/// role byte, author string, body tag byte, then the body's fields (targets as entity byte + id +
/// sub; stamp lists as count + stamps as hlc varint + node string).
///
/// Version 2 (`encode(_:keyedBy:)`) leaves out what the op log keeps in its own columns (`OpKeys`):
/// version byte 2, role byte, author string, body tag byte, then the body's fields as in version 1
/// except that an id is `varint` 0 for the instance's own id, else its length + 1 and its bytes, and
/// a stamp is v = (zigzag of this op's milliseconds minus the stamp's) << 1 | (logical ≠ 0) as a
/// varint, the logical counter as a varint if that bit is set, then its node as an id against the
/// op's origin (0 = the origin). About a third of version 1's size.
public enum OpCoding {
    static let selfContained: UInt8 = 1
    static let keyed: UInt8 = 2

    /// Encodes the op whole (version 1).
    public static func encode(_ op: Op) -> [UInt8] {
        var w = ByteWriter(capacity: 48)
        w.byte(selfContained)
        w.varint(op.stamp.hlc.raw)
        w.string(op.stamp.node)
        w.varint(op.seq)
        writeRest(op, to: &w, keys: nil)
        return w.bytes
    }

    /// Encodes the op without its keys (version 2); `decode(_:keys:)` needs them back.
    public static func encode(_ op: Op, keyedBy keys: OpKeys) -> [UInt8] {
        var w = ByteWriter(capacity: 24)
        w.byte(keyed)
        writeRest(op, to: &w, keys: keys)
        return w.bytes
    }

    /// Decodes a self-contained op (version 1).
    public static func decode(_ bytes: [UInt8]) throws -> Op {
        try decode(bytes, keys: nil)
    }

    /// Decodes either version; a version 2 op takes its keys from `keys` (required for it).
    public static func decode(_ bytes: [UInt8], keys: OpKeys?) throws -> Op {
        var r = ByteReader(bytes)
        let v = try r.byte()
        let stamp: Stamp, seq: UInt64
        switch (v, keys) {
        case (selfContained, _):
            stamp = Stamp(hlc: HLC(raw: try r.varint()), node: try r.string())
            seq = try r.varint()
        case (keyed, let keys?):
            stamp = Stamp(hlc: keys.hlc, node: keys.origin)
            seq = keys.seq
        case (keyed, nil):
            throw CoreError.malformed(what: "op encoding version 2 decoded without the op log's keys")
        default:
            throw CoreError.malformed(what: "op encoding version \(v) (expected 1 or 2)")
        }
        var d = Decoder(r: r, keys: v == keyed ? keys : nil, stamp: stamp)
        guard let role = Role(rawValue: try d.r.byte()) else { throw CoreError.malformed(what: "unknown role") }
        let author = try d.r.string()
        let body: OpBody
        switch try d.r.byte() {
        case 1:
            body = .write(try d.target(), field: try d.r.string(), value: try readValue(&d.r), overwrites: try d.stamps())
        case 2:
            body = .add(try d.target(), removes: try d.stamps())
        case 3:
            body = .remove(try d.target(), removes: try d.stamps())
        case 4:
            let id = try d.id()
            guard let from = OrderStatus(rawValue: try d.r.byte()), let to = OrderStatus(rawValue: try d.r.byte()) else {
                throw CoreError.malformed(what: "unknown order status")
            }
            body = .status(orderID: id, from: from, to: to, seen: try d.stamps())
        case 5:
            body = .points(customerID: try d.id(), delta: try d.r.signed())
        case 6:
            body = .deleteCustomer(customerID: try d.id(), observed: try d.stamps())
        case 7:
            guard let kind = InstanceKind(rawValue: try d.r.byte()) else { throw CoreError.malformed(what: "unknown instance kind") }
            body = .acknowledge(InstanceRef(kind, try d.id()), conflictID: try d.r.string())
        case 8:
            guard let kind = InstanceKind(rawValue: try d.r.byte()) else { throw CoreError.malformed(what: "unknown instance kind") }
            body = .tagDeletion(InstanceRef(kind, try d.id()), seen: try d.stamps())
        case let tag:
            throw CoreError.malformed(what: "unknown op kind \(tag)")
        }
        guard d.r.isAtEnd else { throw CoreError.malformed(what: "\(d.r.remaining) trailing bytes after an op") }
        let op = Op(stamp: stamp, seq: seq, role: role, author: author, body: body)
        if let keys = d.keys, op.instance.id != keys.instanceID {
            throw CoreError.malformed(what: "an op of instance \(op.instance) stored under id '\(keys.instanceID)'")
        }
        return op
    }

    /// Role, author and body: the part both versions share (ids and stamps per version).
    static func writeRest(_ op: Op, to w: inout ByteWriter, keys: OpKeys?) {
        var e = Encoder(w: w, keys: keys, stamp: op.stamp)
        e.w.byte(op.role.rawValue)
        e.w.string(op.author)
        switch op.body {
        case let .write(target, field, value, overwrites):
            e.w.byte(1); e.target(target); e.w.string(field); write(value, to: &e.w); e.stamps(overwrites)
        case let .add(target, removes):
            e.w.byte(2); e.target(target); e.stamps(removes)
        case let .remove(target, removes):
            e.w.byte(3); e.target(target); e.stamps(removes)
        case let .status(orderID, from, to, seen):
            e.w.byte(4); e.id(orderID); e.w.byte(from.rawValue); e.w.byte(to.rawValue); e.stamps(seen)
        case let .points(customerID, delta):
            e.w.byte(5); e.id(customerID); e.w.signed(delta)
        case let .deleteCustomer(customerID, observed):
            e.w.byte(6); e.id(customerID); e.stamps(observed)
        case let .acknowledge(ref, conflictID):
            e.w.byte(7); e.w.byte(ref.kind.rawValue); e.id(ref.id); e.w.string(conflictID)
        case let .tagDeletion(ref, seen):
            e.w.byte(8); e.w.byte(ref.kind.rawValue); e.id(ref.id); e.stamps(seen)
        }
        w = e.w
    }

    /// Writes ids and stamps as the version asks (`keys` nil: version 1).
    struct Encoder {
        var w: ByteWriter
        let keys: OpKeys?
        let stamp: Stamp

        mutating func id(_ s: String) {
            guard let keys else { w.string(s); return }
            Encoder.keyedString(s, against: keys.instanceID, to: &w)
        }

        mutating func target(_ t: Target) {
            w.byte(t.entity.rawValue)
            id(t.id)
            w.string(t.sub)
        }

        mutating func stamps(_ list: [Stamp]) {
            w.varint(UInt64(list.count))
            for s in list {
                if keys != nil {
                    // `ClockDelta`, milliseconds apart = the op's − the stamp's (48 bits each).
                    w.varint(ClockDelta.head(millisApart: Int64(stamp.hlc.millis) - Int64(s.hlc.millis), hasLogical: s.hlc.logical != 0))
                    if s.hlc.logical != 0 { w.varint(UInt64(s.hlc.logical)) }
                    Encoder.keyedString(s.node, against: stamp.node, to: &w)
                } else {
                    w.varint(s.hlc.raw)
                    w.string(s.node)
                }
            }
        }

        static func keyedString(_ s: String, against key: String, to w: inout ByteWriter) {
            if s.utf8.elementsEqual(key.utf8) {
                w.varint(0)
            } else {
                w.varint(UInt64(s.utf8.count) + 1)
                for b in s.utf8 { w.byte(b) }
            }
        }
    }

    /// Reads ids and stamps as the version wrote them (`keys` nil: version 1).
    struct Decoder {
        var r: ByteReader
        let keys: OpKeys?
        let stamp: Stamp

        mutating func id() throws -> String {
            guard let keys else { return try r.string() }
            return try keyedString(against: keys.instanceID)
        }

        mutating func target() throws -> Target {
            let raw = try r.byte()
            guard let entity = Entity(rawValue: raw) else { throw CoreError.malformed(what: "unknown entity \(raw)") }
            return Target(entity, try id(), try r.string())
        }

        mutating func stamps() throws -> [Stamp] {
            // Each stamp takes at least 2 bytes, which bounds the count by the bytes present.
            let n = try r.count(limit: r.remaining / 2)
            var out: [Stamp] = []
            out.reserveCapacity(n)
            for _ in 0..<n {
                if keys != nil {
                    let (apart, hasLogical) = ClockDelta.split(try r.varint())
                    guard apart != .min, let millis = ClockDelta.millis(stamp.hlc.millis, movedBy: -apart) else {
                        throw CoreError.malformed(what: "a stamp's clock out of range")
                    }
                    var logical: UInt16 = 0
                    if hasLogical {
                        guard let counter = ClockDelta.logical(try r.varint()) else { throw CoreError.malformed(what: "a stamp's logical counter out of range") }
                        logical = counter
                    }
                    out.append(Stamp(hlc: HLC(millis: millis, logical: logical), node: try keyedString(against: stamp.node)))
                } else {
                    out.append(Stamp(hlc: HLC(raw: try r.varint()), node: try r.string()))
                }
            }
            return out
        }

        mutating func keyedString(against key: String) throws -> String {
            let n = try r.varint()
            if n == 0 { return key }
            guard n - 1 <= UInt64(r.remaining) else { throw CoreError.malformed(what: "a string longer than the bytes left") }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(n - 1))
            for _ in 0..<Int(n - 1) { bytes.append(try r.byte()) }
            guard let s = String(validating: bytes, as: UTF8.self) else { throw CoreError.malformed(what: "a string that is not UTF-8") }
            return s
        }
    }

    static func write(_ v: Value, to w: inout ByteWriter) {
        switch v {
        case .null: w.byte(0)
        case let .int(i): w.byte(1); w.signed(i)
        case let .text(s): w.byte(2); w.string(s)
        case let .bytes(b): w.byte(3); w.data(b)
        case let .bool(b): w.byte(b ? 5 : 4)
        }
    }

    static func readValue(_ r: inout ByteReader) throws -> Value {
        switch try r.byte() {
        case 0: return .null
        case 1: return .int(try r.signed())
        case 2: return .text(try r.string())
        case 3: return .bytes(try r.data())
        case 4: return .bool(false)
        case 5: return .bool(true)
        case let t: throw CoreError.malformed(what: "unknown value type \(t)")
        }
    }
}

/// What the op log keeps of an op in its own columns, which a version 2 encoding leaves out.
public struct OpKeys: Sendable {
    public let origin: NodeID
    public let seq: UInt64
    public let hlc: HLC
    /// The id of the instance the op belongs to (`Op.instance.id`).
    public let instanceID: String

    public init(origin: NodeID, seq: UInt64, hlc: HLC, instanceID: String) {
        self.origin = origin
        self.seq = seq
        self.hlc = hlc
        self.instanceID = instanceID
    }

    public init(of op: Op) {
        self.init(origin: op.origin, seq: op.seq, hlc: op.hlc, instanceID: op.instance.id)
    }
}
