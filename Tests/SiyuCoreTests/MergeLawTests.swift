import Testing
@testable import SiyuCore

/// The merge laws at the level of one instance: the merged rows and conflicts depend only on the
/// set of ops — not on their order (commutative), not on duplicates (idempotent), and merging in
/// parts then together equals merging all at once (associative: the result is a function of the union).
@Suite struct MergeLawTests {
    static func randomOps(seed: UInt64) -> [Op] {
        var rng = SeededRandom(seed: seed)
        let nodes = ["hq", "xihu", "jingan"]
        var ops: [Op] = []
        var seq: [String: UInt64] = [:]
        for i in 0..<40 {
            let node = nodes[Int(rng.next() % 3)]
            seq[node, default: 0] += 1
            let stamp = Stamp(hlc: HLC(millis: 1000 + UInt64(i / 3), logical: UInt16(i)), node: node)
            let prior = ops.map(\.stamp)
            func somePrior() -> [Stamp] { prior.isEmpty ? [] : (0..<Int(rng.next() % 3)).map { _ in prior[Int(rng.next() % UInt64(prior.count))] } }
            let body: OpBody
            switch rng.next() % 6 {
            case 0: body = .write(Target(.customer, "c"), field: "name", value: .text("n\(rng.next() % 3)"), overwrites: somePrior())
            case 1: body = .add(Target(.customerTag, "c", ["a", "b"][Int(rng.next() % 2)]), removes: somePrior())
            case 2: body = .remove(Target(.customerTag, "c", ["a", "b"][Int(rng.next() % 2)]), removes: somePrior())
            case 3: body = .points(customerID: "c", delta: Int64(rng.next() % 20) - 9)
            case 4: body = .deleteCustomer(customerID: "c", observed: somePrior())
            default: body = .write(Target(.followRelation, "c", "u"), field: "remark", value: .text("r\(rng.next() % 2)"), overwrites: somePrior())
            }
            ops.append(Op(stamp: stamp, seq: seq[node]!, role: .hq, author: "s", body: body))
        }
        return ops
    }

    static let catalog = TagCatalog(
        tags: ["a": TagDefinition(id: "a", groupID: "g", name: "a", deletedBy: nil),
               "b": TagDefinition(id: "b", groupID: "g", name: "b", deletedBy: nil)],
        groups: ["g": TagGroupDefinition(id: "g", name: "g", exclusive: true, deletedBy: nil)])

    static func fingerprint(_ s: InstanceState) -> String {
        let rows = Table.allCases.compactMap { t in s.rows[t].map { "\(t.rawValue):\($0)" } }.joined(separator: ";")
        return rows + "|" + s.conflicts.map { "\($0.id)/\($0.state)" }.joined(separator: ",")
    }

    @Test(arguments: 0..<200)
    func mergeDependsOnlyOnTheSetOfOps(seed: Int) {
        let ops = MergeLawTests.randomOps(seed: UInt64(seed))
        let ref = InstanceRef(.customer, "c")
        let base = MergeLawTests.fingerprint(InstanceState.merge(ref, ops: ops, catalog: MergeLawTests.catalog))
        var rng = SeededRandom(seed: UInt64(seed) &* 7919)
        var shuffled = ops
        shuffled.shuffle(using: &rng)
        let duplicated = shuffled + ops.prefix(10)
        #expect(MergeLawTests.fingerprint(InstanceState.merge(ref, ops: duplicated, catalog: MergeLawTests.catalog)) == base,
                "seed \(seed): order or duplicates changed the merge")
    }
}
