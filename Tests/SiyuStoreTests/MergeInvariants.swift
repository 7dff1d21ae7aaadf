import Testing
import SiyuCore
import SiyuStore

/// Checks of the merge's outcome that the property test runs on a converged replica, each stated
/// from the ops and the generator's journal rather than from the merge code.
enum MergeInvariants {
    /// An order paid once holds exactly the lines its payer held when it paid: line edits the payer
    /// had not seen — concurrent, made after, or held back by a gap — are not applied. (Orders paid
    /// concurrently by two replicas hold the merge of both views, which has no simpler statement;
    /// they are skipped.) Returns how many orders were checked.
    static func paidOrdersHoldWhatTheirPayerSaw(_ r: Replica, journal: EditJournal, seed: UInt64) throws -> Int {
        var checked = 0
        for (order, payments) in journal.paidLines.sorted(by: { $0.key < $1.key }) where payments.count == 1 {
            let lines = try r.rows(of: .orderLines, where: "order_id", equals: order)
            #expect(lines == payments[0], "seed \(seed): order \(order) holds \(lines), its payer saw \(payments[0])")
            checked += 1
        }
        return checked
    }

    /// A closed field or exclusive-group conflict whose latest resolution is still what is shown
    /// records that resolution, and its state says what is shown: acknowledged when the shown value
    /// is the entry's winner, overridden otherwise. A resolution of an entry is a write (or an add
    /// in the group) that named both of its sides: one that saw the loser but not the winner did not
    /// resolve that conflict. Returns how many entries were checked.
    static func closedConflictsAgreeWithTheValueShown(_ r: Replica, seed: UInt64) throws -> Int {
        var opsByInstance: [InstanceRef: [Op]] = [:]
        for op in try r.changeSet(since: VersionVector()).ops { opsByInstance[op.instance, default: []].append(op) }
        var groupOfTag: [String: String] = [:]
        for row in try r.rows(of: .tags) {
            if let tag = row["tag_id"]?.textValue, let group = row["group_id"]?.textValue { groupOfTag[tag] = group }
        }
        var checked = 0
        for entry in try r.conflicts() where entry.state != .open {
            let ops = opsByInstance[entry.instance] ?? []
            let state = try r.state(of: entry.instance)
            switch entry.rule {
            case .lastWriterWins:
                let resolvers = ops.filter {
                    if case let .write(t, f, _, over) = $0.body {
                        return t == entry.target && f == entry.field && over.contains(entry.loser.stamp)
                            && entry.winner.map { over.contains($0.stamp) } == true
                    }
                    return false
                }
                guard let latest = resolvers.max(by: { $0.stamp < $1.stamp }),
                      let shown = state.registers[FieldKey(entry.target, entry.field)]?.winner,
                      shown.stamp == latest.stamp else { continue }
                #expect(entry.closedBy?.stamp == latest.stamp, "seed \(seed): \(entry.id) is closed by \(String(describing: entry.closedBy?.stamp)), not by the latest resolution \(latest.stamp)")
                #expect((entry.state == .acknowledged) == (shown.value == entry.winner?.value),
                        "seed \(seed): \(entry.id) is \(entry.state) but shows \(shown.value) (winner \(String(describing: entry.winner?.value)))")
                checked += 1
            case .exclusiveTagGroup:
                guard let group = groupOfTag[entry.target.sub] else { continue }
                let resolvers = ops.filter {
                    guard case let .add(t, removes) = $0.body, t.entity == .customerTag else { return false }
                    return removes.contains(entry.loser.stamp) && entry.winner.map { removes.contains($0.stamp) } == true
                }
                let shownTags = try r.rows(of: .customerTags, where: "customer_id", equals: entry.target.id)
                    .compactMap { $0["tag_id"]?.textValue }.filter { groupOfTag[$0] == group }
                guard let latest = resolvers.max(by: { $0.stamp < $1.stamp }), shownTags.count == 1,
                      let shown = state.elements[Target(.customerTag, entry.target.id, shownTags[0])]?.latest,
                      shown.stamp == latest.stamp else { continue }
                #expect(entry.closedBy?.stamp == latest.stamp, "seed \(seed): \(entry.id) is closed by \(String(describing: entry.closedBy?.stamp)), not by the latest resolution \(latest.stamp)")
                #expect((entry.state == .acknowledged) == (.text(shownTags[0]) == entry.winner?.value),
                        "seed \(seed): \(entry.id) is \(entry.state) but shows \(shownTags[0]) (winner \(String(describing: entry.winner?.value)))")
                checked += 1
            default:
                continue
            }
        }
        return checked
    }
}
