import Foundation
import Testing
import SiyuCore
@testable import SiyuHub
import SiyuNet
import SiyuProbe
import SiyuSession
import SiyuStore
import SiyuTestSupport

/// The hub's count of connections not authenticated yet (what `maxPendingConnections` and
/// `maxPendingPerAddress` are held against) follows its connections: kept as counters rather than
/// counted over every connection at each accept, it must come back down whichever way a
/// connection stops being pending.
@Suite struct PendingConnectionTests {
    /// A serving hub in this process, its loop on a thread of its own. Handshake and idle
    /// timeouts far beyond a test: a connection that says nothing stays pending however slowly
    /// the test runs beside others.
    final class Hub {
        let dir: TemporaryDirectory
        let replica: Replica
        let loop: EventLoop
        let server: HubServer
        let address: SocketAddress

        init(maxPendingPerAddress: Int = 8, registering register: (Replica) throws -> Void = { _ in }) throws {
            dir = try TemporaryDirectory()
            replica = try Replica(path: dir.path("hub.db"), options: ReplicaOptions(node: "hub-hz", role: .hq))
            try register(replica)
            loop = try EventLoop()
            let session = HubSession.Configuration(hubID: "hub-hz", policy: KeepalivePolicy(idleTimeoutMillis: 600_000, handshakeTimeoutMillis: 600_000))
            server = try HubServer(loop: loop, executor: try HubStoreExecutor(replica: replica, options: .init()),
                                   configuration: .init(session: session, listen: .loopbackIPv4(port: 0), maxPendingPerAddress: maxPendingPerAddress),
                                   log: .silent)
            address = try server.start()
            let loop = loop
            Thread { try? loop.run() }.start()
        }

        func stop() {
            let server = server
            try? loop.execute { server.shutdown(reason: "test over") }
            loop.stop()
            _ = loop.waitForStop(timeout: .seconds(10))
            server.waitForStoreWork()
            replica.close()
            dir.remove()
        }
    }

    @Test(.timeLimit(.minutes(1))) func thePendingCountFollowsConnectionsThatAuthenticateCloseOrFail() async throws {
        let secret = Array("s1-secret".utf8)
        let hub = try Hub { try $0.registerNode("s1", role: .store, store: "s1", newStore: true, secret: secret, iterations: 8) }
        defer { hub.stop() }
        let (loop, server, address) = (hub.loop, hub.server, hub.address)
        func counts() async throws -> (Int, Int) {
            let c = try await loop.submit { let c = server.pendingCounts; return (c.total, c.byHost.count) }
            return c
        }
        func settles(to total: Int) async throws -> Bool {
            for _ in 0..<500 {
                if try await counts().0 == total { return true }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }

        let raw = try (0..<3).map { _ in try RawClient(hub: address) }
        #expect(try await settles(to: 3), "three connections that said nothing yet")
        #expect(try await counts().1 == 1, "all from 127.0.0.1")

        let node = try RawClient(hub: address)
        guard case .welcome? = node.handshake(node: "s1", secret: secret) else {
            Issue.record("s1 was not welcomed")
            return
        }
        #expect(try await settles(to: 3), "an authenticated connection is not pending")

        raw[0].close()
        raw[1].close()
        #expect(try await settles(to: 1), "closed by the client")

        let wrong = try RawClient(hub: address)
        _ = wrong.handshake(node: "s1", secret: Array("not-it".utf8))
        #expect(wrong.closes(within: 10))
        #expect(try await settles(to: 1), "refused and closed by the hub")

        raw[2].close()
        node.close()
        #expect(try await settles(to: 0))
        #expect(try await counts().1 == 0, "no address left with a count")
    }

    /// A connection refused at once (over the per-address cap) is reset, not closed in order: the
    /// client reads "connection reset", and the hub keeps no TIME_WAIT socket for it.
    @Test(.timeLimit(.minutes(1))) func aConnectionRefusedAtOnceIsReset() throws {
        let hub = try Hub(maxPendingPerAddress: 1)
        defer { hub.stop() }
        let address = hub.address
        let kept = try BlockingSocket(connectingTo: address)
        defer { kept.close() }
        #expect(kept.receive(timeout: 0.3) == nil, "the first is kept, waiting for HELLO")
        var reset = false
        do {
            let refused = try BlockingSocket(connectingTo: address)
            defer { refused.close() }
            _ = refused.receive(timeout: 10)
            reset = refused.lastReceiveErrno == ECONNRESET
        } catch {
            reset = error.errno == ECONNRESET   // the reset came before connect() returned
        }
        #expect(reset, "reset, not an orderly end of stream")
    }
}
