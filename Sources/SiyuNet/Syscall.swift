import CSiyuNet
import Glibc

/// What a non-blocking system call did: it completed with a value, or it would have blocked
/// (EAGAIN / EWOULDBLOCK) and should be tried again when the descriptor is ready.
enum SyscallResult<Value> {
    case completed(Value)
    case wouldBlock

    /// The value, or nil if the call would have blocked.
    var value: Value? {
        if case let .completed(v) = self { return v }
        return nil
    }
}

extension SyscallResult: Equatable where Value: Equatable {}
extension SyscallResult: Sendable where Value: Sendable {}

/// Runs one system call the POSIX way — `call` returns -1 and sets `errno` on failure — and
/// sorts the outcome:
/// - EINTR (a signal arrived) is retried at once, as often as it happens;
/// - EAGAIN / EWOULDBLOCK becomes `.wouldBlock`;
/// - any other failure throws `NetError.systemCall` with `name`, the errno and `context`
///   (what the call was doing, e.g. the peer's address), so the message says what failed and why.
///
/// The only place in SiyuNet that reads `errno`. `close` must not go through here: on Linux a
/// close interrupted by a signal has already released the descriptor, and retrying it could close
/// a descriptor another thread just opened (see `OwnedDescriptor.close`).
func syscall<Result: FixedWidthInteger & SignedInteger>(
    _ name: String, context: @autoclosure () -> String = "", _ call: () -> Result
) throws(NetError) -> SyscallResult<Result> {
    while true {
        let result = call()
        if result != -1 { return .completed(result) }
        let code = errno
        switch code {
        case EINTR: continue
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        default: throw NetError.systemCall(call: name, errno: code, context: context())
        }
    }
}

/// The C library's text for an errno value ("Connection refused").
func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}

/// The symbolic name of the errno values the layer reports most, for logs ("ECONNREFUSED").
func errnoName(_ code: Int32) -> String? {
    switch code {
    case EPERM: return "EPERM"
    case ENOENT: return "ENOENT"
    case EINTR: return "EINTR"
    case EBADF: return "EBADF"
    case EAGAIN: return "EAGAIN"
    case ENOMEM: return "ENOMEM"
    case EACCES: return "EACCES"
    case EFAULT: return "EFAULT"
    case EINVAL: return "EINVAL"
    case ENFILE: return "ENFILE"
    case EMFILE: return "EMFILE"
    case EPIPE: return "EPIPE"
    case ENOSYS: return "ENOSYS"
    case ENOTSOCK: return "ENOTSOCK"
    case EAFNOSUPPORT: return "EAFNOSUPPORT"
    case EADDRINUSE: return "EADDRINUSE"
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL"
    case ENETDOWN: return "ENETDOWN"
    case ENETUNREACH: return "ENETUNREACH"
    case ECONNABORTED: return "ECONNABORTED"
    case ECONNRESET: return "ECONNRESET"
    case ENOBUFS: return "ENOBUFS"
    case ENOTCONN: return "ENOTCONN"
    case ETIMEDOUT: return "ETIMEDOUT"
    case ECONNREFUSED: return "ECONNREFUSED"
    case EHOSTUNREACH: return "EHOSTUNREACH"
    case EALREADY: return "EALREADY"
    case EINPROGRESS: return "EINPROGRESS"
    default: return nil
    }
}

// MARK: - Linux calls the Glibc module does not import
// epoll, eventfd and accept4 come from the CSiyuNet module (Sources/CSiyuNet/shim.h), a header-only
// shim over <sys/epoll.h>, <sys/eventfd.h> and accept4's declaration, as CSQLite is over SQLite.

/// The Linux constants SiyuNet uses, with the types its calls take.
enum LinuxConstants {
    static let epollIn = EPOLLIN.rawValue
    static let epollOut = EPOLLOUT.rawValue
    static let epollErr = EPOLLERR.rawValue
    static let epollHup = EPOLLHUP.rawValue
    static let epollRDHup = EPOLLRDHUP.rawValue
    static let epollCtlAdd = EPOLL_CTL_ADD
    static let epollCtlDel = EPOLL_CTL_DEL
    static let epollCtlMod = EPOLL_CTL_MOD
    static let epollCloexec = Int32(O_CLOEXEC)
    static let eventFDCloexec = Int32(O_CLOEXEC)
    static let eventFDNonBlock = Int32(O_NONBLOCK)
    static let socketNonBlock = Int32(SOCK_NONBLOCK.rawValue)
    static let socketCloexec = Int32(SOCK_CLOEXEC.rawValue)
    static let socketStream = Int32(SOCK_STREAM.rawValue)
    static let sendNoSignal = Int32(MSG_NOSIGNAL)
}
