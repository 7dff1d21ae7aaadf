import Foundation
import Glibc
import SiyuCore
import SiyuSQLite
import SiyuStore
import SiyuTestSupport

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A child process with its standard output and error in files of the scratch directory (no pipe
/// to fill up). Killed with SIGKILL by `kill()` or `stop()` when still running; every process a
/// test starts is registered with its `Processes` so that none outlives the test.
final class Child {
    let name: String
    let process: ChildProcess
    let outPath: String
    let errPath: String

    /// The write end of the child's standard input when the test asked for a pipe (`input: true`).
    var input: FileHandle? { process.input }

    init(_ binary: String, _ arguments: [String], name: String, in scratch: TemporaryDirectory, environment: [String: String] = [:],
         input: Bool = false) throws {
        self.name = name
        outPath = scratch.path("\(name).\(UUID().uuidString.prefix(8)).out")
        errPath = scratch.path("\(name).\(UUID().uuidString.prefix(8)).err")
        // A package binary by name, or any program by absolute path (stunnel, openssl).
        let executable = binary.hasPrefix("/") ? binary : try Binaries.url(binary).path
        var env = ProcessInfo.processInfo.environment
        env["SIYU_NODE_SECRET"] = nil
        for (k, v) in environment { env[k] = v }
        process = try ChildProcess(executable: executable, arguments: arguments, environment: env,
                                   standardInput: input ? .pipe : .null, standardOutput: .file(outPath), standardError: .file(errPath))
    }

    var out: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    var err: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
    var isRunning: Bool { process.isRunning }

    /// Waits until `condition` holds for the process's standard error (or output), at most `timeout` seconds.
    @discardableResult
    func waitFor(_ what: String, timeout: Double = 20, in stream: KeyPath<Child, String> = \.err,
                 _ condition: (String) -> Bool) throws -> String {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let text = self[keyPath: stream]
            if condition(text) { return text }
            if let ended = process.termination {
                let text = self[keyPath: stream]
                if condition(text) { return text }
                throw Failure("\(name) exited (\(ended.status)) before \(what)\n--- stderr:\n\(err.suffix(3000))")
            }
            usleep(20_000)
        }
        throw Failure("\(name): no \(what) within \(timeout) s\n--- stderr:\n\(err.suffix(3000))")
    }

    /// Sends `signal` (SIGKILL by default) and waits for the process to end (bounded).
    func kill(_ signal: Int32 = SIGKILL) {
        guard process.isRunning else { return }
        process.send(signal)
        if process.waitForExit(timeout: 10) == nil {
            process.send(SIGKILL)
            _ = process.waitForExit(timeout: 5)
        }
    }

    /// Waits for the process to exit by itself; its status (or the signal that ended it), or nil
    /// after `timeout` seconds.
    func waitForExit(timeout: Double) -> Int32? {
        process.waitForExit(timeout: timeout)?.status
    }
}

/// Every child of a test, killed at the end.
final class Processes {
    private(set) var all: [Child] = []
    let scratch: TemporaryDirectory

    init(_ scratch: TemporaryDirectory) { self.scratch = scratch }

    func start(_ binary: String, _ arguments: [String], name: String, environment: [String: String] = [:],
               input: Bool = false) throws -> Child {
        let child = try Child(binary, arguments, name: name, in: scratch, environment: environment, input: input)
        all.append(child)
        return child
    }

    /// Runs a command to its end (killed after `timeout` seconds): status, stdout, stderr.
    @discardableResult
    func run(_ binary: String, _ arguments: [String], timeout: Double = 60, environment: [String: String] = [:]) throws -> (code: Int32, out: String, err: String) {
        // Named for its files in the scratch directory: no slash of a path may reach the name.
        let command = [(binary as NSString).lastPathComponent, arguments.first.map { ($0 as NSString).lastPathComponent } ?? ""]
        let child = try start(binary, arguments, name: command.joined(separator: "-"), environment: environment)
        guard let code = child.waitForExit(timeout: timeout) else {
            child.kill()
            throw Failure("\(binary) \(arguments) did not finish within \(timeout) s\n--- stderr:\n\(child.err.suffix(3000))")
        }
        return (code, child.out, child.err)
    }

    /// Runs a command that must succeed.
    @discardableResult
    func ok(_ binary: String, _ arguments: [String], timeout: Double = 60, environment: [String: String] = [:]) throws -> String {
        let r = try run(binary, arguments, timeout: timeout, environment: environment)
        guard r.code == 0 else { throw Failure("\(binary) \(arguments) exited \(r.code)\n--- stderr:\n\(r.err.suffix(4000))") }
        return r.out
    }

    func killAll() { for c in all { c.kill() } }
}

/// A hub process serving `db` (port 0 unless given); `address` as it printed it.
struct HubProcess {
    let child: Child
    let address: String

    static func start(_ p: Processes, db: String, port: Int = 0, extra: [String] = []) throws -> HubProcess {
        let child = try p.start("siyu-hub", ["serve", "--db", db, "--listen", "127.0.0.1:\(port)"] + extra, name: "hub")
        let out = try child.waitFor("listening line", timeout: 20, in: \.out) { $0.contains("listening on ") && $0.hasSuffix("\n") }
        let line = out.split(separator: "\n").first { $0.hasPrefix("listening on ") }!
        return HubProcess(child: child, address: String(line.dropFirst("listening on ".count)))
    }

    var port: Int { Int(address.split(separator: ":").last!)! }
}

/// A network of a hub and registered nodes in a scratch directory.
final class Network {
    let scratch: TemporaryDirectory
    let p: Processes
    let hubDB: String
    var secrets: [String: String] = [:]

    init() throws {
        scratch = try TemporaryDirectory()
        p = Processes(scratch)
        hubDB = scratch.path("hub.db")
        try p.ok("siyu-hub", ["init", "--db", hubDB, "--id", "hub-hz"])
    }

    func db(_ node: String) -> String { scratch.path("\(node).db") }

    /// Registers `node` at the hub and records its secret in a file.
    func register(_ node: String, role: String, store: String? = nil) throws {
        let secret = try p.ok("siyu-hub", ["add-node", "--db", hubDB, node, "--role", role] + (store.map { ["--store", $0, "--new-store"] } ?? []))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        secrets[node] = secret
        try (secret + "\n").write(toFile: scratch.path("\(node).secret"), atomically: true, encoding: .utf8)
    }

    /// `siyu-node init` for a registered node.
    func initNode(_ node: String, role: String, hub: String, store: String? = nil) throws {
        try p.ok("siyu-node", ["init", "--db", db(node), "--node", node, "--role", role, "--hub", hub, "--secret-file", scratch.path("\(node).secret")]
                 + (store.map { ["--store", $0] } ?? []))
    }

    func syncOnce(_ node: String, timeout: Int = 30, extra: [String] = []) throws -> (code: Int32, out: String, err: String) {
        try p.run("siyu-node", ["sync", "--once", "--db", db(node), "--timeout", "\(timeout)"] + extra, timeout: Double(timeout + 15))
    }

    func close() {
        p.killAll()
        scratch.remove()
    }
}

/// Wall time in ms for replicas opened by tests.
func wallNow() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

/// Opens a replica file (used only while no process of the test writes it, or for edits that
/// another process's daemon must notice), runs `body`, closes it.
func withReplica<T>(_ path: String, _ body: (Replica) throws -> T) throws -> T {
    let r = try Replica(existing: path)
    defer { r.close() }
    return try body(r)
}

func digest(_ path: String) throws -> String {
    try withReplica(path) { try $0.digest().map { String(format: "%02x", $0) }.joined() }
}

/// `PRAGMA integrity_check` through SiyuSQLite (the sqlite3 CLI may be missing). Read-write: after a
/// SIGKILL the write-ahead log must be recovered first, which a read-only connection cannot do.
func integrity(_ path: String) throws -> String {
    let db = try Database(path: path, mode: .readWrite)
    defer { db.close() }
    return try db.prepare("PRAGMA integrity_check").rows().map { $0.first?.stringValue ?? "?" }.joined(separator: "; ")
}

/// How many ops of `origin` numbered 1…`upTo` a replica file holds.
func ops(of origin: String, upTo: UInt64, in path: String) throws -> Int {
    let db = try Database(path: path, mode: .readOnly)
    defer { db.close() }
    return Int(try db.prepare("SELECT count(*) FROM ops WHERE origin = ? AND seq <= ?")
        .scalar([.text(origin), .integer(Int64(upTo))])?.int64Value ?? -1)
}

/// The hub's acked_seq for `node`, read by `siyu-hub nodes` (a separate process: safe while the hub runs).
func hubAcked(_ n: Network, _ node: String) throws -> UInt64 {
    let out = try n.p.ok("siyu-hub", ["nodes", "--db", n.hubDB])
    // A table: node, role, store ("-" for none), acked_seq, cursor, scope.
    for line in out.split(separator: "\n") {
        let words = line.split(separator: " ")
        if words.first == Substring(node), words.count > 3 { return UInt64(words[3]) ?? 0 }
    }
    throw Failure("node \(node) not listed by siyu-hub nodes:\n\(out)")
}

/// Polls `condition` every 50 ms for at most `timeout` seconds.
func eventually(_ what: String, timeout: Double = 20, _ condition: () throws -> Bool) throws {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if try condition() { return }
        usleep(50_000)
    }
    throw Failure("not within \(timeout) s: \(what)")
}

/// Seeds a replica with a tag library and `customers` customers (about 3 ops each), in bulk.
func seed(_ path: String, customers: Int, prefix: String = "wm_", tags: Bool = true) throws {
    try withReplica(path) { r in
        if tags {
            try r.defineTagGroup("level", name: "会员等级", exclusive: true, by: "zhaolei")
            try r.defineTag("silver", group: "level", name: "银卡", by: "zhaolei")
            try r.defineTag("gold", group: "level", name: "金卡", by: "zhaolei")
            try r.defineTagGroup("pref", name: "偏好", by: "zhaolei")
            try r.defineTag("tea", group: "pref", name: "茶饮", by: "zhaolei")
        }
        var i = 0
        while i < customers {
            try r.inOneTransaction {
                for j in i..<min(customers, i + 1000) {
                    try r.createCustomer("\(prefix)\(j)", ["name": .text("客户\(j)"), "phone": .text("1380000\(j)")], by: "zhaolei")
                    try r.addTag("tea", to: "\(prefix)\(j)", by: "zhaolei")
                }
            }
            i += 1000
        }
    }
}
