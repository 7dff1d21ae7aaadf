import Testing
@testable import SiyuCore

@Suite struct ClockTests {
    @Test func ticksStrictlyIncreaseEvenWhenWallTimeStandsStillOrGoesBack() {
        var clock = HybridClock()
        var last = HLC.zero
        for wall: UInt64 in [1000, 1000, 1000, 999, 500, 1001, 1001] {
            let t = clock.tick(wallMillis: wall)
            #expect(t > last)
            last = t
        }
        #expect(last.millis == 1001 && last.logical == 1)
    }

    @Test func logicalOverflowCarriesIntoMillis() {
        var clock = HybridClock(last: HLC(millis: 7, logical: .max))
        #expect(clock.tick(wallMillis: 7) == HLC(millis: 8, logical: 0))
    }

    @Test func observingARemoteClockOrdersLaterLocalEventsAfterIt() throws {
        var clock = HybridClock()
        _ = clock.tick(wallMillis: 1000)
        let remote = HLC(millis: 5000, logical: 3)
        try clock.check(remote, from: "xihu", wallMillis: 1000)
        clock.observe(remote)
        #expect(clock.tick(wallMillis: 1000) > remote)
    }

    @Test func aRemoteClockTooFarAheadIsRefusedWithAClearError() {
        let clock = HybridClock(maxDriftMillis: 300_000)
        #expect(throws: CoreError.self) { try clock.check(HLC(millis: 1000 + 300_001, logical: 0), from: "xihu", wallMillis: 1000) }
        #expect(throws: Never.self) { try clock.check(HLC(millis: 1000 + 300_000, logical: 0), from: "xihu", wallMillis: 1000) }
        do { try clock.check(HLC(millis: 901_000, logical: 0), from: "xihu", wallMillis: 1000) } catch {
            #expect("\(error)".contains("xihu") && "\(error)".contains("900 s ahead"))
        }
    }

    @Test func stampsOrderByClockThenNode() {
        let a = Stamp(hlc: HLC(raw: 5), node: "b"), b = Stamp(hlc: HLC(raw: 5), node: "c"), c = Stamp(hlc: HLC(raw: 6), node: "a")
        #expect(a < b && b < c && [c, a, b].sorted() == [a, b, c])
    }
}

@Suite struct OrderStatusTests {
    @Test func theLatticeJoinIsOrderIndependent() {
        let cases: [([OrderStatus], OrderStatus)] = [
            ([.draft, .placed], .placed), ([.placed, .cancelled], .cancelled), ([.cancelled, .paid], .paid),
            ([.paid, .fulfilled, .cancelled], .fulfilled), ([.completed, .refunded], .refunded), ([.draft], .draft),
        ]
        for (input, expected) in cases {
            #expect(OrderStatus.merge(input) == expected)
            #expect(OrderStatus.merge(input.reversed()) == expected)
        }
    }

    @Test func localMovesFollowTheRules() {
        #expect(OrderStatus.draft.canMove(to: .placed) && OrderStatus.placed.canMove(to: .paid))
        #expect(OrderStatus.draft.canMove(to: .paid))
        #expect(!OrderStatus.placed.canMove(to: .fulfilled))        // not without payment
        #expect(!OrderStatus.paid.canMove(to: .cancelled) && OrderStatus.paid.canMove(to: .refunded))
        #expect(!OrderStatus.placed.canMove(to: .refunded) && !OrderStatus.cancelled.canMove(to: .placed))
        #expect(!OrderStatus.paid.canMove(to: .placed))
    }
}
