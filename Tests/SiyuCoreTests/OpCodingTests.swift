import Testing
@testable import SiyuCore

@Suite struct OpCodingTests {
    static func sample() -> [Op] {
        let s = Stamp(hlc: HLC(millis: 1_764_000_000_000, logical: 3), node: "西湖店")
        let t = Target(.followRelation, "wm_林", "chenjing")
        return [
            Op(stamp: s, seq: 1, role: .store, author: "陈静", body: .write(t, field: "remark", value: .text("林姐"), overwrites: [s, s])),
            Op(stamp: s, seq: 2, role: .hq, author: "", body: .write(t, field: "add_way", value: .int(-5), overwrites: [])),
            Op(stamp: s, seq: 3, role: .hq, author: "", body: .write(t, field: "x", value: .bytes([0, 255]), overwrites: [])),
            Op(stamp: s, seq: 4, role: .hq, author: "", body: .write(t, field: "x", value: .bool(true), overwrites: [])),
            Op(stamp: s, seq: 5, role: .hq, author: "", body: .write(t, field: "x", value: .null, overwrites: [])),
            Op(stamp: s, seq: 6, role: .store, author: "a", body: .add(Target(.customerTag, "c", "t"), removes: [s])),
            Op(stamp: s, seq: 7, role: .store, author: "a", body: .remove(Target(.groupMember, "g", "m"), removes: [s])),
            Op(stamp: s, seq: 8, role: .store, author: "a", body: .status(orderID: "o", from: .placed, to: .paid, seen: [s])),
            Op(stamp: s, seq: UInt64.max, role: .hq, author: "a", body: .points(customerID: "c", delta: Int64.min)),
            Op(stamp: s, seq: 10, role: .hq, author: "a", body: .deleteCustomer(customerID: "c", observed: [])),
            Op(stamp: s, seq: 11, role: .hq, author: "a", body: .acknowledge(InstanceRef(.order, "o"), conflictID: "abc")),
            Op(stamp: s, seq: 12, role: .hq, author: "a", body: .tagDeletion(InstanceRef(.tag, "t"), seen: [s, s])),
        ]
    }

    @Test func everyOpKindRoundTrips() throws {
        for op in OpCodingTests.sample() {
            #expect(try OpCoding.decode(OpCoding.encode(op)) == op)
            #expect(try OpCoding.decode(OpCoding.encode(op), keys: OpKeys(of: op)) == op)
        }
    }

    /// Version 2 leaves out the keys the op log stores in columns, and ids and stamps that equal
    /// them; stamps of other nodes and clocks, ids of other instances, still round-trip.
    @Test func theKeyedEncodingRoundTripsAndIsSmaller() throws {
        let own = Stamp(hlc: HLC(millis: 1_764_000_000_000, logical: 0), node: "xihu")
        let other = Stamp(hlc: HLC(millis: 1_764_086_400_000, logical: 9), node: "总部")
        let id = "wmQm7wCAAALH_ae5_6UmhOB4SStrZ9vA"
        let ops = OpCodingTests.sample() + [
            Op(stamp: other, seq: 40, role: .store, author: "chenjing", body: .remove(Target(.customerTag, id, "et_vip"), removes: [own, other])),
            Op(stamp: own, seq: 41, role: .store, author: "chenjing", body: .write(Target(.followRelation, id, "chenjing"), field: "remark",
                                                                                  value: .text(id), overwrites: [other])),
            Op(stamp: own, seq: 42, role: .hq, author: "", body: .acknowledge(InstanceRef(.customer, id), conflictID: id)),
        ]
        for op in ops {
            let keys = OpKeys(of: op)
            let keyed = OpCoding.encode(op, keyedBy: keys)
            #expect(try OpCoding.decode(keyed, keys: keys) == op)
            #expect(keyed.count < OpCoding.encode(op).count)
            #expect(throws: CoreError.self) { try OpCoding.decode(keyed) }   // the keys are needed
            // An unknown version byte is refused, with keys or without.
            for version: UInt8 in [0, 3, 0xff] {
                #expect(throws: CoreError.self) { try OpCoding.decode([version] + keyed.dropFirst(), keys: keys) }
                #expect(throws: CoreError.self) { try OpCoding.decode([version] + keyed.dropFirst()) }
            }
            // A row whose op names another instance than the row's key is refused.
            let elsewhere = OpKeys(origin: keys.origin, seq: keys.seq, hlc: keys.hlc, instanceID: keys.instanceID + "x")
            #expect(throws: CoreError.self) { try OpCoding.decode(OpCoding.encode(op, keyedBy: elsewhere), keys: elsewhere) }
        }
        // A clerk's tag remove naming the add of the same node an hour earlier: 27 bytes, of which
        // 4 are the hour and 1 the node (version 1: 83).
        let later = Stamp(hlc: HLC(millis: own.hlc.millis + 3_600_000, logical: 0), node: "xihu")
        let remove = Op(stamp: later, seq: 43, role: .store, author: "chenjing", body: .remove(Target(.customerTag, id, "et_vip"), removes: [own]))
        #expect(OpCoding.encode(remove, keyedBy: OpKeys(of: remove)).count == 27)
        #expect(OpCoding.encode(remove).count == 83)
    }

    @Test func truncatedOrCorruptedBytesGiveErrorsNeverTraps() {
        var rng = SeededRandom(seed: 11)
        for op in OpCodingTests.sample() {
            let keys = OpKeys(of: op)
            for (bytes, k) in [(OpCoding.encode(op), nil), (OpCoding.encode(op, keyedBy: keys), keys)] {
                for cut in 0..<bytes.count {
                    #expect(throws: CoreError.self) { try OpCoding.decode(Array(bytes.prefix(cut)), keys: k) }
                }
                for _ in 0..<200 {
                    var b = bytes
                    b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
                    _ = try? OpCoding.decode(b, keys: k)          // any outcome but a trap
                }
            }
        }
        #expect(throws: CoreError.self) { try OpCoding.decode([1] + [UInt8](repeating: 0xff, count: 11)) }
    }

    @Test func varintsAndSignedValuesRoundTripAtTheExtremes() throws {
        var w = ByteWriter()
        let values: [UInt64] = [0, 1, 127, 128, 16383, 16384, UInt64(UInt32.max), UInt64.max]
        for v in values { w.varint(v) }
        for v: Int64 in [0, -1, 1, Int64.min, Int64.max] { w.signed(v) }
        var r = ByteReader(w.bytes)
        for v in values { #expect(try r.varint() == v) }
        for v: Int64 in [0, -1, 1, Int64.min, Int64.max] { #expect(try r.signed() == v) }
        #expect(r.isAtEnd)
    }
}

@Suite struct IdentifierRuleTests {
    @Test func idsMustBeNFCSoMemoryAndSQLiteAgreeOnIdentity() throws {
        #expect(throws: Never.self) { try IdentifierRule.validate("caf\u{e9}", as: "customer id") }
        #expect(throws: CoreError.self) { try IdentifierRule.validate("cafe\u{301}", as: "customer id") }
        #expect(throws: CoreError.self) { try IdentifierRule.validate("", as: "customer id") }
        #expect(throws: CoreError.self) { try IdentifierRule.validate("a\u{0}b", as: "customer id") }
        #expect(throws: CoreError.self) { try IdentifierRule.validate(String(repeating: "林", count: 65), as: "customer id") }
    }
}
