import Glibc

/// Owns one file descriptor and closes it exactly once: on `close()` or, failing that, when the
/// object goes away. After `close()` the number is forgotten (`rawValue` is nil), so a closed
/// descriptor can never be used or closed again — not even after the kernel hands the same number
/// to a new file. Not thread-safe: one thread (an event loop's) uses it.
final class OwnedDescriptor {
    /// The descriptor, or nil once closed.
    private(set) var rawValue: Int32?

    /// Takes ownership of `descriptor` (which must be open and owned by no one else).
    init(_ descriptor: Int32) { rawValue = descriptor }

    deinit { close() }

    var isOpen: Bool { rawValue != nil }

    /// The descriptor, or `NetError.closed(what)`.
    func get(_ what: @autoclosure () -> String) throws(NetError) -> Int32 {
        guard let raw = rawValue else { throw NetError.closed(what()) }
        return raw
    }

    /// Closes the descriptor if it is still open. Never retried: on Linux the descriptor is released
    /// even when close reports EINTR, and a second close could close someone else's new descriptor.
    /// A failing close (EIO on a socket is not possible; EBADF would be a bug) is ignored: there is
    /// nothing left to do with the descriptor either way.
    func close() {
        guard let raw = rawValue else { return }
        rawValue = nil
        _ = Glibc.close(raw)
    }
}

/// Sets an integer socket option.
func setSocketOption(_ descriptor: Int32, level: Int32, name: Int32, value: Int32, label: String, context: @autoclosure () -> String) throws(NetError) {
    var value = value
    _ = try syscall("setsockopt(\(label))", context: context()) {
        setsockopt(descriptor, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }
}

/// The pending error of a socket (SO_ERROR), which also clears it: 0 if none.
func pendingSocketError(_ descriptor: Int32) -> Int32 {
    var value: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    let result = getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &value, &length)
    return result == 0 ? value : errno
}

/// Creates a non-blocking, close-on-exec TCP socket for `address`'s family.
func makeStreamSocket(for address: SocketAddress) throws(NetError) -> OwnedDescriptor {
    let type = LinuxConstants.socketStream | LinuxConstants.socketNonBlock | LinuxConstants.socketCloexec
    do throws(NetError) {
        guard let raw = try syscall("socket", context: "for \(address)", { socket(address.family, type, 0) }).value else {
            throw NetError.systemCall(call: "socket", errno: EAGAIN, context: "for \(address)")
        }
        return OwnedDescriptor(raw)
    } catch {
        throw NetError.creationFailed(error)
    }
}
