import Testing
import SiyuTestSupport

/// A test's wall clock moves only when the test moves it.
@Suite struct WallClockTests {
    @Test func itStartsAtTheSharedStartAndMovesOnlyWhenMoved() {
        let clock = WallClock()
        #expect(clock.now == WallClock.start && clock.now == 1_764_000_000_000)
        clock.advance()
        clock.advance(9)
        #expect(clock.now == WallClock.start + 10)
        clock.now += 5
        #expect(clock.now == WallClock.start + 15)
        #expect(WallClock(now: 7).now == 7)
    }
}
