// The hub-load section's hub: `siyu-bench --hub-child FILE [PENDING]` serves the hub replica FILE as
// `siyu-hub serve --db FILE --listen 127.0.0.1:0 --log-level warn --stop-when-input-closes
// [--max-pending PENDING --max-pending-per-address PENDING]` does (the same `HubServer` and
// `HubStoreExecutor` with serve's defaults), in a process of its own. PENDING: the bench's nodes
// all connect at once from one address (127.0.0.1), where a brand's stores come from as many
// addresses, so the section raises serve's caps on unauthenticated connections to its node count.
//
// Why the bench runs itself rather than `siyu-hub`: `swift build -c release --product siyu-bench`
// builds siyu-bench alone, so a `siyu-hub` beside it may be missing or stale (built from another
// commit); this child is always the code of the bench being run. It is still a separate process,
// so the measuring clients never share the hub's thread, and its peak memory is its own.

import Foundation
import SiyuHub
import SiyuNet
import SiyuStore

/// The hub process of the hub-load section. Prints `listening on HOST:PORT` once bound, logs
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
            let server = try HubServer(loop: loop, executor: executor,
                                       configuration: .init(session: .init(hubID: replica.node), listen: .loopbackIPv4(port: 0),
                                                            maxPendingConnections: max(256, pending ?? 0), maxPendingPerAddress: pending ?? 8), log: log)
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
