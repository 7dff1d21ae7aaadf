import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuCommandLine
@testable import SiyuCLI
import SiyuTestSupport

/// What one in-process run of `siyu` printed and returned.
struct RunResult {
    var code: Int32
    var out: String
    var err: String
}

/// A fixed, advancing wall clock: every reading is 1 ms after the previous one.
final class TestClock: @unchecked Sendable {
    private var now: UInt64
    private let lock = NSLock()
    init(start: UInt64 = 1_795_000_000_000) { now = start }
    func read() -> UInt64 { lock.lock(); defer { lock.unlock() }; now += 1; return now }
}

/// Runs `siyu` in-process with captured streams.
func siyu(_ arguments: [String], clock: TestClock = TestClock(start: 1_795_000_100_000)) -> RunResult {
    let out = TextBuffer(), err = TextBuffer()
    let context = CLIContext(io: CommandIO(output: out.stream(), error: err.stream()), wallClock: clock.read)
    let code = SiyuProgram.main(arguments, context: context)
    return RunResult(code: code, out: out.text, err: err.text)
}

/// The bytes of a file and of its write-ahead log (nil when absent), to check that a refused
/// command wrote nothing.
func snapshot(_ path: String) -> [Data?] {
    [path, path + "-wal"].map { FileManager.default.contents(atPath: $0) }
}

/// Two replicas with conflicts of every kind `override` handles: HQ (`hq.db`) and store xihu
/// (`xihu.db`) edit customer wm_lin offline — phone (text), gender (integer) and a tag of the
/// exclusive group 会员等级 — and then exchange change sets. HQ's edits come later, so HQ wins.
struct ConflictFixture {
    let directory: TemporaryDirectory
    var hq: String { directory.path("hq.db") }
    var store: String { directory.path("xihu.db") }

    init() throws {
        directory = try TemporaryDirectory()
        let clock = TestClock()
        let hq = try Replica(path: directory.path("hq.db"), options: ReplicaOptions(node: "hq", role: .hq, wallClock: clock.read))
        let xihu = try Replica(path: directory.path("xihu.db"), options: ReplicaOptions(node: "xihu", role: .store, wallClock: clock.read))
        defer { hq.close(); xihu.close() }
        try hq.defineStore("xihu", name: "西湖店")
        try hq.defineStaff("zhaolei", name: "赵磊", storeID: nil)
        try hq.defineStaff("chenjing", name: "陈静", storeID: "xihu")
        try hq.defineTagGroup("et_level", name: "会员等级", order: 100, exclusive: true, by: "zhaolei")
        try hq.defineTag("et_silver", group: "et_level", name: "银卡", by: "zhaolei")
        try hq.defineTag("et_gold", group: "et_level", name: "金卡", by: "zhaolei")
        try hq.createCustomer("wm_lin", ["name": .text("林小文"), "owner_store": .text("xihu"), "phone": .text("13800000001"),
                                         "gender": .int(0)], by: "zhaolei")
        try hq.createOrder("o_1", ["customer_id": .text("wm_lin"), "store_id": .text("xihu")], by: "zhaolei")
        try hq.setOrderLine("1", of: "o_1", ["sku": .text("茶"), "qty": .int(2), "unit_price_cents": .int(1250)], by: "zhaolei")
        try hq.moveOrder("o_1", to: .placed, by: "zhaolei")
        try hq.createGroupChat("wr_1", ["name": .text("拼团"), "owner": .text("chenjing"), "capacity": .int(2)], by: "zhaolei")
        try hq.addMember("chenjing", to: "wr_1", ["member_type": .int(1)], by: "zhaolei")
        _ = try xihu.apply(try hq.changeSet(since: try xihu.versionVector()))

        try xihu.editCustomer("wm_lin", ["phone": .text("13800000011"), "gender": .int(2)], by: "chenjing")
        try xihu.addTag("et_silver", to: "wm_lin", by: "chenjing")
        try hq.editCustomer("wm_lin", ["phone": .text("13900000022"), "gender": .int(1)], by: "zhaolei")
        try hq.addTag("et_gold", to: "wm_lin", by: "zhaolei")
        try hq.moveOrder("o_1", to: .paid, by: "zhaolei")

        _ = try hq.apply(try xihu.changeSet(since: try hq.versionVector()))
        _ = try xihu.apply(try hq.changeSet(since: try xihu.versionVector()))
    }

    /// The conflict on `field` of wm_lin (or the exclusive group's, for nil).
    func conflict(_ field: String?, in path: String) throws -> ConflictEntry {
        let r = try Replica(existing: path)
        defer { r.close() }
        return try #require(try r.conflicts().first { field == nil ? $0.rule == .exclusiveTagGroup : $0.field == field })
    }

    func remove() { directory.remove() }
}

/// Parses JSON output.
func parseJSON(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}
