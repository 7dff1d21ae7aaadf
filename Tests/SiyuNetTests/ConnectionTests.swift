import Foundation
import Glibc
import SiyuWire
import Testing
@testable import SiyuNet
import SiyuTestSupport

/// A listener on `address` whose connections record into a new `FrameLog` each, echo every frame
/// back with type 0x31, and, on a protocol error, send an ERROR frame before they close.
/// Loop thread only. Returns the listener and the logs (in accept order).
func echoServer(on loop: EventLoop, address: SocketAddress = .loopbackIPv4(port: 0),
                        pauseFirst: Bool = false,
                        connections: Locked<[FrameConnection]>? = nil) throws -> (Listener, Locked<[FrameLog]>) {
    let logs = Locked<[FrameLog]>([])
    let listener = try Listener(bindingTo: address, on: loop) { tcp in
        let log = FrameLog()
        logs.withLock { $0.append(log) }
        let connection = FrameConnection(tcp)
        connections?.withLock { $0.append(connection) }
        do {
            try connection.start { connection, event in
                log.record(event)
                switch event {
                case let .frame(frame):
                    try? connection.send(Frame(type: 0x31, payload: frame.payload))
                case .protocolError:
                    try? connection.send(Frame(type: 0x3E, payload: Array("bad stream".utf8)))
                case .writable, .closed:
                    break
                }
            }
            if pauseFirst { connection.pauseReading() }
        } catch {
            Issue.record("start failed: \(error)")
        }
    }
    return (listener, logs)
}

/// A raw byte connection to `address`, started with a handler recording into `log`. Loop thread only.
func connectBytes(to address: SocketAddress, on loop: EventLoop, log: ByteLog,
                          connected: @escaping (TCPConnection) -> Void) {
    TCPConnection.connect(to: address, on: loop, timeout: .seconds(5)) { result in
        guard case let .success(connection) = result else {
            Issue.record("connect failed: \(result)")
            return
        }
        do {
            try connection.start { _, event in log.record(event) }
            connected(connection)
        } catch {
            Issue.record("start failed: \(error)")
        }
    }
}

@Suite("Sockets and frame connections on loopback")
struct ConnectionTests {
    @Test("A listener on port 0 reports its port, and frames cross both ways (IPv4 and IPv6)",
          arguments: [SocketAddress.loopbackIPv4(port: 0), .loopbackIPv6(port: 0)])
    func exchangeFrames(host: SocketAddress) async throws {
        try await withLoop { loop in
            let bound: (SocketAddress, Locked<[FrameLog]>)
            do {
                bound = try await onLoop(loop) { () -> (SocketAddress, Locked<[FrameLog]>) in
                    let (listener, logs) = try echoServer(on: loop, address: host)
                    return (listener.address, logs)
                }
            } catch let error as NetError where host.family == AF_INET6 {
                // A machine without IPv6 on loopback: nothing to test here.
                print("IPv6 loopback unavailable: \(error)")
                return
            }
            let (address, serverLogs) = bound
            #expect(address.port != 0)
            #expect(address.host == host.host)

            let sizes = [0, 1, 1000, 100_000, Frame.maxPayload]
            let sent = sizes.enumerated().map { patternFrame(type: 0x30, count: $1, seed: $0) }
            let clientLog = FrameLog()
            let local = Locked<SocketAddress?>(nil)
            try await onLoop(loop) {
                connectFrames(to: address, on: loop, log: clientLog, failed: { Issue.record("connect: \($0)") }) { connection in
                    local.withLock { $0 = connection.localAddress }
                    #expect(connection.remoteAddress == address)
                    for frame in sent { try? connection.send(frame) }
                }
            }
            #expect(await waitUntil { clientLog.frames.count == sent.count })
            #expect(clientLog.frames.map(\.payload) == sent.map(\.payload))
            #expect(clientLog.frames.allSatisfy { $0.type == 0x31 })
            #expect(serverLogs.value.count == 1)
            #expect(serverLogs.value.first?.frames == sent)
            #expect(local.value?.host == host.host)
        }
    }

    @Test("A peer that sends a frame one byte at a time delivers one whole frame")
    func byteByByte() async throws {
        try await withLoop { loop in
            let (address, serverLogs) = try await onLoop(loop) { () -> (SocketAddress, Locked<[FrameLog]>) in
                let (listener, logs) = try echoServer(on: loop)
                return (listener.address, logs)
            }
            let frame = patternFrame(type: 0x12, count: 40, seed: 3)
            let bytes = frame.encoded()
            let clientLog = ByteLog()
            try await onLoop(loop) {
                connectBytes(to: address, on: loop, log: clientLog) { connection in
                    // One byte per timer tick, so each arrives in a read of its own.
                    func send(_ index: Int) {
                        guard index < bytes.count else { return }
                        try? connection.write([bytes[index]])
                        loop.scheduleTimer(after: .milliseconds(1)) { send(index + 1) }
                    }
                    send(0)
                }
            }
            #expect(await waitUntil { serverLogs.value.first?.frames.count == 1 })
            #expect(serverLogs.value.first?.frames == [frame])
            #expect(serverLogs.value.first?.protocolErrors == [])
            // The echo comes back whole too.
            #expect(await waitUntil { clientLog.bytes.count == bytes.count })
            #expect(try Frame.decode(clientLog.bytes).decodedFrame?.payload == frame.payload)
        }
    }

    @Test("A peer that sends garbage gets an ERROR frame and is closed; the loop keeps serving others")
    func garbagePeer() async throws {
        try await withLoop { loop in
            let (address, serverLogs) = try await onLoop(loop) { () -> (SocketAddress, Locked<[FrameLog]>) in
                let (listener, logs) = try echoServer(on: loop)
                return (listener.address, logs)
            }
            // A well-behaved connection first, which must survive the bad one.
            let goodLog = FrameLog()
            let good = Locked<FrameConnection?>(nil)
            try await onLoop(loop) {
                connectFrames(to: address, on: loop, log: goodLog) { connection in
                    good.withLock { $0 = connection }
                    try? connection.send(patternFrame(count: 10, seed: 1))
                }
            }
            #expect(await waitUntil { goodLog.frames.count == 1 })

            let badLog = ByteLog()
            try await onLoop(loop) {
                connectBytes(to: address, on: loop, log: badLog) { connection in
                    try? connection.write(Array("GET / HTTP/1.1\r\nHost: hub\r\n\r\n".utf8))
                }
            }
            #expect(await waitUntil { badLog.closeReason != nil })
            #expect(badLog.closeReason == .closedByPeer)
            let errorFrame = try Frame.decode(badLog.bytes).decodedFrame
            #expect(errorFrame?.type == 0x3E)
            #expect(await waitUntil { serverLogs.value.count == 2 && serverLogs.value[1].isClosed })
            let badServerSide = serverLogs.value[1]
            #expect(badServerSide.protocolErrors == [.badMagic(found: [0x47])])
            #expect(badServerSide.closeReason == .protocolError(.badMagic(found: [0x47])))
            #expect(badServerSide.frames.isEmpty)

            // The good connection still works, and so does a new one.
            try await onLoop(loop) { try good.value?.send(patternFrame(count: 20, seed: 2)) }
            #expect(await waitUntil { goodLog.frames.count == 2 })
            let laterLog = FrameLog()
            try await onLoop(loop) {
                connectFrames(to: address, on: loop, log: laterLog) { try? $0.send(patternFrame(count: 5)) }
            }
            #expect(await waitUntil { laterLog.frames.count == 1 })
            #expect(goodLog.closeReason == nil)
        }
    }

    @Test("A frame header declaring more than 1 MiB is refused before any payload arrives")
    func oversizedHeader() async throws {
        try await withLoop { loop in
            let (address, serverLogs) = try await onLoop(loop) { () -> (SocketAddress, Locked<[FrameLog]>) in
                let (listener, logs) = try echoServer(on: loop)
                return (listener.address, logs)
            }
            let length = UInt32(Frame.maxPayload + 1)
            let header: [UInt8] = [0x53, 0x59, 1, 0x10] + withUnsafeBytes(of: length.bigEndian) { Array($0) }
            let log = ByteLog()
            try await onLoop(loop) {
                connectBytes(to: address, on: loop, log: log) { try? $0.write(header) }
            }
            #expect(await waitUntil { serverLogs.value.first?.isClosed == true })
            let expected = WireError.frameTooLarge(length: UInt64(length), limit: Frame.maxPayload)
            #expect(serverLogs.value.first?.protocolErrors == [expected])
            #expect(serverLogs.value.first?.closeReason == .protocolError(expected))
            #expect(await waitUntil { log.closeReason != nil })
        }
    }

    @Test("A large write waits in the outbound buffer over several writable events, and arrives whole")
    func backpressure() async throws {
        try await withLoop { loop in
            let serverConnections = Locked<[FrameConnection]>([])
            let (address, serverLogs) = try await onLoop(loop) { () -> (SocketAddress, Locked<[FrameLog]>) in
                let (listener, logs) = try echoServer(on: loop, pauseFirst: true, connections: serverConnections)
                return (listener.address, logs)
            }
            let frames = (0 ..< 10).map { patternFrame(type: 0x13, count: Frame.maxPayload, seed: $0) }
            let clientLog = FrameLog()
            let client = Locked<FrameConnection?>(nil)
            let stateAfterWrite = Locked<(writable: Bool, buffered: Int)?>(nil)
            try await onLoop(loop) {
                var options = ConnectionOptions()
                options.maxBufferedBytes = 64 << 20
                TCPConnection.connect(to: address, on: loop, options: options) { result in
                    guard case let .success(tcp) = result else { Issue.record("\(result)"); return }
                    let connection = FrameConnection(tcp)
                    try? connection.start { _, event in clientLog.record(event) }
                    client.withLock { $0 = connection }
                    for frame in frames {
                        do { try connection.send(frame) } catch { Issue.record("send: \(error)") }
                    }
                    stateAfterWrite.withLock { $0 = (connection.isWritable, connection.bufferedOutboundBytes) }
                }
            }
            #expect(await waitUntil { stateAfterWrite.value != nil })
            // The peer reads nothing: much of 10 MiB is still ours to send.
            #expect(stateAfterWrite.value?.writable == false)
            #expect((stateAfterWrite.value?.buffered ?? 0) > 2 << 20)
            try await Task.sleep(for: .milliseconds(20))
            #expect(serverLogs.value.first?.frames.isEmpty == true)

            try await onLoop(loop) { serverConnections.value.first?.resumeReading() }
            #expect(await waitUntil(.seconds(30)) { serverLogs.value.first?.frames.count == frames.count })
            #expect(serverLogs.value.first?.frames == frames)
            #expect(await waitUntil { clientLog.writableCount == 1 })
            let (buffered, writableEvents) = try await onLoop(loop) { () -> (Int, Int) in
                guard let connection = client.value else { return (-1, 0) }
                return (connection.bufferedOutboundBytes, connection.connection.writableEventCount)
            }
            #expect(writableEvents >= 2)
            // The echoes (10 MiB back) need the client to read; it does, so they all arrive.
            #expect(await waitUntil(.seconds(30)) { clientLog.frames.count == frames.count })
            #expect(buffered >= 0)
        }
    }

    @Test("A write past the buffer limit is refused and the connection stays open")
    func bufferLimit() async throws {
        try await withLoop { loop in
            let (address, _) = try await onLoop(loop) { () -> (SocketAddress, Locked<[FrameLog]>) in
                let (listener, logs) = try echoServer(on: loop, pauseFirst: true)
                return (listener.address, logs)
            }
            let outcome = Locked<(accepted: Int, error: NetError?, open: Bool)?>(nil)
            try await onLoop(loop) {
                var options = ConnectionOptions()
                options.highWaterMark = 64 << 10
                options.lowWaterMark = 16 << 10
                options.maxBufferedBytes = 512 << 10
                TCPConnection.connect(to: address, on: loop, options: options) { result in
                    guard case let .success(tcp) = result else { Issue.record("\(result)"); return }
                    try? tcp.start { _, _ in }
                    var accepted = 0
                    var failure: NetError?
                    // Loopback buffers take a few MiB; 64 MiB in 64 KiB writes must hit the limit.
                    for _ in 0 ..< 1024 {
                        do throws(NetError) { try tcp.write([UInt8](repeating: 0xAB, count: 64 << 10)); accepted += 1 } catch { failure = error; break }
                    }
                    outcome.withLock { $0 = (accepted, failure, tcp.isOpen) }
                    tcp.close()
                }
            }
            #expect(await waitUntil { outcome.value != nil })
            guard case let .outboundBufferFull(_, buffered, limit)? = outcome.value?.error else {
                Issue.record("expected outboundBufferFull, got \(String(describing: outcome.value))")
                return
            }
            #expect(limit == 512 << 10)
            #expect(buffered + (64 << 10) > limit)
            #expect(outcome.value?.open == true)
        }
    }

    @Test("Connecting to a port nobody listens on fails clearly")
    func connectionRefused() async throws {
        try await withLoop { loop in
            let address = try await onLoop(loop) { () -> SocketAddress in
                let listener = try Listener(bindingTo: .loopbackIPv4(port: 0), on: loop) { _ in }
                listener.close()
                return listener.address
            }
            let result = Locked<Result<Int, NetError>?>(nil)
            try await onLoop(loop) {
                TCPConnection.connect(to: address, on: loop, timeout: .seconds(5)) { outcome in
                    result.withLock { $0 = outcome.map { _ in 0 } }
                }
            }
            #expect(await waitUntil { result.value != nil })
            #expect(result.value == .failure(.connectionRefused(address)))
            #expect(NetError.connectionRefused(address).description.contains("\(address)"))
        }
    }

    @Test("A connect that gets no answer times out after the time given")
    func connectTimeout() async throws {
        // A listening socket with a full accept queue that never accepts: Linux drops further SYNs.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = SocketAddress.loopbackIPv4(port: 0)
        try address.withSockaddr { pointer, length in #expect(bind(fd, pointer, length) == 0) }
        #expect(listen(fd, 0) == 0)
        address = try #require(SocketAddress.filled { getsockname(fd, $0, $1) }.address)
        let target = address
        try await withLoop { loop in
            let results = Locked<[Result<Int, NetError>]>([])
            try await onLoop(loop) {
                for _ in 0 ..< 4 {
                    TCPConnection.connect(to: target, on: loop, timeout: .milliseconds(300)) { outcome in
                        if case let .success(connection) = outcome { connection.closeAfterFlush() }
                        results.withLock { $0.append(outcome.map { _ in 0 }) }
                    }
                }
            }
            #expect(await waitUntil { results.value.count == 4 })
            #expect(results.value.contains(.failure(.connectTimedOut(target, after: .milliseconds(300)))))
        }
    }

    @Test("A second listener on a bound address gets addressInUse with a hint")
    func addressInUse() async throws {
        try await withLoop { loop in
            let message = try await onLoop(loop) { () -> String in
                let first = try Listener(bindingTo: .loopbackIPv4(port: 0), on: loop) { _ in }
                defer { first.close() }
                do {
                    _ = try Listener(bindingTo: first.address, on: loop) { _ in }
                    return "bound twice"
                } catch let error as NetError {
                    #expect(error == .addressInUse(first.address))
                    return error.description
                }
            }
            #expect(message.hasPrefix("address already in use: 127.0.0.1:"))
            #expect(message.hasSuffix(" — another siyu-hub running? choose another --listen"))
        }
    }

    @Test("200 concurrent connections to one loop each get their own frames back")
    func manyConnections() async throws {
        let serverLoop = try EventLoop.start(name: "server")
        defer { serverLoop.stop(); serverLoop.waitForStop(timeout: .seconds(5)) }
        try await withLoop { clientLoop in
            let (address, serverLogs) = try await onLoop(serverLoop) { () -> (SocketAddress, Locked<[FrameLog]>) in
                let (listener, logs) = try echoServer(on: serverLoop)
                return (listener.address, logs)
            }
            let count = 200
            let logs = (0 ..< count).map { _ in FrameLog() }
            let failures = Locked<[NetError]>([])
            try await onLoop(clientLoop) {
                for (index, log) in logs.enumerated() {
                    connectFrames(to: address, on: clientLoop, log: log, failed: { error in failures.withLock { $0.append(error) } }) { connection in
                        try? connection.send(patternFrame(count: 64 + index, seed: index))
                        try? connection.send(patternFrame(count: 8, seed: index &* 3))
                    }
                }
            }
            #expect(await waitUntil(.seconds(30)) { logs.allSatisfy { $0.frames.count == 2 } || !failures.value.isEmpty })
            #expect(failures.value == [])
            for (index, log) in logs.enumerated() {
                #expect(log.frames.map(\.payload) == [patternFrame(count: 64 + index, seed: index).payload,
                                                       patternFrame(count: 8, seed: index &* 3).payload])
            }
            #expect(serverLogs.value.count == count)
            #expect(try await onLoop(serverLoop) { serverLoop.registrationCount } == count + 1)  // and the listener
        }
    }

    @Test("Stopping a loop closes its connections: they hear loopStopped, their peers end of stream")
    func stopClosesConnections() async throws {
        let serverLoop = try EventLoop.start(name: "server")
        let serverLogs: Locked<[FrameLog]>
        let address: SocketAddress
        (address, serverLogs) = try await onLoop(serverLoop) { () -> (SocketAddress, Locked<[FrameLog]>) in
            let (listener, logs) = try echoServer(on: serverLoop)
            return (listener.address, logs)
        }
        try await withLoop { clientLoop in
            let clientLog = FrameLog()
            try await onLoop(clientLoop) {
                connectFrames(to: address, on: clientLoop, log: clientLog) { try? $0.send(patternFrame(count: 3)) }
            }
            #expect(await waitUntil { clientLog.frames.count == 1 })
            serverLoop.stop()
            #expect(serverLoop.waitForStop(timeout: .seconds(5)))
            #expect(serverLogs.value.first?.closeReason == .loopStopped)
            #expect(await waitUntil { clientLog.closeReason != nil })
            #expect(clientLog.closeReason == .closedByPeer)
            // The listener is closed too: a new connect is refused.
            let refused = Locked<Result<Int, NetError>?>(nil)
            try await onLoop(clientLoop) {
                TCPConnection.connect(to: address, on: clientLoop) { outcome in refused.withLock { $0 = outcome.map { _ in 0 } } }
            }
            #expect(await waitUntil { refused.value != nil })
            #expect(refused.value == .failure(.connectionRefused(address)))
        }
    }
}

@Suite("Frame delivery and closing")
struct FrameDeliveryTests {
    @Test("Pausing holds back frames already decoded; resuming delivers them in order")
    func pauseHoldsDecodedFrames() async throws {
        try await withLoop { loop in
            let serverLog = FrameLog()
            let server = Locked<FrameConnection?>(nil)
            let address = try await onLoop(loop) { () -> SocketAddress in
                let listener = try Listener(bindingTo: .loopbackIPv4(port: 0), on: loop) { tcp in
                    let connection = FrameConnection(tcp)
                    server.withLock { $0 = connection }
                    try? connection.start { connection, event in
                        serverLog.record(event)
                        if case .frame = event { connection.pauseReading() }  // one frame at a time
                    }
                }
                return listener.address
            }
            let frames = (0 ..< 5).map { patternFrame(count: 10 + $0, seed: $0) }
            // All five in one write: they arrive in one read and are decoded together.
            let bytes = frames.flatMap { $0.encoded() }
            try await onLoop(loop) {
                connectBytes(to: address, on: loop, log: ByteLog()) { try? $0.write(bytes) }
            }
            for delivered in 1 ... 5 {
                #expect(await waitUntil { serverLog.frames.count == delivered })
                try await Task.sleep(for: .milliseconds(10))
                #expect(serverLog.frames.count == delivered)
                try await onLoop(loop) { server.value?.resumeReading() }
            }
            #expect(serverLog.frames == frames)
        }
    }

    @Test("Closing locally reports closedLocally once, after the call; writes after it are refused")
    func closeLocally() async throws {
        try await withLoop { loop in
            let (address, serverLogs) = try await onLoop(loop) { () -> (SocketAddress, Locked<[FrameLog]>) in
                let (listener, logs) = try echoServer(on: loop)
                return (listener.address, logs)
            }
            let clientLog = FrameLog()
            let order = Locked<[String]>([])
            try await onLoop(loop) {
                connectFrames(to: address, on: loop, log: clientLog, also: { _, event in
                    if case .closed = event { order.withLock { $0.append("closed event") } }
                }) { connection in
                    connection.close()
                    order.withLock { $0.append("close returned") }
                    connection.close()  // idempotent
                    do throws(NetError) {
                        try connection.send(patternFrame(count: 1))
                        Issue.record("sent on a closed connection")
                    } catch {
                        #expect(error == .closed("connection to \(address)"))
                    }
                    #expect(!connection.isOpen)
                }
            }
            #expect(await waitUntil { clientLog.isClosed })
            #expect(clientLog.closeReason == .closedLocally)
            #expect(order.value == ["close returned", "closed event"])
            #expect(await waitUntil { serverLogs.value.first?.closeReason == .closedByPeer })
        }
    }
}
