import Testing
import SiyuCore
import SiyuStore

/// Numbers a peer hands to the sync API (an acknowledged sequence number, a version vector) may be
/// anything a varint holds: none traps, and a number past every op means "nothing more".
@Suite struct PeerNumbersTests {
    @Test func anAcknowledgementOfTwoToThe64MinusOneLeavesAnEmptyOutbox() throws {
        let c = try Cluster()
        try c["hq"].createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        #expect(try c["hq"].outbox(after: UInt64.max).isEmpty)
        #expect(try c["hq"].outbox(after: 0).count == 1)
    }

    @Test func aVersionVectorEntryPastTwoToThe63MeansThePeerHoldsEverythingOfThatOrigin() throws {
        let c = try Cluster()
        try c["hq"].createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        try c["xihu"].apply(try c["hq"].changeSet(since: VersionVector()))
        try c["xihu"].createCustomer("c2", ["name": .text("周子豪")], by: "chenjing")
        let huge = VersionVector(["hq": UInt64.max, "xihu": UInt64(1) << 63])
        #expect(try c["xihu"].changeSet(since: huge).ops.isEmpty)
        #expect(try c["xihu"].changeSet(since: VersionVector(["hq": UInt64.max])).ops.map(\.origin) == ["xihu"])
    }
}
