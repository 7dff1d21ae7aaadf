import Foundation
import Testing
import SiyuNet
import SiyuProbe

/// The command line of `siyu-bench --attack-child` (the attack section's attacker process) as
/// `AttackOrder` writes and reads it, and the tally line it answers with. No hub and no timing:
/// the attacks themselves are `HostileInputTests`'.
@Suite struct AttackOrderTests {
    static let target = AttackTarget(hub: SocketAddress(host: .ipv4([127, 0, 0, 1]), port: 40_123), node: "mallory",
                                     secret: (0...255).map { UInt8($0) }, otherNode: "hq-console")

    @Test func anAttackOrderReadsBackFromTheArgumentsItWritesForEveryRow() throws {
        for input in HostileInput.allCases {
            let order = AttackOrder(input: input, target: Self.target, seconds: 0.5, wait: 2)
            #expect(try AttackOrder(parsing: order.arguments) == order, "\(input.rawValue): \(order.arguments)")
        }
        // The flags in another order, --other-node left out (then "hq").
        let parsed = try AttackOrder(parsing: ["--seconds", "3", "--wait", "2", "--row", "flood", "--secret-hex", "00ffA0",
                                               "--node", "mallory", "--hub", "127.0.0.1:7400"])
        #expect(parsed.input == .connectionFlood && parsed.target.secret == [0x00, 0xff, 0xa0] && parsed.target.otherNode == "hq"
                && parsed.target.hub == .loopbackIPv4(port: 7400) && parsed.seconds == 3 && parsed.wait == 2)
    }

    @Test func anAttackOrderRefusesMalformedArgumentsNamingWhatIsWrong() throws {
        let good = AttackOrder(input: .badChecksum, target: Self.target, seconds: 3, wait: 2).arguments
        func replacing(_ flag: String, with value: String) -> [String] {
            var a = good
            if let i = a.firstIndex(of: flag) { a[i + 1] = value }
            return a
        }
        let cases: [([String], String)] = [
            (replacing("--row", with: "nosuchrow"), "no row 'nosuchrow' (rows: flood, half_frame"),
            (replacing("--secret-hex", with: "abc"), "even number of hexadecimal digits"),
            (replacing("--secret-hex", with: "zz"), "not a hexadecimal digit"),
            (replacing("--seconds", with: "0"), "--seconds needs seconds, more than 0 and at most 600"),
            (replacing("--seconds", with: "601"), "--seconds needs seconds"),
            (replacing("--wait", with: "nan"), "--wait needs seconds"),
            (replacing("--hub", with: "example.com:1"), "--hub: "),
            (replacing("--node", with: ""), "--node needs a node id"),
            (Array(good.prefix(2)) + Array(good.dropFirst(4)), "missing --row"),
            (Array(good.dropFirst(2)), "missing --hub;"),
            (good + ["--row", "flood"], "--row given twice"),
            (good + ["--verbose"], "unknown argument '--verbose'"),
            (good + ["--wait"], "--wait given twice"),
            (Array(good.dropLast()), "--wait needs a value"),
        ]
        for (arguments, message) in cases {
            let error = #expect(throws: AttackError.self) { try AttackOrder(parsing: arguments) }
            #expect(error?.description.contains(message) == true, "\(arguments): \(error.map { "\($0)" } ?? "no error")")
        }
    }

    @Test func anAttackTallyReadsBackFromItsLine() throws {
        let outcomes = [AttackOutcome(answers: ["ERROR 3", "closed"], refusals: 1), AttackOutcome(answers: ["ERROR 3", "closed"], refusals: 1),
                        AttackOutcome(answers: ["open"], refusals: 0)]
        let tally = AttackTally(row: .oversizeLength, outcomes: outcomes, failure: "a round's error", cpuSeconds: 0.25, seconds: 3.01)
        #expect(tally.rounds == 3 && tally.answers == ["ERROR 3, closed": 2, "open": 1])
        #expect(!tally.line.contains("\n") && tally.line.contains("\"cpu_seconds\":0.25"))
        #expect(try AttackTally(line: tally.line) == tally)
        #expect(throws: AttackError.self) { try AttackTally(line: "ready") }
    }
}
