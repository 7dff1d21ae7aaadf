/// The PROXY protocol's text header (version 1, as HAProxy specifies it), which a TLS terminator in
/// front of the hub — stunnel with `protocol = proxy`, haproxy with `send-proxy` — writes first on
/// each connection to say which client it carries:
///
///     PROXY TCP4 203.0.113.7 192.0.2.1 51234 7443\r\n
///     PROXY TCP6 2001:db8::7 2001:db8::1 51234 7443\r\n
///     PROXY UNKNOWN\r\n                       (anything may follow UNKNOWN up to the CRLF)
///
/// Guarantees: `parse` reads at most `maxLength` bytes, never traps, and takes a header only when
/// every field is well formed: the protocol word, numeric addresses of that family (`inet_pton`),
/// ports 0…65535 in decimal without a sign, single spaces, CRLF within 107 bytes.
public enum ProxyHeader {
    /// The longest header, CRLF included.
    public static let maxLength = 107

    /// What `parse` found at the start of the bytes received.
    public enum Parsed: Equatable, Sendable {
        /// No CRLF yet, and nothing wrong so far: wait for more bytes.
        case needsMore
        /// A header of `length` bytes naming the client `source` (nil for UNKNOWN: the
        /// connection's own peer stands).
        case header(source: SocketAddress?, length: Int)
        /// Not a PROXY v1 header; the reason, for the log.
        case invalid(String)
    }

    public static func parse(_ bytes: [UInt8]) -> Parsed {
        let signature = Array("PROXY ".utf8)
        let prefix = bytes.prefix(signature.count)
        guard prefix.elementsEqual(signature.prefix(prefix.count)) else { return .invalid("the connection does not start with a PROXY header") }
        let window = bytes.prefix(maxLength)
        guard let cr = window.firstIndex(of: 0x0D) else {
            return window.count >= maxLength ? .invalid("no CRLF within \(maxLength) bytes") : .needsMore
        }
        guard cr + 2 <= maxLength else { return .invalid("no CRLF within \(maxLength) bytes") }
        guard cr + 1 < bytes.count else { return .needsMore }
        guard bytes[cr + 1] == 0x0A else { return .invalid("CR not followed by LF") }
        let length = cr + 2
        guard bytes[..<cr].allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return .invalid("a byte outside printable ASCII") }
        let words = bytes[signature.count..<cr].split(separator: 0x20, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        switch words.first {
        case "UNKNOWN":
            return .header(source: nil, length: length)
        case "TCP4", "TCP6":
            guard words.count == 5 else { return .invalid("\(words[0]) needs 4 fields (source, destination, source port, destination port)") }
            let v4 = words[0] == "TCP4"
            guard let source = v4 ? SocketAddress.ipv4Bytes(words[1]) : SocketAddress.ipv6Bytes(words[1]),
                  (v4 ? SocketAddress.ipv4Bytes(words[2]) : SocketAddress.ipv6Bytes(words[2])) != nil else {
                return .invalid("an address that is not numeric \(v4 ? "IPv4" : "IPv6")")
            }
            guard let sourcePort = port(words[3]), port(words[4]) != nil else { return .invalid("a port outside 0…65535") }
            return .header(source: SocketAddress(host: v4 ? .ipv4(source) : .ipv6(source), port: sourcePort), length: length)
        default:
            return .invalid("unknown protocol word \"\(words.first.map { String($0.prefix(16)) } ?? "")\"")
        }
    }

    /// A decimal port without sign or leading zeros (0 alone allowed), at most 65535.
    private static func port(_ text: String) -> UInt16? {
        let digits = Array(text.utf8)
        guard (1...5).contains(digits.count), digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              digits.count == 1 || digits[0] != 0x30, let value = UInt32(text), value <= 65_535 else { return nil }
        return UInt16(value)
    }
}
