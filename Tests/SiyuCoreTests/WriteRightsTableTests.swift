import Foundation
import Testing
import SiyuCore

/// SPEC section 7, "Write rights", is made from `WriteRights.rules`: the table between its markers
/// is exactly `WriteRights.markdownTable()`.
@Suite struct WriteRightsTableTests {
    static let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Protocol/SPEC.md")

    @Test func theSpecsWriteRightsTableIsTheCodesTable() throws {
        let text = try String(contentsOf: WriteRightsTableTests.spec, encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- write-rights:begin -->\n"))
        let end = try #require(text.range(of: "<!-- write-rights:end -->", range: begin.upperBound..<text.endIndex))
        let table = String(text[begin.upperBound..<end.lowerBound])
        #expect(table == WriteRights.markdownTable(), "paste this between the markers:\n\(WriteRights.markdownTable())")
    }

    @Test func everyRuleHasANameOnce() {
        let names = WriteRights.rules.map(\.name)
        #expect(Set(names).count == names.count)
    }

    @Test func hqBreaksNoRule() throws {
        let check = WriteCheck(writer: Writer(role: .hq), state: nil, batch: [])
        let op = Op(stamp: Stamp(hlc: HLC(millis: 1, logical: 0), node: "hq"), seq: 1, role: .hq, author: "",
                    body: .deleteCustomer(customerID: "c1", observed: []))
        #expect(try WriteRights.breach(op, check) == nil)
    }
}
