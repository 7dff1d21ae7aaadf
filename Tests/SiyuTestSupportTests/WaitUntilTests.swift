import Testing
import SiyuTestSupport

/// What `waitUntil` promises: it returns as soon as the condition holds, gives up after the
/// timeout with false (having asked once more), and passes on what the condition throws.
@Suite struct WaitUntilTests {
    struct Thrown: Error {}

    @Test func itReturnsTrueAtTheFirstPollThatHolds() async {
        var polls = 0
        #expect(await waitUntil(.seconds(3600), every: .milliseconds(1)) { polls += 1; return true })
        #expect(polls == 1)
        var later = 0
        #expect(await waitUntil(.seconds(3600), every: .milliseconds(1)) { later += 1; return later == 3 })
        #expect(later == 3)
    }

    @Test func itReturnsFalseWhenTheConditionDoesNotHoldByTheTimeout() async {
        var polls = 0
        #expect(await waitUntil(.zero) { polls += 1; return false } == false)
        #expect(polls == 1)
    }

    @Test func whatTheConditionThrowsIsRethrown() async {
        await #expect(throws: Thrown.self) { try await waitUntil(.seconds(3600)) { throw Thrown() } }
    }
}
