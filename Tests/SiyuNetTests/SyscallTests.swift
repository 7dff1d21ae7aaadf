import Glibc
import Testing
@testable import SiyuNet

@Suite("The syscall wrapper")
struct SyscallTests {
    @Test("A call interrupted by a signal (EINTR) is retried until it completes")
    func retriesEINTR() throws {
        var calls = 0
        let result = try syscall("read") { () -> Int in
            calls += 1
            if calls <= 3 {
                errno = EINTR
                return -1
            }
            return 42
        }
        #expect(result == .completed(42))
        #expect(calls == 4)
    }

    @Test("EAGAIN and EWOULDBLOCK come back as would-block, not as errors", arguments: [EAGAIN, EWOULDBLOCK])
    func wouldBlock(code: Int32) throws {
        var calls = 0
        let result = try syscall("recv") { () -> Int in
            calls += 1
            errno = code
            return -1
        }
        #expect(result == .wouldBlock)
        #expect(calls == 1)
    }

    @Test("EINTR followed by EAGAIN is a would-block after one retry")
    func interruptedThenWouldBlock() throws {
        var codes = [EINTR, EAGAIN]
        let result = try syscall("accept4") { () -> Int32 in
            errno = codes.removeFirst()
            return -1
        }
        #expect(result == .wouldBlock)
        #expect(codes.isEmpty)
    }

    @Test("Any other failure throws a NetError with the call's name, the errno and its text")
    func otherErrorsThrow() {
        var calls = 0
        #expect(throws: NetError.systemCall(call: "recv", errno: ECONNRESET, context: "from 127.0.0.1:7400")) {
            _ = try syscall("recv", context: "from 127.0.0.1:7400") { () -> Int in
                calls += 1
                errno = ECONNRESET
                return -1
            }
        }
        #expect(calls == 1)
        let error = NetError.systemCall(call: "recv", errno: ECONNRESET, context: "from 127.0.0.1:7400")
        #expect(error.description == "recv (from 127.0.0.1:7400) failed: Connection reset by peer (ECONNRESET, errno \(ECONNRESET))")
        #expect(error.errno == ECONNRESET)
    }

    @Test("Results other than -1 are returned as they are, negative ones included")
    func resultsPassThrough() throws {
        #expect(try syscall("write") { 0 } == .completed(0))
        #expect(try syscall("write") { Int.max } == .completed(Int.max))
        #expect(try syscall("odd") { Int32(-2) } == .completed(-2))
    }

    @Test("A real call: reading an empty non-blocking pipe would block; a closed descriptor throws EBADF")
    func realCalls() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        #expect(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var byte: UInt8 = 0
        #expect(try syscall("read") { read(fds[0], &byte, 1) } == .wouldBlock)
        #expect(throws: NetError.systemCall(call: "read", errno: EBADF, context: "")) {
            _ = try syscall("read") { read(-1, &byte, 1) }
        }
    }

    @Test("Errors describe what to do where there is something to do")
    func errorHints() {
        let address = SocketAddress.loopbackIPv4(port: 7400)
        #expect(NetError.addressInUse(address).description
                == "address already in use: 127.0.0.1:7400 — another siyu-hub running? choose another --listen")
        #expect(NetError.connectionRefused(address).description.hasPrefix("connection refused by 127.0.0.1:7400 — "))
        #expect(NetError.connectTimedOut(address, after: .milliseconds(1500)).message == "connecting to 127.0.0.1:7400 timed out after 1.5 s")
        #expect(NetError.tooManyOpenFiles(call: "accept4", errno: EMFILE).description.contains("ulimit -n"))
        #expect(NetError.outboundBufferFull(address, buffered: 10, limit: 20).hint?.contains("isWritable") == true)
        #expect(NetError.invalidAddress(input: "a\u{0}b\u{202E}", reason: "x").message == "invalid address \"a\\u{0}b\\u{202e}\": x")
    }
}

@Suite("Owned descriptors")
struct OwnedDescriptorTests {
    @Test("A descriptor is closed exactly once, and forgotten after")
    func closeOnce() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[1])
        let owned = OwnedDescriptor(fds[0])
        #expect(owned.isOpen)
        owned.close()
        #expect(!owned.isOpen)
        #expect(owned.rawValue == nil)
        owned.close()  // nothing to do: the number is forgotten, so a reused number is safe
        #expect(fcntl(fds[0], F_GETFD) == -1)
        #expect(throws: NetError.closed("socket")) { _ = try owned.get("socket") }
    }

    @Test("A descriptor is closed when its owner goes away")
    func closeOnDeinit() {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[1])
        do { _ = OwnedDescriptor(fds[0]) }
        #expect(fcntl(fds[0], F_GETFD) == -1)
    }
}

@Suite("The outbound buffer and the timer queue")
struct BufferTests {
    @Test("Bytes come out in order across chunks, coalesced small writes and partial sends")
    func outboundOrder() throws {
        var buffer = OutboundBuffer()
        var expected: [UInt8] = []
        for i in 0 ..< 50 {
            let chunk = [UInt8](repeating: UInt8(i), count: i * 997 % 70_000 + 1)
            buffer.append(chunk)
            expected += chunk
        }
        #expect(buffer.count == expected.count)
        var out: [UInt8] = []
        var step = 1
        while !buffer.isEmpty {
            let taken = try buffer.withFirstChunk { Array($0.prefix(step)) }
            out += taken
            buffer.consume(taken.count)
            step = step * 3 % 40_000 + 1
        }
        #expect(out == expected)
        buffer.consume(10)  // more than there is: clamped, no trap
        #expect(buffer.count == 0)
    }

    @Test("Cancelled timers do not pile up in the queue")
    func timerCompaction() {
        var queue = TimerQueue()
        var handles: [TimerHandle] = []
        for i in 0 ..< 1000 { handles.append(queue.schedule(at: Deadline(nanoseconds: UInt64(i))) {}) }
        var cancelled = 0
        for handle in handles.dropLast() where queue.cancel(handle) { cancelled += 1 }
        #expect(cancelled == 999)
        let again = queue.cancel(handles[0])
        #expect(!again)
        #expect(queue.count == 1)
        let next = queue.nextDeadline()
        #expect(next == Deadline(nanoseconds: 999))
        let early = queue.popDue(now: Deadline(nanoseconds: 998), scheduledBefore: .max)
        #expect(early == nil)
        let due = queue.popDue(now: Deadline(nanoseconds: 999), scheduledBefore: .max)
        #expect(due != nil)
        #expect(queue.count == 0)
    }
}
