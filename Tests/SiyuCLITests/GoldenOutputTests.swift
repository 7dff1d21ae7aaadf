import Foundation
import Testing
import SiyuCore
import SiyuStore
@testable import SiyuCLI

/// The exact output of every inspecting command, and of the commands that resolve conflicts, on
/// one fixed pair of replicas (`ConflictFixture`, made with a fixed clock), compared with the
/// files in `testdata/<command>/<case>.txt`. The replica directory appears there as `$DIR`.
///
/// After an intended change of output, regenerate the files with
/// `SIYU_UPDATE_GOLDEN=1 swift test --filter GoldenOutputTests` and review the diff.
@Suite(.serialized) struct GoldenOutputTests {
    /// One command line (`$HQ` and `$STORE` stand for the two replicas) and the file it is compared with.
    struct Case: CustomStringConvertible, Sendable {
        var file: String
        var arguments: [String]
        var description: String { file }
        init(_ file: String, _ arguments: String) {
            self.file = file
            self.arguments = arguments.split(separator: " ").map(String.init)
        }
    }

    static let readOnly: [Case] = [
        Case("status/hq", "status --db $HQ"),
        Case("status/hq-json", "status --db $HQ --json"),
        Case("status/store", "status --db $STORE"),
        Case("show/hq", "show --db $HQ"),
        Case("show/hq-json", "show --db $HQ --json"),
        Case("customers/all", "customers --db $HQ"),
        Case("customers/by-tag", "customers --db $HQ --tag et_gold"),
        Case("customers/by-phone-none", "customers --db $HQ --phone 10000000000"),
        Case("customers/json", "customers --db $HQ --json"),
        Case("tags/all", "tags --db $HQ"),
        Case("tags/json", "tags --db $HQ --json"),
        Case("groups/all", "groups --db $HQ"),
        Case("groups/roster", "groups --db $HQ wr_1"),
        Case("groups/json", "groups --db $HQ wr_1 --json"),
        Case("orders/all", "orders --db $HQ"),
        Case("orders/one", "orders --db $HQ o_1"),
        Case("orders/json", "orders --db $HQ o_1 --json"),
        Case("orders/unknown", "orders --db $HQ o_9"),
        Case("conflicts/all", "conflicts --db $STORE"),
        Case("conflicts/open", "conflicts --db $HQ --state open"),
        Case("conflicts/json", "conflicts --db $HQ --json"),
        Case("history/field", "history --db $HQ customer wm_lin phone"),
        Case("history/tag", "history --db $HQ customer_tag wm_lin et_gold"),
        Case("history/json", "history --db $HQ customer wm_lin gender --json"),
        Case("history/unknown", "history --db $HQ customer wm_nobody phone"),
    ]

    @Test(arguments: readOnly)
    func readOnlyCommandsPrintExactlyTheirGoldenOutput(_ c: Case) throws {
        let fixture = try ConflictFixture()
        defer { fixture.remove() }
        try GoldenOutputTests.check(c, fixture, clock: TestClock(start: 1_795_000_100_000))
    }

    /// Resolving: each case runs on a fresh fixture, then `conflicts` shows the result.
    @Test func resolvingConflictsPrintsExactlyTheGoldenOutput() throws {
        for (resolve, after) in [(Case("ack/phone", "ack --db $HQ $PHONE --by zhaolei"), Case("ack/phone-after", "conflicts --db $HQ $PHONE")),
                                 (Case("override/gender-value", "override --db $HQ $GENDER --value 2 --by zhaolei"),
                                  Case("override/gender-after", "conflicts --db $HQ $GENDER")),
                                 (Case("override/level-take", "override --db $HQ $LEVEL --take discarded --by zhaolei"),
                                  Case("override/level-after", "customers --db $HQ --id wm_lin"))] {
            let fixture = try ConflictFixture()
            defer { fixture.remove() }
            let clock = TestClock(start: 1_795_000_100_000)
            try GoldenOutputTests.check(resolve, fixture, clock: clock)
            try GoldenOutputTests.check(after, fixture, clock: clock)
        }
    }

    /// Edits: each case runs on a fresh fixture; successes, refusals (with their hints) and --json.
    static let edits: [Case] = [
        Case("customer/add", "customer add --db $HQ wm_new --name 新客 --phone 13700000000 --owner-store xihu --by zhaolei"),
        Case("customer/add-json", "customer add --db $HQ wm_new --json"),
        Case("customer/add-exists", "customer add --db $HQ wm_lin"),
        Case("customer/set", "customer set --db $STORE wm_lin --phone 13700000001 --gender 2 --by chenjing"),
        Case("customer/set-clear", "customer set --db $HQ wm_lin --clear phone --clear owner-store"),
        Case("customer/set-unchanged", "customer set --db $HQ wm_lin --name 林小文"),
        Case("customer/set-bad-gender", "customer set --db $HQ wm_lin --gender 7"),
        Case("customer/set-nothing", "customer set --db $HQ wm_lin"),
        Case("customer/set-unknown", "customer set --db $HQ wm_nobody --name x"),
        Case("customer/delete", "customer delete --db $HQ wm_lin --by zhaolei"),
        Case("tag/add", "tag add --db $STORE wm_lin et_gold --by chenjing"),
        Case("tag/add-unknown", "tag add --db $STORE wm_lin et_nope"),
        Case("tag/add-unknown-staff", "tag add --db $STORE wm_lin et_gold --by nobody"),
        Case("tag/remove-json", "tag remove --db $HQ wm_lin et_gold --json"),
        Case("tag/remove-hidden-loser", "tag remove --db $HQ wm_lin et_silver"),
        Case("tag/define", "tag define --db $HQ et_black --group et_level --name 黑卡 --by zhaolei"),
        Case("tag/define-on-store", "tag define --db $STORE et_black --group et_level --name 黑卡"),
        Case("tag/define-no-group", "tag define --db $HQ et_black --group et_none --name 黑卡"),
        Case("tag/rename", "tag rename --db $HQ et_gold 金卡会员"),
        Case("tag/rename-clash", "tag rename --db $HQ et_gold 银卡"),
        Case("tag/delete", "tag delete --db $HQ et_silver --by zhaolei"),
        Case("tag/define-group", "tag define-group --db $HQ et_taste --name 口味"),
        Case("tag/no-action", "tag --db $HQ"),
        Case("group/create", "group create --db $HQ wr_2 --name 茶友 --owner chenjing --capacity 50"),
        Case("group/add-member", "group add-member --db $HQ wr_1 wm_lin --type 2"),
        Case("group/add-member-unknown-group", "group add-member --db $HQ wr_9 wm_lin"),
        Case("group/remove-member", "group remove-member --db $HQ wr_1 chenjing"),
        Case("order/create", "order create --db $STORE o_2 --customer wm_lin --store xihu --by chenjing"),
        Case("order/add-line-paid", "order add-line --db $HQ o_1 2 --sku 杯 --qty 1 --price 3000"),
        Case("order/set-status", "order set-status --db $HQ o_1 fulfilled"),
        Case("order/set-status-illegal", "order set-status --db $HQ o_1 placed"),
        Case("order/set-status-unknown", "order set-status --db $HQ o_1 shipped"),
        Case("points/award", "points award --db $STORE wm_lin 120 --by chenjing"),
        Case("points/redeem-store", "points redeem --db $STORE wm_lin 10"),
        Case("points/redeem-too-many", "points redeem --db $HQ wm_lin 10"),
        Case("points/award-zero", "points award --db $HQ wm_lin 0"),
    ]

    @Test(arguments: edits)
    func editCommandsPrintExactlyTheirGoldenOutput(_ c: Case) throws {
        let fixture = try ConflictFixture()
        defer { fixture.remove() }
        try GoldenOutputTests.check(c, fixture, clock: TestClock(start: 1_795_000_100_000))
    }

    /// A refused edit writes nothing: the file is byte for byte what it was.
    @Test func refusedEditsLeaveTheFileUnchanged() throws {
        let fixture = try ConflictFixture()
        defer { fixture.remove() }
        let before = snapshot(fixture.hq)
        let refused = ["customer/add-exists", "customer/set-bad-gender", "customer/set-nothing", "customer/set-unknown",
                       "tag/add-unknown", "tag/define-no-group", "tag/rename-clash", "tag/no-action",
                       "group/add-member-unknown-group", "order/add-line-paid", "order/set-status-illegal",
                       "order/set-status-unknown", "points/redeem-too-many", "points/award-zero"]
        for c in GoldenOutputTests.edits where refused.contains(c.file) {
            let r = siyu(c.arguments.map { $0 == "$HQ" || $0 == "$STORE" ? fixture.hq : $0 })
            #expect(r.code != 0, "\(c.file)")
            #expect(r.err.contains("hint:") || r.err.contains("usage:"), "\(c.file)")
            #expect(snapshot(fixture.hq) == before, "\(c.file)")
        }
    }

    /// The README's by-hand story: the store tags a customer offline, HQ changes the same
    /// customer concurrently, the two replicas exchange what they lack, and the conflict shows.
    @Test func editsOnTwoReplicasConflictAfterTheyExchange() throws {
        let fixture = try ConflictFixture()
        defer { fixture.remove() }
        let clock = TestClock(start: 1_795_000_100_000)
        for c in [Case("edits/hq-adds-customer", "customer add --db $HQ wm_zhou --name 周子豪 --owner-store xihu --by zhaolei"),
                  Case("edits/first-merge", "merge $HQ $STORE"),
                  Case("edits/store-tags-offline", "tag add --db $STORE wm_zhou et_silver --by chenjing"),
                  Case("edits/hq-tags-concurrently", "tag add --db $HQ wm_zhou et_gold --by zhaolei"),
                  Case("edits/merge", "merge $HQ $STORE"),
                  Case("edits/customer", "customers --db $STORE --id wm_zhou"),
                  Case("edits/conflicts", "conflicts --db $STORE --state open")] {
            try GoldenOutputTests.check(c, fixture, clock: clock)
        }
    }

    static func check(_ c: Case, _ fixture: ConflictFixture, clock: TestClock) throws {
        var ids: [String: String] = [:]
        for (name, field) in [("$PHONE", "phone"), ("$GENDER", "gender"), ("$LEVEL", nil)] {
            ids[name] = String(try fixture.conflict(field, in: fixture.hq).id.prefix(8))
        }
        let arguments = c.arguments.map { a -> String in
            switch a {
            case "$HQ": return fixture.hq
            case "$STORE": return fixture.store
            default: return ids[a] ?? a
            }
        }
        let r = siyu(arguments, clock: clock)
        let shown = "$ siyu \(c.arguments.joined(separator: " "))\nexit \(r.code)\n--- stdout\n\(r.out)--- stderr\n\(r.err)"
            .replacingOccurrences(of: fixture.directory.path, with: "$DIR")
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("testdata/\(c.file).txt")
        if ProcessInfo.processInfo.environment["SIYU_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try shown.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(shown == expected, "\(c.file): the output differs from testdata/\(c.file).txt (regenerate with SIYU_UPDATE_GOLDEN=1 after an intended change)")
    }
}
