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
        }
    }

    @Test func truncatedOrCorruptedBytesGiveErrorsNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        for op in OpCodingTests.sample() {
            let bytes = OpCoding.encode(op)
            for cut in 0..<bytes.count {
                #expect(throws: CoreError.self) { try OpCoding.decode(Array(bytes.prefix(cut))) }
            }
            for _ in 0..<200 {
                var b = bytes
                b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                _ = try? OpCoding.decode(b)          // any outcome but a trap
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
