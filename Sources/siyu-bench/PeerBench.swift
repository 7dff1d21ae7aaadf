import Foundation

/// Section 7 — the peer: the same customer/tag workloads run in the Loro CRDT library by
/// `tools/loro-peer/run.sh [--quick] --json`, which prints one JSON object of `loro_*` figures (or
/// exits non-zero with a reason on stderr). Its figures are printed next to Siyu's. The comparison
/// is not like for like: Loro merges in memory, Siyu commits every op to SQLite with its op log.
struct PeerResult {
    var isAvailable = false
    /// Why the peer did not run, when it did not.
    var reason = ""
    var version = ""
    /// Every `loro_*` figure the peer printed, by key, and the keys in order.
    var figures: [String: JSONValue] = [:]
    var keys: [String] = []

    static func unavailable(_ reason: String) -> PeerResult { PeerResult(reason: reason) }
}

/// Text written by one thread and read by another after it finished (a `DispatchGroup` orders them).
private final class TextBox: @unchecked Sendable {
    var text = ""
}

enum LoroPeer {
    static let script = "tools/loro-peer/run.sh"
    static let timeoutSeconds = 900.0

    static func run(quick: Bool) -> PeerResult {
        guard let root = repositoryRoot() else { return .unavailable("\(script) not found above \(FileManager.default.currentDirectoryPath)") }
        progress("peer: running \(script)\(quick ? " --quick" : "") --json")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [root.appendingPathComponent(script).path] + (quick ? ["--quick"] : []) + ["--json"]
        process.currentDirectoryURL = root
        let (stdout, stderr) = (Pipe(), Pipe())
        process.standardOutput = stdout
        process.standardError = stderr
        // Read both pipes concurrently so neither fills up and blocks the script.
        let errorText = TextBox()
        let errorRead = DispatchGroup()
        var output = Data()
        do {
            try Interruption.run(process) {
                errorRead.enter()
                DispatchQueue.global().async {
                    errorText.text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                    errorRead.leave()
                }
                let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
                DispatchQueue.global().asyncAfter(deadline: .now() + timeoutSeconds, execute: timer)
                output = stdout.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                timer.cancel()
                errorRead.wait()
            }
        } catch {
            return .unavailable("cannot start \(script): \(error)")
        }

        let lastErrorLine = errorText.text.split(separator: "\n").last.map(String.init) ?? ""
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let how = process.terminationReason == .exit ? "exit status \(process.terminationStatus)" : "killed after \(Int(timeoutSeconds)) s"
            return .unavailable(lastErrorLine.isEmpty ? how : "\(how): \(lastErrorLine)")
        }
        return parse(output)
    }

    /// The one JSON object the script printed.
    static func parse(_ output: Data) -> PeerResult {
        let text = String(decoding: output, as: UTF8.self)
        guard let start = text.firstIndex(of: "{"), let end = text.lastIndex(of: "}"),
              let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(text[start...end].utf8)) else {
            return .unavailable("\(script) printed no JSON object")
        }
        var result = PeerResult(isAvailable: true)
        result.keys = object.keys.filter { $0.hasPrefix("loro_") }.sorted()
        for key in result.keys { result.figures[key] = object[key] }
        if case let .string(v)? = object["loro_version"] { result.version = v }
        return result
    }

    /// The first directory holding the script, going up from the current directory, then from
    /// this executable's directory.
    static func repositoryRoot() -> URL? {
        let starts = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                      BootstrapBench.executableURL().resolvingSymlinksInPath().deletingLastPathComponent()]
        for start in starts {
            var dir = start.standardizedFileURL
            while true {
                if FileManager.default.fileExists(atPath: dir.appendingPathComponent(script).path) {
                    return dir
                }
                let parent = dir.deletingLastPathComponent()
                if parent.path == dir.path { break }
                dir = parent
            }
        }
        return nil
    }

    /// The peer's section: its figures next to Siyu's, or why it did not run.
    static func section(_ peer: PeerResult, siyu figures: [String: JSONValue]) -> SectionReport {
        var r = SectionReport(peer.isAvailable ? "peer: Loro \(peer.version) (\(script) --json)" : "peer: unavailable (\(peer.reason))")
        if peer.isAvailable {
            let rows = [
                ("local edit, tag (µs)", "local_edit_us", "loro_local_edit_us"),
                ("local edit, field (µs)", "field_edit_us", "loro_field_edit_us"),
                ("tag B/op, 32-char ids", "tag_bytes_per_op", "loro_tag_bytes_per_op"),
                ("tag B/op, 8-char ids", "tag_bytes_per_op_short", "loro_tag_bytes_per_op_short"),
                ("merge ops/s", "merge_ops_per_s", "loro_merge_ops_per_s"),
            ]
            r.line("figure                          siyu          loro")
            for (what, siyuKey, loroKey) in rows {
                func cell(_ v: JSONValue?) -> String { v?.doubleValue.map(figureText) ?? "—" }
                r.line(what.padding(toLength: 24, withPad: " ", startingAt: 0)
                       + padLeft(cell(figures[siyuKey]), 12) + padLeft(cell(peer.figures[loroKey]), 14))
            }
            if let ops = peer.figures["loro_merge_ops"]?.doubleValue, let s = peer.figures["loro_merge_seconds"]?.doubleValue {
                let tagOps = peer.figures["loro_tag_ops"]?.doubleValue.map { grouped(Int($0)) } ?? "?"
                r.line("(Loro merged \(grouped(Int(ops))) ops in \(fixed(s)) s; its tag batch had \(tagOps) ops)")
            }
            r.line("Not like for like: Loro merges in memory; Siyu commits every op to SQLite (op log, tables, conflict log).")
        }
        r.figure("peer_available", .bool(peer.isAvailable))
        if !peer.isAvailable { r.figure("peer_reason", .string(peer.reason)) }
        for key in peer.keys { r.figure(key, peer.figures[key] ?? .null) }
        return r
    }
}
