import Dispatch
import Foundation
import SiyuWire
@testable import SiyuNet
import SiyuTestSupport

/// A value shared between the test and a loop thread, behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value { lock.withLock { stored } }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try lock.withLock { try body(&stored) }
    }
}

struct TestTimeout: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

/// Runs `work` on the loop thread and returns its result, or throws `TestTimeout` after `timeout`
/// (the test then fails instead of hanging).
func onLoop<T: Sendable>(_ loop: EventLoop, timeout: Duration = .seconds(10),
                         _ work: @escaping @Sendable () throws -> T) async throws -> T {
    let resumed = Locked(false)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let finish: @Sendable (Result<T, any Error>) -> Void = { result in
            let first = resumed.withLock { done -> Bool in
                defer { done = true }
                return !done
            }
            if first { continuation.resume(with: result) }
        }
        do {
            try loop.execute { finish(Result { try work() }) }
        } catch {
            finish(.failure(error))
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
            finish(.failure(TestTimeout(what: "work on the event loop")))
        }
    }
}

/// A running loop, stopped (and its sockets closed) when the test is done.
func withLoop<T>(clock: any MonotonicClock = SystemClock(), _ body: (EventLoop) async throws -> T) async throws -> T {
    let loop = try EventLoop.start(clock: clock)
    do {
        let result = try await body(loop)
        loop.stop()
        _ = loop.waitForStop(timeout: .seconds(5))
        return result
    } catch {
        loop.stop()
        _ = loop.waitForStop(timeout: .seconds(5))
        throw error
    }
}

/// What a frame connection reported, for the test thread to look at.
final class FrameLog: @unchecked Sendable {
    private let lock = NSLock()
    private var _frames: [Frame] = []
    private var _protocolErrors: [WireError] = []
    private var _closeReason: DisconnectReason?
    private var _writableCount = 0

    var frames: [Frame] { lock.withLock { _frames } }
    var protocolErrors: [WireError] { lock.withLock { _protocolErrors } }
    var closeReason: DisconnectReason? { lock.withLock { _closeReason } }
    var writableCount: Int { lock.withLock { _writableCount } }
    var isClosed: Bool { closeReason != nil }

    /// Records the event; returns it for handlers that also act on it.
    func record(_ event: FrameConnection.Event) {
        lock.withLock {
            switch event {
            case let .frame(frame): _frames.append(frame)
            case let .protocolError(error): _protocolErrors.append(error)
            case .writable: _writableCount += 1
            case let .closed(reason): _closeReason = reason
            }
        }
    }
}

/// What a raw byte connection reported.
final class ByteLog: @unchecked Sendable {
    private let lock = NSLock()
    private var _bytes: [UInt8] = []
    private var _closeReason: DisconnectReason?

    var bytes: [UInt8] { lock.withLock { _bytes } }
    var closeReason: DisconnectReason? { lock.withLock { _closeReason } }

    func record(_ event: TCPConnection.Event) {
        lock.withLock {
            switch event {
            case let .received(bytes): _bytes += bytes
            case .writable: break
            case let .closed(reason): _closeReason = reason
            }
        }
    }
}

/// A frame of the given type whose payload is `count` bytes of a pattern seeded by `seed`.
func patternFrame(type: UInt8 = 0x30, count: Int, seed: Int = 0) -> Frame {
    Frame(type: type, payload: (0 ..< count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ ($0 >> 8)) })
}

/// Connects a `FrameConnection` from `loop` to `address`, started with a handler that records into
/// `log` (and calls `also`, if given). Loop thread only; `connected` gets the connection.
func connectFrames(to address: SocketAddress, on loop: EventLoop, log: FrameLog,
                   timeout: Duration = .seconds(5),
                   also: ((FrameConnection, FrameConnection.Event) -> Void)? = nil,
                   failed: ((NetError) -> Void)? = nil,
                   connected: @escaping (FrameConnection) -> Void) {
    TCPConnection.connect(to: address, on: loop, timeout: timeout) { result in
        switch result {
        case let .success(tcp):
            let connection = FrameConnection(tcp)
            do throws(NetError) {
                try connection.start { connection, event in
                    log.record(event)
                    also?(connection, event)
                }
                connected(connection)
            } catch {
                failed?(error)
            }
        case let .failure(error):
            failed?(error)
        }
    }
}

/// A non-blocking pipe with one byte already in it: its read end is readable until drained.
struct ReadyPipe: Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TestTimeout(what: "pipe() failed: errno \(errno)") }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        (readEnd, writeEnd) = (fds[0], fds[1])
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Reads what is there, so the read end is no longer readable.
    func drain() {
        var bytes = [UInt8](repeating: 0, count: 16)
        _ = read(readEnd, &bytes, bytes.count)
    }

    func close() {
        _ = Glibc.close(readEnd)
        _ = Glibc.close(writeEnd)
    }
}
