import Testing
import SiyuTestSupport

/// What `waitUntil` promises: it returns as soon as the condition holds, gives up after the
/// timeout with false, and passes on what the condition throws.
@Suite struct WaitUntilTests {
    struct Thrown: Error {}

    @Test func itReturnsTrueOnceTheConditionHolds() async {
        var polls = 0
        let held = await waitUntil(.seconds(60), every: .milliseconds(1)) { polls += 1; return polls == 3 }
        #expect(held && polls == 3)
    }

    @Test func itReturnsFalseWhenTheConditionNeverHoldsWithinTheTimeout() async {
        var polls = 0
        let held = await waitUntil(.milliseconds(30), every: .milliseconds(5)) { polls += 1; return false }
        #expect(!held && polls >= 2)
    }

    @Test func whatTheConditionThrowsIsRethrown() async {
        await #expect(throws: Thrown.self) { try await waitUntil(.seconds(60)) { throw Thrown() } }
    }
}
