import Testing
@testable import SiyuNet

@Suite("Parsing HOST:PORT")
struct SocketAddressTests {
    @Test("Numeric IPv4, bracketed IPv6 and localhost parse and print back", arguments: [
        ("127.0.0.1:7400", "127.0.0.1:7400"),
        ("0.0.0.0:0", "0.0.0.0:0"),
        ("255.255.255.255:65535", "255.255.255.255:65535"),
        ("[::1]:7400", "[::1]:7400"),
        ("[::]:80", "[::]:80"),
        ("[2001:DB8::0:1]:443", "[2001:db8::1]:443"),
        ("[::ffff:10.0.0.1]:9", "[::ffff:10.0.0.1]:9"),
        ("localhost:7400", "127.0.0.1:7400"),
        ("LocalHost:1", "127.0.0.1:1"),
        ("127.0.0.1:007400", "127.0.0.1:7400"),
    ])
    func parses(text: String, printed: String) throws {
        let address = try SocketAddress(parsing: text)
        #expect(address.description == printed)
        #expect(try SocketAddress(parsing: printed) == address)
    }

    @Test("The parts are what the text says")
    func parts() throws {
        let v4 = try SocketAddress(parsing: "10.1.2.3:8080")
        #expect(v4.host == .ipv4([10, 1, 2, 3]))
        #expect(v4.port == 8080)
        let v6 = try SocketAddress(parsing: "[::1]:1")
        #expect(v6 == .loopbackIPv6(port: 1))
        #expect(v6.hostDescription == "::1")
    }

    @Test("Bad input is refused with a reason, never a trap", arguments: [
        ("", "empty address"),
        ("127.0.0.1", "missing port"),
        ("127.0.0.1:", "missing port"),
        (":7400", "missing host"),
        ("127.0.0.1:65536", "out of range"),
        ("127.0.0.1:99999999999999999999999999", "out of range"),
        ("127.0.0.1:-1", "not a number"),
        ("127.0.0.1:+80", "not a number"),
        ("127.0.0.1:0x50", "not a number"),
        ("::1:7400", "needs brackets"),
        ("[::1]", "missing port after ]"),
        ("[::1]7400", "expected :PORT after ]"),
        ("[::1:7400", "missing ]"),
        ("[127.0.0.1]:80", "not a numeric IPv6 address"),
        ("[fe80::1%eth0]:80", "not a numeric IPv6 address"),
        ("example.com:80", "not a numeric IPv4 address"),
        ("1.2.3:80", "not a numeric IPv4 address"),
        ("256.1.1.1:80", "not a numeric IPv4 address"),
        ("01.2.3.4:80", "not a numeric IPv4 address"),
        ("127.0.0.1 :80", "spaces"),
        ("127.0.0.1:80\u{0}", "control"),
        ("127.0.0.1\u{0}:80", "control"),
        ("１２７.0.0.1:80", "non-ASCII"),
        ("🙂:80", "non-ASCII"),
        (String(repeating: "1", count: 10_000) + ":80", "longer than"),
    ])
    func refuses(text: String, reason: String) {
        do {
            let address = try SocketAddress(parsing: text)
            Issue.record("\(NetError.quoted(text)) parsed as \(address)")
        } catch {
            guard case let .invalidAddress(input, why) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(input == text)
            #expect(why.contains(reason), "\(why)")
            #expect(error.description.count < 300)
        }
    }

    @Test("Random text never traps the parser")
    func randomText() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let alphabet = Array("0123456789abcdefABCDEF:.[]%-+ localhost\u{0}\u{7F}é🙂".unicodeScalars)
        for _ in 0 ..< 3000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let length = Int(state >> 58)
            var text = ""
            for i in 0 ..< length {
                let pick = Int((state >> UInt64(i % 50)) % UInt64(alphabet.count))
                text.unicodeScalars.append(alphabet[pick])
            }
            if let address = try? SocketAddress(parsing: text) {
                #expect(try SocketAddress(parsing: address.description) == address)
            }
        }
    }
}
