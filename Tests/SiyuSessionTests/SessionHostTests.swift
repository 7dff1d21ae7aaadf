import SiyuCore
import SiyuSession
import SiyuWire
import Testing

/// A session whose answers are scripted: each input returns the actions queued for it. Effects are
/// numbers; `complete` answers with the next scripted batch.
private struct ScriptedSession: HostedSession {
    var script: [[SessionAction<Int>]]
    var received: [[UInt8]] = []
    var completed: [Int] = []
    var waiting = false

    mutating func next() -> [SessionAction<Int>] {
        guard !script.isEmpty else { return [] }
        let batch = script.removeFirst()
        if batch.contains(where: { action in action.effect.map(ScriptedSession.expectsResult) ?? false }) { waiting = true }
        return batch
    }
    mutating func receive(_ bytes: [UInt8], now: SessionInstant) -> [SessionAction<Int>] { received.append(bytes); return next() }
    mutating func complete(_ result: Int, now: SessionInstant) -> [SessionAction<Int>] { completed.append(result); waiting = false; return next() }
    mutating func tick(now: SessionInstant) -> [SessionAction<Int>] { next() }
    mutating func transportClosed() -> [SessionAction<Int>] { [.close(.transportClosed)] }
    var wantsInput: Bool { !waiting }
    var nextDeadline: SessionInstant? { nil }
    /// Negative effects are fire-and-forget.
    static func expectsResult(_ effect: Int) -> Bool { effect >= 0 }
}

private final class RecordingTransport: SessionTransport {
    var frames: [[UInt8]] = []
    var isWritable = true
    var reading = true
    var closed = false
    var failWrites = false
    func sendFrame(_ bytes: [UInt8]) throws {
        if failWrites { throw WireError.badMagic(found: []) }
        frames.append(bytes)
    }
    func closeAfterSending() { closed = true }
    func closeNow() { closed = true }
    func setReading(_ reading: Bool) { self.reading = reading }
}

private let ping = Message.ping(token: 1)
private func send(_ byte: UInt8) -> SessionAction<Int> { .send(ping, bytes: [byte]) }
private let t0 = SessionInstant(milliseconds: 1)

@Suite struct SessionHostTests {
    @Test func actionsAreCarriedOutInOrderAndNothingAfterTheClose() {
        let transport = RecordingTransport()
        var performed: [Int] = []
        var handlers = SessionHost<ScriptedSession>.Handlers(perform: { effect, _ in performed.append(effect); return effect * 10 })
        var closes: [CloseReason] = []
        handlers.closing = { closes.append($0) }
        let host = SessionHost(session: ScriptedSession(script: [[send(1), .perform(7)], [send(2), .close(.byeSent("done")), send(3)]]),
                               transport: transport, handlers: handlers)
        host.received([0], now: t0)
        #expect(transport.frames == [[1], [2]])
        #expect(performed == [7] && host.session.completed == [70])
        #expect(closes == [.byeSent("done")] && transport.closed && host.isFinished)
        host.received([9], now: t0)
        #expect(host.session.received == [[0]])   // ignored after the close
    }

    @Test func anEffectWaitsWhileThePeerIsNotReadingAndRunsWhenWritable() {
        let transport = RecordingTransport()
        transport.isWritable = false
        var performed: [Int] = []
        let host = SessionHost(session: ScriptedSession(script: [[.perform(5)], [send(4)]]), transport: transport,
                               handlers: .init(perform: { effect, _ in performed.append(effect); return 1 }))
        host.received([0], now: t0)
        #expect(performed.isEmpty && !transport.reading)
        host.writable(now: t0)
        #expect(performed.isEmpty)   // still not writable
        transport.isWritable = true
        host.writable(now: t0)
        #expect(performed == [5] && transport.frames == [[4]] && transport.reading)
    }

    @Test func aLateAnswerIsFedBackOnceAndInputWaitsForIt() {
        let transport = RecordingTransport()
        let host = SessionHost(session: ScriptedSession(script: [[.perform(3)], [send(8)]]), transport: transport,
                               handlers: .init(perform: { _, _ in nil }))
        host.received([0], now: t0)
        #expect(!transport.reading && host.session.completed.isEmpty)
        host.complete(30, now: t0)
        #expect(host.session.completed == [30] && transport.frames == [[8]] && transport.reading)
        host.complete(31, now: t0)   // no effect outstanding: ignored
        #expect(host.session.completed == [30])
    }

    @Test func anEffectNobodyWaitsForRunsAtOnceEvenWhileThePeerIsNotReading() {
        let transport = RecordingTransport()
        transport.isWritable = false
        var performed: [Int] = []
        let host = SessionHost(session: ScriptedSession(script: [[.perform(-1), send(6)]]), transport: transport,
                               handlers: .init(perform: { effect, _ in performed.append(effect); return nil }))
        host.received([0], now: t0)
        #expect(performed == [-1] && transport.frames == [[6]] && host.session.completed.isEmpty)
    }

    @Test func aFailedWriteClosesTheTransportAndIsReported() {
        let transport = RecordingTransport()
        transport.failWrites = true
        var failures = 0
        var handlers = SessionHost<ScriptedSession>.Handlers(perform: { _, _ in nil })
        handlers.sendFailed = { _ in failures += 1 }
        let host = SessionHost(session: ScriptedSession(script: [[send(1)]]), transport: transport, handlers: handlers)
        host.received([0], now: t0)
        #expect(failures == 1 && transport.closed)
    }

    @Test func theTransportClosingEndsTheSessionAndDetachStopsEverything() {
        let transport = RecordingTransport()
        var closes: [CloseReason] = []
        var handlers = SessionHost<ScriptedSession>.Handlers(perform: { _, _ in nil })
        handlers.closing = { closes.append($0) }
        let host = SessionHost(session: ScriptedSession(script: [[send(1)]]), transport: transport, handlers: handlers)
        host.transportClosed(now: t0)
        #expect(closes == [.transportClosed] && host.isFinished)
        host.received([0], now: t0)
        #expect(transport.frames.isEmpty)

        let other = SessionHost(session: ScriptedSession(script: [[send(1)]]), transport: RecordingTransport(), handlers: .init(perform: { _, _ in nil }))
        other.detach()
        other.received([0], now: t0)
        #expect(other.session.received.isEmpty)
    }
}
