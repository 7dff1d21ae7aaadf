import Testing
@testable import SiyuNet

/// `ProxyHeader`: the PROXY protocol v1 header a TLS terminator sends first (HAProxy's
/// specification), read byte by byte as it may arrive.
@Suite struct ProxyHeaderTests {
    func parse(_ text: String) -> ProxyHeader.Parsed { ProxyHeader.parse(Array(text.utf8)) }

    @Test func aTCP4HeaderFedByteByByteNeedsMoreUntilItsCRLFThenNamesTheClient() {
        let header = Array("PROXY TCP4 203.0.113.7 192.0.2.1 51234 7443\r\n".utf8)
        for cut in 0..<header.count { #expect(ProxyHeader.parse(Array(header.prefix(cut))) == .needsMore, "prefix of \(cut) bytes") }
        let expected = ProxyHeader.Parsed.header(source: SocketAddress(host: .ipv4([203, 0, 113, 7]), port: 51234), length: header.count)
        #expect(ProxyHeader.parse(header) == expected)
        #expect(ProxyHeader.parse(header + [0x00, 0x01, 0x02]) == expected, "the bytes after it are the session's")
    }

    @Test func aTCP6HeaderNamesTheClientsIPv6Address() {
        guard case let .header(source?, length) = parse("PROXY TCP6 2001:db8::7 2001:db8::1 1 7443\r\n") else { Issue.record("not a header"); return }
        #expect(source.hostDescription == "2001:db8::7" && source.port == 1 && length == 43)
    }

    @Test func anUnknownHeaderLeavesTheConnectionsOwnAddress() {
        #expect(parse("PROXY UNKNOWN\r\n") == .header(source: nil, length: 15))
        #expect(parse("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n") == .header(source: nil, length: 35))
    }

    @Test func aConnectionThatDoesNotStartWithPROXYIsRefusedAtItsFirstWrongByte() {
        for text in ["HELLO", "\u{0}\u{1}", "PROXX", "proxy TCP4"] {
            guard case .invalid = parse(text) else { Issue.record("\(text.debugDescription) taken"); continue }
        }
    }

    @Test func aHeaderLongerThan107BytesIsRefused() {
        let long = "PROXY UNKNOWN " + String(repeating: "x", count: 92)   // 106 bytes, no CR yet
        #expect(parse(long) == .needsMore)
        guard case .invalid = parse(long + "x") else { Issue.record("107 bytes without CRLF taken"); return }
        guard case .invalid = parse(long + "\r\n") else { Issue.record("a 108-byte header taken"); return }
        #expect(parse(String(long.dropLast()) + "\r\n") == .header(source: nil, length: 107))
    }

    @Test func malformedFieldsAreRefused() {
        for text in ["PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n",          // a field short
                     "PROXY TCP4 203.0.113.7  192.0.2.1 51234 7443\r\n",    // two spaces
                     "PROXY TCP4 2001:db8::7 192.0.2.1 51234 7443\r\n",     // IPv6 in TCP4
                     "PROXY TCP6 203.0.113.7 2001:db8::1 51234 7443\r\n",   // IPv4 in TCP6
                     "PROXY TCP4 203.0.113.256 192.0.2.1 51234 7443\r\n",
                     "PROXY TCP4 203.0.113.7 192.0.2.1 65536 7443\r\n",
                     "PROXY TCP4 203.0.113.7 192.0.2.1 051234 7443\r\n",    // a leading zero
                     "PROXY TCP4 203.0.113.7 192.0.2.1 +1 7443\r\n",
                     "PROXY TCP4 203.0.113.7 192.0.2.1 51234 7443\r\r\n",
                     "PROXY TCP4 203.0.113.\u{7}7 192.0.2.1 51234 7443\r\n",
                     "PROXY UDP4 203.0.113.7 192.0.2.1 51234 7443\r\n"] {
            guard case .invalid = parse(text) else { Issue.record("\(text.debugDescription) taken"); continue }
        }
    }
}
