import Foundation
import Glibc
import CSiyuTestSupport

/// A child process of a test, started with `posix_spawn` so that it holds no descriptor of the
/// test process but the three standard streams it is given, and watched with `waitpid`.
///
/// Why not Foundation's `Process`: on Linux it learns that a child ended from the end-of-file of
/// a socket pair whose other end only that child should hold. The pair is not close-on-exec, and a
/// child started at the same moment from another thread (tests run side by side) can inherit the
/// end before the first child's spawn closes it; the first child then reads as running until the
/// second one exits — a one-second `siyu-node init` "did not finish within 60 s" because a hub a
/// neighbouring test had started held its socket. Pipes read to their end hang the same way. Here
/// every child closes every descriptor from 3 up in the child itself
/// (`posix_spawn_file_actions_addclosefrom_np`), whatever other threads open meanwhile, and its end
/// is read from the kernel (`waitpid`), not inferred from a descriptor.
public final class ChildProcess: @unchecked Sendable {
    /// Where a standard stream of the child goes.
    public enum Stream: Sendable {
        /// `/dev/null`.
        case null
        /// A file, created (or truncated) for writing; for standard input, opened for reading.
        case file(String)
        /// For standard input only: a pipe whose write end the test holds (`input`).
        case pipe
    }

    /// How a child ended.
    public enum Termination: Equatable, Sendable {
        /// It called `exit` with this status.
        case exit(Int32)
        /// A signal it did not handle ended it.
        case signal(Int32)
        /// Someone else collected its status (nothing in the tests does; reported, not hidden).
        case unknown

        /// The exit status, or the signal's number, as Foundation's `terminationStatus` gave it.
        public var status: Int32 {
            switch self {
            case let .exit(code): return code
            case let .signal(number): return number
            case .unknown: return -1
            }
        }
    }

    public let processIdentifier: pid_t
    /// The write end of the child's standard input when it was started with `.pipe`.
    public let input: FileHandle?

    private let lock = NSLock()
    private var ended: Termination?

    /// Starts `executable` (an absolute path) with `arguments` and `environment` (this process's
    /// own when nil). Throws `ChildProcessError` when a stream cannot be opened or the spawn fails.
    public init(executable: String, arguments: [String], environment: [String: String]? = nil,
                standardInput: Stream = .null, standardOutput: Stream = .null, standardError: Stream = .null) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var parentEnds: [Int32] = []          // closed in this process once the child has started
        var inputWriter: Int32 = -1
        defer { for fd in parentEnds { Glibc.close(fd) } }

        func open(_ stream: Stream, as target: Int32) throws {
            switch stream {
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case let .file(path):
                let flags = target == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC
                posix_spawn_file_actions_addopen(&actions, target, path, flags, 0o600)
            case .pipe:
                guard target == 0 else { throw ChildProcessError("a pipe is offered for standard input only") }
                var ends: [Int32] = [-1, -1]
                guard siyu_pipe_close_on_exec(&ends, O_CLOEXEC) == 0 else { throw ChildProcessError("pipe2: \(String(cString: strerror(errno)))") }
                parentEnds.append(ends[0])
                inputWriter = ends[1]
                posix_spawn_file_actions_adddup2(&actions, ends[0], 0)   // dup2 clears close-on-exec
            }
        }
        do {
            try open(standardInput, as: 0)
            try open(standardOutput, as: 1)
            try open(standardError, as: 2)
        } catch {
            if inputWriter >= 0 { Glibc.close(inputWriter) }
            throw error
        }
        siyu_spawn_actions_close_from(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, as Foundation starts children: a ^C at the terminal goes to the
        // test runner, which kills its children itself. And no blocked signal: the threads tests run
        // on block nearly all of them, and a child would inherit that mask (a SIGTERM sent to a
        // program that does not block it itself would stay pending for ever).
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + env { free(p) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, env)
        guard result == 0 else {
            if inputWriter >= 0 { Glibc.close(inputWriter) }
            throw ChildProcessError("cannot start \(executable) or open its streams (\(standardInput), \(standardOutput), \(standardError)): \(String(cString: strerror(result)))")
        }
        processIdentifier = pid
        input = inputWriter >= 0 ? FileHandle(fileDescriptor: inputWriter, closeOnDealloc: true) : nil
    }

    deinit {
        // Collect a child that already ended, so that it leaves no zombie behind.
        _ = isRunning
    }

    /// Whether the child has not ended yet (asks the kernel; never blocks).
    public var isRunning: Bool {
        lock.lock(); defer { lock.unlock() }
        return collect() == nil
    }

    /// How the child ended; nil while it runs.
    public var termination: Termination? {
        lock.lock(); defer { lock.unlock() }
        return collect()
    }

    /// Waits at most `timeout` seconds for the child to end; how it ended, or nil if it still runs.
    public func waitForExit(timeout: Double) -> Termination? {
        let end = Date().addingTimeInterval(timeout)
        while true {
            if let ended = termination { return ended }
            if Date() >= end { return nil }
            usleep(5_000)
        }
    }

    /// Sends `signal` to the child unless it has already ended (so never to a recycled pid).
    public func send(_ signal: Int32) {
        lock.lock(); defer { lock.unlock() }
        if collect() == nil { Glibc.kill(processIdentifier, signal) }
    }

    /// Runs `executable` to its end, its output and error collected in memory; killed (and an error
    /// thrown) after `timeout` seconds.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           timeout: Double = 120) throws -> (termination: Termination, out: Data, err: Data) {
        let directory = FileManager.default.temporaryDirectory.path
        let stem = "\(directory)/siyu-child-\(getpid())-\(UUID().uuidString)"
        defer { unlink(stem + ".out"); unlink(stem + ".err") }
        let child = try ChildProcess(executable: executable, arguments: arguments, environment: environment,
                                     standardOutput: .file(stem + ".out"), standardError: .file(stem + ".err"))
        guard let ended = child.waitForExit(timeout: timeout) else {
            child.send(SIGKILL)
            _ = child.waitForExit(timeout: 10)
            throw ChildProcessError("\(executable) \(arguments) did not finish within \(timeout) s")
        }
        let out = FileManager.default.contents(atPath: stem + ".out") ?? Data()
        let err = FileManager.default.contents(atPath: stem + ".err") ?? Data()
        return (ended, out, err)
    }

    /// The child's status once ended (collected at most once); the caller holds `lock`.
    private func collect() -> Termination? {
        if let ended { return ended }
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(processIdentifier, &status, WNOHANG) } while result == -1 && errno == EINTR
        if result == 0 { return nil }
        if result == -1 {
            ended = .unknown
        } else if status & 0x7f == 0 {
            ended = .exit((status >> 8) & 0xff)
        } else {
            ended = .signal(status & 0x7f)
        }
        return ended
    }
}

/// A child that could not be started or did not end in time.
public struct ChildProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
