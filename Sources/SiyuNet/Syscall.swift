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

/// `epoll_*`, `eventfd` and `accept4` live in headers Swift's Glibc module leaves out
/// (<sys/epoll.h>, <sys/eventfd.h>, and `accept4` needs _GNU_SOURCE). Rather than add a C target,
/// SiyuNet looks them up in the C library once, by name, with their C signatures.
struct LinuxCalls: @unchecked Sendable {
    typealias EpollCreate1 = @convention(c) (Int32) -> Int32
    typealias EpollCtl = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    typealias EpollWait = @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Int32
    typealias EventFD = @convention(c) (UInt32, Int32) -> Int32
    typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32

    let epollCreate1: EpollCreate1
    let epollCtl: EpollCtl
    let epollWait: EpollWait
    let eventFD: EventFD
    let accept4: Accept4

    /// The calls, or nil if the C library lacks one (not Linux).
    static let shared: LinuxCalls? = {
        guard let library = dlopen(nil, RTLD_NOW) else { return nil }
        func symbol<F>(_ name: String, as type: F.Type) -> F? {
            guard let pointer = dlsym(library, name) else { return nil }
            return unsafeBitCast(pointer, to: type)
        }
        guard let create = symbol("epoll_create1", as: EpollCreate1.self),
              let ctl = symbol("epoll_ctl", as: EpollCtl.self),
              let wait = symbol("epoll_wait", as: EpollWait.self),
              let eventFD = symbol("eventfd", as: EventFD.self),
              let accept4 = symbol("accept4", as: Accept4.self)
        else { return nil }
        return LinuxCalls(epollCreate1: create, epollCtl: ctl, epollWait: wait, eventFD: eventFD, accept4: accept4)
    }()

    /// The calls, or `NetError.unsupportedPlatform`.
    static func load() throws(NetError) -> LinuxCalls {
        guard let calls = shared else { throw NetError.unsupportedPlatform("epoll, eventfd and accept4 not found in the C library") }
        return calls
    }
}

/// Linux ABI constants from headers Swift does not import (the same on x86_64 and arm64).
enum LinuxConstants {
    static let epollIn: UInt32 = 0x001
    static let epollOut: UInt32 = 0x004
    static let epollErr: UInt32 = 0x008
    static let epollHup: UInt32 = 0x010
    static let epollRDHup: UInt32 = 0x2000
    static let epollCtlAdd: Int32 = 1
    static let epollCtlDel: Int32 = 2
    static let epollCtlMod: Int32 = 3
    static let epollCloexec = Int32(O_CLOEXEC)
    static let eventFDCloexec = Int32(O_CLOEXEC)
    static let eventFDNonBlock = Int32(O_NONBLOCK)
    static let socketNonBlock = Int32(SOCK_NONBLOCK.rawValue)
    static let socketCloexec = Int32(SOCK_CLOEXEC.rawValue)
    static let socketStream = Int32(SOCK_STREAM.rawValue)
    static let sendNoSignal = Int32(MSG_NOSIGNAL)
}

/// `struct epoll_event`: 32-bit event mask, then 64-bit user data. glibc packs it on x86_64
/// (12 bytes, data at offset 4); elsewhere it has natural alignment (16 bytes, data at 8).
enum EpollEventLayout {
    #if arch(x86_64)
    static let size = 12
    static let dataOffset = 4
    #elseif arch(arm64)
    static let size = 16
    static let dataOffset = 8
    #else
    #error("SiyuNet knows the layout of struct epoll_event on x86_64 and arm64 only")
    #endif

    static func store(events: UInt32, data: UInt64, at pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: events, toByteOffset: 0, as: UInt32.self)
        pointer.storeBytes(of: data, toByteOffset: dataOffset, as: UInt64.self)
    }

    static func load(at pointer: UnsafeRawPointer) -> (events: UInt32, data: UInt64) {
        (pointer.loadUnaligned(fromByteOffset: 0, as: UInt32.self),
         pointer.loadUnaligned(fromByteOffset: dataOffset, as: UInt64.self))
    }
}
