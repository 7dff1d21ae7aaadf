import Testing
import SiyuCore

/// `Varint` and `ClockDelta`: the one varint reader and clock-delta coder the op log and the wire share.
@Suite struct VarintTests {
    @Test func varintsRoundTripAtEveryLengthFedByteByByte() {
        for value: UInt64 in [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 35, 1 << 56, 1 << 63, .max] {
            var bytes: [UInt8] = []
            Varint.write(value, to: &bytes)
            #expect(bytes.count == max(1, (64 - value.leadingZeroBitCount + 6) / 7))
            // Every prefix short of the whole is truncated, and reading stops at `end`.
            for cut in 0..<bytes.count {
                var offset = 0
                #expect(Varint.read(bytes, at: &offset, end: cut) == .failure(.truncated))
                #expect(offset == cut)
            }
            var offset = 0
            #expect(Varint.read(bytes + [0xFF], at: &offset, end: bytes.count) == .success(value))
            #expect(offset == bytes.count)
        }
    }

    @Test func aVarintPast64BitsOrLongerThanTenBytesIsTooLong() {
        let past64 = [UInt8](repeating: 0xFF, count: 9) + [0x02]   // a tenth byte above 1
        var offset = 0
        #expect(Varint.read(past64, at: &offset, end: past64.count) == .failure(.tooLong))
        let eleven = [UInt8](repeating: 0x80, count: 10) + [0x00]
        offset = 0
        #expect(Varint.read(eleven, at: &offset, end: eleven.count) == .failure(.tooLong))
        var reader = ByteReader(past64)
        #expect(throws: CoreError.self) { try reader.varint() }
    }

    @Test func zigzagMapsSmallSignedNumbersToSmallUnsignedOnes() {
        #expect([0, -1, 1, -2, 2, Int64.min, Int64.max].map(Varint.zigzag) == [0, 1, 2, 3, 4, .max, .max - 1])
        for v: Int64 in [0, -1, 1, -300, 300, .min, .max] { #expect(Varint.unzigzag(Varint.zigzag(v)) == v) }
    }

    @Test func aClockDeltaHeadIsTheZigzaggedMillisApartShiftedWithALogicalBit() {
        #expect(ClockDelta.head(millisApart: 0, hasLogical: false) == 0)
        #expect(ClockDelta.head(millisApart: -1, hasLogical: true) == 3)
        #expect(ClockDelta.head(millisApart: 5, hasLogical: false) == 20)
        for (apart, logical): (Int64, Bool) in [(0, false), (-1, true), (86_400_000, true), (-(1 << 47), false)] {
            let split = ClockDelta.split(ClockDelta.head(millisApart: apart, hasLogical: logical))
            #expect(split.millisApart == apart && split.hasLogical == logical)
        }
    }

    @Test func aClockMovedOutside48BitsOrALogicalCounterOf0IsRefused() {
        #expect(ClockDelta.millis(10, movedBy: -10) == 0)
        #expect(ClockDelta.millis(10, movedBy: -11) == nil)
        #expect(ClockDelta.millis((1 << 48) - 1, movedBy: 1) == nil)
        #expect(ClockDelta.millis(1, movedBy: .max) == nil)
        #expect(ClockDelta.logical(0) == nil)
        #expect(ClockDelta.logical(65_535) == 65_535)
        #expect(ClockDelta.logical(65_536) == nil)
    }

    @Test func writingAClockAgainstAReferenceIsItsHeadThenItsLogicalCounter() {
        var w = ByteWriter()
        ClockDelta.write(HLC(millis: 1_000, logical: 7), against: HLC(millis: 1_005, logical: 0), to: &w)
        #expect(w.bytes == [19, 7])   // apart −5 → zigzag 9 → head 9 << 1 | 1
    }
}
