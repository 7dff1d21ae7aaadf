import Glibc

/// Stops a daemon when its standard input reaches end of file: the way a supervisor that holds
/// the write end of a pipe (`siyu demo`, a test harness) makes sure its daemons never outlive it,
/// even when it is killed with SIGKILL or dies of SIGPIPE — the kernel closes the pipe then.
///
/// Guarantees: bytes that arrive on standard input are read and discarded (they never fill the
/// pipe); end of file, a hangup or a read error runs `onClose` once, on the loop thread, and the
/// watcher deregisters itself; standard input must be something epoll can watch (a pipe, a
/// terminal, a socket) — a regular file or /dev/null is refused with `NetError` at `start`, so a
/// daemon never stops by mistake at once. Loop thread only.
public final class InputClosedWatcher {
    private let loop: EventLoop
    private var registration: Registration?
    private let onClose: () -> Void

    public init(loop: EventLoop, onClose: @escaping () -> Void) {
        self.loop = loop
        self.onClose = onClose
    }

    /// Starts watching (loop thread).
    public func start() throws(NetError) {
        do {
            registration = try loop.register(descriptor: STDIN_FILENO, interest: .read) { [weak self] events in
                self?.handle(events)
            }
        } catch {
            if error.errno == EPERM { throw NetError.inputNotWatchable(errno: EPERM) }
            throw error
        }
    }

    private func handle(_ events: IOEvents) {
        var closed = events.contains(.hangup) || events.contains(.error)
        if !closed, events.contains(.readable) || events.contains(.readHangup) {
            var buffer = [UInt8](repeating: 0, count: 4_096)
            let outcome = try? syscall("read", context: "standard input") {
                buffer.withUnsafeMutableBytes { Glibc.read(STDIN_FILENO, $0.baseAddress, $0.count) }
            }
            switch outcome {
            case .completed(let n)?: closed = n == 0
            case .wouldBlock?: break
            case nil: closed = true
            }
        }
        guard closed, let registration else { return }
        loop.deregister(registration)
        self.registration = nil
        onClose()
    }
}
