// The hub-load and attack sections' hub: `siyu-bench --hub-child FILE [PENDING]` serves the hub replica FILE as
// `siyu-hub serve --db FILE --listen 127.0.0.1:0 --log-level warn --stop-when-input-closes
// --accepts-per-second 0 [--max-pending PENDING --max-pending-per-address PENDING]` does (the same `HubServer` and
// `HubStoreExecutor` with serve's defaults), in a process of its own. PENDING: the bench's nodes
// all connect at once from one address (127.0.0.1), where a brand's stores come from as many
// addresses, so the section raises serve's caps on unauthenticated connections to its node count.
//
// Why the bench runs itself rather than `siyu-hub`: `swift build -c release --product siyu-bench`
// builds siyu-bench alone, so a `siyu-hub` beside it may be missing or stale (built from another
// commit); this child is always the code of the bench being run. It is still a separate process,
// so the measuring clients never share the hub's thread, and its peak memory is its own.
//
// Below it, `BenchChild`: how the bench starts, reads and stops its children (this hub, and the
// attack section's attacker, `AttackChild`), and the /proc readings it takes of them.

import Foundation
import SiyuHub
import SiyuNet
import SiyuStore

/// The hub process of the hub-load and attack sections. Prints `listening on HOST:PORT` once bound, logs
/// warnings and errors to stderr, and stops (BYE to every node) when its standard input reaches end
/// of file or on SIGTERM/SIGINT. Exit status 0 after a clean stop, 1 if it could not serve.
enum HubChild {
    static let flag = "--hub-child"

    static func main(_ arguments: [String]) -> Int32 {
        guard arguments.count == 1 || arguments.count == 2, arguments.count == 1 || Int(arguments[1]).map({ $0 > 0 }) == true else {
            FileHandle.standardError.write(Data("usage: siyu-bench \(flag) HUB-FILE [MAX-PENDING]\n".utf8))
            return 2
        }
        let pending = arguments.count == 2 ? Int(arguments[1]) : nil
        do {
            let replica = try Replica(existing: arguments[0])
            defer { replica.close() }
            let executor = try HubStoreExecutor(replica: replica, options: .init())
            let log = OperatorLog(level: .warn) { line in fputs(line, stderr) }
            let loop = try EventLoop()
            var configuration = HubServer.Configuration(session: .init(hubID: replica.node), listen: .loopbackIPv4(port: 0),
                                                        maxPendingConnections: max(256, pending ?? 0), maxPendingPerAddress: pending ?? 8)
            // No accept budget: the hub-load section's nodes all connect at once from one address, and
            // the attack section's attacker reconnects every round from one address to measure each
            // row's own defense (the budget would close most of its connections first;
            // AcceptBudgetTests tests the budget).
            configuration.acceptsPerSecond = 0
            let server = try HubServer(loop: loop, executor: executor, configuration: configuration, log: log)
            let address = try server.start()
            let watcher = SignalWatcher([.interrupt, .terminate], loop: loop) { signal in server.shutdown(reason: "\(signal)") }
            defer { watcher.cancel() }
            let inputWatcher = InputClosedWatcher(loop: loop) { server.shutdown(reason: "standard input closed"); loop.stop() }
            try inputWatcher.start()
            print("listening on \(address)")
            fflush(stdout)
            try loop.run()
            server.waitForStoreWork()
            return 0
        } catch {
            FileHandle.standardError.write(Data("siyu-bench hub child: \(error)\n".utf8))
            return 1
        }
    }
}

// MARK: Starting, watching and stopping a child of the bench (the hub child, the attack child)

/// A child process of the bench: this executable run with one of its hidden subcommands
/// (`HubChild`, `AttackChild`), started behind `prefix` when one is given (`taskset`, `nice`: they
/// exec it, so the child keeps their process id). Its standard input is a pipe (closing it asks the
/// child to stop), its standard output is read line by line on a thread of its own, its standard
/// error goes to the file `log`. `run` starts it, tracked by `Interruption`, and stops it after.
final class BenchChild {
    let process = Process()
    let log: String
    private let input = Pipe()
    private let output = Pipe()
    private let lines = LineQueue()
    /// The subcommand's flag, for messages.
    private let name: String

    init(_ arguments: [String], log: String, prefix: [String] = []) {
        self.log = log
        name = arguments.first ?? "child"
        if let tool = prefix.first {
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = Array(prefix.dropFirst()) + [BootstrapBench.executableURL().path] + arguments
        } else {
            process.executableURL = BootstrapBench.executableURL()
            process.arguments = arguments
        }
        process.standardInput = input
        process.standardOutput = output
    }

    /// The child's process id (valid once `run` started it).
    var pid: Int32 { process.processIdentifier }

    /// Starts the child, runs `body` while it runs, then stops it (`stop`), also when `body` throws.
    func run(_ body: () throws -> Void) throws {
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardError = handle
        defer { try? handle.close() }
        try Interruption.run(process) {
            lines.read(output.fileHandleForReading)
            defer { stop() }
            try body()
        }
    }

    /// The next line the child printed, waiting at most `limit` seconds; nil if none came (the
    /// child closed its output or the wait ran out).
    func nextLine(within limit: Double) -> String? { lines.next(within: limit) }

    /// The hub child's `listening on HOST:PORT` line, waiting at most 60 s.
    func listeningAddress() throws -> SocketAddress {
        guard let line = nextLine(within: 60) else {
            throw BenchError("hub: the hub process printed no address within 60 s; its log: \(tail(log))")
        }
        guard line.hasPrefix("listening on "), let address = try? SocketAddress(parsing: String(line.dropFirst("listening on ".count))) else {
            throw BenchError("hub: the hub process did not start (printed '\(line)'); its log: \(tail(log))")
        }
        return address
    }

    /// Closes the child's standard input (it then stops cleanly) and waits at most 15 s, then
    /// SIGTERM and 5 s more, then SIGKILL.
    func stop() {
        try? input.fileHandleForWriting.close()
        for (limit, escalate) in [(15.0, { self.process.terminate() }), (5.0, { kill(self.process.processIdentifier, SIGKILL) })] as [(Double, () -> Void)] {
            let end = Date().addingTimeInterval(limit)
            while process.isRunning && Date() < end { usleep(20_000) }
            guard process.isRunning else { return }
            progress("the \(name) process did not stop within \(Int(limit)) s; signalling it")
            escalate()
        }
        process.waitUntilExit()
    }

    /// Its exit status (after `run`).
    var exitStatus: Int32 { process.terminationStatus }
}

/// Polls `done` every 20 ms until it holds or `limit` seconds passed; whether it held.
func wait(upTo limit: Double, _ done: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(limit)
    while Date() < end {
        if done() { return true }
        usleep(20_000)
    }
    return done()
}

func tail(_ path: String) -> String {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").suffix(3).joined(separator: " | ")
}

/// CPU seconds (user and system) a process has used, from /proc/PID/stat.
func processCPUSeconds(_ pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    // After "pid (comm)": state is field 3, utime 14 and stime 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds (user and system) this process has used, every thread.
func ownCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return s(usage.ru_utime) + s(usage.ru_stime)
}

/// The child's peak resident memory (VmHWM), from /proc.
func childPeakKilobytes(_ pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
    return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
}

/// The lines a child prints, read on a thread of their own and taken by another.
private final class LineQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    private var ended = false
    private let arrived = DispatchSemaphore(value: 0)

    /// Reads `handle` until end of file on a new thread.
    func read(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            var pending: [UInt8] = []
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending += chunk
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    lock.withLock { lines.append(line) }
                    arrived.signal()
                }
            }
            lock.withLock {
                if !pending.isEmpty { lines.append(String(decoding: pending, as: UTF8.self)) }
                ended = true
            }
            arrived.signal()
        }
    }

    func next(within limit: Double) -> String? {
        let deadline = DispatchTime.now() + limit
        while true {
            let (line, over): (String?, Bool) = lock.withLock { lines.isEmpty ? (nil, ended) : (lines.removeFirst(), false) }
            if let line { return line }
            if over || arrived.wait(timeout: deadline) == .timedOut { return lock.withLock { lines.isEmpty ? nil : lines.removeFirst() } }
        }
    }
}
