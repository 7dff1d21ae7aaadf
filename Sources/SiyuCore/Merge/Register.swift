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

/// The merged state of one LWW field, a function of the set of its writes alone.
///
/// - `heads`: writes no other write overwrote — what a new local write must name.
/// - `winner`: the greatest head by (hlc, node); its value is the field's value.
/// - conflicts: every other head with a different value is an open concurrent loser. A write that
///   names two or more writes resolved a conflict its author saw: the sides it named, except the
///   greatest, are closed losers — acknowledged if it kept the winning value, overridden otherwise;
///   of two resolutions of one loser, the later (greater stamp) is recorded. A causally later
///   overwrite of a single head is not a conflict.
///
/// Built by `ingest`ing writes in ascending stamp order, then `finish()`: the cost of a write is
/// independent of how many writes the field already has (no write is revisited), so a replica can
/// keep the state of an instance and add a local edit to it.
public struct RegisterState: Sendable {
    /// Every write of the field, ascending by stamp (they are ingested in stamp order).
    private var writes: [RegisterWrite] = []
    /// The writes no write has named so far.
    private var headsByStamp: [Stamp: RegisterWrite] = [:]
    /// Stamps named by a write that were greater than it (only a faulty peer names a later write):
    /// a write with such a stamp, ingested later, is not a head.
    private var namedAhead: Set<Stamp> = []
    /// Closed entries, by id, from every resolution so far in stamp order (`resolve`).
    private var closedEntries: [String: ConflictEntry] = [:]
    /// Every resolution (a write naming two or more writes), ascending.
    private var resolvers: [RegisterWrite] = []
    /// Whether a resolution named itself or a later write (faulty peers only): then its sides may
    /// arrive after it, and `finish` recomputes the closed entries from every resolution.
    private var hasPendingResolvers = false
    /// The target and field, for conflict entries.
    private let target: Target
    private let field: String

    /// The heads, ascending (refreshed by `finish`).
    public private(set) var heads: [RegisterWrite] = []
    /// The conflict entries of this field, sorted by id (refreshed by `finish`).
    public private(set) var conflicts: [ConflictEntry] = []

    public init(target: Target, field: String) {
        self.target = target
        self.field = field
    }

    /// The state of a field with these writes (any order, duplicates allowed).
    public init(target: Target, field: String, writes: [RegisterWrite]) {
        self.init(target: target, field: field)
        var seen = Set<Stamp>()
        for w in writes.sorted(by: { $0.stamp < $1.stamp }) where seen.insert(w.stamp).inserted { ingest(w) }
        finish()
    }

    public var winner: RegisterWrite? { heads.last }
    public var value: Value { winner?.value ?? .null }
    public var headStamps: [Stamp] { heads.map(\.stamp) }
    /// The greatest stamp ingested.
    var lastStamp: Stamp? { writes.last?.stamp }

    /// Adds a write whose stamp is greater than every write ingested before.
    mutating func ingest(_ w: RegisterWrite) {
        writes.append(w)
        var namesItself = false, namesLater = false
        for s in w.overwrites {
            if s < w.stamp { headsByStamp.removeValue(forKey: s) }
            else if s == w.stamp { namesItself = true }
            else { namedAhead.insert(s); namesLater = true }
        }
        if namedAhead.remove(w.stamp) == nil && !namesItself { headsByStamp[w.stamp] = w }
        guard w.overwrites.count >= 2 else { return }
        resolvers.append(w)
        if namesLater || namesItself { hasPendingResolvers = true }
        if !hasPendingResolvers { resolve(by: w, into: &closedEntries) }   // ascending: the later resolver records
    }

    /// Refreshes `heads` and `conflicts` after ingesting.
    mutating func finish() {
        heads = headsByStamp.values.sorted { $0.stamp < $1.stamp }
        var entries: [String: ConflictEntry] = [:]
        if let winner {
            for loser in heads.dropLast() where loser.value != winner.value {
                let e = ConflictEntry(rule: .lastWriterWins, target: target, field: field,
                                      winner: winner.side, loser: loser.side)
                entries[e.id] = e
            }
        }
        var closed = closedEntries
        if hasPendingResolvers {
            closed = [:]
            for resolver in resolvers { resolve(by: resolver, into: &closed) }
        }
        for (id, e) in closed { entries[id] = e }
        conflicts = entries.values.sorted { $0.id < $1.id }
    }

    /// Records one resolution (resolutions are applied in stamp order, so the latest one that
    /// resolved an entry is what the entry records). Among the sides it named, the greatest is the
    /// winner in its author's view: each other side whose value it did not keep is a closed loser
    /// (acknowledged if the resolution kept the winner's value, overridden otherwise). A side whose
    /// value it did keep lost nothing in this view; if an earlier resolution had closed that side
    /// against a winner this one also named, this one resolved that conflict again and is recorded
    /// on it — acknowledged if it kept that winner's value, overridden otherwise — so the entry
    /// never contradicts the value shown.
    private func resolve(by resolver: RegisterWrite, into entries: inout [String: ConflictEntry]) {
        let sides = resolver.overwrites.compactMap(write(at:)).sorted { $0.stamp < $1.stamp }
        guard let top = sides.last, sides.count >= 2 else { return }
        for side in sides.dropLast() {
            if side.value != top.value {
                let e = ConflictEntry(rule: .lastWriterWins, target: target, field: field, winner: top.side, loser: side.side,
                                      state: resolver.value == top.value ? .acknowledged : .overridden, closedBy: resolver.side)
                entries[e.id] = e
            } else {
                let id = ConflictEntry.makeID(rule: .lastWriterWins, target: target, field: field, loser: side.stamp)
                guard var e = entries[id], let winner = e.winner, resolver.overwrites.contains(winner.stamp) else { continue }
                e.state = resolver.value == winner.value ? .acknowledged : .overridden
                e.closedBy = resolver.side
                entries[id] = e
            }
        }
    }

    /// The write with this stamp (binary search: writes ascend by stamp).
    private func write(at stamp: Stamp) -> RegisterWrite? {
        var lo = 0, hi = writes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if writes[mid].stamp < stamp { lo = mid + 1 } else { hi = mid }
        }
        return lo < writes.count && writes[lo].stamp == stamp ? writes[lo] : nil
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
    /// The adds not removed, ascending by stamp.
    public private(set) var liveAdds: [ElementAdd] = []
    /// The live adds by stamp, while ingesting (sorted into `liveAdds` by `finish`).
    private var live: [Stamp: ElementAdd] = [:]

    init() {}

    /// The state of an element with these adds, of which `removed` were removed.
    public init(adds: [ElementAdd], removed: Set<Stamp>) {
        for a in adds where !removed.contains(a.stamp) { live[a.stamp] = a }
        finish()
    }

    mutating func insert(_ add: ElementAdd) { live[add.stamp] = add }
    mutating func remove(_ stamp: Stamp) { live.removeValue(forKey: stamp) }
    mutating func finish() { liveAdds = live.values.sorted { $0.stamp < $1.stamp } }

    public var isPresent: Bool { !liveAdds.isEmpty }
    /// The latest live add: who applied the element, and when.
    public var latest: ElementAdd? { liveAdds.last }
    /// The earliest live add: when the element joined.
    public var earliest: ElementAdd? { liveAdds.first }
    public var liveStamps: [Stamp] { liveAdds.map(\.stamp) }
}
