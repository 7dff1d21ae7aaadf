/// A self-contained binary encoding of one op, used to store ops in the op log. Decoding is total:
/// malformed bytes give `CoreError.malformed`, never a trap.
///
/// Layout: version byte (1), hlc varint, node string, seq varint, role byte, author string, body tag
/// byte, then the body's fields (targets as entity byte + id + sub; stamp lists as count + stamps).
public enum OpCoding {
    static let version: UInt8 = 1

    public static func encode(_ op: Op) -> [UInt8] {
        var w = ByteWriter(capacity: 48)
        w.byte(version)
        write(op.stamp, to: &w)
        w.varint(op.seq)
        w.byte(op.role.rawValue)
        w.string(op.author)
        switch op.body {
        case let .write(target, field, value, overwrites):
            w.byte(1); write(target, to: &w); w.string(field); write(value, to: &w); write(overwrites, to: &w)
        case let .add(target, removes):
            w.byte(2); write(target, to: &w); write(removes, to: &w)
        case let .remove(target, removes):
            w.byte(3); write(target, to: &w); write(removes, to: &w)
        case let .status(orderID, from, to, seen):
            w.byte(4); w.string(orderID); w.byte(from.rawValue); w.byte(to.rawValue); write(seen, to: &w)
        case let .points(customerID, delta):
            w.byte(5); w.string(customerID); w.signed(delta)
        case let .deleteCustomer(customerID, observed):
            w.byte(6); w.string(customerID); write(observed, to: &w)
        case let .acknowledge(ref, conflictID):
            w.byte(7); w.byte(ref.kind.rawValue); w.string(ref.id); w.string(conflictID)
        case let .tagDeletion(ref, seen):
            w.byte(8); w.byte(ref.kind.rawValue); w.string(ref.id); write(seen, to: &w)
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> Op {
        var r = ByteReader(bytes)
        let v = try r.byte()
        guard v == version else { throw CoreError.malformed(what: "op encoding version \(v) (expected \(version))") }
        let stamp = try readStamp(&r)
        let seq = try r.varint()
        guard let role = Role(rawValue: try r.byte()) else { throw CoreError.malformed(what: "unknown role") }
        let author = try r.string()
        let body: OpBody
        switch try r.byte() {
        case 1:
            body = .write(try readTarget(&r), field: try r.string(), value: try readValue(&r), overwrites: try readStamps(&r))
        case 2:
            body = .add(try readTarget(&r), removes: try readStamps(&r))
        case 3:
            body = .remove(try readTarget(&r), removes: try readStamps(&r))
        case 4:
            let id = try r.string()
            guard let from = OrderStatus(rawValue: try r.byte()), let to = OrderStatus(rawValue: try r.byte()) else {
                throw CoreError.malformed(what: "unknown order status")
            }
            body = .status(orderID: id, from: from, to: to, seen: try readStamps(&r))
        case 5:
            body = .points(customerID: try r.string(), delta: try r.signed())
        case 6:
            body = .deleteCustomer(customerID: try r.string(), observed: try readStamps(&r))
        case 7:
            guard let kind = InstanceKind(rawValue: try r.byte()) else { throw CoreError.malformed(what: "unknown instance kind") }
            body = .acknowledge(InstanceRef(kind, try r.string()), conflictID: try r.string())
        case 8:
            guard let kind = InstanceKind(rawValue: try r.byte()) else { throw CoreError.malformed(what: "unknown instance kind") }
            body = .tagDeletion(InstanceRef(kind, try r.string()), seen: try readStamps(&r))
        case let tag:
            throw CoreError.malformed(what: "unknown op kind \(tag)")
        }
        guard r.isAtEnd else { throw CoreError.malformed(what: "\(r.remaining) trailing bytes after an op") }
        return Op(stamp: stamp, seq: seq, role: role, author: author, body: body)
    }

    static func write(_ s: Stamp, to w: inout ByteWriter) {
        w.varint(s.hlc.raw)
        w.string(s.node)
    }

    static func write(_ list: [Stamp], to w: inout ByteWriter) {
        w.varint(UInt64(list.count))
        for s in list { write(s, to: &w) }
    }

    static func write(_ t: Target, to w: inout ByteWriter) {
        w.byte(t.entity.rawValue)
        w.string(t.id)
        w.string(t.sub)
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

    static func readStamp(_ r: inout ByteReader) throws -> Stamp {
        Stamp(hlc: HLC(raw: try r.varint()), node: try r.string())
    }

    static func readStamps(_ r: inout ByteReader) throws -> [Stamp] {
        // Each stamp takes at least 2 bytes, which bounds the count by the bytes present.
        let n = try r.count(limit: r.remaining / 2)
        var out: [Stamp] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try readStamp(&r)) }
        return out
    }

    static func readTarget(_ r: inout ByteReader) throws -> Target {
        let raw = try r.byte()
        guard let entity = Entity(rawValue: raw) else { throw CoreError.malformed(what: "unknown entity \(raw)") }
        return Target(entity, try r.string(), try r.string())
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
