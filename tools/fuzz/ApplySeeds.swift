// The seed corpus of the apply target: issue 11's hostile change sets, built through the public API
// (`Op`, `ChangeSet`) and encoded with `ChangeSetCodec`, as a peer would send them.
//
//     .build-fuzz-apply/fuzz-apply --write-seeds tools/fuzz/apply-seeds      (run.sh apply does this)
//
// For each seed NAME it writes NAME.changeset (the encoded change set: a fuzz input, and what a hub
// decodes) and, when its ops take at most `opsFileLimit` bytes, NAME.ops: the same ops in SiyuCore's
// op-log encoding (`OpCoding` version 1, each preceded by its length as 4 bytes little-endian). The
// .ops files are what `swift test` replays (Tests/SiyuStoreTests/ApplyFuzzReplayTests.swift): the
// SiyuStoreTests target does not depend on SiyuWire, so it cannot decode a .changeset. Before it
// writes anything, the generator decodes every .changeset again and checks that it gives exactly
// (byte for byte) the ops of its .ops, so the two cannot drift apart.
//
// Every op's clock is relative to `baseMillis` + 1 s, the fuzz harness's wall time for the first
// input after a reset (and the replay test's); the receiving node is "hq" (HQ) or "xihu" (a store).

import Foundation
import SiyuCore
import SiyuWire

enum ApplySeeds {
    /// Seeds whose .ops file would be larger are replayed by the fuzz binary only.
    static let opsFileLimit = 512 * 1024

    static let now = baseMillis + 1000

    static func op(_ body: OpBody, node: NodeID = "jingan", seq: UInt64 = 1, role: Role = .store,
                   author: String = "chenjing", millis: UInt64 = now - 500, logical: UInt16 = 0) -> Op {
        Op(stamp: Stamp(hlc: HLC(millis: millis, logical: logical), node: node), seq: seq, role: role, author: author, body: body)
    }

    static func name(_ customer: String, _ text: String, node: NodeID = "jingan", seq: UInt64 = 1,
                     author: String = "chenjing", millis: UInt64 = now - 500, logical: UInt16 = 0) -> Op {
        op(.write(Target(.customer, customer), field: "name", value: .text(text), overwrites: []),
           node: node, seq: seq, author: author, millis: millis, logical: logical)
    }

    /// Every seed: a file name and its change set. The comment of each names issue 11's table row.
    /// HQ's ops come from "hq2": a replica refuses ops of its own origin that it did not issue, and
    /// the receiver is "hq" half of the time.
    static func all() -> [(String, ChangeSet)] {
        var out: [(String, ChangeSet)] = []
        func add(_ n: String, _ ops: [Op]) { out.append((n, ChangeSet(ops: ops))) }

        // A benign set, to start from: a customer, a tag library, a tag on the customer, an order.
        let tg = op(.write(Target(.tagGroup, "tg1"), field: "name", value: .text("等级"), overwrites: []), node: "hq2", role: .hq)
        let t = op(.write(Target(.tag, "t1"), field: "group_id", value: .text("tg1"), overwrites: []), node: "hq2", seq: 2, role: .hq, logical: 1)
        add("benign-customer-tag-order", [
            tg, t,
            name("c1", "马一鸣", seq: 1),
            op(.add(Target(.customerTag, "c1", "t1"), removes: []), seq: 2, logical: 1),
            op(.write(Target(.order, "o1"), field: "customer_id", value: .text("c1"), overwrites: []), seq: 3, logical: 2),
            op(.write(Target(.orderLine, "o1", "l1"), field: "qty", value: .int(2), overwrites: []), seq: 4, logical: 3),
            op(.points(customerID: "c1", delta: 50), seq: 5, logical: 4),
        ])

        // An op with seq ≥ 2^63 (and 2^64 - 1), beside an honest op.
        add("seq-2-pow-63", [name("c2", "B"), name("c3", "C", seq: 1 << 63, logical: 1)])
        add("seq-uint64-max", [name("c3", "C", seq: .max)])
        // A points op with delta Int64.min (HQ may redeem).
        add("points-delta-int64-min", [op(.points(customerID: "c1", delta: .min), node: "hq2", role: .hq)])
        // One op claiming the receiver's own origin with seq Int64.max (one seed per receiver).
        for own in ["hq", "xihu"] {
            add("own-origin-seq-int64-max-\(own)", [op(.points(customerID: "c1", delta: 1), node: own, seq: UInt64(Int64.max),
                                                       role: own == "hq" ? .hq : .store, logical: 9)])
        }
        // Two store awards of Int64.max; and two at the bound, which apply and add up.
        add("two-awards-int64-max", [op(.points(customerID: "c1", delta: .max)), op(.points(customerID: "c1", delta: .max), node: "binjiang")])
        add("two-awards-at-bound", [op(.points(customerID: "c1", delta: Op.maxPointsDelta)),
                                    op(.points(customerID: "c1", delta: Op.maxPointsDelta), node: "binjiang")])
        // A remove listing stamps of one clock from distinct nodes: the cap (1,024) applies, one more
        // is refused; a deletion naming the most observed stamps allowed (16,384), and one more.
        let sameClock = { (n: Int) in (0..<n).map { Stamp(hlc: HLC(millis: now - 2000, logical: 0), node: "n\($0)") } }
        add("remove-1024-same-clock-stamps", [op(.remove(Target(.customerTag, "c1", "t1"), removes: sameClock(Op.maxNamedStamps)))])
        add("remove-1025-same-clock-stamps", [op(.remove(Target(.customerTag, "c1", "t1"), removes: sameClock(Op.maxNamedStamps + 1)))])
        add("delete-16384-same-clock-stamps", [op(.deleteCustomer(customerID: "c2", observed: sameClock(Op.maxObservedStamps)))])
        add("delete-16385-same-clock-stamps", [op(.deleteCustomer(customerID: "c2", observed: sameClock(Op.maxObservedStamps + 1)))])
        // 60,000 writes from 60,000 origins with one clock.
        add("60k-origins-one-clock", (0..<60_000).map { name("c1", "v\($0 % 10)", node: "n\($0)") })
        // "x" + 100,000 combining accents as a customer id, and as a name.
        let accents = "x" + String(repeating: "\u{0301}", count: 100_000)
        add("combining-accents-id", [name(accents, "A")])
        add("combining-accents-name", [name("c9", accents)])
        // A 100,000-byte author reused by 200 ops.
        let author = String(repeating: "a", count: 100_000)
        add("author-100kb-x200", (1...200).map { op(.points(customerID: "c1", delta: 1), seq: UInt64($0), author: author, logical: UInt16($0)) })
        // Ids with U+202E, U+200B, U+FEFF, C1 controls, a lone space; an author ESC[2J…; an origin with U+202E.
        for (n, id) in [("rlo", "wm\u{202E}gnp"), ("zwsp", "wm\u{200B}x"), ("bom", "\u{FEFF}wm"), ("c1-nel", "wm\u{0085}x"),
                        ("c1-csi", "wm\u{009B}2J"), ("lone-space", " ")] {
            add("id-\(n)", [name(id, "A")])
        }
        add("author-escape-sequence", [op(.points(customerID: "c1", delta: 1), author: "\u{1B}[2J\u{1B}[H")])
        add("origin-rlo", [op(.points(customerID: "c1", delta: 1), node: "store\u{202E}")])
        // One op stamped 299.9 s ahead (under the 5-minute limit), beside an honest op; and 300.1 s.
        add("clock-299.9s-ahead", [name("c1", "B"), name("c4", "D", seq: 2, millis: now + 299_900)])
        add("clock-300.1s-ahead", [name("c1", "B"), name("c4", "D", seq: 2, millis: now + 300_100)])
        // A tag-library write with many customers holding the tag: 20,000 holders (100k in the issue,
        // scaled to stay under -max_len), their adds and the write in one set.
        let holders = (0..<20_000).map { i in
            op(.add(Target(.customerTag, "h\(i)", "t1"), removes: []), seq: UInt64(i + 1), millis: now - 3000, logical: UInt16(i % 60_000))
        }
        let rename = op(.write(Target(.tag, "t1"), field: "name", value: .text("VIP"), overwrites: []), node: "hq2", seq: 3, role: .hq, logical: 2)
        add("tag-write-20k-holders", [tg, t] + holders + [rename])
        return out
    }

    static func opsFile(_ cs: ChangeSet) -> [UInt8] {
        var out: [UInt8] = []
        for op in cs.ops {
            let e = OpCoding.encode(op)
            withUnsafeBytes(of: UInt32(e.count).littleEndian) { out += $0 }
            out += e
        }
        return out
    }

    static func write(to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (n, cs) in all() {
            let encoded = ChangeSetCodec.encode(cs)
            let decoded = try ChangeSetCodec.decode(encoded)
            guard decoded.ops.map(OpCoding.encode) == cs.ops.map(OpCoding.encode), decoded.schemaVersion == cs.schemaVersion else {
                throw CoreError.malformed(what: "seed \(n): the change set does not decode to its ops")
            }
            try Data(encoded).write(to: URL(fileURLWithPath: "\(dir)/\(n).changeset"))
            let ops = opsFile(cs)
            let opsPath = "\(dir)/\(n).ops"
            if ops.count <= opsFileLimit {
                try Data(ops).write(to: URL(fileURLWithPath: opsPath))
            } else {
                try? FileManager.default.removeItem(atPath: opsPath)
            }
            print("\(n): \(cs.ops.count) ops, \(encoded.count) bytes encoded" + (ops.count <= opsFileLimit ? ", .ops \(ops.count) bytes" : ", no .ops (\(ops.count) bytes)"))
        }
    }
}
