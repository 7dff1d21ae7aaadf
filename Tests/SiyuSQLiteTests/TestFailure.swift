/// A distinct error type, so tests can check that the original error is rethrown.
struct TestFailure: Error, Equatable {
    let reason: String
}
