import Glibc

/// A numeric IPv4 or IPv6 address with a TCP port: what a listener binds to and a client connects
/// to. A plain value; any thread may use it.
///
/// Written and parsed as `HOST:PORT` — `127.0.0.1:7400`, `[::1]:7400`, `localhost:7400`
/// (`localhost` means 127.0.0.1). Host names other than `localhost` are refused: SiyuNet does no
/// DNS lookups. Port 0 asks the system for a free port when listening (the listener reports the port
/// it got); a client cannot connect to port 0.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// The IP address: 4 bytes (IPv4) or 16 bytes (IPv6), in network order.
    public enum Host: Hashable, Sendable {
        case ipv4([UInt8])
        case ipv6([UInt8])
    }

    public let host: Host
    public let port: UInt16

    /// The longest `HOST:PORT` text `init(parsing:)` reads (a bracketed IPv6 address with a port is
    /// at most 53 characters).
    public static let maxTextLength = 64

    /// 127.0.0.1 with the given port.
    public static func loopbackIPv4(port: UInt16) -> SocketAddress { SocketAddress(host: .ipv4([127, 0, 0, 1]), port: port) }

    /// ::1 with the given port.
    public static func loopbackIPv6(port: UInt16) -> SocketAddress {
        SocketAddress(host: .ipv6([UInt8](repeating: 0, count: 15) + [1]), port: port)
    }

    /// An address from its parts. A host with the wrong number of bytes (not 4 or 16) is cut or
    /// padded with zeros to that number, so an address is always well formed.
    public init(host: Host, port: UInt16) {
        switch host {
        case let .ipv4(bytes): self.host = .ipv4(SocketAddress.normalized(bytes, count: 4))
        case let .ipv6(bytes): self.host = .ipv6(SocketAddress.normalized(bytes, count: 16))
        }
        self.port = port
    }

    /// Parses `HOST:PORT`, `[IPV6]:PORT` or `localhost:PORT`. Never traps: every malformed input
    /// throws `NetError.invalidAddress` saying what is wrong and how it should look.
    public init(parsing text: String) throws(NetError) {
        func invalid(_ reason: String) -> NetError { .invalidAddress(input: text, reason: reason) }
        let example = "expected HOST:PORT, e.g. 127.0.0.1:7400 or [::1]:7400"
        guard !text.isEmpty else { throw invalid("empty address; \(example)") }
        let bytes = Array(text.utf8)
        guard bytes.count <= SocketAddress.maxTextLength else {
            throw invalid("longer than \(SocketAddress.maxTextLength) bytes; \(example)")
        }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw invalid("contains spaces, control or non-ASCII characters; \(example)")
        }
        let hostText: String
        let portText: String
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else {
                throw invalid("missing ] after the IPv6 address; \(example)")
            }
            hostText = String(decoding: bytes[1 ..< close], as: UTF8.self)
            let rest = bytes[(close + 1)...]
            guard rest.first == UInt8(ascii: ":") else {
                throw invalid(rest.isEmpty ? "missing port after ]; \(example)" : "expected :PORT after ]")
            }
            portText = String(decoding: rest.dropFirst(), as: UTF8.self)
            guard let address = SocketAddress.ipv6Bytes(hostText) else {
                throw invalid("\"\(hostText)\" is not a numeric IPv6 address")
            }
            self.host = .ipv6(address)
        } else {
            guard let colon = bytes.lastIndex(of: UInt8(ascii: ":")) else {
                throw invalid("missing port; \(example)")
            }
            hostText = String(decoding: bytes[..<colon], as: UTF8.self)
            portText = String(decoding: bytes[(colon + 1)...], as: UTF8.self)
            if hostText.contains(":") {
                throw invalid("an IPv6 address needs brackets, e.g. [::1]:7400")
            }
            guard !hostText.isEmpty else { throw invalid("missing host before :\(portText); \(example)") }
            if hostText.lowercased() == "localhost" {
                self.host = .ipv4([127, 0, 0, 1])
            } else if let address = SocketAddress.ipv4Bytes(hostText) {
                self.host = .ipv4(address)
            } else {
                throw invalid("\"\(hostText)\" is not a numeric IPv4 address (host names other than localhost are not looked up)")
            }
        }
        guard !portText.isEmpty else { throw invalid("missing port after :; \(example)") }
        guard portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw invalid("port \"\(portText)\" is not a number")
        }
        // At most 5 digits (after leading zeros) can be in range; no arithmetic on longer input.
        let digits = portText.drop(while: { $0 == "0" })
        guard digits.count <= 5, let value = Int(digits.isEmpty ? "0" : String(digits)), value <= 65535 else {
            throw invalid("port \(portText) is out of range (0–65535)")
        }
        self.port = UInt16(value)
    }

    /// `127.0.0.1:7400` or `[::1]:7400`.
    public var description: String {
        switch host {
        case .ipv4: return "\(hostDescription):\(port)"
        case .ipv6: return "[\(hostDescription)]:\(port)"
        }
    }

    /// The host alone, as `inet_ntop` writes it: `127.0.0.1`, `::1`.
    public var hostDescription: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let family: Int32
        let bytes: [UInt8]
        switch host {
        case let .ipv4(b): family = AF_INET; bytes = b
        case let .ipv6(b): family = AF_INET6; bytes = b
        }
        let ok = bytes.withUnsafeBytes { raw in
            buffer.withUnsafeMutableBufferPointer { out in
                inet_ntop(family, raw.baseAddress, out.baseAddress, socklen_t(out.count - 1)) != nil
            }
        }
        guard ok else { return bytes.map(String.init).joined(separator: ".") }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// The same host with another port.
    public func withPort(_ port: UInt16) -> SocketAddress { SocketAddress(host: host, port: port) }

    /// AF_INET or AF_INET6.
    var family: Int32 {
        switch host {
        case .ipv4: return AF_INET
        case .ipv6: return AF_INET6
        }
    }

    // MARK: sockaddr conversions

    /// Calls `body` with this address as a `sockaddr` and its length.
    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(NetError) -> T) throws(NetError) -> T {
        switch host {
        case let .ipv4(bytes):
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &raw.sin_addr) { $0.copyBytes(from: bytes) }
            return try withUnsafePointer(to: &raw) { pointer throws(NetError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(NetError) in
                    try body(address, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case let .ipv6(bytes):
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &raw.sin6_addr) { $0.copyBytes(from: bytes) }
            return try withUnsafePointer(to: &raw) { pointer throws(NetError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(NetError) in
                    try body(address, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
    }

    /// The address in a `sockaddr_storage` filled by the kernel (accept, getsockname, getpeername),
    /// or nil if it is not an IPv4/IPv6 address.
    init?(storage: sockaddr_storage, length: socklen_t) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET where Int(length) >= MemoryLayout<sockaddr_in>.size:
            let raw = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in.self) }
            let bytes = withUnsafeBytes(of: raw.sin_addr) { Array($0) }
            self.init(host: .ipv4(bytes), port: UInt16(bigEndian: raw.sin_port))
        case AF_INET6 where Int(length) >= MemoryLayout<sockaddr_in6>.size:
            let raw = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in6.self) }
            let bytes = withUnsafeBytes(of: raw.sin6_addr) { Array($0) }
            self.init(host: .ipv6(bytes), port: UInt16(bigEndian: raw.sin6_port))
        default:
            return nil
        }
    }

    /// Calls a kernel function that fills a socket address (`getsockname`, `accept4`).
    static func filled(_ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> (result: Int32, address: SocketAddress?) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, &length) }
        }
        guard result >= 0 else { return (result, nil) }
        return (result, SocketAddress(storage: storage, length: length))
    }

    // MARK: parsing helpers

    private static func normalized(_ bytes: [UInt8], count: Int) -> [UInt8] {
        bytes.count == count ? bytes : Array((bytes + [UInt8](repeating: 0, count: count)).prefix(count))
    }

    /// Dotted-quad IPv4 (`inet_pton`: exactly four decimal parts, no leading zeros).
    static func ipv4Bytes(_ text: String) -> [UInt8]? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: address) { Array($0) }
    }

    /// Numeric IPv6 (`inet_pton`; no zone ids).
    static func ipv6Bytes(_ text: String) -> [UInt8]? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: address) { Array($0) }
    }
}
