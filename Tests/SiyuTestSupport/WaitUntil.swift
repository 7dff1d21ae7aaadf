/// Polls `condition` every `interval` until it holds or `timeout` has passed, sleeping between
/// polls without holding a thread (tests run side by side on a small pool), on the caller's actor.
/// Returns whether it held; after the timeout (or when the task is cancelled) it is asked once more.
/// So every wait of a test is bounded, and a slow machine only makes it wait longer, never fail sooner.
public func waitUntil(_ timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(2),
                      isolation: isolated (any Actor)? = #isolation,
                      _ condition: () throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let end = clock.now.advanced(by: timeout)
    while clock.now < end {
        if try condition() { return true }
        try? await Task.sleep(for: interval)
        if Task.isCancelled { break }
    }
    return try condition()
}
