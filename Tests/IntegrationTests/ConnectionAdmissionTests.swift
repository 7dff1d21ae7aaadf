import Foundation
import Glibc
import Testing

/// A plain TCP connection to 127.0.0.1:`port` from loopback address `source` (what a terminator,
/// or an attacker, opens), closed when it goes away — and only then: an init that throws once `fd`
/// is set still runs `deinit`, so a failed bind or connect leaves the close to it (closing here
/// too closed the number twice, and the second close could hit whatever another test's thread
/// had opened under that number meanwhile: a socket, a SQLite file).
final class RawConnection {
    let fd: Int32
    init(port: Int, from source: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket() failed") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Failure("bind() to \(source) failed") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure("connect() to \(port) failed") }
    }
    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Whether the hub closed it within `seconds` (end of file, or a reset); data is read and ignored.
    func isClosed(within seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < end {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return true }
        }
        return false
    }
}

/// `siyu-hub serve --proxy-protocol` on a real process: each connection starts with the PROXY v1
/// header a TLS terminator sends, and the per-address cap counts the client it names, not the
/// terminator (docs/OPERATIONS.md, "The per-address caps behind a terminator").
@Suite struct ProxyProtocolTests {
    @Test(.timeLimit(.minutes(2))) func thePerAddressCapCountsTheClientThePROXYHeaderNamesAndAConnectionWithoutOneIsClosed() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        let hub = try HubProcess.start(n.p, db: n.hubDB, extra: ["--proxy-protocol", "--max-pending-per-address", "2"])
        let port = Int(hub.address.split(separator: ":").last!)!
        // Two handshakes in progress for client 203.0.113.7 (one header split across two writes): both stay.
        let first = try RawConnection(port: port), second = try RawConnection(port: port)
        first.send("PROXY TCP4 203.0.113.7 192.0.2.1 50001 7443\r\n")
        second.send("PROXY TCP4 203.0.113.7 19")
        second.send("2.0.2.1 50002 7443\r\n")
        try hub.child.waitFor("both headers read") { $0.components(separatedBy: "is the client 203.0.113.7:").count - 1 == 2 }
        // A third from the same client is one too many; another client, through the same terminator, is not.
        let third = try RawConnection(port: port), other = try RawConnection(port: port)
        third.send("PROXY TCP4 203.0.113.7 192.0.2.1 50003 7443\r\n")
        other.send("PROXY TCP4 198.51.100.9 192.0.2.1 50004 7443\r\n")
        #expect(third.isClosed(within: 10), "the third unauthenticated connection of 203.0.113.7 is closed")
        #expect(!other.isClosed(within: 0.5) && !first.isClosed(within: 0.1) && !second.isClosed(within: 0.1))
        try hub.child.waitFor("the refusal names the client") { $0.contains("too many unauthenticated connections, 2 from 203.0.113.7 (at most 2 per address)") }
        // A connection that starts with anything else (a node reaching the hub without the terminator) is closed.
        let direct = try RawConnection(port: port)
        direct.send("\u{0}\u{1}SIYU")
        #expect(direct.isClosed(within: 10), "no PROXY header: closed")
        try hub.child.waitFor("why, in the log") { $0.contains("does not start with a PROXY header") }
        // The 127.0.0.1 the terminator connects from is never capped as one address: 2 + 1 + 1 connections came from it.
        #expect(!hub.child.err.contains("from 127.0.0.1 (at most"))
    }
}

/// `siyu-hub serve --accepts-per-second N`: new connections per address beyond the budget are
/// closed at once; another address is not affected.
@Suite struct AcceptBudgetTests {
    @Test(.timeLimit(.minutes(2))) func connectionsFromOneAddressBeyondItsBudgetAreClosedAtOnceAndOthersStillSync() throws {
        let n = try Network()
        defer { n.close() }
        try n.register("hq", role: "hq")
        let hub = try HubProcess.start(n.p, db: n.hubDB, extra: ["--accepts-per-second", "2", "--max-pending-per-address", "64"])
        let port = Int(hub.address.split(separator: ":").last!)!
        // 2 a second in bursts of 4: of 10 connections opened at once from 127.0.0.5, 4 are kept.
        let burst = try (0..<10).map { _ in try RawConnection(port: port, from: "127.0.0.5") }
        let closed = burst.map { $0.isClosed(within: 1) }
        #expect(closed.filter { !$0 }.count == 4, "kept: \(closed.map { $0 ? "closed" : "open" })")
        try hub.child.waitFor("the refusal, logged once for the burst") { $0.contains("more than 2 new connections a second from 127.0.0.5") }
        #expect(hub.child.err.components(separatedBy: "new connections a second from 127.0.0.5").count - 1 == 1, "one line, not one per refusal")
        // Another address (HQ's node on 127.0.0.1) connects and syncs meanwhile.
        try n.initNode("hq", role: "hq", hub: hub.address)
        try seed(n.db("hq"), customers: 3)
        #expect(try n.syncOnce("hq").code == 0)
        // The bucket refills: a second later 127.0.0.5 may connect again.
        Thread.sleep(forTimeInterval: 1.2)
        let later = try RawConnection(port: port, from: "127.0.0.5")
        #expect(!later.isClosed(within: 0.5), "admitted once the budget refilled")
    }
}
