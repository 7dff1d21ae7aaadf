import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu demo`: HQ and two stores in one process with temporary SQLite files. HQ defines tags and
/// a group; the stores edit offline (conflicting tag, roster and order edits); change sets are
/// exchanged; the converged state, the equal digests and the conflict log are printed.
///
/// Guarantee: with `keep`, existing replica files in that directory are never overwritten or
/// deleted: the demo refuses to start instead.
public struct Demo {
    public var keep: String?
    /// Where the demo's narration goes.
    public var output: TextStream

    /// The replica files the demo makes.
    public static let fileNames = ["hq.db", "xihu.db", "jingan.db"]

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
            let existing = Demo.fileNames.flatMap { n in ["", "-wal", "-shm", "-journal"].map { n + $0 } }
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

        func open(_ node: String, _ role: Role) throws -> Replica {
            try Replica.create(at: dir.appendingPathComponent("\(node).db").path, node: node, role: role,
                               store: role == .store ? node : nil)
        }
        let hq = try open("hq", .hq), xihu = try open("xihu", .store), jingan = try open("jingan", .store)
        let all = [("hq", hq), ("xihu", xihu), ("jingan", jingan)]
        defer { for (_, r) in all { r.close() } }

        func send(_ a: (String, Replica), _ b: (String, Replica)) throws {
            let cs = try a.1.changeSet(since: try b.1.versionVector())
            let report = try b.1.apply(cs)
            print("  \(a.0) → \(b.0): \(cs.ops.count) ops sent, \(report.applied) new, \(report.duplicates) duplicates, \(report.instancesMerged) records merged")
        }
        func syncAll() throws {
            for a in all { for b in all where a.0 != b.0 { try send(a, b) } }
        }
        func step(_ title: String) { print("\n== \(title)") }

        step("HQ (栖木生活) sets up stores, staff, the tag library, customers, groups and orders")
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
        try syncAll()

        step("The stores go offline and edit; HQ keeps editing too")
        try xihu.addTag("et_silver", to: "wm_zhou", by: "chenjing");         print("  西湖店 陈静: 周子豪 → 银卡")
        try xihu.addTag("et_bakery", to: "wm_lin", by: "chenjing");         print("  西湖店 陈静: 林小文 → 烘焙")
        try xihu.addTag("et_1111", to: "wm_ma", by: "chenjing");             print("  西湖店 陈静: 马一鸣 → 双十一")
        try xihu.editCustomer("wm_lin", ["phone": .text("13800000011")], by: "chenjing"); print("  西湖店 陈静: 林小文's phone → 13800000011")
        try xihu.moveOrder("o_1002", to: .cancelled, by: "chenjing");        print("  西湖店 陈静: cancels o_1002")
        try xihu.setOrderLine("1", of: "o_1001", ["qty": .int(3)], by: "chenjing"); print("  西湖店 陈静: o_1001 line 1 qty → 3")
        for m in ["wm_lin", "wm_zhou"] { try xihu.addMember(m, to: "wr_tuan", ["member_type": .int(2)], by: "chenjing") }
        print("  西湖店 陈静: adds 林小文, 周子豪 to 周末拼团群 (capacity 4)")
        Thread.sleep(forTimeInterval: 0.01)
        try jingan.addTag("et_gold", to: "wm_zhou", by: "wangfang");         print("  静安店 王芳: 周子豪 → 金卡")
        try jingan.addTag("et_bakery", to: "wm_lin", by: "wangfang");        print("  静安店 王芳: 林小文 → 烘焙 (has not seen 西湖店's)")
        try jingan.editCustomer("wm_ma", ["gender": .int(1)], by: "wangfang"); print("  静安店 王芳: 马一鸣's gender → 1 (male)")
        for m in ["wm_ma", "wo_guest"] { try jingan.addMember(m, to: "wr_tuan", ["member_type": .int(2)], by: "wangfang") }
        print("  静安店 王芳: adds 马一鸣, wo_guest to 周末拼团群")
        try hq.editCustomer("wm_lin", ["phone": .text("13900000022")], by: "zhaolei"); print("  HQ 赵磊: 林小文's phone → 13900000022")
        try hq.editCustomer("wm_ma", ["gender": .int(2)], by: "zhaolei");    print("  HQ 赵磊: 马一鸣's gender → 2 (female)")
        try hq.moveOrder("o_1002", to: .paid, by: "zhaolei");                print("  HQ 赵磊: o_1002 paid")
        try hq.moveOrder("o_1001", to: .paid, by: "zhaolei");                print("  HQ 赵磊: o_1001 paid")
        try hq.deleteTag("et_1111", by: "zhaolei");                          print("  HQ 赵磊: deletes tag 双十一 (has not seen 西湖店's 双十一 on 马一鸣)")

        step("Back online: change sets are exchanged (stores to HQ, HQ to stores, then everyone)")
        try send(("xihu", xihu), ("hq", hq))
        try hq.removeTag("et_bakery", from: "wm_lin", by: "zhaolei")
        print("  HQ 赵磊: removes 烘焙 from 林小文 (it has seen 西湖店's add, not 静安店's)")
        try send(("hq", hq), ("xihu", xihu))
        try send(("jingan", jingan), ("hq", hq))
        try syncAll()

        step("Converged state (as every replica holds it)")
        print(try Render.state(of: hq))

        step("Conflict log (identical on every replica)")
        print(Render.conflicts(try hq.conflicts()))

        step("HQ resolves: acknowledges the phone conflict, overrides the 会员等级 conflict")
        let open = try hq.conflicts(state: .open)
        if let phone = open.first(where: { $0.field == "phone" && $0.target.id == "wm_lin" }) { try hq.acknowledgeConflict(phone.id, by: "zhaolei"); print("  acknowledged \(phone.id)") }
        if let level = open.first(where: { $0.rule == .exclusiveTagGroup }) { try hq.overrideConflict(level.id, by: "zhaolei"); print("  overrode \(level.id): 周子豪 keeps 银卡") }
        try syncAll()
        print(Render.conflicts(try jingan.conflicts()))
        print("")
        print(try Render.state(of: jingan))

        step("Digests")
        var digests: Set<String> = []
        for (name, r) in all {
            let d = try r.digest().hexString
            digests.insert(d)
            let counts = try r.opCounts()
            print("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) \(d)  (\(counts.total) ops, \(counts.own) own)")
        }
        if digests.count == 1 {
            print("  all replicas converged")
        } else {
            print("  REPLICAS DIFFER")
        }
        if let keep {
            print("\nReplica files kept in \(keep): try  sqlite3 \(keep)/xihu.db 'select * from customer_tags'")
            if let gender = try hq.conflicts(state: .open).first(where: { $0.field == "gender" }) {
                print("The conflict on 马一鸣's gender is left open; resolve it with")
                print("  siyu override --db \(keep)/hq.db \(gender.id.prefix(6)) --value 1 --by zhaolei   (or --take discarded, or siyu ack)")
            }
        }
        return digests.count == 1 ? 0 : 1
    }
}
