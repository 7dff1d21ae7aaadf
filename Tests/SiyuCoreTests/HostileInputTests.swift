import Foundation
import Testing
import SiyuCore

/// Issue 11, the pure core: what a hostile or buggy peer can put in an op is refused by
/// `Op.validate()` with a `CoreError` that names the limit, and the merge neither traps nor wraps on
/// what validation would refuse. Each test is one row of the issue's table (or one limit behind it).
@Suite struct HostileInputTests {
    static let clock = HLC(millis: 1_764_000_000_000, logical: 0)

    static func op(_ body: OpBody, node: String = "xihu", seq: UInt64 = 1, role: Role = .store,
                   author: String = "chenjing", hlc: HLC = clock) -> Op {
        Op(stamp: Stamp(hlc: hlc, node: node), seq: seq, role: role, author: author, body: body)
    }

    /// Validates, returning the refusal's text (nil when the op is valid).
    static func refusal(_ op: Op) -> String? {
        do { try op.validate(); return nil } catch { return "\(error)" }
    }

    /// `n` stamps with one clock and distinct nodes (what defeated a hash of the clock alone).
    static func sameClockStamps(_ n: Int) -> [Stamp] {
        (0..<n).map { Stamp(hlc: clock, node: "n\($0)") }
    }

    // MARK: Integers on the wire

    @Test func anOpWithASequenceNumberOfTwoToThe63IsRefusedNamingTheRange() {
        let body = OpBody.write(Target(.customer, "c1"), field: "name", value: .text("A"), overwrites: [])
        for seq: UInt64 in [1 << 63, UInt64.max] {
            let why = HostileInputTests.refusal(HostileInputTests.op(body, seq: seq))
            #expect(why?.contains("sequence number") == true, "seq \(seq): \(why ?? "accepted")")
            #expect(why?.contains("1...9223372036854775807") == true, "seq \(seq): \(why ?? "accepted")")
        }
        #expect(HostileInputTests.refusal(HostileInputTests.op(body, seq: UInt64(Int64.max))) == nil)
        #expect(HostileInputTests.refusal(HostileInputTests.op(body, seq: 0)) != nil)
    }

    @Test func aPointsOpWithDeltaInt64MinIsRefusedNamingTheBound() {
        let why = HostileInputTests.refusal(HostileInputTests.op(.points(customerID: "c1", delta: .min), role: .hq))
        #expect(why?.contains("1000000000000") == true, "\(why ?? "accepted")")
        #expect(Op.maxPointsDelta == 1_000_000_000_000)
    }

    @Test func pointsDeltasAreBoundedToATrillionEitherWay() {
        let bound = Op.maxPointsDelta
        #expect(HostileInputTests.refusal(HostileInputTests.op(.points(customerID: "c1", delta: bound))) == nil)
        #expect(HostileInputTests.refusal(HostileInputTests.op(.points(customerID: "c1", delta: -bound), role: .hq)) == nil)
        #expect(HostileInputTests.refusal(HostileInputTests.op(.points(customerID: "c1", delta: bound + 1))) != nil)
        #expect(HostileInputTests.refusal(HostileInputTests.op(.points(customerID: "c1", delta: -bound - 1), role: .hq)) != nil)
        #expect(HostileInputTests.refusal(HostileInputTests.op(.points(customerID: "c1", delta: .max))) != nil)
    }

    @Test func mergingAPointsDeltaOfInt64MinDoesNotTrap() {
        // Validation refuses it; the merge is still total on it (a replica that holds one from an
        // older version must open and merge).
        let award = HostileInputTests.op(.points(customerID: "c1", delta: 5), node: "xihu")
        let redeem = HostileInputTests.op(.points(customerID: "c1", delta: .min), node: "hq", role: .hq)
        let state = InstanceState.merge(InstanceRef(.customer, "c1"), ops: [award, redeem], catalog: TagCatalog())
        #expect(state.pointsBalance == 5 - Int64.max)
        #expect(state.conflicts.map(\.rule) == [.overdraft])
    }

    @Test func twoStoreAwardsOfInt64MaxSaturateInsteadOfWrappingToMinusTwo() {
        let a = HostileInputTests.op(.points(customerID: "c1", delta: .max), node: "xihu")
        let b = HostileInputTests.op(.points(customerID: "c1", delta: .max), node: "jingan")
        let ref = InstanceRef(.customer, "c1")
        let merged = InstanceState.merge(ref, ops: [a, b], catalog: TagCatalog())
        #expect(merged.pointsBalance == Int64.max)
        #expect(merged.conflicts.isEmpty)
        #expect(merged.rows[.points] == [[.text("c1"), .int(.max), .int(.max), .int(0)]])
        #expect(InstanceState.merge(ref, ops: [b, a], catalog: TagCatalog()).rows == merged.rows)
        // Redeeming from a saturated balance cannot wrap either.
        let r = HostileInputTests.op(.points(customerID: "c1", delta: .min + 1), node: "hq", role: .hq)
        #expect(InstanceState.merge(ref, ops: [a, b, r], catalog: TagCatalog()).pointsBalance == 0)
    }

    // MARK: Stamp hashing and stamp lists

    @Test func stampsWithOneClockAndDifferentNodesHashApart() {
        let hashes = Set(HostileInputTests.sameClockStamps(1_000).map(\.hashValue))
        // 64-bit hashes of 1,000 distinct stamps: a collision among them is a 1 in 10^13 event.
        #expect(hashes.count >= 990, "\(hashes.count) distinct hashes of 1,000 stamps")
    }

    @Test func aRemoveNaming100kSameClockDistinctNodeStampsIsRefusedByTheStampListCap() {
        let remove = HostileInputTests.op(.remove(Target(.customerTag, "c1", "t1"), removes: HostileInputTests.sameClockStamps(100_000)))
        let why = HostileInputTests.refusal(remove)
        #expect(why?.contains("100000 stamps") == true, "\(why ?? "accepted")")
        #expect(why?.contains("\(Op.maxNamedStamps)") == true)
    }

    @Test func everyStampListIsCappedAtItsDocumentedLimit() {
        let named = Op.maxNamedStamps, wide = Op.maxObservedStamps
        #expect(named == 1_024 && wide == 16_384)
        let tag = Target(.customerTag, "c1", "t1")
        let cases: [(String, Int, ([Stamp]) -> Op)] = [
            ("overwrites", named, { HostileInputTests.op(.write(Target(.customer, "c1"), field: "name", value: .text("A"), overwrites: $0)) }),
            ("add removes", named, { HostileInputTests.op(.add(tag, removes: $0)) }),
            ("remove removes", named, { HostileInputTests.op(.remove(tag, removes: $0)) }),
            ("status seen", wide, { HostileInputTests.op(.status(orderID: "o1", from: .placed, to: .paid, seen: $0)) }),
            ("delete observed", wide, { HostileInputTests.op(.deleteCustomer(customerID: "c1", observed: $0)) }),
            ("tag deletion seen", wide, { HostileInputTests.op(.tagDeletion(InstanceRef(.tag, "t1"), seen: $0), node: "hq", role: .hq) }),
        ]
        for (name, cap, make) in cases {
            let atCap = HostileInputTests.sameClockStamps(cap)
            #expect(HostileInputTests.refusal(make(atCap)) == nil, "\(name): \(cap) stamps refused")
            let over = atCap + [Stamp(hlc: HostileInputTests.clock, node: "one-more")]
            let why = HostileInputTests.refusal(make(over))
            #expect(why?.contains("\(cap + 1) stamps") == true, "\(name): \(why ?? "accepted")")
        }
    }

    @Test func aStampListNamingOneStampTwiceIsRefused() {
        let s = Stamp(hlc: HostileInputTests.clock, node: "jingan")
        let tag = Target(.customerTag, "c1", "t1")
        let lists: [[Stamp]] = [[s, s], HostileInputTests.sameClockStamps(40) + [Stamp(hlc: HostileInputTests.clock, node: "n7")]]
        for list in lists {
            let ops = [
                HostileInputTests.op(.write(Target(.customer, "c1"), field: "name", value: .text("A"), overwrites: list)),
                HostileInputTests.op(.add(tag, removes: list)),
                HostileInputTests.op(.remove(tag, removes: list)),
                HostileInputTests.op(.status(orderID: "o1", from: .placed, to: .paid, seen: list)),
                HostileInputTests.op(.deleteCustomer(customerID: "c1", observed: list)),
                HostileInputTests.op(.tagDeletion(InstanceRef(.tag, "t1"), seen: list), node: "hq", role: .hq),
            ]
            for op in ops {
                let why = HostileInputTests.refusal(op)
                #expect(why?.contains("twice") == true, "\(op.body.kindName) with \(list.count) stamps: \(why ?? "accepted")")
            }
        }
        // The same clock on two nodes is two stamps, not a duplicate.
        let two = [s, Stamp(hlc: HostileInputTests.clock, node: "xihu")]
        #expect(HostileInputTests.refusal(HostileInputTests.op(.remove(tag, removes: two))) == nil)
    }

    @Test func aStampNamingANodeThatIsNotAValidIdIsRefused() {
        let tag = Target(.customerTag, "c1", "t1")
        for node in ["", String(repeating: "n", count: 300), "x\u{202E}y"] {
            let why = HostileInputTests.refusal(HostileInputTests.op(.remove(tag, removes: [Stamp(hlc: HostileInputTests.clock, node: node)])))
            #expect(why?.contains("stamp node id") == true, "\(node.prefix(8)): \(why ?? "accepted")")
        }
    }

    // MARK: Ids, authors and text

    static let hundredThousandAccents = "x" + String(repeating: "\u{0301}", count: 100_000)

    @Test func xWithAHundredThousandCombiningAccentsIsRefusedAsAnId() {
        let s = HostileInputTests.hundredThousandAccents
        #expect(s.count == 1)   // one character: a limit in characters alone lets it through
        let why = HostileInputTests.refusal(HostileInputTests.op(.write(Target(.customer, s), field: "name", value: .text("A"), overwrites: [])))
        #expect(why?.contains("200001 bytes") == true, "\(why ?? "accepted")")
        #expect(why?.contains("\(IdentifierRule.maxUTF8Bytes)") == true)
        #expect(throws: CoreError.self) { try IdentifierRule.validate(s, as: "customer id") }
    }

    @Test func xWithAHundredThousandCombiningAccentsIsRefusedAsASixtyFourCharacterName() {
        let name = HostileInputTests.hundredThousandAccents
        let why = HostileInputTests.refusal(HostileInputTests.op(.write(Target(.customer, "c1"), field: "name", value: .text(name), overwrites: [])))
        #expect(why?.contains("200001 bytes") == true, "\(why ?? "accepted")")
        #expect(why?.contains("256 bytes") == true, "\(why ?? "accepted")")
    }

    @Test func aHundredThousandByteAuthorIsRefused() {
        let author = String(repeating: "a", count: 100_000)
        let why = HostileInputTests.refusal(HostileInputTests.op(.points(customerID: "c1", delta: 10), author: author))
        #expect(why?.contains("author") == true, "\(why ?? "accepted")")
        #expect(why?.contains("100000") == true, "\(why ?? "accepted")")
    }

    @Test func idsWithBidiOverridesZeroWidthCharactersByteOrderMarksC1ControlsOrOnlySpacesAreRefused() {
        let bad = [
            "wm\u{202E}gnp.exe", "wm\u{200B}abc", "\u{FEFF}wmabc", "wm\u{2066}abc",   // bidi override, zero width, BOM, isolate
            "wm\u{0085}abc", "wm\u{009B}2J", "wm\u{0080}",                          // C1 controls (NEL, CSI, PAD)
            "wm\u{2028}abc", "wm\u{2029}abc",                                       // line / paragraph separators
            "wm\u{1B}[2J", "wm\u{7F}", "wm\tabc", "wm\nabc",                         // C0 controls and DEL
            " ", "   ", "\u{3000}", "\u{00A0}",                                    // only whitespace
            " wmabc", "wmabc ", "\u{3000}西湖店", "西湖店\u{00A0}",                    // leading / trailing whitespace
            "",
        ]
        for id in bad {
            #expect(throws: CoreError.self, "id \(id.debugDescription) accepted") { try IdentifierRule.validate(id, as: "customer id") }
            let op = HostileInputTests.op(.write(Target(.customer, id), field: "name", value: .text("A"), overwrites: []))
            #expect(HostileInputTests.refusal(op) != nil, "op on \(id.debugDescription) accepted")
        }
    }

    @Test func anAuthorWithAnEscapeSequenceOrAFormatCharacterIsRefused() {
        for author in ["\u{1B}[2J\u{1B}[H zhaolei", "zhao\u{202E}lei", "zhaolei\u{200B}", "zhao\u{009B}lei", " zhaolei", "zhaolei\n"] {
            let why = HostileInputTests.refusal(HostileInputTests.op(.points(customerID: "c1", delta: 1), author: author))
            #expect(why?.contains("author") == true, "\(author.debugDescription): \(why ?? "accepted")")
        }
    }

    @Test func honestIdsAndAuthorsStillPass() throws {
        let ids = ["wmABCDEFGHIJ0123456789abcdefghij", "et_1111", "zhaolei@hq", "西湖店", "a b", "店🏬",
                   String(repeating: "店", count: 64), String(repeating: "🏬", count: 64),   // 192 and 256 bytes
                   "caf\u{00E9}"]
        for id in ids { try IdentifierRule.validate(id, as: "customer id") }
        for author in ["", "zhaolei", "陈静", "chen.jing@xihu"] {
            #expect(HostileInputTests.refusal(HostileInputTests.op(.points(customerID: "c1", delta: 1), author: author)) == nil, "\(author)")
        }
        // Names keep emoji (a ZWJ family is one character of 25 bytes) and Chinese text.
        let name = "🌸小美👨\u{200D}👩\u{200D}👧\u{200D}👦"
        #expect(HostileInputTests.refusal(HostileInputTests.op(.write(Target(.customer, "c1"), field: "name", value: .text(name), overwrites: []))) == nil)
        #expect(HostileInputTests.refusal(HostileInputTests.op(.write(Target(.customer, "c1"), field: "name", value: .text(String(repeating: "名", count: 64)), overwrites: []))) == nil)
    }

    @Test func idLimitsAreCountedInCharactersAndInUTF8Bytes() {
        #expect(IdentifierRule.maxLength == 64 && IdentifierRule.maxUTF8Bytes == 256)
        // 65 characters: over the character limit, under the byte limit.
        #expect(throws: CoreError.self) { try IdentifierRule.validate(String(repeating: "店", count: 65), as: "store id") }
        // One character of 257 bytes: under the character limit, over the byte limit.
        let heavy = "x" + String(repeating: "\u{0301}", count: 128)
        #expect(heavy.count == 1 && heavy.utf8.count == 257)
        #expect(throws: CoreError.self) { try IdentifierRule.validate(heavy, as: "store id") }
    }

    @Test func textFieldsAreLimitedInUTF8BytesAsWellAsCharacters() {
        // remark: 20 characters, so at most 80 bytes.
        let remark = Target(.followRelation, "c1", "chenjing")
        func write(_ s: String) -> Op { HostileInputTests.op(.write(remark, field: "remark", value: .text(s), overwrites: [])) }
        #expect(HostileInputTests.refusal(write(String(repeating: "好", count: 20))) == nil)             // 60 bytes
        let why = HostileInputTests.refusal(write("a" + String(repeating: "\u{0301}", count: 40)))      // 1 character, 81 bytes
        #expect(why?.contains("81 bytes") == true, "\(why ?? "accepted")")
        #expect(why?.contains("80 bytes") == true, "\(why ?? "accepted")")
        // C1 controls and DEL are refused in text as C0 controls already were; line breaks stay.
        #expect(HostileInputTests.refusal(write("a\u{009B}2J")) != nil)
        #expect(HostileInputTests.refusal(write("a\u{7F}")) != nil)
        #expect(HostileInputTests.refusal(write("第一行\n第二行")) == nil)
    }

    @Test func anAcknowledgementNamesAValidInstanceAndConflictID() {
        let ok = HostileInputTests.op(.acknowledge(InstanceRef(.customer, "c1"), conflictID: "d4092bc7bdc0"))
        #expect(HostileInputTests.refusal(ok) == nil)
        let longID = HostileInputTests.op(.acknowledge(InstanceRef(.customer, String(repeating: "c", count: 100_000)), conflictID: "d4092bc7bdc0"))
        #expect(HostileInputTests.refusal(longID) != nil)
        let badConflict = HostileInputTests.op(.acknowledge(InstanceRef(.customer, "c1"), conflictID: "\u{1B}[2J"))
        #expect(HostileInputTests.refusal(badConflict) != nil)
    }

    /// Lengths count Unicode scalar values (SPEC §9), not grapheme clusters: 40 × "x" + U+0323
    /// (no precomposed form, so NFC keeps two scalars each) is 40 clusters but 80 scalar values.
    @Test func idAndTextLengthsCountUnicodeScalarValuesNotGraphemeClusters() {
        let dotted = String(repeating: "x\u{0323}", count: 40)
        #expect(dotted.count == 40 && dotted.unicodeScalars.count == 80)
        #expect(throws: CoreError.self) { try IdentifierRule.validate(dotted, as: "customer id") }
        #expect(throws: Never.self) { try IdentifierRule.validate(String(repeating: "x\u{0323}", count: 32), as: "customer id") }
        let name = Entity.customer.field(named: "name")!
        #expect(throws: CoreError.self) { try name.validate(.text(dotted), on: .customer) }      // name: 64
        #expect(throws: Never.self) { try name.validate(.text(String(repeating: "x\u{0323}", count: 32)), on: .customer) }
    }
}
