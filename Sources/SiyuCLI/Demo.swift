import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu demo`: a real network on loopback. It starts a `siyu-hub` process and three `siyu-node`
/// processes (HQ and the stores 西湖店 and 静安店) with temporary files; HQ defines tags, customers,
/// a group chat and orders; the nodes go down and everyone edits offline (conflicting tag, roster,
/// field and order edits, made on the replica files as `siyu` makes them; each store only on its own
/// records); the nodes come back one at a time; the converged state, the conflict log and the
/// digests are printed: HQ's equal to the hub's, each store's equal to the hub's digest of its scope.
///
/// Guarantees: every process the demo starts is stopped before it returns, on every path; every
/// wait is bounded (a network that does not converge in time is an error naming what it waited
/// for, with the daemons' last log lines); with `keep`, existing files in that directory are never
/// overwritten or deleted: the demo refuses to start instead.
public struct Demo {
    public var keep: String?
    /// Where the demo's narration goes.
    public var output: TextStream

    /// The files the demo makes (replicas, the hub's file and the daemons' logs).
    public static let fileNames = ["hub.db", "hq.db", "xihu.db", "jingan.db"]
    static let logNames = ["hub.log", "hq.log", "xihu.log", "jingan.log"]
    static let nodes: [(name: String, role: Role, label: String)] = [("hq", .hq, "HQ"), ("xihu", .store, "西湖店"), ("jingan", .store, "静安店")]
    /// How long the demo waits for the network to move its ops.
    static let convergeTimeout = 60.0

    public init(keep: String? = nil, output: TextStream = .standardOutput) {
        self.keep = keep
        self.output = output
    }

    private func print(_ line: String) { output.line(line) }

    /// Runs the scenario; returns the process exit code (0 when every replica converged).
    public func run() throws -> Int32 {
        let fm = FileManager.default
        let dir: URL
        if let keep {
            dir = URL(fileURLWithPath: keep)
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: keep, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw CLIError("\(keep) is a file, not a directory", hint: "give a directory for the replica files (it is created if missing)")
            }
            let existing = (Demo.fileNames.flatMap { n in ["", "-wal", "-shm", "-journal"].map { n + $0 } } + Demo.logNames)
                .filter { fm.fileExists(atPath: dir.appendingPathComponent($0).path) }
            if !existing.isEmpty {
                throw CLIError("\(keep) already holds \(existing.joined(separator: ", ")); the demo does not overwrite replica files",
                               hint: "give an empty or new directory, or remove those files yourself")
            }
            do {
                try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            } catch {
                throw CLIError("cannot create the directory \(keep)", hint: "check the path and its permissions")
            }
        } else {
            dir = fm.temporaryDirectory.appendingPathComponent("siyu-demo-\(UUID().uuidString)")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        defer { if keep == nil { try? fm.removeItem(at: dir) } }
        let processes = DemoProcesses(directory: dir)
        defer { processes.stopAll() }
        return try run(in: dir, processes)
    }

    private func run(in dir: URL, _ processes: DemoProcesses) throws -> Int32 {
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func step(_ title: String) { print("\n== \(title)") }
        var running: [String] = []

        step("A hub and three nodes on loopback, files in \(keep ?? "a temporary directory")")
        try processes.run("siyu-hub", ["init", "--db", path("hub.db"), "--id", "hub-hz"])
        try processes.start("hub", "siyu-hub", ["serve", "--db", path("hub.db"), "--listen", "127.0.0.1:0"])
        running.append("hub")
        let listening = try processes.waitForLine(of: "hub", containing: "listening on ")
        guard let address = listening.components(separatedBy: "listening on ").last?.trimmingCharacters(in: .whitespaces), !address.isEmpty else {
            throw CLIError("the hub did not say where it listens", hint: "a defect of siyu-hub serve")
        }
        print("  siyu-hub serve --db hub.db --listen 127.0.0.1:0   → listening on \(address)")
        for node in Demo.nodes {
            var add = ["add-node", "--db", path("hub.db"), node.name, "--role", node.role == .hq ? "hq" : "store"]
            if node.role == .store { add += ["--store", node.name, "--new-store"] }
            let secret = try processes.run("siyu-hub", add).trimmingCharacters(in: .whitespacesAndNewlines)
            var initArgs = ["init", "--db", path("\(node.name).db"), "--node", node.name, "--role", node.role == .hq ? "hq" : "store", "--hub", address]
            if node.role == .store { initArgs += ["--store", node.name] }
            try processes.run("siyu-node", initArgs, environment: ["SIYU_NODE_SECRET": secret])
            print("  siyu-hub add-node \(node.name) --role \(node.role == .hq ? "hq   " : "store")  → siyu-node init --db \(node.name).db (secret from the environment)")
        }

        let hub = try Replica(existing: path("hub.db"))
        let hq = try Replica(existing: path("hq.db")), xihu = try Replica(existing: path("xihu.db")), jingan = try Replica(existing: path("jingan.db"))
        let all = [("hq", hq), ("xihu", xihu), ("jingan", jingan)]
        defer { for r in [hub, hq, xihu, jingan] { r.close() } }

        func startNode(_ name: String) throws {
            try processes.start(name, "siyu-node", ["run", "--db", path("\(name).db"), "--pull-interval", "1", "--max-backoff", "1"])
            running.append(name)
            print("  siyu-node run --db \(name).db")
        }
        func stopNodes() throws {
            for name in running where name != "hub" { try processes.stop(name) }
            running = running.filter { $0 == "hub" }
        }
        /// Whether `r` holds every op the replicas of `origins` have made.
        func holds(_ r: Replica, everythingOf origins: [(String, Replica)]) throws -> Bool {
            let vv = try r.versionVector()
            return try origins.allSatisfy { vv[$0.0] >= (try $0.1.lastIssuedSeq()) }
        }
        /// Waits until `condition` holds, printing what the nodes logged meanwhile.
        func wait(until what: String, _ condition: () throws -> Bool) throws {
            let deadline = Date().addingTimeInterval(Demo.convergeTimeout)
            while try !condition() {
                for name in running { try processes.checkRunning(name) }
                guard Date() < deadline else {
                    let tails = running.filter { $0 != "hub" }.map { processes.failure($0, "log").description }.joined(separator: "\n")
                    throw CLIError("the network did not \(what) within \(Int(Demo.convergeTimeout)) s\n\(tails)",
                                   hint: "run the demo with --keep DIR and read the logs there")
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            for name in running where name != "hub" {
                for line in processes.newLines(of: name) {
                    guard let event = Demo.networkEvent(line) else { continue }
                    print("  \(name.padding(toLength: 6, withPad: " ", startingAt: 0)) ⇄ hub: \(event)")
                }
            }
        }
        /// Every op at the hub and at HQ, and each store holding exactly its scope as the hub has it.
        func converged() throws -> Bool {
            try [hub, hq].allSatisfy { try holds($0, everythingOf: all) }
                && [("xihu", xihu), ("jingan", jingan)].allSatisfy { try $0.1.digest() == hub.scopeDigest(.store($0.0)).digest }
        }

        step("HQ (栖木生活), offline for now, sets up stores, staff, the tag library, customers, groups and orders")
        try hq.defineStore("xihu", name: "西湖店", region: "杭州")
        try hq.defineStore("jingan", name: "静安店", region: "上海")
        try hq.defineStaff("chenjing", name: "陈静", storeID: "xihu")
        try hq.defineStaff("wangfang", name: "王芳", storeID: "jingan")
        try hq.defineStaff("zhaolei", name: "赵磊", storeID: nil)
        try hq.defineTagGroup("et_level", name: "会员等级", order: 100, exclusive: true, by: "zhaolei")
        try hq.defineTag("et_silver", group: "et_level", name: "银卡", by: "zhaolei")
        try hq.defineTag("et_gold", group: "et_level", name: "金卡", by: "zhaolei")
        try hq.defineTagGroup("et_pref", name: "消费偏好", order: 90, by: "zhaolei")
        try hq.defineTag("et_tea", group: "et_pref", name: "茶饮", by: "zhaolei")
        try hq.defineTag("et_bakery", group: "et_pref", name: "烘焙", by: "zhaolei")
        try hq.defineTagGroup("et_event", name: "活动参与", order: 80, by: "zhaolei")
        try hq.defineTag("et_1111", group: "et_event", name: "双十一", by: "zhaolei")
        try hq.createCustomer("wm_lin", ["name": .text("林小文"), "owner_store": .text("xihu"), "phone": .text("13800000001")], by: "zhaolei")
        try hq.createCustomer("wm_zhou", ["name": .text("周子豪"), "owner_store": .text("xihu")], by: "zhaolei")
        try hq.createCustomer("wm_ma", ["name": .text("马一鸣"), "owner_store": .text("jingan")], by: "zhaolei")
        try hq.addTag("et_tea", to: "wm_lin", by: "zhaolei")
        try hq.createGroupChat("wr_tuan", ["name": .text("周末拼团群"), "owner": .text("chenjing"), "capacity": .int(4)], by: "zhaolei")
        try hq.addMember("chenjing", to: "wr_tuan", ["member_type": .int(1)], by: "zhaolei")
        try hq.createOrder("o_1001", ["customer_id": .text("wm_lin"), "store_id": .text("xihu")], by: "zhaolei")
        try hq.setOrderLine("1", of: "o_1001", ["sku": .text("乌龙茶礼盒"), "qty": .int(1), "unit_price_cents": .int(16800)], by: "zhaolei")
        try hq.moveOrder("o_1001", to: .placed, by: "zhaolei")
        try hq.createOrder("o_1002", ["customer_id": .text("wm_zhou"), "store_id": .text("xihu")], by: "zhaolei")
        try hq.setOrderLine("1", of: "o_1002", ["sku": .text("桂花糕"), "qty": .int(2), "unit_price_cents": .int(2800)], by: "zhaolei")
        try hq.moveOrder("o_1002", to: .placed, by: "zhaolei")

        step("The three nodes come online and sync through the hub")
        for node in Demo.nodes { try startNode(node.name) }
        try wait(until: "bring HQ's setup to both stores") { try converged() }

        step("The nodes go down; the stores edit offline, and so does HQ")
        try stopNodes()

        // Each store edits only its own customers, groups and orders (SPEC section 7, "Write rights");
        // the conflicts come from HQ editing the same records concurrently.
        try xihu.addTag("et_silver", to: "wm_zhou", by: "chenjing");         print("  西湖店 陈静: 周子豪 → 银卡")
        try xihu.addTag("et_bakery", to: "wm_lin", by: "chenjing");         print("  西湖店 陈静: 林小文 → 烘焙")
        try xihu.editCustomer("wm_lin", ["phone": .text("13800000011")], by: "chenjing"); print("  西湖店 陈静: 林小文's phone → 13800000011")
        try xihu.moveOrder("o_1002", to: .cancelled, by: "chenjing");        print("  西湖店 陈静: cancels o_1002")
        try xihu.setOrderLine("1", of: "o_1001", ["qty": .int(3)], by: "chenjing"); print("  西湖店 陈静: o_1001 line 1 qty → 3")
        for m in ["wm_lin", "wm_zhou"] { try xihu.addMember(m, to: "wr_tuan", ["member_type": .int(2)], by: "chenjing") }
        print("  西湖店 陈静: adds 林小文, 周子豪 to 周末拼团群 (capacity 4)")
        Thread.sleep(forTimeInterval: 0.01)
        try jingan.addTag("et_1111", to: "wm_ma", by: "wangfang");           print("  静安店 王芳: 马一鸣 → 双十一")
        try jingan.editCustomer("wm_ma", ["gender": .int(1)], by: "wangfang"); print("  静安店 王芳: 马一鸣's gender → 1 (male)")
        do {
            try jingan.editCustomer("wm_lin", ["phone": .text("13700000000")], by: "wangfang")
        } catch {
            print("  静安店 王芳: 林小文's phone → refused: 林小文 is 西湖店's customer, not in 静安店's replica")
        }
        try hq.editCustomer("wm_lin", ["phone": .text("13900000022")], by: "zhaolei"); print("  HQ 赵磊: 林小文's phone → 13900000022")
        try hq.editCustomer("wm_ma", ["gender": .int(2)], by: "zhaolei");    print("  HQ 赵磊: 马一鸣's gender → 2 (female)")
        try hq.addTag("et_gold", to: "wm_zhou", by: "zhaolei");              print("  HQ 赵磊: 周子豪 → 金卡 (has not seen 西湖店's 银卡)")
        for m in ["wm_ma", "wo_guest"] { try hq.addMember(m, to: "wr_tuan", ["member_type": .int(2)], by: "zhaolei") }
        print("  HQ 赵磊: adds 马一鸣, wo_guest to 周末拼团群")
        try hq.moveOrder("o_1002", to: .paid, by: "zhaolei");                print("  HQ 赵磊: o_1002 paid")
        try hq.moveOrder("o_1001", to: .paid, by: "zhaolei");                print("  HQ 赵磊: o_1001 paid")
        try hq.deleteTag("et_1111", by: "zhaolei");                          print("  HQ 赵磊: deletes tag 双十一 (has not seen 静安店's 双十一 on 马一鸣)")


        step("Back online, one at a time")
        try startNode("xihu")
        try wait(until: "take 西湖店's offline edits") { try holds(hub, everythingOf: [("xihu", xihu)]) }
        try startNode("hq")
        try wait(until: "exchange HQ's and 西湖店's edits") { try holds(hub, everythingOf: [("hq", hq)]) && holds(hq, everythingOf: [("xihu", xihu)]) }
        try hq.removeTag("et_bakery", from: "wm_lin", by: "zhaolei")
        print("  HQ 赵磊: removes 烘焙 from 林小文 (it has seen 西湖店's add, not 静安店's)")
        try wait(until: "take HQ's removal") { try holds(hub, everythingOf: [("hq", hq)]) }
        try startNode("jingan")
        try wait(until: "converge") { try converged() }

        step("Converged state (as every replica holds it)")
        print(try Render.state(of: hq))

        step("Conflict log (HQ holds every conflict; each store those of its scope)")
        print(Render.conflicts(try hq.conflicts()))

        step("HQ resolves: acknowledges the phone conflict, overrides the 会员等级 conflict")
        let open = try hq.conflicts(state: .open)
        if let phone = open.first(where: { $0.field == "phone" && $0.target.id == "wm_lin" }) { try hq.acknowledgeConflict(phone.id, by: "zhaolei"); print("  acknowledged \(phone.id)") }
        if let level = open.first(where: { $0.rule == .exclusiveTagGroup }) { try hq.overrideConflict(level.id, by: "zhaolei"); print("  overrode \(level.id): 周子豪 keeps 银卡") }
        try wait(until: "carry HQ's resolutions to the stores") { try converged() }
        print(Render.conflicts(try jingan.conflicts()))
        print("")
        print(try Render.state(of: jingan))

        step("Digests: HQ holds everything, each store its scope (its customers, groups and orders, the tag library)")
        var differ = 0
        for (name, r) in [("hub", hub)] + all {
            let d = try r.digest().hexString
            let hubs = try (r === hq || r === hub ? hub.digest() : hub.scopeDigest(.store(name)).digest).hexString
            if d != hubs { differ += 1 }
            let counts = try r.opCounts()
            let scope = r === hq || r === hub ? "everything" : "store \(name)"
            print("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) \(d)  (\(Render.count(counts.total, "op"))\(name == "hub" ? "" : ", \(counts.own) own"); scope \(scope))")
        }
        if differ == 0 {
            print("  all replicas converged: each equals the hub's digest of its scope")
        } else {
            print("  REPLICAS DIFFER")
        }
        try stopNodes()
        try processes.stop("hub")
        print("  nodes and hub stopped (SIGTERM: BYE sent, exit 0)")
        if let keep {
            print("\nFiles kept in \(keep): hub.db, hq.db, xihu.db, jingan.db and each daemon's log (hub.log, xihu.log, …).")
            let binaries = (try? DemoProcesses.binary("siyu-hub").deletingLastPathComponent().path) ?? "."
            print("The binaries are in \(binaries); to type them as below: export PATH=\"\(binaries):$PATH\"")
            print("Start the network again by hand (the nodes recorded the hub's address, \(address)):")
            print("  siyu-hub serve --db \(keep)/hub.db --listen \(address) &")
            print("  siyu-node run --db \(keep)/xihu.db &        # likewise hq.db and jingan.db; edit meanwhile with siyu")
            if let gender = try hq.conflicts(state: .open).first(where: { $0.field == "gender" }) {
                print("The conflict on 马一鸣's gender is left open; resolve it with")
                print("  siyu override --db \(keep)/hq.db \(gender.id.prefix(6)) --value 1 --by zhaolei   (or --take discarded, or siyu ack)")
            }
        }
        return differ == 0 ? 0 : 1
    }

    /// The part of a node's log line worth showing in the demo (pushes, pulls, snapshots), or nil.
    static func networkEvent(_ line: String) -> String? {
        guard let range = line.range(of: #"hub=\S+( t=\S+)? "#, options: .regularExpression) else { return nil }
        let event = String(line[range.upperBound...])
        // A push answered `busy` is pushed again: the error is shown, so the second push is not a mystery.
        let shown = ["pushed ", "pulled ", "snapshot", "auth ok", "error from the hub"]
        return shown.contains(where: { event.hasPrefix($0) }) ? event : nil
    }
}
