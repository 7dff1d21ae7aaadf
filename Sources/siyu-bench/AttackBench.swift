import Foundation
import SiyuCore
import SiyuNet
import SiyuProbe
import SiyuSQLite
import SiyuStore

/// Section `attack` — bad input at a running hub (issue 18, section 5), timed: a real hub
/// (`HubChild`, serve's defaults) with a few well-behaved store nodes (`HubLoadNode`: real
/// `NodeSession`s over TCP) doing sync rounds — PUSH of 3 ops, PUSH_ACK, PULL until no more — one
/// every `gap` seconds each. For each row of `HostileInput` (or of `rows`), a window with no attack
/// (the baseline, seconds before), then a window in which an attacker process (`AttackChild`, one
/// per window) repeats the row's rounds (`Attacker`, the code the integration tests run) against
/// the registered node "mallory" while the nodes go on. `CPUPlacement` puts the hub on a CPU of its
/// own and this process and the attacker on the others (the attacker niced), where it can. Per
/// window: the nodes' round latency (p50, p99, and p99 ÷ the baseline's), the hub's CPU (utime +
/// stime from /proc/PID/stat over the window, as % of one core), its peak resident memory (VmHWM,
/// reset at the window's start through /proc/PID/clear_refs, and VmRSS sampled every 100 ms), this
/// process's CPU (the nodes) and the attacker process's (its own getrusage over its rounds). The
/// integration tests check the answers; here they are counted.
struct AttackBench {
    let windowSeconds: Double
    let nodes: Int
    let gap: ClosedRange<Double>
    /// The rows attacked, in `HostileInput`'s order.
    var rows: [HostileInput] = HostileInput.allCases
    let directory: TemporaryDirectory

    static let customersPerStore = 25
    static let tags = 10

    /// What one window measured.
    struct Window {
        var name: String
        var key: String
        var latencies: [Double] = []   // ms, sorted
        var nodeErrors = 0, busy = 0
        var firstErrors: [String] = []
        var attackRounds = 0
        var answers: [String: Int] = [:]
        var attackFailure: String?
        var hubCPUPercent: Double?
        /// This process's CPU over the window (the nodes' loop and the sampling), % of one core.
        var benchCPUPercent = 0.0
        /// The attacker process's CPU over its rounds, % of one core over the window.
        var attackerCPUPercent: Double?
        var peakKilobytes: Int?
        var wallSeconds = 0.0
    }

    func run() throws -> SectionReport {
        let placement = CPUPlacement.detect()
        progress("attack: \(nodes) well-behaved nodes, \(fixed(windowSeconds, 1)) s per window, \(rows.count) attacks; \(placement.description)")
        let load = loadAverages()
        let hubPath = directory.path("attack-hub.db")
        let hqPath = directory.path("attack-hq.db")
        let tags = (1...AttackBench.tags).map { String(format: "t%02d", $0) }
        let ids = (0..<nodes).map { String(format: "store-%02d", $0 + 1) }
        let secrets = ids.map { Array("secret-of-\($0)-0123456789abcdef".utf8) }
        let mallorySecret = Array("secret-of-mallory-0123456789abcdef".utf8)
        let customers = Dictionary(uniqueKeysWithValues: ids.map { id in (id, (1...AttackBench.customersPerStore).map { String(format: "\(id)-c%03d", $0) }) })
        let head: UInt64
        do {
            let hub = try Replica.create(at: hubPath, node: "hub", role: .hq)
            defer { hub.close() }
            let library = try tagLibrary(tags, at: hqPath)
            var hq = OpSynthesizer(continuing: library, origin: "hq", role: .hq, author: "hq-admin")
            var seedOps = library.ops
            for id in ids {
                seedOps.append(hq.make(.write(Target(.staff, "clerk-" + id), field: "store_id", value: .text(id), overwrites: [])))
                seedOps += customerOps(customers[id, default: []][...], tags: Array(tags.prefix(2)), owner: id, using: &hq)
            }
            try hub.registerNode("hq", role: .hq, secret: Array("hq-secret".utf8))
            guard case .stored = try hub.acceptPush(from: "hq", ChangeSet(ops: seedOps)) else {
                throw BenchError("attack: the hub refused HQ's tag library, staff and customers")
            }
            for (id, secret) in zip(ids, secrets) { try hub.registerNode(id, role: .store, store: id, secret: secret) }
            // A store node with no store of its own: the rows' ops (a customer's name) are within its rights.
            try hub.registerNode("mallory", role: .store, secret: mallorySecret)
            head = try hub.logHead()
        }
        try? FileManager.default.removeItem(atPath: hqPath)

        // This process (the nodes) on the nodes' CPUs before the children start; back afterwards.
        try placement.pinThisProcess()
        defer { placement.restore() }
        let logPath = directory.path("attack-hub.log")
        let hub = BenchChild([HubChild.flag, hubPath], log: logPath, prefix: placement.hubPrefix)
        var windows: [Window] = []
        try hub.run {
            let address = try hub.listeningAddress()
            windows = try drive(address: address, hubPID: hub.pid, head: head, ids: ids, secrets: secrets,
                                customers: customers, tags: tags, mallory: mallorySecret, placement: placement)
        }
        guard hub.exitStatus == 0 else {
            throw BenchError("attack: the hub process exited with status \(hub.exitStatus); its log: \(tail(logPath))")
        }
        let mallory: Int
        do {
            let db = try Database(path: hubPath, mode: .readOnly)
            defer { db.close() }
            mallory = Int(try db.prepare("SELECT count(*) FROM ops WHERE origin = 'mallory'").scalar()?.int64Value ?? -1)
        }
        return report(windows, malloryOps: mallory, load: load, placement: placement)
    }

    // MARK: Driving the nodes and the attacks

    private func drive(address: SocketAddress, hubPID: Int32, head: UInt64, ids: [String], secrets: [[UInt8]], customers: [String: [String]],
                       tags: [String], mallory: [UInt8], placement: CPUPlacement) throws -> [Window] {
        let counters = HubLoadProgress()
        let loop = try EventLoop.start(name: "attack-nodes")
        let lane = HubLoadLane(loop: loop, hub: address, progress: counters, acknowledgements: HubLoadAcknowledgements(), seed: 0x5EED_A77A, gap: gap)
        defer {
            try? loop.execute { lane.closeAll() }
            Thread.sleep(forTimeInterval: 0.3)
            loop.stop()
            _ = loop.waitForStop(timeout: .seconds(10))
        }
        for (i, id) in ids.enumerated() {
            lane.nodes.append(HubLoadNode(lane: lane, id: id, secret: secrets[i], keys: nil, cursor: head, customers: customers[id, default: []], tags: tags))
        }
        try loop.execute { for node in lane.nodes { node.connect() } }
        _ = wait(upTo: 60) { let p = counters.snapshot; return p.caughtUp + p.failed >= ids.count }
        guard counters.snapshot.caughtUp == ids.count else {
            throw BenchError("attack: only \(counters.snapshot.caughtUp) of \(ids.count) nodes connected and caught up")
        }
        let target = AttackTarget(hub: address, node: "mallory", secret: mallory)
        var windows: [Window] = []
        for input in rows {
            progress("attack: \(input.title)")
            // A window with no attack just before each attack's: the baseline the attack is held
            // against, measured seconds earlier on the same hub (its log grows as the nodes push).
            windows.append(try window("no attack", key: "before_" + input.rawValue, attack: nil, lane: lane, counters: counters, hubPID: hubPID))
            let order = AttackOrder(input: input, target: target, seconds: windowSeconds, wait: 2)
            let attacker = BenchChild([AttackChild.flag] + order.arguments, log: directory.path("attack-attacker.log"), prefix: placement.attackerPrefix)
            var w = Window(name: input.title, key: input.rawValue)
            try attacker.run {
                w = try window(input.title, key: input.rawValue, attack: attacker, lane: lane, counters: counters, hubPID: hubPID)
            }
            if attacker.exitStatus != 0 && w.attackFailure == nil {
                w.attackFailure = "the attacker process exited with status \(attacker.exitStatus); its log: \(tail(attacker.log))"
            }
            windows.append(w)
        }
        return windows
    }

    /// One window: the nodes' rounds for `windowSeconds`, with `attack` (a running attacker
    /// process, which prints `ready`, repeats its rounds for `windowSeconds`, then its tally) meanwhile.
    private func window(_ name: String, key: String, attack: BenchChild?, lane: HubLoadLane, counters: HubLoadProgress, hubPID: Int32) throws -> Window {
        var w = Window(name: name, key: key)
        if let attack, attack.nextLine(within: 60) != "ready" {
            throw BenchError("attack: the attacker process for '\(name)' did not start; its log: \(tail(attack.log))")
        }
        let peakReset = (try? "5".write(toFile: "/proc/\(hubPID)/clear_refs", atomically: false, encoding: .utf8)) != nil
        var sampledPeak = residentKilobytes(hubPID) ?? 0
        let cpuStart = processCPUSeconds(hubPID), ownStart = ownCPUSeconds()
        let start = Date()
        let end = start.addingTimeInterval(windowSeconds)
        try lane.loop.execute { lane.startRounds(seconds: windowSeconds) }
        while Date() < end {
            usleep(100_000)
            sampledPeak = max(sampledPeak, residentKilobytes(hubPID) ?? 0)
        }
        _ = wait(upTo: 30) { counters.snapshot.roundsInFlight <= 0 }
        var tally: AttackTally?
        if let attack {
            // The attacker ends its rounds by itself at the window's end; its tally follows the last.
            if let line = attack.nextLine(within: 60) {
                do { tally = try AttackTally(line: line) } catch { w.attackFailure = "\(error)" }
            } else {
                w.attackFailure = "the attacker process printed no tally within 60 s; its log: \(tail(attack.log))"
            }
        }
        w.wallSeconds = Date().timeIntervalSince(start)
        if let a = cpuStart, let b = processCPUSeconds(hubPID) { w.hubCPUPercent = (b - a) * 100 / w.wallSeconds }
        w.benchCPUPercent = (ownCPUSeconds() - ownStart) * 100 / w.wallSeconds
        if let tally {
            w.attackRounds = tally.rounds
            w.answers = tally.answers
            w.attackFailure = tally.failure
            w.attackerCPUPercent = tally.cpuSeconds * 100 / w.wallSeconds
        }
        let hwm = peakReset ? childPeakKilobytes(hubPID) : nil
        w.peakKilobytes = max(hwm ?? 0, sampledPeak)
        // The nodes' tally, taken on their loop's thread and emptied for the next window.
        let taken = TallyBox()
        let done = DispatchSemaphore(value: 0)
        try lane.loop.execute {
            taken.latencies = lane.tally.latencies
            taken.errors = lane.tally.errors
            taken.busy = lane.tally.busy
            taken.firstErrors = lane.tally.firstErrors
            lane.tally.latencies = []
            lane.tally.errors = 0
            lane.tally.busy = 0
            lane.tally.firstErrors = []
            done.signal()
        }
        guard done.wait(timeout: .now() + 10) == .success else { throw BenchError("attack: the nodes' loop did not answer") }
        w.latencies = taken.latencies.map { Double($0) / 1e6 }.sorted()
        w.nodeErrors = taken.errors
        w.busy = taken.busy
        w.firstErrors = taken.firstErrors
        return w
    }

    /// VmRSS of a process, from /proc.
    private func residentKilobytes(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
    }

    // MARK: Report

    private func report(_ windows: [Window], malloryOps: Int, load: [Double]?, placement: CPUPlacement) -> SectionReport {
        var r = SectionReport("attack: bad input at a running hub (issue 18 §5) while \(nodes) well-behaved nodes sync; one hub process (HubChild), "
                              + "one attacker process per attack (AttackChild), loopback TCP")
        r.line("placement: \(placement.description)")
        r.line("CPU \(cpuModel()), \(ProcessInfo.processInfo.activeProcessorCount) cores, load average at start "
               + (load.map { $0.map { fixed($0, 2) }.joined(separator: " ") } ?? "unknown")
               + "; each window \(fixed(windowSeconds, 1)) s; each node one round every \(fixed(gap.lowerBound, 2))–\(fixed(gap.upperBound, 2)) s "
               + "(PUSH of 3 ops → PUSH_ACK → PULL → CHANGES, more = false)")
        r.line("per attack: the nodes' rounds in a window with no attack just before it (\"before\"), then in the attack's window; ratio = p99 under the attack ÷ p99 before; "
               + "hub CPU = utime + stime over the window, % of one core; hub peak = VmHWM reset at the window's start (or VmRSS sampled every 100 ms); "
               + "nodes CPU = this process (the nodes' loop), attacker CPU = the attacker process over its rounds, each % of one core over the window; "
               + "rounds = the attacker's")
        // The quiet windows pooled: a p99 over all their rounds is steady where one window's is not
        // (a 3-5 s window's p99 is its ~10 slowest rounds: a disk sync that waited, say). How far
        // one quiet window's p99 lies from the pooled one is the noise band: an attack whose window
        // lies within it did not change the nodes' p99 beyond what a quiet window does by itself.
        let quiet = windows.filter { $0.key.hasPrefix("before_") }
        let pooled = percentile(quiet.flatMap(\.latencies).sorted(), 0.99)
        let band = quiet.map { percentile($0.latencies, 0.99) / pooled }.max() ?? .nan
        r.line("quiet windows pooled: p99 \(fixed(pooled, 2)) ms over \(grouped(quiet.map(\.latencies.count).reduce(0, +))) rounds; one quiet window's p99 "
               + "÷ that: \(fixed(quiet.map { percentile($0.latencies, 0.99) / pooled }.min() ?? .nan, 2))–\(fixed(band, 2)) (the noise band); "
               + "\"vs pooled\" = p99 under the attack ÷ the pooled p99, \"within\" when inside the band")
        r.figure("attack_quiet_p99_ms", pooled, digits: 2)
        r.figure("attack_quiet_band_max", band, digits: 2)
        let header = ["attack", "rounds", "node rounds", "p50 ms", "p99 ms", "p99 before", "p99 ratio", "vs pooled", "hub CPU (before)", "hub peak MB",
                      "nodes CPU", "attacker CPU", "node errors", "hub's answers (most frequent)"]
        var rows: [[String]] = [header]
        var ratios: [(Window, Double, Double)] = []
        for (before, w) in zip(windows, windows.dropFirst()) where before.key == "before_" + w.key {
            let p50 = percentile(w.latencies, 0.5), p99 = percentile(w.latencies, 0.99), baseP99 = percentile(before.latencies, 0.99)
            let ratio = p99 / baseP99
            ratios.append((w, p99, baseP99))
            let answers = w.answers.sorted { $0.value > $1.value }.prefix(2).map { "\($0.key) ×\($0.value)" }.joined(separator: "; ")
            func cpu(_ x: Double?) -> String { x.map { fixed($0, 1) + "%" } ?? "?" }
            let pooledRatio = p99 / pooled
            rows.append([w.name, grouped(w.attackRounds), grouped(w.latencies.count), fixed(p50, 2), fixed(p99, 2), fixed(baseP99, 2), fixed(ratio, 2),
                         fixed(pooledRatio, 2) + (pooledRatio <= band ? " within" : " over"),
                         "\(cpu(w.hubCPUPercent)) (\(cpu(before.hubCPUPercent)))", w.peakKilobytes.map { fixed(Double($0) / 1024, 1) } ?? "?",
                         fixed(w.benchCPUPercent, 1) + "%", cpu(w.attackerCPUPercent), "\(w.nodeErrors + before.nodeErrors)", w.attackFailure.map { "failed: \($0)" } ?? answers])
            let k = "attack_\(w.key)"
            r.figure("\(k)_rounds", w.attackRounds)
            r.figure("\(k)_node_rounds", w.latencies.count)
            r.figure("\(k)_p50_ms", p50, digits: 2)
            r.figure("\(k)_p99_ms", p99, digits: 2)
            r.figure("\(k)_p99_before_ms", baseP99, digits: 2)
            r.figure("\(k)_p99_ratio", ratio, digits: 2)
            r.figure("\(k)_p99_pooled_ratio", pooledRatio, digits: 2)
            r.figure("\(k)_hub_cpu_percent", w.hubCPUPercent.map { JSONValue.rounded($0, 1) } ?? .null)
            r.figure("\(k)_hub_cpu_before_percent", before.hubCPUPercent.map { JSONValue.rounded($0, 1) } ?? .null)
            r.figure("\(k)_hub_peak_rss_mb", w.peakKilobytes.map { JSONValue.rounded(Double($0) / 1024, 1) } ?? .null)
            r.figure("\(k)_bench_cpu_percent", w.benchCPUPercent, digits: 1)
            r.figure("\(k)_attacker_cpu_percent", w.attackerCPUPercent.map { JSONValue.rounded($0, 1) } ?? .null)
            r.figure("\(k)_node_errors", w.nodeErrors + before.nodeErrors)
        }
        let widths = (0..<header.count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        for row in rows {
            r.line(row.enumerated().map { i, cell in cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces))
        }
        let errors = windows.flatMap(\.firstErrors).prefix(3)
        r.line("mallory's ops in the hub's log afterwards: \(malloryOps) (the same-seq row's op 1, taken once)"
               + (errors.isEmpty ? "; no node error" : "; node errors: " + errors.joined(separator: " | ")))
        r.figure("attack_window_seconds", windowSeconds, digits: 1)
        r.figure("attack_nodes", nodes)
        r.figure("attack_mallory_ops_stored", malloryOps)
        r.figure("attack_cpu_model", .string(cpuModel()))
        r.figure("attack_placement", .string(placement.description))
        if let (worst, p99, _) = ratios.max(by: { $0.1 < $1.1 }) {
            let over = ratios.filter { $0.1 / pooled > band }.map(\.0.name)
            r.summary.append(SummaryRow(what: "attack: nodes' p99 round under the worst attack (\(worst.name)); over the quiet band: "
                                            + (over.isEmpty ? "none" : over.joined(separator: ", ")),
                                        siyu: "\(fixed(p99, 1)) ms", baseline: "\(fixed(pooled, 1)) ms quiet, pooled", ratio: "\(fixed(p99 / pooled, 2))×",
                                        target: "within \(fixed(band, 2))× (quiet band)", met: windowSeconds < 3 ? nil : over.isEmpty,
                                        unjudged: "not judged in windows under 3 s"))
        }
        return r
    }
}

/// The nodes' figures taken from their loop's thread (a semaphore orders the hand-over).
private final class TallyBox: @unchecked Sendable {
    var latencies: [UInt64] = []
    var errors = 0, busy = 0
    var firstErrors: [String] = []
}
