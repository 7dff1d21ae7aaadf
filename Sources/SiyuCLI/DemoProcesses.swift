import Foundation

/// The child processes of `siyu demo`: `siyu-hub` and `siyu-node`, run from the binaries beside
/// this program, with their standard output and error in files of the demo's directory.
///
/// Guarantees: every wait is bounded; `stopAll` (which `Demo` runs on every path out) asks every
/// process still running to stop (SIGTERM, the clean shutdown of both daemons), then SIGINT, and
/// waits for each a bounded time; a daemon's standard input is a pipe this process holds, and
/// daemons run with `--stop-when-input-closes`, so they stop even when this process is killed or
/// dies of SIGPIPE (`siyu demo | head`); a failure names the command, its exit code and the last
/// lines it wrote.
final class DemoProcesses {
    /// A long-running child (`serve`, `run`).
    private struct Daemon {
        var process: Process
        /// Its standard input: closing the write end (or dying) stops it.
        var input: Pipe
        var logPath: String
        var logOffset: UInt64
    }

    let directory: URL
    private var daemons: [String: Daemon] = [:]

    init(directory: URL) {
        self.directory = directory
    }

    deinit { stopAll() }

    /// The executable `name`, from the directory of the running program (`swift build` puts the
    /// three products side by side).
    static func binary(_ name: String) throws -> URL {
        var candidates: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        if let exe = Bundle.main.executableURL { candidates.append(exe.resolvingSymlinksInPath().deletingLastPathComponent()) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for dir in candidates {
            let url = dir.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw CLIError("the demo needs the \(name) program beside siyu, and it is not there (looked in \(candidates.first?.path ?? "?"))",
                       hint: "build all three programs with swift build -c release")
    }

    /// Runs `binary arguments` to completion (at most `timeout` seconds) and returns its standard
    /// output; a non-zero exit throws with what it wrote on standard error.
    @discardableResult
    func run(_ binary: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 60) throws -> String {
        let tag = "\(binary)-\(UUID().uuidString.prefix(8))"
        let out = directory.appendingPathComponent(".\(tag).out"), err = directory.appendingPathComponent(".\(tag).err")
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        let process = try launch(binary, arguments, stdout: out, stderr: err, environment: environment)
        guard DemoProcesses.wait(for: process, seconds: timeout) else {
            process.terminate()
            _ = DemoProcesses.wait(for: process, seconds: 5)
            throw CLIError("\(binary) \(arguments.first ?? "") did not finish within \(Int(timeout)) s", hint: "run the demo again; if it recurs, run it with --keep DIR and read the logs there")
        }
        let output = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            let error = ((try? String(contentsOf: err, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            throw CLIError("\(binary) \(arguments.prefix(1).joined()) exited with \(process.terminationStatus): \(error)",
                           hint: "this is a defect of the demo or of \(binary); run the demo with --keep DIR to keep its files")
        }
        return output
    }

    /// Starts the daemon `name` (`binary arguments --stop-when-input-closes`), its output and
    /// error in `name.log`.
    func start(_ name: String, _ binary: String, _ arguments: [String]) throws {
        let log = directory.appendingPathComponent("\(name).log")
        let offset = DemoProcesses.size(of: log.path)
        let input = Pipe()
        let process = try launch(binary, arguments + ["--stop-when-input-closes"], stdout: log, stderr: log, environment: [:],
                                 append: true, input: input)
        daemons[name] = Daemon(process: process, input: input, logPath: log.path, logOffset: offset)
    }

    /// Waits (at most `timeout` seconds) until daemon `name` has written a line containing `text`
    /// since it started, and returns that line.
    func waitForLine(of name: String, containing text: String, timeout: Double = 20) throws -> String {
        guard let daemon = daemons[name] else { throw CLIError("\(name) is not running", hint: "a defect of the demo") }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = readLines(daemon.logPath, from: daemon.logOffset).lines.first(where: { $0.contains(text) }) { return line }
            guard daemon.process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw failure(name, "did not say '\(text)' within \(Int(timeout)) s")
    }

    /// The lines daemon `name` logged since the last call (or since it started).
    func newLines(of name: String) -> [String] {
        guard var daemon = daemons[name] else { return [] }
        let (lines, end) = readLines(daemon.logPath, from: daemon.logOffset)
        daemon.logOffset = end
        daemons[name] = daemon
        return lines
    }

    /// Whether daemon `name` is still running; throws with its last log lines if it stopped.
    func checkRunning(_ name: String) throws {
        guard let daemon = daemons[name] else { return }
        if !daemon.process.isRunning { throw failure(name, "stopped unexpectedly (exit \(daemon.process.terminationStatus))") }
    }

    /// Stops daemon `name` cleanly (SIGTERM) and checks it exited 0.
    func stop(_ name: String) throws {
        guard let daemon = daemons.removeValue(forKey: name) else { return }
        guard DemoProcesses.terminate(daemon.process) else {
            throw CLIError("\(name) did not stop within 10 s of SIGTERM", hint: "a defect of the daemon; run the demo with --keep DIR and read \(name).log")
        }
        if daemon.process.terminationStatus != 0 {
            daemons[name] = daemon
            defer { daemons[name] = nil }
            throw failure(name, "exited with \(daemon.process.terminationStatus) on SIGTERM")
        }
    }

    /// Stops everything still running, without throwing.
    func stopAll() {
        for (_, daemon) in daemons { _ = DemoProcesses.terminate(daemon.process) }
        daemons = [:]
    }

    /// The last lines of daemon `name`'s log, for a failure message.
    func failure(_ name: String, _ what: String) -> CLIError {
        let tail = daemons[name].map { readLines($0.logPath, from: 0).lines.suffix(8).map { "    " + $0 }.joined(separator: "\n") } ?? ""
        return CLIError("\(name) \(what)\(tail.isEmpty ? "" : "; its last log lines:\n" + tail)",
                        hint: "run the demo with --keep DIR to keep the logs")
    }

    // MARK: - Helpers

    private func launch(_ binary: String, _ arguments: [String], stdout: URL, stderr: URL, environment: [String: String],
                        append: Bool = false, input: Pipe? = nil) throws -> Process {
        let process = Process()
        process.executableURL = try DemoProcesses.binary(binary)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        env["SIYU_NODE_SECRET"] = nil
        for (k, v) in environment { env[k] = v }
        process.environment = env
        for url in Set([stdout, stderr]) where !(append && FileManager.default.fileExists(atPath: url.path)) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        let out = try FileHandle(forWritingTo: stdout)
        if append { out.seekToEndOfFile() }
        let err = stdout == stderr ? out : try FileHandle(forWritingTo: stderr)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input ?? FileHandle.nullDevice
        do { try process.run() } catch {
            throw CLIError("cannot start \(binary): \(error.localizedDescription)", hint: "check that the build finished: swift build -c release")
        }
        try? out.close()
        if err !== out { try? err.close() }
        try? input?.fileHandleForReading.close()   // the child's end
        return process
    }

    private static func size(of path: String) -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }

    /// The complete lines of `path` after `offset`, and the offset after the last of them.
    private func readLines(_ path: String, from offset: UInt64) -> (lines: [String], end: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return ([], offset) }
        defer { try? handle.close() }
        handle.seek(toFileOffset: offset)
        let data = handle.readDataToEndOfFile()
        guard let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) else { return ([], offset) }
        let complete = data[data.startIndex...lastNewline]
        let lines = String(decoding: complete, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        return (lines, offset + UInt64(complete.count))
    }

    /// Waits at most `seconds` for `process` to exit.
    private static func wait(for process: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        return !process.isRunning
    }

    /// SIGTERM, then SIGINT: whether it exited within 10 s.
    private static func terminate(_ process: Process) -> Bool {
        guard process.isRunning else { return true }
        process.terminate()
        if wait(for: process, seconds: 8) { return true }
        process.interrupt()
        return wait(for: process, seconds: 2)
    }
}
