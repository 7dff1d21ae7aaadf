import Dispatch
import Foundation
import Testing
@testable import SiyuNet
import SiyuTestSupport

@Suite("The event loop")
struct EventLoopTests {
    @Test("Timers fire in deadline order on the injected clock, equal deadlines in the order scheduled")
    func timersInDeadlineOrder() async throws {
        let clock = ManualClock()
        try await withLoop(clock: clock) { loop in
            let fired = Locked<[String]>([])
            try await onLoop(loop) {
                let record: @Sendable (String) -> () -> Void = { name in { fired.withLock { $0.append(name) } } }
                loop.scheduleTimer(after: .milliseconds(30), record("30"))
                loop.scheduleTimer(after: .milliseconds(10), record("10a"))
                let cancelled = loop.scheduleTimer(after: .milliseconds(5), record("cancelled"))
                loop.scheduleTimer(after: .milliseconds(20), record("20"))
                loop.scheduleTimer(after: .milliseconds(10), record("10b"))
                loop.scheduleTimer(after: .seconds(3600), record("hour"))
                #expect(loop.cancelTimer(cancelled))
                #expect(!loop.cancelTimer(cancelled))
            }
            // Real time passes but the loop's clock does not: nothing fires.
            try await Task.sleep(for: .milliseconds(50))
            #expect(fired.value.isEmpty)

            clock.advance(by: .milliseconds(15))
            loop.wakeUp()
            #expect(await waitUntil { fired.value.count == 2 })
            #expect(fired.value == ["10a", "10b"])

            clock.advance(by: .milliseconds(100))
            loop.wakeUp()
            #expect(await waitUntil { fired.value.count == 4 })
            #expect(fired.value == ["10a", "10b", "20", "30"])
            #expect(try await onLoop(loop) { loop.timerCount } == 1)
        }
    }

    @Test("A timer may schedule another; one already due runs in the next turn, not the same pass")
    func timerSchedulesTimer() async throws {
        let clock = ManualClock()
        try await withLoop(clock: clock) { loop in
            let fired = Locked<[Int]>([])
            try await onLoop(loop) {
                _ = loop.scheduleTimer(after: .milliseconds(1)) {
                    fired.withLock { $0.append(1) }
                    loop.scheduleTimer(after: .zero) { fired.withLock { $0.append(2) } }
                }
            }
            clock.advance(by: .milliseconds(1))
            loop.wakeUp()
            #expect(await waitUntil { fired.value == [1, 2] })
        }
    }

    @Test("Timers on the real clock fire after their delay")
    func realClockTimer() async throws {
        try await withLoop { loop in
            let fired = Locked<Deadline?>(nil)
            let start = try await onLoop(loop) { () -> Deadline in
                let start = loop.clock.now()
                loop.scheduleTimer(after: .milliseconds(20)) { fired.withLock { $0 = loop.clock.now() } }
                return start
            }
            #expect(await waitUntil(.seconds(5)) { fired.value != nil })
            #expect(start.nanoseconds(until: fired.value ?? start) >= 20_000_000)
        }
    }

    @Test("Closures from other threads run on the loop thread, in each thread's order")
    func executeFromOtherThreads() async throws {
        try await withLoop { loop in
            let seen = Locked<[Int: [Int]]>([:])
            let offLoop = Locked(0)
            DispatchQueue.concurrentPerform(iterations: 4) { thread in
                for i in 0 ..< 250 {
                    try? loop.execute {
                        if !loop.inEventLoop { offLoop.withLock { $0 += 1 } }
                        seen.withLock { $0[thread, default: []].append(i) }
                    }
                }
            }
            #expect(await waitUntil { seen.value.values.reduce(0) { $0 + $1.count } == 1000 })
            #expect(offLoop.value == 0)
            for thread in 0 ..< 4 { #expect(seen.value[thread] == Array(0 ..< 250)) }
            #expect(!loop.inEventLoop)
        }
    }

    @Test("After stop, work is refused and the loop's thread ends; queued work still runs")
    func stopRefusesWork() async throws {
        let loop = try EventLoop.start()
        let ran = Locked(0)
        for _ in 0 ..< 10 { try loop.execute { ran.withLock { $0 += 1 } } }
        loop.stop()
        #expect(throws: NetError.loopStopped) { try loop.execute {} }
        #expect(loop.waitForStop(timeout: .seconds(5)))
        #expect(ran.value == 10)
        await #expect(throws: NetError.loopStopped) { try await loop.submit { 1 } }
        loop.stop()  // again: nothing happens
    }

    @Test("A registered descriptor's handler hears when it becomes readable, and not after deregistering")
    func registerPipe() async throws {
        try await withLoop { loop in
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
            let (readEnd, writeEnd) = (fds[0], fds[1])
            defer { close(readEnd); close(writeEnd) }
            let events = Locked<[IOEvents]>([])
            let held = Locked<Registration?>(nil)
            try await onLoop(loop) {
                let registration = try loop.register(descriptor: readEnd, interest: .read) { ready in
                    events.withLock { $0.append(ready) }
                    var byte: UInt8 = 0
                    _ = read(readEnd, &byte, 1)
                }
                #expect(loop.registrationCount == 1)
                held.withLock { $0 = registration }
            }
            var byte: UInt8 = 7
            #expect(write(writeEnd, &byte, 1) == 1)
            #expect(await waitUntil { events.value.count == 1 })
            #expect(events.value.first?.contains(.readable) == true)

            try await onLoop(loop) {
                let registration = held.withLock { $0 }!
                loop.deregister(registration)
                loop.deregister(registration)  // idempotent
                #expect(!registration.isRegistered)
                #expect(loop.registrationCount == 0)
            }
            #expect(write(writeEnd, &byte, 1) == 1)
            try await Task.sleep(for: .milliseconds(30))
            #expect(events.value.count == 1)
        }
    }

    @Test("In one turn, background closures and handlers run after the normal handlers, the closures handed in and the timers due")
    func backgroundHandlersRunLast() async throws {
        try await withLoop { loop in
            let pipes = try (0..<2).map { _ in try ReadyPipe() }
            defer { pipes.forEach { $0.close() } }
            let order = Locked<[String]>([])
            try await onLoop(loop) {
                // Both readable before the next turn's wait: it reports both, and the wakeup.
                let background = try loop.register(descriptor: pipes[0].readEnd, interest: .read) { _ in
                    pipes[0].drain()
                    order.withLock { $0.append("background") }
                }
                background.priority = .background
                _ = try loop.register(descriptor: pipes[1].readEnd, interest: .read) { _ in
                    pipes[1].drain()
                    order.withLock { $0.append("normal") }
                }
                try loop.execute {
                    order.withLock { $0.append("closure") }
                    loop.scheduleTimer(after: .zero) { order.withLock { $0.append("timer") } }
                    try? loop.executeInBackground { order.withLock { $0.append("background closure") } }
                }
            }
            #expect(await waitUntil { order.value.count == 5 })
            #expect(order.value == ["normal", "closure", "timer", "background closure", "background"])
        }
    }

    @Test("Background handlers stop for the turn once its budget is spent and run in later turns: none starves")
    func backgroundBudgetDefersTheRest() async throws {
        try await withLoop { loop in
            let pipes = try (0..<3).map { _ in try ReadyPipe() }
            defer { pipes.forEach { $0.close() } }
            let handled = Locked<[Int]>([])
            try await onLoop(loop) {
                loop.backgroundBudget = .zero   // one background handler a turn
                for (i, pipe) in pipes.enumerated() {
                    let registration = try loop.register(descriptor: pipe.readEnd, interest: .read) { _ in
                        pipe.drain()
                        handled.withLock { $0.append(i) }
                    }
                    registration.priority = .background
                }
            }
            #expect(await waitUntil { handled.value.count == 3 })
            #expect(handled.value.sorted() == [0, 1, 2])
            // Three ready at once, one a turn: the first two turns each left the rest for later.
            #expect(try await onLoop(loop) { loop.backgroundDeferrals } == 2)
        }
    }

    @Test("Background closures beyond a turn's budget run in the next turns, in the order given, the loop not sleeping meanwhile")
    func backgroundClosuresCarryOver() async throws {
        try await withLoop { loop in
            let ran = Locked<[Int]>([])
            try await onLoop(loop) {
                loop.backgroundBudget = .zero   // one background closure a turn
                for i in 0..<5 { try loop.executeInBackground { ran.withLock { $0.append(i) } } }
            }
            // Nothing else wakes the loop: each turn after the first runs one closure without waiting.
            #expect(await waitUntil { ran.value.count == 5 })
            #expect(ran.value == [0, 1, 2, 3, 4])
            #expect(try await onLoop(loop) { loop.backgroundDeferrals } >= 4)
        }
    }

    @Test("run() on a loop stopped before it ran returns at once")
    func stopBeforeRun() throws {
        let loop = try EventLoop()
        loop.stop()
        try loop.run()
        #expect(loop.waitForStop(timeout: .seconds(1)))
    }
}

@Suite("Signals")
struct SignalTests {
    @Test("A watched signal runs the last work on the loop thread and stops the loop instead of killing the process")
    func signalStopsLoop() async throws {
        let loop = try EventLoop.start()
        let seen = Locked<(ProcessSignal, Bool)?>(nil)
        let watcher = SignalWatcher([.user2], loop: loop) { signal in
            seen.withLock { $0 = (signal, loop.inEventLoop) }
        }
        defer { watcher.cancel(); loop.stop(); loop.waitForStop(timeout: .seconds(5)) }
        // Dispatch installs its handler asynchronously; until then the signal is ignored. So
        // signal again until the loop stops (at most 5 s).
        var stopped = false
        for _ in 0 ..< 250 where !stopped {
            kill(getpid(), ProcessSignal.user2.rawValue)
            stopped = loop.waitForStop(timeout: .milliseconds(20))
        }
        #expect(stopped)
        #expect(seen.value?.0 == .user2)
        #expect(seen.value?.1 == true)
    }
}
