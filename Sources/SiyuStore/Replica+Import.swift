import SiyuCore
import SiyuSQLite

/// A follow relation as an import states it: its fields and the tags the staff member holds on it.
public struct ImportedRelation: Sendable, Equatable {
    public var userid: String
    public var fields: [String: Value]
    public var tags: [String]

    public init(userid: String, fields: [String: Value], tags: [String]) {
        self.userid = userid
        self.fields = fields
        self.tags = tags
    }
}

/// A group member as an import states it.
public struct ImportedMember: Sendable, Equatable {
    public var id: String
    public var fields: [String: Value]

    public init(id: String, fields: [String: Value]) {
        self.id = id
        self.fields = fields
    }
}

/// What one import edit did.
public struct ImportResult: Sendable, Equatable {
    /// Ops written (0: the replica already held everything the import states).
    public var ops = 0
    /// Tags left out, with why ("unknown": not in the tag library; "deleted": deleted by HQ).
    public var skippedTags: [(tag: String, reason: String)] = []
    /// The customer is deleted in Siyu: nothing was written for it.
    public var skippedDeleted = false

    public init() {}

    public static func == (a: ImportResult, b: ImportResult) -> Bool {
        a.ops == b.ops && a.skippedDeleted == b.skippedDeleted && a.skippedTags.map(\.tag) == b.skippedTags.map(\.tag)
    }
}

/// Edits for importing records kept elsewhere (the HQ CRM, WeCom): one edit per record, each op
/// written by whoever the record says did it (a follow relation's tags by its staff member).
///
/// Guarantees: like every edit, each call is one transaction (or one step of `inOneTransaction`)
/// that writes only what differs from the merged state: importing the same record twice writes
/// nothing the second time. A tag a relation holds is added once per staff member holding it
/// (so the customer tag keeps every staff member who applied it), never removing another
/// member's add: two members holding different tags of an exclusive group is a conflict the
/// merge logs, not something an import decides. Nothing here removes a tag.
extension Replica {

    /// Creates or updates a customer, its follow relations and their tags. Customer fields are
    /// written by `staff`; a relation's fields and tags by its `userid`.
    public func importCustomer(_ id: String, fields: [String: Value], relations: [ImportedRelation],
                               fieldsIfUnset: [String: Value] = [:], by staff: String = "") throws -> ImportResult {
        var result = ImportResult()
        let catalog = try ReplicaError.wrap("reading the tag library") { try self.catalog() }
        result.ops = try authoredEdit(InstanceRef(.customer, id)) { state in
            try self.customerImport(id, fields: fields, relations: relations, fieldsIfUnset: fieldsIfUnset, by: staff,
                                    in: state, catalog: catalog, result: &result)
        }
        return result
    }

    /// What importing a customer writes, given its merged state: the ops with their authors.
    /// `fieldsIfUnset` are written only where the customer's field is empty (and `fields` does not
    /// set it): what an import infers (the owner from the first follow relation) never overwrites
    /// what HQ or a store decided.
    private func customerImport(_ id: String, fields: [String: Value], relations: [ImportedRelation],
                                fieldsIfUnset: [String: Value] = [:], by staff: String,
                                in state: InstanceState, catalog: TagCatalog, result: inout ImportResult) throws -> [(OpBody, String)] {
        if state.isDeleted { result.skippedDeleted = true; return [] }
        var fields = fields
        for (field, value) in fieldsIfUnset where fields[field] == nil && state.value(Target(.customer, id), field) == .null {
            fields[field] = value
        }
        if !state.exists && (fields["name"] ?? .null) == .null { fields["name"] = .text(id) }
        var out = try writes(Target(.customer, id), fields, in: state).map { ($0, staff) }
        for r in relations {
            out += try writes(Target(.followRelation, id, r.userid), r.fields, in: state).map { ($0, r.userid) }
            var added: Set<String> = []
            for tag in r.tags where added.insert(tag).inserted {
                guard let info = catalog.info(forTag: tag) else { result.skippedTags.append((tag, "unknown")); continue }
                if info.isDeleted { result.skippedTags.append((tag, "deleted")); continue }
                let element = Target(.customerTag, id, tag)
                if state.elements[element]?.liveAdds.contains(where: { $0.author == r.userid }) == true { continue }
                out.append((.add(element, removes: []), r.userid))
            }
        }
        return out
    }

    // MARK: Many customers at the speed of a bulk load

    /// Customer imports built in memory and not yet stored (`stageCustomerImport`).
    struct StagedImports {
        /// The staged ops, in the order they were numbered.
        var ops: [Op] = []
        /// Per staged customer: its merged state before this stage, and the ops staged for it
        /// (added to that state only if the customer is imported again before the commit).
        var customers: [InstanceRef: (state: InstanceState, ops: [Op])] = [:]
    }

    /// How many customers are staged before they are committed on their own.
    public static let stagedImportLimit = 2_000

    /// Imports a customer as `importCustomer` does — the same ops, the same result — but, inside
    /// `inOneTransaction`, builds them in memory and stores them later, with the others staged:
    /// when `stagedImportLimit` customers are staged, before any other edit or apply of the
    /// transaction, on `commitStagedImports`, and when the transaction ends. The customers new to
    /// the replica among them are stored and merged as a bulk load does (op rows several per
    /// statement, merged on a second thread), so a large import runs at bulk-load speed.
    ///
    /// Guarantees: what is stored equals importing the customers one by one in the same order
    /// (a customer staged twice is built the second time from its state with the first ops
    /// added). Until they are committed, staged customers are not seen by reads (`rows(of:)`,
    /// `state(of:)`). A failure fails the whole transaction. Outside `inOneTransaction` this is
    /// exactly `importCustomer`.
    public func stageCustomerImport(_ id: String, fields: [String: Value], relations: [ImportedRelation],
                                    fieldsIfUnset: [String: Value] = [:], by staff: String = "") throws -> ImportResult {
        guard bulk != nil else { return try importCustomer(id, fields: fields, relations: relations, fieldsIfUnset: fieldsIfUnset, by: staff) }
        if let failure = bulk?.failure { throw failure }
        if (staged?.customers.count ?? 0) >= Replica.stagedImportLimit { try commitStagedImports() }
        let ref = InstanceRef(.customer, id)
        var result = ImportResult()
        do {
            try ReplicaError.wrap("importing \(ref)") {
                let catalog = try catalog()
                var stage = staged ?? StagedImports()
                staged = nil   // held here while it changes (no copy of its arrays)
                defer { staged = stage }
                var state: InstanceState
                let entry = stage.customers.removeValue(forKey: ref)
                let wasStaged = entry != nil
                if let entry {
                    state = entry.state
                    if !entry.ops.isEmpty && !state.add(entry.ops, catalog: catalog) {
                        state = InstanceState.merge(ref, ops: try loadOps(ref) + entry.ops, catalog: catalog)
                    }
                } else {
                    state = try takeInstance(ref)
                }
                let bodies = try customerImport(id, fields: fields, relations: relations, fieldsIfUnset: fieldsIfUnset, by: staff,
                                                in: state, catalog: catalog, result: &result)
                let ops = try issue(bodies)
                result.ops = ops.count
                // Nothing to store: the state is dropped (a large import would only churn the
                // cache that serves local edits; the next read merges it again).
                if ops.isEmpty && !wasStaged { return }
                stage.ops += ops
                stage.customers[ref] = (state, ops)
            }
        } catch {
            if bulk?.failure == nil { bulk?.failure = error }
            throw error
        }
        return result
    }

    /// Stores the staged customer imports (`stageCustomerImport`) now, as one step of the
    /// transaction. Does nothing when none are staged.
    public func commitStagedImports() throws {
        guard let stage = staged else { return }
        staged = nil
        guard !stage.ops.isEmpty else { return }
        do {
            try ReplicaError.wrap("importing customers") {
                try transaction { _ = try commit(stage.ops, .importBatch) }
            }
        } catch {
            if bulk?.failure == nil { bulk?.failure = error }
            throw error
        }
    }

    /// Sets a group chat's fields and roster. `roster` (when given) is the whole membership:
    /// members not in it are removed. `joining` are added (if absent) with `joinFields`;
    /// `leaving` removed (if present). Refused when the roster would exceed the capacity.
    public func importGroupChat(_ id: String, fields: [String: Value], roster: [ImportedMember]?,
                                joining: [String] = [], joinFields: [String: Value] = [:], leaving: [String] = [],
                                by staff: String = "") throws -> ImportResult {
        var result = ImportResult()
        result.ops = try authoredEdit(InstanceRef(.groupChat, id)) { state in
            var out = try self.writes(Target(.groupChat, id), fields, in: state).map { ($0, staff) }
            var present = Set(state.elements.filter { $0.key.entity == .groupMember && $0.value.isPresent }.map(\.key.sub))
            func add(_ member: String, _ memberFields: [String: Value]) throws {
                let element = Target(.groupMember, id, member)
                if !present.contains(member) {
                    out.append((.add(element, removes: []), staff))
                    present.insert(member)
                }
                out += try self.writes(element, memberFields, in: state).map { ($0, staff) }
            }
            func remove(_ member: String) {
                guard present.remove(member) != nil else { return }
                let element = Target(.groupMember, id, member)
                out.append((.remove(element, removes: Replica.named(state.liveAdds(element))), staff))
            }
            if let roster {
                let wanted = Set(roster.map(\.id))
                for member in present.sorted() where !wanted.contains(member) { remove(member) }
                for m in roster { try add(m.id, m.fields) }
            }
            for member in leaving { remove(member) }
            for member in joining { try add(member, joinFields) }
            let capacity = (fields["capacity"]?.intValue) ?? state.value(Target(.groupChat, id), "capacity").intValue ?? InstanceState.defaultCapacity
            if present.count > capacity {
                throw ReplicaError.invalid("group '\(id)' would have \(present.count) members, more than its capacity (\(capacity))",
                                           "WeCom customer groups hold at most 500; check the payload")
            }
            return out
        }
        return result
    }

    /// Like `edit`, with an author per op. Returns how many ops were written.
    func authoredEdit(_ instance: InstanceRef, _ build: (InstanceState) throws -> [(OpBody, String)]) throws -> Int {
        let saved = (clock, nextSeq)
        var written = 0
        do {
            try ReplicaError.wrap("importing \(instance)") {
                try transaction {
                    let state = try takeInstance(instance)
                    let bodies = try build(state)
                    guard !bodies.isEmpty else { remember(state); return }
                    let ops = try issue(bodies)
                    try commit(ops, .localEdit(consume state))
                    written = ops.count
                }
            }
        } catch {
            (clock, nextSeq) = saved
            forgetCaches()
            throw error
        }
        return written
    }

    // MARK: Bookkeeping of a bridge (not replicated)

    /// A value a bridge to another system keeps in this replica file, outside the replicated data
    /// (for WeCom: each group chat's member version, the op ranges its imports wrote). Nil when
    /// never set. Not part of the digest, never sent to peers. Kept in `bridge_state` (file layout 5).
    public func bridgeValue(_ kind: String, _ key: String) throws -> String? {
        try ReplicaError.wrap("reading bridge state") {
            return try db.cached("SELECT value FROM bridge_state WHERE kind = ? AND key = ?").scalar([.text(kind), .text(key)])?.stringValue
        }
    }

    /// Every (key, value) of one kind of bridge state, in key order.
    public func bridgeValues(_ kind: String) throws -> [(key: String, value: String)] {
        try ReplicaError.wrap("reading bridge state") {
            var out: [(String, String)] = []
            try db.cached("SELECT key, value FROM bridge_state WHERE kind = ? ORDER BY key").query([.text(kind)]) { row in
                out.append((row.text(0) ?? "", row.text(1) ?? ""))
            }
            return out
        }
    }

    /// Sets a bridge value (inside `inOneTransaction`, as part of that transaction).
    public func setBridgeValue(_ kind: String, _ key: String, _ value: String) throws {
        try ReplicaError.wrap("writing bridge state") {
            try transaction {
                try db.cached("INSERT OR REPLACE INTO bridge_state(kind, key, value) VALUES (?, ?, ?)").run([.text(kind), .text(key), .text(value)])
            }
        }
    }

    // MARK: What changed

    /// The instances with ops numbered in (after[origin], through[origin]] for some origin, in
    /// instance order: what changed between two version vectors.
    public func instancesChanged(after: VersionVector, through: VersionVector) throws -> [InstanceRef] {
        try ReplicaError.wrap("finding changed instances") {
            var out = Set<InstanceRef>()
            for (origin, last) in through.entries where last > after[origin] {
                out.formUnion(try opLog.instances(of: origin, after: after[origin], through: last))
            }
            return out.sorted()
        }
    }
}
