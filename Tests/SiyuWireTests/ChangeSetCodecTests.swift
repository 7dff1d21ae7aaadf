import Foundation
import Testing
import SiyuCore
import SiyuWire

/// Round trips of random change sets, refusal of random garbage without traps, forward
/// compatibility, and the measured size of encoded tag ops against JSON.
@Suite struct ChangeSetCodecTests {
    static func randomOps(_ rng: inout SeededRandom, count: Int) -> [Op] {
        let nodes = ["hq", "xihu", "静安"], people = ["", "chenjing", "王芳"]
        var seq: [String: UInt64] = [:]
        var clock = HLC(millis: 1_764_000_000_000, logical: 0)
        var ops: [Op] = []
        for _ in 0..<count {
            let node = nodes.randomElement(using: &rng)!
            seq[node, default: 0] += UInt64.random(in: 1...3, using: &rng)
            clock = HLC(millis: clock.millis + UInt64.random(in: 0...5000, using: &rng), logical: UInt16.random(in: 0...3, using: &rng))
            func stamps() -> [Stamp] {
                (0..<Int.random(in: 0...3, using: &rng)).map { _ in
                    Stamp(hlc: HLC(millis: clock.millis - UInt64.random(in: 0...100_000, using: &rng), logical: UInt16.random(in: 0...2, using: &rng)),
                          node: nodes.randomElement(using: &rng)!)
                }
            }
            let id = "c\(Int.random(in: 0..<20, using: &rng))", sub = "t\(Int.random(in: 0..<5, using: &rng))"
            let values: [Value] = [.null, .int(Int64.random(in: Int64.min...Int64.max, using: &rng)), .text("林\(id)"),
                                   .bytes([0, 1, 255]), .bool(true), .bool(false)]
            let body: OpBody
            switch Int.random(in: 0..<12, using: &rng) {
            case 0: body = .write(Target(.customer, id), field: "name", value: values.randomElement(using: &rng)!, overwrites: stamps())
            case 1: body = .write(Target(.followRelation, id, sub), field: "remark", value: .text(sub), overwrites: stamps())
            case 2: body = .add(Target(.customerTag, id, sub), removes: stamps())
            case 3: body = .remove(Target(.customerTag, id, sub), removes: stamps())
            case 4: body = .add(Target(.groupMember, id, sub), removes: stamps())
            case 5: body = .remove(Target(.orderLine, id, sub), removes: stamps())
            case 6: body = .status(orderID: id, from: .placed, to: .paid, seen: stamps())
            case 7: body = .points(customerID: id, delta: Int64.random(in: -500...500, using: &rng))
            case 8: body = .deleteCustomer(customerID: id, observed: stamps())
            case 9: body = .acknowledge(InstanceRef(.customer, id), conflictID: "abc123")
            case 10: body = .tagDeletion(InstanceRef(.tag, sub), seen: stamps())
            default: body = .add(Target(.orderLine, id, sub), removes: [])
            }
            ops.append(Op(stamp: Stamp(hlc: clock, node: node), seq: seq[node]!, role: node == "hq" ? .hq : .store,
                          author: people.randomElement(using: &rng)!, body: body))
        }
        return ops
    }

    @Test(arguments: 0..<100)
    func randomChangeSetsRoundTrip(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed))
        let cs = ChangeSet(schemaVersion: Int.random(in: 1...3, using: &rng), ops: ChangeSetCodecTests.randomOps(&rng, count: Int.random(in: 0...60, using: &rng)))
        #expect(try ChangeSetCodec.decode(ChangeSetCodec.encode(cs)) == cs, "seed \(seed)")
        let msg = Message.push(cs)
        #expect(try Message(frame: Frame.decode(msg.encoded()).decodedFrame!) == msg, "seed \(seed)")
        // The same ops as three pushes on one connection: later ones name earlier ones' strings.
        var sender = StringDictionary(), receiver = StringDictionary()
        let cut = [0, cs.ops.count / 3, 2 * cs.ops.count / 3, cs.ops.count]
        for k in 0..<3 {
            let part = Message.push(ChangeSet(schemaVersion: cs.schemaVersion, ops: Array(cs.ops[cut[k]..<cut[k + 1]])))
            let frame = try Frame.decode(part.encoded(dictionary: &sender)).decodedFrame!
            #expect(try Message(frame: frame, dictionary: &receiver) == part, "seed \(seed), push \(k)")
        }
        #expect(sender == receiver, "seed \(seed)")
    }

    @Test(arguments: 0..<50)
    func garbageAndMutationsNeverTrap(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &+ 1000)
        let good = Message.push(ChangeSet(ops: ChangeSetCodecTests.randomOps(&rng, count: 20))).encoded()
        for _ in 0..<200 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? Frame.decode(bytes)
            // Past the checksum, the payload decoder must also hold up on its own.
            _ = try? ChangeSetCodec.decode(Array(bytes.dropFirst(Frame.headerSize)))
            _ = try? Message(frame: Frame(type: .push, payload: Array(bytes.dropFirst(Frame.headerSize))))
        }
        for _ in 0..<200 {
            let junk = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for type: MessageType in [.hello, .challenge, .push, .changes, .snapshotChunk, .error] { _ = try? Message(frame: Frame(type: type, payload: junk)) }
        }
    }

    @Test func aRoleChangeUnderTheSameNodeIdSurvivesEncoding() throws {
        let s1 = Stamp(hlc: HLC(millis: 1_764_000_000_000, logical: 0), node: "n1")
        let s2 = Stamp(hlc: HLC(millis: 1_764_000_000_001, logical: 0), node: "n1")
        let cs = ChangeSet(ops: [
            Op(stamp: s1, seq: 1, role: .store, author: "a", body: .points(customerID: "c", delta: 5)),
            Op(stamp: s2, seq: 2, role: .hq, author: "a", body: .points(customerID: "c", delta: -5)),
        ])
        #expect(try ChangeSetCodec.decode(ChangeSetCodec.encode(cs)) == cs)
    }

    /// schema 1, string_base 0, one new string "a" (p 0, length 1), base clock 0, one op: `op`.
    static func oneOp(_ op: [UInt8]) -> [UInt8] { [0x01, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00, 0x01] + op }

    @Test func headerRulesAreEnforced() {
        // A points op (kind 8) whose header claims "same origin" on the first op.
        #expect(throws: WireError.invalidValue(field: "op header", detail: "first op says 'same origin'")) {
            try ChangeSetCodec.decode(ChangeSetCodecTests.oneOp([0x28, 0x00, 0x00, 0x00, 0x00]))
        }
        // An explicit sequence number of 0 (origin "a", role hq, seq 0).
        #expect(throws: WireError.invalidValue(field: "op sequence", detail: "0 (sequences start at 1)")) {
            try ChangeSetCodec.decode(ChangeSetCodecTests.oneOp([0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02]))
        }
        // A points op flagged as carrying a stamp list.
        #expect(throws: WireError.invalidValue(field: "op header", detail: "a points op has no stamp list")) {
            try ChangeSetCodec.decode(ChangeSetCodecTests.oneOp([0x18, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02]))
        }
        // The same op without the flag decodes: the three refusals above are about their one flaw.
        #expect(throws: Never.self) { try ChangeSetCodec.decode(ChangeSetCodecTests.oneOp([0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02])) }
    }

    @Test func aHugeDeclaredCountIsRefusedBeforeAllocating() {
        // schema 1, string_base 0, then a string count of 2^62: refused, not allocated.
        #expect(throws: WireError.truncated(field: "string table count")) {
            try ChangeSetCodec.decode([0x01, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40])
        }
    }

    @Test func fieldsAddedByLaterVersionsAreIgnored() throws {
        let hello = Message.hello(node: "xihu", role: .store, versions: [2], schemaVersion: 1, nonce: Array(repeating: 3, count: 32))
        var frame = hello.frame()
        frame.payload += [0x07, 0x01, 0x02]          // a future field
        #expect(try Message(frame: Frame.decode(frame.encoded()).decodedFrame!) == hello)
        #expect(Message.isIgnorable(type: 0x80) && !Message.isIgnorable(type: 0x7f))
    }

    /// Sender and receiver dictionaries stay equal batch after batch, through the point where the
    /// dictionary would overflow (the sender then starts afresh with string_base 0), and a change set
    /// that fails to decode changes nothing.
    @Test func dictionariesStayInStepPastTheirLimits() throws {
        var sender = StringDictionary(), receiver = StringDictionary()
        var restarts = 0
        for batch in 0..<40 {   // 40 × 500 fresh ids: well over the 16,384-string limit
            let ops = (0..<500).map { i in
                Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000 + UInt64(batch * 500 + i), logical: 0), node: "xihu"),
                   seq: UInt64(batch * 500 + i + 1), role: .store, author: "chenjing",
                   body: .add(Target(.customerTag, "wm_\(batch)_\(i)", "et_tea"), removes: []))
            }
            let before = sender.count
            let bytes = ChangeSetCodec.encode(ChangeSet(ops: ops), dictionary: &sender)
            if sender.count < before { restarts += 1 }
            var r = PayloadReader(bytes)
            #expect(try ChangeSetCodec.decode(from: &r, dictionary: &receiver) == ChangeSet(ops: ops))
            #expect(sender == receiver, "batch \(batch)")
            #expect(sender.count <= StringDictionary.maxEntries && sender.byteCount <= StringDictionary.maxBytes)
        }
        #expect(restarts >= 1)
        // A truncated change set is refused and leaves the dictionary as it was.
        let held = receiver
        var bytes = ChangeSetCodec.encode(ChangeSet(ops: { var rng = SeededRandom(seed: 3); return ChangeSetCodecTests.randomOps(&rng, count: 5) }()), dictionary: &sender)
        bytes.removeLast()
        var r = PayloadReader(bytes)
        #expect(throws: WireError.self) { try ChangeSetCodec.decode(from: &r, dictionary: &receiver) }
        #expect(receiver == held)
    }

    /// Customer ids as WeCom issues them: a corp-specific prefix, 21 random characters, "A" (32 in
    /// all); or, for `length` 8, "wm" and six digits.
    static func customerIDs(_ count: Int, length: Int, _ rng: inout SeededRandom) -> [String] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        return (0..<count).map { n in
            length == 8 ? "wm" + String(format: "%06d", n)
                : "wmQm7wCAAA" + String((0..<21).map { _ in alphabet.randomElement(using: &rng)! }) + "A"
        }
    }

    /// A fast clerk's tagging: `count` tag adds/removes over 2,000 customers (some in an exclusive
    /// group, removing the previous level), edits 0–3 s apart, continuing from `state`.
    static func clerkOps(_ count: Int, customers: [String], _ rng: inout SeededRandom,
                         state: inout (clock: HLC, seq: UInt64, lastAdd: [String: Stamp])) -> [Op] {
        let clerks = ["chenjing", "liuyang", "zhoumin"]
        let tags = ["et_tea", "et_bakery", "et_coffee", "et_silver", "et_gold", "et_platinum", "et_1111", "et_vip"]
        let level = ["et_silver", "et_gold", "et_platinum"]
        var ops: [Op] = []
        for i in 0..<count {
            let customer = customers.randomElement(using: &rng)!
            let tag = tags.randomElement(using: &rng)!
            state.clock = HLC(millis: state.clock.millis + UInt64.random(in: 0...3000, using: &rng), logical: 0)
            state.seq += 1
            let stamp = Stamp(hlc: state.clock, node: "xihu")
            let key = customer + tag
            let body: OpBody
            if let prev = state.lastAdd[key], Int.random(in: 0..<4, using: &rng) == 0 {
                body = .remove(Target(.customerTag, customer, tag), removes: [prev])
                state.lastAdd[key] = nil
            } else {
                let removes = level.contains(tag) ? level.filter { $0 != tag }.compactMap { state.lastAdd[customer + $0] } : []
                body = .add(Target(.customerTag, customer, tag), removes: removes)
                state.lastAdd[key] = stamp
            }
            ops.append(Op(stamp: stamp, seq: state.seq, role: .store, author: clerks[(i / 50) % 3], body: body))
        }
        return ops
    }

    static func jsonLinesSize(_ ops: [Op]) throws -> Int {
        try ops.reduce(0) { total, op in
            var o: [String: Any] = ["origin": op.origin, "seq": op.seq, "hlc": op.hlc.raw, "role": "\(op.role)", "author": op.author]
            if case let .add(t, removes) = op.body, true { o["customer"] = t.id; o["tag"] = t.sub; o["removes"] = removes.map { ["hlc": $0.hlc.raw, "node": $0.node] } }
            if case let .remove(t, removes) = op.body { o["customer"] = t.id; o["tag"] = t.sub; o["removes"] = removes.map { ["hlc": $0.hlc.raw, "node": $0.node] } }
            o["op"] = op.body.kindName; o["entity"] = op.body.target.entity.name
            return total + (try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])).count + 1
        }
    }

    /// The wire size of a clerk's tagging (10,000 tag ops over 2,000 customers), three ways:
    /// - *cold*: one batch on a fresh connection, which pays for every id the first time it names it;
    /// - *live*: the same ops pushed 50 at a time on one connection (the dictionary carries ids over);
    /// - *warm*: the next 10,000 ops on a connection that has carried these customers before.
    /// With short ids and with WeCom-length ones. The design's targets are ≤ 8 B/op and ≤ 1/10 of
    /// JSON; a first mention of a 32-character id costs its 33 bytes, so only the warm figure can
    /// meet 8 B/op with WeCom ids (see docs/BENCHMARKS.md).
    @Test(arguments: [8, 32])
    func tagOpsAreCompact(idLength: Int) throws {
        var rng = SeededRandom(seed: 7)
        let customers = ChangeSetCodecTests.customerIDs(2000, length: idLength, &rng)
        var state = (clock: HLC(millis: 1_764_000_000_000, logical: 0), seq: UInt64(0), lastAdd: [String: Stamp]())
        let day1 = ChangeSetCodecTests.clerkOps(10_000, customers: customers, &rng, state: &state)
        let day2 = ChangeSetCodecTests.clerkOps(10_000, customers: customers, &rng, state: &state)

        let cold = ChangeSetCodec.encode(ChangeSet(ops: day1)).count
        var live = 0, sender = StringDictionary(), receiver = StringDictionary()
        for start in stride(from: 0, to: day1.count, by: 50) {
            let batch = ChangeSet(ops: Array(day1[start..<min(start + 50, day1.count)]))
            let bytes = ChangeSetCodec.encode(batch, dictionary: &sender)
            var r = PayloadReader(bytes)
            #expect(try ChangeSetCodec.decode(from: &r, dictionary: &receiver) == batch)
            live += bytes.count
        }
        let warmBytes = ChangeSetCodec.encode(ChangeSet(ops: day2), dictionary: &sender)
        var r = PayloadReader(warmBytes)
        #expect(try ChangeSetCodec.decode(from: &r, dictionary: &receiver) == ChangeSet(ops: day2))
        #expect(sender == receiver)

        let json = try ChangeSetCodecTests.jsonLinesSize(day1)
        func perOp(_ bytes: Int) -> Double { Double(bytes) / Double(day1.count) }
        func f(_ x: Double) -> String { String(format: "%.2f", x) }
        print("tag ops, \(idLength)-char ids, 10000 ops: cold \(f(perOp(cold))) B/op, live (50 per push) \(f(perOp(live))) B/op, warm \(f(perOp(warmBytes.count))) B/op; JSON \(f(perOp(json))) B/op = \(f(Double(json) / Double(cold)))× cold")
        #expect(perOp(warmBytes.count) <= 8.0)
        #expect(perOp(cold) <= (idLength == 8 ? 8.0 : 11.5), "regression: \(perOp(cold)) B/op")
        #expect(Double(json) / Double(cold) >= 10.0)
    }
}

@Suite struct StringIdentityTests {
    /// Found by the fuzzer (tools/fuzz/crashes/changeset-string-normalization.bin): NFC and NFD
    /// spellings are equal Swift strings but different bytes; the string table must keep both.
    @Test func canonicallyEquivalentStringsStayDistinctOnTheWire() throws {
        let s = Stamp(hlc: HLC(millis: 1_764_000_000_000, logical: 0), node: "n")
        let cs = ChangeSet(ops: [
            Op(stamp: s, seq: 1, role: .hq, author: "a", body: .write(Target(.customer, "c"), field: "name", value: .text("caf\u{e9}"), overwrites: [])),
            Op(stamp: Stamp(hlc: HLC(raw: s.hlc.raw + 1), node: "n"), seq: 2, role: .hq, author: "a",
               body: .write(Target(.customer, "c"), field: "name", value: .text("cafe\u{301}"), overwrites: [])),
        ])
        let decoded = try ChangeSetCodec.decode(ChangeSetCodec.encode(cs))
        let names = decoded.ops.compactMap { op -> [UInt8]? in
            if case let .write(_, _, .text(t), _) = op.body { return Array(t.utf8) }
            return nil
        }
        #expect(names == [Array("caf\u{e9}".utf8), Array("cafe\u{301}".utf8)])
    }

    /// Also found by the fuzzer: the "same origin" and "same author" flags must compare bytes too.
    @Test func canonicallyEquivalentOriginsAndAuthorsStayDistinct() throws {
        let nfc = "caf\u{e9}", nfd = "cafe\u{301}"
        let cs = ChangeSet(ops: [
            Op(stamp: Stamp(hlc: HLC(raw: 1 << 16), node: nfc), seq: 1, role: .hq, author: nfc, body: .points(customerID: "c", delta: 1)),
            Op(stamp: Stamp(hlc: HLC(raw: 2 << 16), node: nfd), seq: 2, role: .hq, author: nfd, body: .points(customerID: "c", delta: 1)),
        ])
        let decoded = try ChangeSetCodec.decode(ChangeSetCodec.encode(cs))
        #expect(decoded.ops.map { Array($0.origin.utf8) } == [Array(nfc.utf8), Array(nfd.utf8)])
        #expect(decoded.ops.map { Array($0.author.utf8) } == [Array(nfc.utf8), Array(nfd.utf8)])
    }
}
