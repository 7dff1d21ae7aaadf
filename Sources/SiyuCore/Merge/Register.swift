/// One write of a last-writer-wins field.
public struct RegisterWrite: Hashable, Sendable {
    public var stamp: Stamp
    public var author: String
    public var value: Value
    public var overwrites: [Stamp]

    public init(stamp: Stamp, author: String, value: Value, overwrites: [Stamp]) {
        self.stamp = stamp
        self.author = author
        self.value = value
        self.overwrites = overwrites
    }

    var side: ConflictSide { ConflictSide(stamp: stamp, author: author, value: value) }
}

/// The merged state of one LWW field, computed from the set of its writes alone.
///
/// - `heads`: writes no other write overwrote — what a new local write must name.
/// - `winner`: the greatest head by (hlc, node); its value is the field's value.
/// - conflicts: every other head with a different value is an open concurrent loser. A write that
///   names two or more heads resolved a conflict its author saw: the sides it named, except the
///   greatest, are closed losers — acknowledged if it kept the winning value, overridden otherwise.
///   A causally later overwrite of a single head is not a conflict.
public struct RegisterState: Sendable {
    public let heads: [RegisterWrite]
    public let winner: RegisterWrite?

    public init(writes: [RegisterWrite]) {
        var named = Set<Stamp>()
        for w in writes { named.formUnion(w.overwrites) }
        var seen = Set<Stamp>()
        var heads: [RegisterWrite] = []
        for w in writes where !named.contains(w.stamp) && seen.insert(w.stamp).inserted {
            heads.append(w)
        }
        heads.sort { $0.stamp < $1.stamp }
        self.heads = heads
        self.winner = heads.last
        self.writes = writes
    }

    private let writes: [RegisterWrite]

    public var value: Value { winner?.value ?? .null }
    public var headStamps: [Stamp] { heads.map(\.stamp) }

    /// The conflict entries of this field.
    public func conflicts(target: Target, field: String) -> [ConflictEntry] {
        var entries: [String: ConflictEntry] = [:]
        if let winner {
            for loser in heads.dropLast() where loser.value != winner.value {
                let e = ConflictEntry(rule: .lastWriterWins, target: target, field: field,
                                      winner: winner.side, loser: loser.side)
                entries[e.id] = e
            }
        }
        // Closed conflicts: writes that resolved two or more sides.
        let resolvers = writes.filter { $0.overwrites.count >= 2 }
        guard !resolvers.isEmpty else { return entries.values.sorted { $0.id < $1.id } }
        var byStamp: [Stamp: RegisterWrite] = [:]
        for w in writes { byStamp[w.stamp] = w }
        for resolver in resolvers.sorted(by: { $0.stamp < $1.stamp }) {
            let sides = resolver.overwrites.compactMap { byStamp[$0] }.sorted { $0.stamp < $1.stamp }
            guard let top = sides.last, sides.count >= 2 else { continue }
            let state: ConflictState = resolver.value == top.value ? .acknowledged : .overridden
            for loser in sides.dropLast() where loser.value != top.value {
                // A later resolver of the same loser replaces an earlier one (sorted ascending).
                let e = ConflictEntry(rule: .lastWriterWins, target: target, field: field, winner: top.side,
                                      loser: loser.side, state: state, closedBy: resolver.side)
                entries[e.id] = e
            }
        }
        return entries.values.sorted { $0.id < $1.id }
    }
}

/// An add to an add-wins set.
public struct ElementAdd: Hashable, Sendable {
    public var stamp: Stamp
    public var author: String
}

/// The merged state of one element of an add-wins set: present while some add has not been
/// removed. A remove removes exactly the adds it names, so a concurrent add survives it and a
/// re-add after a remove works.
public struct ElementState: Sendable {
    public let adds: [ElementAdd]
    public let liveAdds: [ElementAdd]

    public init(adds: [ElementAdd], removed: Set<Stamp>) {
        let sorted = adds.sorted { $0.stamp < $1.stamp }
        self.adds = sorted
        self.liveAdds = sorted.filter { !removed.contains($0.stamp) }
    }

    public var isPresent: Bool { !liveAdds.isEmpty }
    /// The latest live add: who applied the element, and when.
    public var latest: ElementAdd? { liveAdds.last }
    /// The earliest live add: when the element joined.
    public var earliest: ElementAdd? { liveAdds.first }
    public var liveStamps: [Stamp] { liveAdds.map(\.stamp) }
}
