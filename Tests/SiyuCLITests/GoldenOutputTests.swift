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
