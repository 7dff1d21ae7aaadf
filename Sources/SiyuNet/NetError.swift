import Glibc

/// The single error type of SiyuNet. Every case carries what is needed to act on it — the call,
/// errno and address involved — and `hint` says what to try where there is something to try.
/// `description` is one line: the message, then ` — ` and the hint if there is one, e.g.
/// `address already in use: 127.0.0.1:7400 — another siyu-hub running? choose another --listen`.
public enum NetError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed. `context` says what it was doing (an address, "accept on 127.0.0.1:7400").
    case systemCall(call: String, errno: Int32, context: String)
    /// A `HOST:PORT` text that is not an address; `reason` says what is wrong.
    case invalidAddress(input: String, reason: String)
    /// bind: another socket holds the address (EADDRINUSE).
    case addressInUse(SocketAddress)
    /// bind: the IP address is not one of this machine's (EADDRNOTAVAIL).
    case addressNotAvailable(SocketAddress)
    /// bind: a port below 1024 needs privileges (EACCES).
    case permissionDenied(SocketAddress)
    /// connect: nothing listens at the address (ECONNREFUSED).
    case connectionRefused(SocketAddress)
    /// connect: no answer within the time allowed (the loop's timer, or the kernel's ETIMEDOUT).
    case connectTimedOut(SocketAddress, after: Duration)
    /// connect: no route to the address (ENETUNREACH, EHOSTUNREACH).
    case unreachable(SocketAddress, errno: Int32)
    /// The peer reset the connection (ECONNRESET), or it was gone when we wrote (EPIPE).
    case connectionReset(SocketAddress)
    /// A write would have buffered more than `limit` bytes for a peer that is not reading.
    case outboundBufferFull(SocketAddress, buffered: Int, limit: Int)
    /// The process or the system is out of file descriptors (EMFILE, ENFILE) in `call`.
    case tooManyOpenFiles(call: String, errno: Int32)
    /// An operation on a connection or listener that is already closed.
    case closed(String)
    /// The event loop has stopped (or is stopping) and takes no more work.
    case loopStopped
    /// Standard input cannot be watched for end of file (`InputClosedWatcher`): it is a regular
    /// file or /dev/null, not a pipe, terminal or socket.
    case inputNotWatchable(errno: Int32)

    /// What went wrong, in one line.
    public var message: String {
        switch self {
        case let .systemCall(call, code, context):
            let name = errnoName(code).map { "\($0), " } ?? ""
            let what = context.isEmpty ? call : "\(call) (\(context))"
            return "\(what) failed: \(errnoText(code)) (\(name)errno \(code))"
        case let .invalidAddress(input, reason):
            return "invalid address \(NetError.quoted(input)): \(reason)"
        case let .addressInUse(address): return "address already in use: \(address)"
        case let .addressNotAvailable(address): return "address not available on this machine: \(address)"
        case let .permissionDenied(address): return "permission denied to listen on \(address)"
        case let .connectionRefused(address): return "connection refused by \(address)"
        case let .connectTimedOut(address, after):
            return "connecting to \(address) timed out after \(NetError.format(after))"
        case let .unreachable(address, code): return "cannot reach \(address): \(errnoText(code))"
        case let .connectionReset(address): return "connection reset by \(address)"
        case let .outboundBufferFull(address, buffered, limit):
            return "outbound buffer for \(address) full: \(buffered) bytes waiting, limit \(limit)"
        case let .tooManyOpenFiles(call, code): return "\(call) failed: \(errnoText(code))"
        case let .closed(what): return "\(what) is closed"
        case .loopStopped: return "the event loop has stopped"
        case let .inputNotWatchable(code):
            return "standard input cannot be watched for its end: it is a regular file or /dev/null, not a pipe (\(errnoText(code)))"
        }
    }

    /// What to try, where there is something to try.
    public var hint: String? {
        switch self {
        case .addressInUse: return "another siyu-hub running? choose another --listen"
        case .addressNotAvailable: return "listen on an address of this machine, e.g. 127.0.0.1:PORT or 0.0.0.0:PORT"
        case .permissionDenied: return "ports below 1024 need privileges; choose a port from 1024 up"
        case .connectionRefused: return "is the hub running and listening there? check the address and port"
        case .connectTimedOut: return "the host may be down or a firewall drops the packets; check the address"
        case .unreachable: return "check the address and this machine's network"
        case .outboundBufferFull: return "the peer is not reading: stop writing while isWritable is false and resume on .writable"
        case .tooManyOpenFiles: return "raise the limit on open files (ulimit -n) or serve fewer connections"
        case .inputNotWatchable: return "give the daemon a pipe as standard input, or leave out --stop-when-input-closes"
        case .invalidAddress, .systemCall, .connectionReset, .closed, .loopStopped: return nil
        }
    }

    public var description: String { hint.map { "\(message) — \($0)" } ?? message }

    /// The errno behind the error, where there is one.
    public var errno: Int32? {
        switch self {
        case let .systemCall(_, code, _), let .unreachable(_, code), let .tooManyOpenFiles(_, code), let .inputNotWatchable(code): return code
        case .addressInUse: return EADDRINUSE
        case .addressNotAvailable: return EADDRNOTAVAIL
        case .permissionDenied: return EACCES
        case .connectionRefused: return ECONNREFUSED
        case .connectionReset: return ECONNRESET
        default: return nil
        }
    }

    // MARK: mapping errno to the cases above

    /// The error for a failed `bind` to `address`.
    static func bindFailed(_ error: NetError, address: SocketAddress) -> NetError {
        switch error.errno {
        case EADDRINUSE: return .addressInUse(address)
        case EADDRNOTAVAIL: return .addressNotAvailable(address)
        case EACCES: return .permissionDenied(address)
        default: return error
        }
    }

    /// The error for a `connect` to `address` that failed with `code`.
    static func connectFailed(errno code: Int32, call: String, address: SocketAddress, timeout: Duration) -> NetError {
        switch code {
        case ECONNREFUSED: return .connectionRefused(address)
        case ETIMEDOUT: return .connectTimedOut(address, after: timeout)
        case ENETUNREACH, EHOSTUNREACH: return .unreachable(address, errno: code)
        case EMFILE, ENFILE: return .tooManyOpenFiles(call: call, errno: code)
        default: return .systemCall(call: call, errno: code, context: "connect to \(address)")
        }
    }

    /// The error for a failed read or write on a connection with `peer`.
    static func transferFailed(_ error: NetError, peer: SocketAddress) -> NetError {
        switch error.errno {
        case ECONNRESET, EPIPE: return .connectionReset(peer)
        default: return error
        }
    }

    /// The error for socket-creating calls (`socket`, `accept4`): EMFILE/ENFILE get their own case.
    static func creationFailed(_ error: NetError) -> NetError {
        if case let .systemCall(call, code, _) = error, code == EMFILE || code == ENFILE {
            return .tooManyOpenFiles(call: call, errno: code)
        }
        return error
    }

    // MARK: text

    /// `text` in quotes, at most 80 characters, anything but printable ASCII as `\u{…}`.
    static func quoted(_ text: String) -> String {
        var out = "\""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == 80 { out += "…"; break }
            count += 1
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case " " ... "~": out.unicodeScalars.append(scalar)
            default: out += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        return out + "\""
    }

    /// "250 ms", "5 s", "1.5 s".
    static func format(_ duration: Duration) -> String {
        let milliseconds = duration.nanosecondsClamped / 1_000_000
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        return "\(milliseconds / 1000).\(String(milliseconds % 1000 / 100)) s"
    }
}

extension Duration {
    /// The duration in nanoseconds, clamped to 0 ... Int64.max (negative durations count as 0).
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds < 0) { return 0 }
        let (wholeNanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return Int64.max }
        let (total, overflow2) = wholeNanos.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? Int64.max : total
    }
}
