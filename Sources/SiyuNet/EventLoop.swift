import Foundation
import CSiyuNet
import Glibc

/// What a registration wants to hear about.
public struct Interest: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Bytes to read, a connection to accept, or the peer closed its side.
    public static let read = Interest(rawValue: 1)
    /// Room to write, or a non-blocking connect finished.
    public static let write = Interest(rawValue: 2)
}

/// What epoll reported for a descriptor. `hangup` and `error` come whatever the interest.
public struct IOEvents: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let readable = IOEvents(rawValue: 1)
    public static let writable = IOEvents(rawValue: 2)
    /// The peer shut down its sending side (EPOLLRDHUP): reads will soon return end of stream.
    public static let readHangup = IOEvents(rawValue: 4)
    /// Both directions are shut (EPOLLHUP).
    public static let hangup = IOEvents(rawValue: 8)
    /// The socket has a pending error (EPOLLERR).
    public static let error = IOEvents(rawValue: 16)

    init(epoll events: UInt32) {
        var set: IOEvents = []
        if events & LinuxConstants.epollIn != 0 { set.insert(.readable) }
        if events & LinuxConstants.epollOut != 0 { set.insert(.writable) }
        if events & LinuxConstants.epollRDHup != 0 { set.insert(.readHangup) }
        if events & LinuxConstants.epollHup != 0 { set.insert(.hangup) }
        if events & LinuxConstants.epollErr != 0 { set.insert(.error) }
        self = set
    }
}

/// When a ready descriptor's handler runs within a turn of its loop.
public enum Priority: Sendable {
    /// At once, in the order epoll reported.
    case normal
    /// After the turn's normal handlers, closures and timers, and only for as long as
    /// `EventLoop.backgroundBudget` allows: what is left waits for the next turn (epoll reports it
    /// again). For work a peer can make in bulk — accepting connections, handshakes not yet
    /// authenticated — so it never sits between a known peer and its answer for more than a budget.
    case background
}

/// A descriptor registered with an event loop, and the handler its events go to. Returned by
/// `EventLoop.register`; change it only through the loop, on the loop's thread. The loop keeps the
/// registration (and so its handler and whatever the handler captures) alive until `deregister`.
public final class Registration {
    /// The registered descriptor. The registration does not own it: deregister before closing it.
    public let descriptor: Int32
    /// The current interest.
    public internal(set) var interest: Interest
    /// When its handler runs in a turn (loop thread only; takes effect from the next event).
    public var priority: Priority = .normal
    /// False once deregistered (or the loop stopped).
    public internal(set) var isRegistered = true

    let id: UInt64
    var handler: ((IOEvents) -> Void)?
    var onLoopStop: (() -> Void)?

    init(id: UInt64, descriptor: Int32, interest: Interest, handler: @escaping (IOEvents) -> Void, onLoopStop: (() -> Void)?) {
        self.id = id
        self.descriptor = descriptor
        self.interest = interest
        self.handler = handler
        self.onLoopStop = onLoopStop
    }

    var epollEvents: UInt32 {
        var events: UInt32 = 0
        if interest.contains(.read) { events |= LinuxConstants.epollIn | LinuxConstants.epollRDHup }
        if interest.contains(.write) { events |= LinuxConstants.epollOut }
        return events
    }
}

/// One thread, one epoll instance: it waits for descriptors to be ready, runs their handlers, runs
/// closures other threads hand it, and fires timers. Every socket of SiyuNet belongs to one loop and
/// is used only on its thread, so nothing in a loop's world needs a lock — the hub owns its replica
/// on this thread (the single writer). There is no thread per connection.
///
/// **Threads.** The loop thread is the one inside `run()` (or the one `start()` made). From any
/// thread: `execute(_:)`, `submit(_:)`, `stop()`, `waitForStop(timeout:)`, `wakeUp()`, `inEventLoop`,
/// `clock`. Everything else — registrations, timers, and every method of the listeners and
/// connections on this loop — only on the loop thread (checked: a call from another thread traps),
/// or while the loop is not running (before `run()`, after it returned), when the caller is the only
/// thread using it.
///
/// **Order in one turn of the loop:** handlers of ready descriptors of `.normal` priority, then the
/// closures from `execute` (in the order given), then deferred work of this loop's own objects, then
/// the timers that are due (earliest deadline first; equal deadlines in the order scheduled), then
/// the closures from `executeInBackground` (in the order given) and the handlers of ready
/// `.background` descriptors in the order epoll reported them, until `backgroundBudget` is spent
/// (at least one a turn); the rest wait for the next turn (every registration is level-triggered:
/// epoll reports it again), so none starves while its loop turns.
///
/// **Stopping.** `stop()` ends the current turn; closures already handed to `execute` still run,
/// later ones are refused (`NetError.loopStopped`); every registration's owner is told to close
/// (listeners and connections close their sockets, connections report `.closed(.loopStopped)`);
/// pending timers are dropped. A loop runs once: it cannot be restarted.
public final class EventLoop: @unchecked Sendable {
    private enum State { case idle, running, stopping, shuttingDown, finished }

    /// The clock the timers read.
    public let clock: any MonotonicClock

    private let epoll: OwnedDescriptor
    private let wake: OwnedDescriptor
    private let maxEventsPerWait = 256
    /// Where connections of this loop receive bytes before copying out what arrived (one buffer for
    /// all: only the loop thread reads).
    let readScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)

    // Shared between threads: guarded by `condition`.
    private let condition = NSCondition()
    private var state = State.idle
    private var loopThread: pthread_t?
    private var tasks: [@Sendable () -> Void] = []
    private var backgroundTasks: [@Sendable () -> Void] = []
    private var wakePending = false
    private var runError: NetError?

    // The loop thread's own.
    private var registrations: [UInt64: Registration] = [:]
    private var nextRegistrationID: UInt64 = 1
    private var timers = TimerQueue()
    private var deferred: [() -> Void] = []
    /// Background closures moved over from `backgroundTasks`, not yet run (`runBackground`).
    private var backgroundQueue: [@Sendable () -> Void] = []
    /// Background events of this turn, handled after everything else (`runBackground`).
    private var backgroundReady: [(id: UInt64, events: UInt32)] = []
    /// How long one turn runs background handlers (wall time; at least one handler runs). Loop
    /// thread, or before the loop runs.
    public var backgroundBudget: Duration = .milliseconds(1)
    /// Turns that left background events for the next (for tests and the bench).
    public private(set) var backgroundDeferrals = 0

    /// A loop that does not run yet: call `run()` on the thread that should be its thread, or use
    /// `start(name:clock:)`. `clock` defaults to CLOCK_MONOTONIC.
    public init(clock: any MonotonicClock = SystemClock()) throws(NetError) {
        self.clock = clock
        guard let epollFD = try syscall("epoll_create1", { epoll_create1(LinuxConstants.epollCloexec) }).value else {
            throw NetError.systemCall(call: "epoll_create1", errno: EAGAIN, context: "")
        }
        epoll = OwnedDescriptor(epollFD)
        guard let wakeFD = try syscall("eventfd", { eventfd(0, LinuxConstants.eventFDCloexec | LinuxConstants.eventFDNonBlock) }).value else {
            throw NetError.systemCall(call: "eventfd", errno: EAGAIN, context: "")
        }
        wake = OwnedDescriptor(wakeFD)
        try control(LinuxConstants.epollCtlAdd, descriptor: wakeFD, events: LinuxConstants.epollIn, data: 0)
    }

    deinit { readScratch.deallocate() }

    /// A loop running on a new thread, returned once that thread is in `run()`.
    public static func start(name: String = "siyu-net", clock: any MonotonicClock = SystemClock()) throws(NetError) -> EventLoop {
        let loop = try EventLoop(clock: clock)
        let thread = Thread {
            do { try loop.run() } catch { /* recorded in runError by run() */ }
        }
        thread.name = name
        thread.start()
        loop.condition.lock()
        while loop.state == .idle { loop.condition.wait() }
        loop.condition.unlock()
        return loop
    }

    /// Runs the loop on the calling thread until `stop()`. Throws only if epoll itself fails (the
    /// loop is then shut down as by `stop()`); returns at once if the loop was stopped before it ran.
    public func run() throws(NetError) {
        condition.lock()
        guard state == .idle else {
            let finished = state == .finished
            condition.unlock()
            precondition(finished, "EventLoop.run() called on a loop that is already running")
            return
        }
        state = .running
        loopThread = pthread_self()
        condition.broadcast()
        condition.unlock()

        let buffer = UnsafeMutablePointer<epoll_event>.allocate(capacity: maxEventsPerWait)
        defer { buffer.deallocate() }
        var failure: NetError?
        do {
            while try turn(buffer) {}
        } catch {
            failure = error
        }
        shutDown(failure)
        if let failure { throw failure }
    }

    /// Asks the loop to stop after its current turn. Any thread; returns at once (see
    /// `waitForStop(timeout:)`). Stopping a loop that never ran makes its `run()` return at once.
    public func stop() {
        condition.lock()
        switch state {
        case .idle: state = .finished; condition.broadcast()
        case .running: state = .stopping
        case .stopping, .shuttingDown, .finished: break
        }
        condition.unlock()
        signalWake(force: true)
    }

    /// Waits until the loop has stopped and closed its sockets; false if `timeout` passed first.
    @discardableResult
    public func waitForStop(timeout: Duration) -> Bool {
        let end = Date().addingTimeInterval(Double(timeout.nanosecondsClamped) / 1e9)
        condition.lock()
        defer { condition.unlock() }
        while state != .finished {
            if !condition.wait(until: end) { return state == .finished }
        }
        return true
    }

    /// Why `run()` ended, if epoll failed.
    public var failure: NetError? { condition.withLock { runError } }

    /// Whether the caller is the loop's thread.
    public var inEventLoop: Bool {
        condition.withLock { loopThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    /// Runs `work` on the loop thread, after the current turn's events. Any thread. Throws
    /// `NetError.loopStopped` once `stop()` was called (the closure is then not run).
    public func execute(_ work: @escaping @Sendable () -> Void) throws(NetError) {
        try enqueue(work, background: false)
    }

    /// Runs `work` on the loop thread in the background part of a turn (`Priority.background`):
    /// after everything else, under the turn's background budget, in the order given. Any thread.
    /// For the rest of work a peer started in the background (a handshake's answer from another
    /// thread). Throws `NetError.loopStopped` once `stop()` was called.
    public func executeInBackground(_ work: @escaping @Sendable () -> Void) throws(NetError) {
        try enqueue(work, background: true)
    }

    /// Hands `work` to the loop's closures of that priority and wakes it.
    private func enqueue(_ work: @escaping @Sendable () -> Void, background: Bool) throws(NetError) {
        condition.lock()
        guard state == .idle || state == .running else {
            condition.unlock()
            throw NetError.loopStopped
        }
        if background { backgroundTasks.append(work) } else { tasks.append(work) }
        condition.unlock()
        signalWake(force: false)
    }

    /// Runs `work` on the loop thread and returns its result. Any thread but the loop's own (it
    /// would wait for itself).
    public func submit<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            do {
                try execute {
                    do { continuation.resume(returning: try work()) } catch { continuation.resume(throwing: error) }
                }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Makes the loop look at its clock again now (after a `ManualClock` moved). Any thread.
    public func wakeUp() { signalWake(force: true) }

    // MARK: registrations (loop thread)

    /// Registers `descriptor` for `interest`; `handler` gets its events on the loop thread.
    /// `onLoopStop` is called if the loop stops while the descriptor is registered: close it there.
    public func register(descriptor: Int32, interest: Interest, onLoopStop: (() -> Void)? = nil,
                         handler: @escaping (IOEvents) -> Void) throws(NetError) -> Registration {
        preconditionInEventLoop()
        guard acceptsRegistrations else { throw NetError.loopStopped }
        let registration = Registration(id: nextRegistrationID, descriptor: descriptor, interest: interest,
                                        handler: handler, onLoopStop: onLoopStop)
        nextRegistrationID += 1
        try control(LinuxConstants.epollCtlAdd, descriptor: descriptor, events: registration.epollEvents, data: registration.id)
        registrations[registration.id] = registration
        return registration
    }

    /// Changes what a registration waits for (a no-op if unchanged or deregistered).
    public func setInterest(_ interest: Interest, for registration: Registration) throws(NetError) {
        preconditionInEventLoop()
        guard registration.isRegistered, registration.interest != interest else { return }
        let previous = registration.interest
        registration.interest = interest
        do {
            try control(LinuxConstants.epollCtlMod, descriptor: registration.descriptor, events: registration.epollEvents, data: registration.id)
        } catch {
            registration.interest = previous
            throw error
        }
    }

    /// Removes a registration: no more events reach its handler, even ones already collected in
    /// this turn. Call it before closing the descriptor. Idempotent.
    public func deregister(_ registration: Registration) {
        preconditionInEventLoop()
        guard registration.isRegistered else { return }
        registration.isRegistered = false
        registrations[registration.id] = nil
        // Fails only if the descriptor was closed first, which removed it from epoll anyway.
        try? control(LinuxConstants.epollCtlDel, descriptor: registration.descriptor, events: 0, data: registration.id)
        registration.handler = nil
        registration.onLoopStop = nil
    }

    /// How many descriptors are registered (the loop's own wakeup descriptor not counted).
    public var registrationCount: Int {
        preconditionInEventLoop()
        return registrations.count
    }

    // MARK: timers (loop thread)

    /// Runs `body` on the loop thread once the clock reaches `deadline`.
    @discardableResult
    public func scheduleTimer(at deadline: Deadline, _ body: @escaping () -> Void) -> TimerHandle {
        preconditionInEventLoop()
        return timers.schedule(at: deadline, body)
    }

    /// Runs `body` on the loop thread after `delay` (from now on the loop's clock).
    @discardableResult
    public func scheduleTimer(after delay: Duration, _ body: @escaping () -> Void) -> TimerHandle {
        scheduleTimer(at: clock.now().advanced(by: delay), body)
    }

    /// Cancels a timer; false if it already fired or was cancelled.
    @discardableResult
    public func cancelTimer(_ handle: TimerHandle) -> Bool {
        preconditionInEventLoop()
        return timers.cancel(handle)
    }

    /// How many timers are pending.
    public var timerCount: Int {
        preconditionInEventLoop()
        return timers.count
    }

    // MARK: internals

    /// Traps unless the caller may use the loop's single-threaded API (see the type's comment).
    func preconditionInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        condition.lock()
        let allowed: Bool
        switch state {
        case .idle, .finished: allowed = loopThread.map { pthread_equal($0, pthread_self()) != 0 } ?? true
        case .running, .stopping, .shuttingDown: allowed = loopThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
        }
        condition.unlock()
        precondition(allowed, "SiyuNet: this must be called on the event loop's thread (use EventLoop.execute)", file: file, line: line)
    }

    /// Runs `work` on the loop thread later in this turn, or in the next: never from inside the
    /// caller. The objects of a loop use it to report events without re-entering their caller.
    func deferWork(_ work: @escaping () -> Void) {
        preconditionInEventLoop()
        deferred.append(work)
    }

    private var acceptsRegistrations: Bool {
        condition.withLock { state == .idle || state == .running }
    }

    private func control(_ operation: Int32, descriptor: Int32, events: UInt32, data: UInt64) throws(NetError) {
        let epollFD = try epoll.get("event loop")
        var event = epoll_event()
        event.events = events
        event.data.u64 = data
        _ = try syscall("epoll_ctl", context: "descriptor \(descriptor)") { epoll_ctl(epollFD, operation, descriptor, &event) }
    }

    private func signalWake(force: Bool) {
        condition.lock()
        let needed = force || !wakePending
        wakePending = true
        // Written under the lock: the descriptor is closed only in deinit, but keeping the write inside
        // the lock also keeps the eventfd's counter from being written by many threads at once.
        if needed, let wakeFD = wake.rawValue {
            var one: UInt64 = 1
            _ = try? syscall("write(eventfd)") { Glibc.write(wakeFD, &one, 8) }
        }
        condition.unlock()
    }

    private func drainWake() {
        guard let wakeFD = wake.rawValue else { return }
        var count: UInt64 = 0
        _ = try? syscall("read(eventfd)") { Glibc.read(wakeFD, &count, 8) }
    }

    /// One turn: wait, dispatch events, run tasks and timers. False when the loop should stop.
    private func turn(_ buffer: UnsafeMutablePointer<epoll_event>) throws(NetError) -> Bool {
        let epollFD = try epoll.get("event loop")
        let timeout = waitTimeout()
        let maxEvents = Int32(maxEventsPerWait)
        let ready = try syscall("epoll_wait") { epoll_wait(epollFD, buffer, maxEvents, timeout) }.value ?? 0
        for index in 0 ..< Int(max(0, min(ready, maxEvents))) {
            let events = buffer[index].events
            let data = buffer[index].data.u64
            if data == 0 {
                drainWake()
            } else if let registration = registrations[data], let handler = registration.handler {
                if registration.priority == .background {
                    backgroundReady.append((data, events))
                } else {
                    handler(IOEvents(epoll: events))
                }
            }
        }
        let keepRunning = runTasks()
        runDeferred()
        runTimers()
        runBackground()
        return keepRunning
    }

    /// Runs background closures, then this turn's background handlers, until `backgroundBudget` is
    /// spent, at least one. A handler deregistered meanwhile is skipped; one whose registration
    /// became `.normal` runs. Closures left wait for the next turn, which then does not sleep.
    private func runBackground() {
        defer { backgroundReady.removeAll(keepingCapacity: true) }
        // Real time, whatever `clock` is: the budget is about the thread's time, not the timers'.
        let budget = UInt64(max(0, backgroundBudget.nanosecondsClamped))
        let start = SystemClock().now().nanoseconds
        var ran = 0
        func spent() -> Bool { ran > 0 && SystemClock().now().nanoseconds &- start >= budget }
        condition.withLock {
            backgroundQueue.append(contentsOf: backgroundTasks)
            backgroundTasks.removeAll(keepingCapacity: true)
        }
        var taken = 0
        while taken < backgroundQueue.count, !spent() {
            let task = backgroundQueue[taken]
            taken += 1
            task()
            ran += 1
        }
        backgroundQueue.removeFirst(taken)
        var handled = 0
        for ready in backgroundReady {
            if spent() { break }
            if let registration = registrations[ready.id], let handler = registration.handler {
                handler(IOEvents(epoll: ready.events))
            }
            handled += 1
            ran += 1
        }
        if handled < backgroundReady.count || !backgroundQueue.isEmpty { backgroundDeferrals += 1 }
    }

    /// Milliseconds epoll may sleep: 0 with deferred work or background closures left, until the
    /// next timer, or forever.
    private func waitTimeout() -> Int32 {
        if !deferred.isEmpty || !backgroundQueue.isEmpty { return 0 }
        guard let next = timers.nextDeadline() else { return -1 }
        let nanoseconds = clock.now().nanoseconds(until: next)
        let milliseconds = nanoseconds / 1_000_000 + (nanoseconds % 1_000_000 == 0 ? 0 : 1)
        return Int32(clamping: milliseconds)
    }

    /// Runs the closures from other threads; false if the loop was asked to stop.
    private func runTasks() -> Bool {
        condition.lock()
        let batch = tasks
        tasks.removeAll(keepingCapacity: true)
        wakePending = false
        let keepRunning = state == .running
        condition.unlock()
        for task in batch { task() }
        return keepRunning
    }

    private func runDeferred() {
        guard !deferred.isEmpty else { return }
        let batch = deferred
        deferred.removeAll(keepingCapacity: true)
        for work in batch { work() }
    }

    private func runTimers() {
        let now = clock.now()
        let limit = timers.nextID
        while let entry = timers.popDue(now: now, scheduledBefore: limit) { entry.body() }
    }

    private func shutDown(_ failure: NetError?) {
        condition.lock()
        state = .shuttingDown
        runError = failure
        let remaining = tasks + backgroundTasks
        tasks.removeAll()
        backgroundTasks.removeAll()
        condition.unlock()
        for task in backgroundQueue + remaining { task() }
        backgroundQueue.removeAll()
        // Owners close their descriptors (and deregister) in onLoopStop, in registration order.
        for registration in registrations.values.sorted(by: { $0.id < $1.id }) where registration.isRegistered {
            if let onLoopStop = registration.onLoopStop { onLoopStop() }
            deregister(registration)
        }
        // Reports of those closes; bounded, in case some work keeps deferring more.
        var rounds = 0
        while !deferred.isEmpty && rounds < 100 {
            runDeferred()
            rounds += 1
        }
        deferred.removeAll()
        timers.removeAll()
        condition.lock()
        state = .finished
        loopThread = nil
        condition.broadcast()
        condition.unlock()
    }
}
