import Foundation
import SiyuCore
import SiyuSQLite

/// How a replica is opened.
public struct ReplicaOptions {
    /// The node this replica belongs to; nil to use the identity stored in an existing replica.
    public var node: NodeID?
    public var role: Role
    /// How far ahead of local time a remote clock may be before its change set is refused.
    public var maxClockDriftMillis: UInt64
    /// Wall time in milliseconds since the Unix epoch (injected so tests are deterministic).
    public var wallClock: () -> UInt64
    /// Schema history to migrate with (tests inject extra steps).
    public var migrations: [SchemaMigration]
    /// SQLite's page cache for this replica, in MiB: what the replica keeps of the file in memory.
    /// nil picks by role: 64 for HQ (big merges), 16 for a store (a bootstrap of 100k customers
    /// then stays under 64 MB of memory, at about the same speed).
    public var cacheMegabytes: Int?
    /// Open an existing replica to read only: nothing is created, migrated or written, and no
    /// `-wal`/`-shm` file is made beside a file that is read-only or in a read-only directory
    /// (`ReplicaSchema.readingMode`). Edits then fail with a read-only error.
    public var readOnly = false

    public init(node: NodeID? = nil, role: Role = .store,
                maxClockDriftMillis: UInt64 = HybridClock.defaultMaxDriftMillis,
                wallClock: @escaping () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) },
                migrations: [SchemaMigration] = ReplicaSchema.migrations,
                cacheMegabytes: Int? = nil) {
        self.node = node
        self.role = role
        self.maxClockDriftMillis = maxClockDriftMillis
        self.wallClock = wallClock
        self.migrations = migrations
        self.cacheMegabytes = cacheMegabytes.map { max(1, $0) }
    }
}

/// A node's replica: one SQLite file (WAL mode) holding the plain tables of the data model, the op
/// log (this node's outbox and the history of every field), version vector, cursors and conflicts.
///
/// Guarantees:
/// - every local edit and every applied change set is one SQLite transaction: tables, merge
///   metadata and op log change together or not at all;
/// - the tables and the conflict log are a function of the set of ops held, so replicas holding the
///   same ops have equal `digest()`s whatever the order in which the ops arrived;
/// - an edit or change set that breaks a rule is refused with a `ReplicaError` and writes nothing.
///
/// Not thread-safe: use one `Replica` from one thread at a time.
public final class Replica {
    public let path: String
    public let node: NodeID
    public let role: Role
    /// The store this node serves, as recorded at creation (`create(at:node:role:store:)`); nil
    /// for HQ and for replicas created without one. A store's own edits are checked against the
    /// write rights of this store (`WriteRights`).
    public internal(set) var store: String?
    let db: Database
    /// Every statement on the op log (`OpLog`), over `db`.
    let opLog: OpLog
    /// Every statement on the node's sync cursors and quarantine (`NodeSyncState`), over `db`.
    let nodeSync: NodeSyncState
    /// Every statement on a hub's registry, log positions, scope moves and refusals (`HubLog`), over `db`.
    let hubLog: HubLog
    let wallClock: () -> UInt64
    /// The replica's wall clock now, in milliseconds since the Unix epoch (what its edits stamp).
    public var wallTime: UInt64 { wallClock() }
    var clock: HybridClock
    var nextSeq: UInt64
    var catalogCache: TagCatalog?
    /// Merged states of recently used instances, so a local edit adds its ops to the state instead
    /// of re-reading and re-merging the instance's history. Dropped whenever another connection
    /// changed the file (`PRAGMA data_version`), when a transaction fails, and when the tag library
    /// changes; an instance's entry is dropped when a remote op re-merges it.
    var stateCache: [InstanceRef: InstanceState] = [:]
    var cacheDataVersion: Int64 = -1
    /// Set while `inOneTransaction` runs.
    var bulk: BulkTransaction?
    /// Multi-row INSERTs, prepared once (`multiRowInsert`).
    var multiRowInserts: [Int: Statement] = [:]
    /// When set (a hub), a tag-library change held by more customers than this is not re-merged
    /// in its own commit: the holders are recorded as pending and re-merged this many at a time by
    /// `settlePendingRemerges(limit:)` (Replica+SlicedRemerge.swift). Nil: all at once.
    public var tagHolderSlice: Int?
    /// When set (a hub), the restore grace after its log epoch started (`RestoreGrace`; SPEC
    /// section 7, "Log epochs"). Nil: every op is judged at once by the state held.
    public var restoreGrace: RestoreGrace?
    /// How many ops the last local edit (a public method of Replica+Edits) wrote: 0 when it found
    /// nothing to change. Set only when the edit committed.
    public internal(set) var opsWrittenByLastEdit = 0
    /// Customer imports built but not yet committed (`stageCustomerImport`).
    var staged: StagedImports?
    /// A store node applied CHANGES that said more were pending: the instances outside its scope
    /// are judged once it has caught up (`applyChanges`).
    var scopeJudgementPending = false
    /// The instances of those CHANGES, judged with the rest once caught up (`applyChanges`).
    var scopeTouched: Set<InstanceRef> = []
    /// Open while a node recovers its own ops from a hub (Replica+OwnOpsRecovery.swift).
    var ownOpsRecovery: OwnOpsRecovery?
    static let stateCacheLimit = 20_000
    /// A peer's ops re-merge an instance from the op log; when it held this many ops or more, its
    /// merged state stays in the cache, so the next ops of it are added at a cost independent
    /// of its history (shorter ones are re-merged each time: cheaper than the memory).
    static let keptHistoryLength = 256

    public init(path: String, options: ReplicaOptions = ReplicaOptions()) throws {
        self.path = path
        self.wallClock = options.wallClock
        db = options.readOnly ? try ReplicaSchema.openForReading(path: path, migrations: options.migrations)
                              : try ReplicaSchema.open(path: path, migrations: options.migrations)
        opLog = OpLog(db: db)
        nodeSync = NodeSyncState(db: db)
        hubLog = HubLog(db: db)
        do {
            let meta = try Replica.readMeta(db)
            if let stored = meta["node_id"]?.stringValue {
                if let requested = options.node, requested != stored {
                    throw ReplicaError.identityMismatch(path: path, stored: stored, requested: requested)
                }
                node = stored
                role = Role(name: meta["role"]?.stringValue ?? "") ?? .store
                store = meta[Replica.storeMetaKey]?.stringValue
            } else {
                guard let requested = options.node else {
                    throw ReplicaError.notFound(what: "node identity of new replica \(path)",
                                                hint: "give the node id (and role) when creating a replica")
                }
                try IdentifierRule.validate(requested, as: "node id")
                node = requested
                role = options.role
                try db.cached("INSERT INTO siyu_meta(key, value) VALUES ('node_id', ?), ('role', ?)")
                    .run([.text(node), .text(role.description)])
            }
            let cache = options.cacheMegabytes ?? (role == .hq ? 64 : 16)
            try Replica.setPageCache(of: db, megabytes: cache)
            // The clock and the next sequence number follow from the op log: every clock this node
            // issued or observed belongs to an op it holds, and its own ops are numbered 1, 2, 3, …
            let maxHLC = try Replica.lastLoggedClock(db, node: node)
            let maxOwn = try OpLog(db: db).lastSeq(of: node)
            clock = HybridClock(last: max(maxHLC, HLC(raw: UInt64(bitPattern: meta["hlc"]?.int64Value ?? 0))),
                                maxDriftMillis: options.maxClockDriftMillis)
            // Checked forms: whatever the file holds (an own op numbered 2^63 - 1, written before
            // apply refused such ops), opening works; an edit past `Op.maxSeq` is then refused.
            nextSeq = max(maxOwn + 1, UInt64(clamping: meta["next_seq"]?.int64Value ?? 1))
        } catch {
            db.close()
            if let e = error as? SQLiteError { throw ReplicaError.storage(e, context: "reading the identity of \(path)") }
            if let e = error as? CoreError { throw ReplicaError.rejected(e) }
            throw error
        }
    }

    /// Opens an existing replica with the identity it stores.
    public convenience init(existing path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ReplicaError.notFound(what: "replica file \(path)", hint: "check the path, or create the replica with a node id")
        }
        try self.init(path: path, options: ReplicaOptions())
    }

    public func close() { db.close() }

    deinit { db.close() }

    static func readMeta(_ db: Database) throws -> [String: SQLiteValue] {
        var out: [String: SQLiteValue] = [:]
        try db.cached("SELECT key, value FROM siyu_meta").query { row in
            if let k = row.text(0) { out[k] = row[1] }
        }
        return out
    }

    /// The schema version recorded in the file.
    public func schemaVersion() throws -> Int {
        try ReplicaError.wrap("reading the schema version") {
            Int(try db.cached("SELECT value FROM siyu_meta WHERE key = 'schema_version'").scalar()?.int64Value ?? 0)
        }
    }

    /// The last clock reading this node issued or observed.
    public var lastClock: HLC { clock.last }

    /// Test hook: fails the next statements of a transaction (crash-safety tests).
    /// Whether a transaction of this replica's connection is open (between calls, only a snapshot
    /// load or `inOneTransaction` holds one).
    public var isInTransaction: Bool { db.isInTransaction }

    public var faultInjector: ((String) throws -> Void)? {
        get { db.faultInjector }
        set { db.faultInjector = newValue }
    }

    // MARK: - Loading and merging instances

    /// How many ops were read back from the op log to merge an instance (a test hook: a local edit
    /// of a cached instance reads none).
    var opsReadForMerging = 0
    /// How many commits storing a hub cursor were synced to disk (`committingDurably`, a snapshot
    /// load's commit) on a connection that commits with NORMAL otherwise (a test hook).
    public internal(set) var syncedCursorCommits = 0

    func loadOps(_ instance: InstanceRef) throws -> [Op] {
        let ops = try opLog.ops(of: instance)
        opsReadForMerging += ops.count
        return ops
    }

    /// The merged state of one instance, from the ops held.
    public func state(of instance: InstanceRef) throws -> InstanceState {
        try ReplicaError.wrap("reading \(instance)") {
            InstanceState.merge(instance, ops: try loadOps(instance), catalog: try catalog())
        }
    }

    /// An instance's merged state, taken out of the cache when the file has not been changed by
    /// another connection since (so the caller holds the only copy and can add to it in place), or
    /// merged from its ops. `commit` puts it back.
    func takeInstance(_ ref: InstanceRef) throws -> InstanceState {
        try dropCachesIfChangedElsewhere()
        if let hit = stateCache.removeValue(forKey: ref) { return hit }
        return InstanceState.merge(ref, ops: try loadOps(ref), catalog: try catalog())
    }

    /// Another process (say `siyu ack` beside a running node) may have written the file: then
    /// nothing cached in memory can be trusted, and the next sequence number and the clock must
    /// move past whatever that process wrote.
    func dropCachesIfChangedElsewhere() throws {
        let version = try db.cached("PRAGMA data_version").scalar()?.int64Value ?? 0
        guard version != cacheDataVersion else { return }
        stateCache.removeAll()
        catalogCache = nil
        let maxOwn = try opLog.lastSeq(of: node)
        clock.observe(try Replica.lastLoggedClock(db, node: node))
        nextSeq = max(nextSeq, maxOwn + 1)   // at most 2^63: no overflow
        // Numbers a recovery reserved (`finishOwnOpsRecovery`) in another process.
        let reserved = try db.cached("SELECT value FROM siyu_meta WHERE key = 'next_seq'").scalar()?.int64Value ?? 0
        nextSeq = max(nextSeq, UInt64(clamping: reserved))
        cacheDataVersion = version
    }

    /// The greatest clock in the op log. A node's clock rises with its sequence numbers, so this is
    /// the clock of some origin's last op: one index probe per origin (this node and every origin
    /// of the version vector) instead of a scan of the whole log.
    static func lastLoggedClock(_ db: Database, node: NodeID) throws -> HLC {
        var origins = [node]
        try db.cached("SELECT origin FROM versions").query { row in origins.append(row.text(0) ?? "") }
        let log = OpLog(db: db)
        var greatest = HLC.zero
        for origin in origins {
            if let hlc = try log.lastClock(of: origin) { greatest = max(greatest, hlc) }
        }
        return greatest
    }

    /// After a failed transaction: forget everything held in memory; it is re-read next time.
    func forgetCaches() {
        stateCache.removeAll()
        catalogCache = nil
        cacheDataVersion = -1
    }

    func remember(_ state: InstanceState) {
        if stateCache.count >= Replica.stateCacheLimit { stateCache.removeAll() }
        stateCache[state.instance] = state
    }

    /// The tag library, merged from the tag and tag group instances (cached in memory).
    func catalog() throws -> TagCatalog {
        if let catalogCache { return catalogCache }
        var catalog = TagCatalog()
        for (ref, ops) in try opLog.libraryOps() {
            let s = InstanceState.merge(ref, ops: ops, catalog: TagCatalog())
            if let t = s.tagDefinition { catalog.tags[t.id] = t }
            if let g = s.tagGroupDefinition { catalog.groups[g.id] = g }
        }
        catalogCache = catalog
        return catalog
    }

    // MARK: - Committing ops (local edits and remote change sets)

    /// Inserts the ops this replica does not hold yet and re-merges every instance they touch,
    /// plus the customers whose tags depend on a changed tag library, as `mode` says (`CommitMode`).
    /// Must run inside a transaction. Returns how many ops were new and how many instances were
    /// merged.
    @discardableResult
    func commit(_ ops: [Op], _ mode: consuming CommitMode) throws -> (applied: Int, merged: Int) {
        // A local edit's state is taken out of the mode, so this holds the only copy and adds to it in place.
        var known: InstanceState?
        if case .localEdit(let state) = mode { known = state }
        let kind = mode.kind
        _ = consume mode
        let newAside = kind == .importBatch || kind == .bulkLoad
        let deferIndexes = kind == .bulkLoad
        guard !ops.isEmpty else { return (0, 0) }
        // What customers' merges read of the tag library before this commit (see below), taken
        // before its ops are stored: `catalog()` may be rebuilt from the op log.
        let catalogBefore = ops.contains(where: { $0.instance.kind == .tag || $0.instance.kind == .tagGroup }) ? try catalog() : nil
        let tagged = try db.cached("INSERT OR IGNORE INTO tagged_customers(tag_id, customer_id) VALUES (?, ?)")
        let ownFresh = kind == .localEdit || kind == .importBatch
        var batch = try CommitBatch(known: known.map { ($0.instance, $0.hasOps) },
                                    probe: db.cached(OpLog.probeInstance))
        var applied = 0
        var origins = Set<NodeID>()
        var maxHLC = HLC.zero
        var lastOrigin: NodeID?
        for op in ops {
            let slot = try batch.slot(of: op.instance)   // before the insert: did the instance have ops?
            var deferred = false
            // In a bulk load, the ops of an instance new to the replica wait in memory and go in
            // several rows per statement: their only possible duplicates are among themselves.
            // (Up to 256 ops: past that, looking for duplicates in memory costs more than the index.)
            if newAside && !batch.existed[slot] && batch.inserted[slot].count < 256 {
                guard !batch.holds(op, in: slot) else { continue }
                batch.awaitInsert(slot)
                deferred = true
            } else {
                try insertAwaitedOps(of: &batch)   // (before the index is asked about this op)
                guard try opLog.insertUnlessHeld(op) else {
                    // A peer's op we already hold is a harmless duplicate; a local edit's op never is.
                    if ownFresh && op.origin == node {
                        throw ReplicaError.invalid("op \(node)#\(op.seq) already exists in the op log; the edit was not saved",
                                                   "the replica's sequence is out of step with its op log; reopen the replica")
                    }
                    continue
                }
            }
            applied += 1
            let target = op.body.target
            if target.entity == .customerTag {
                if deferIndexes {
                    batch.tagsToRecord[slot, default: []].insert(target.sub)
                } else {
                    try tagged.run([.text(target.sub), .text(target.id)])
                }
            }
            batch.inserted[slot].append(op)
            if !deferred { batch.stored[slot] = batch.inserted[slot].count }
            if op.origin != lastOrigin { origins.insert(op.origin); lastOrigin = op.origin }
            if op.hlc > maxHLC { maxHLC = op.hlc }
        }
        if newAside { try writeNewInstancesAside(of: &batch, tagged: tagged, indexingTags: !deferIndexes) }
        try insertAwaitedOps(of: &batch)
        guard applied > 0 else { return (0, 0) }
        var newSeqs: [NodeID: [UInt64]] = [:]
        for op in ops where op.origin != node { newSeqs[op.origin, default: []].append(op.seq) }
        // This node's own ops are numbered and committed in order, so its own entry of the version
        // vector is always nextSeq - 1 and is not stored (one page less for every local edit).
        for origin in origins where origin != node {
            if deferIndexes {
                let highest = max(bulk?.load?.highest[origin] ?? 0, newSeqs[origin]?.max() ?? 0)
                bulk?.load?.highest[origin] = highest
            } else {
                try advanceVersion(of: origin, adding: newSeqs[origin] ?? [])
            }
        }
        clock.observe(maxHLC)
        // Own ops can come back from a peer (a replica restored from a backup): never reuse their numbers.
        if let ownLast = ops.filter({ $0.origin == node }).map(\.seq).max(), ownLast >= nextSeq { nextSeq = ownLast + 1 }

        // The instances to merge, in order: those with new ops, then (below) customers whose tags
        // depend on a changed tag library.
        var touched = batch.refs.indices.filter { !batch.inserted[$0].isEmpty }
        // The tag library first: a change there re-merges the customers holding affected tags.
        let library = touched.filter { batch.isLibrary($0) }
        if !library.isEmpty {
            catalogCache = nil
            stateCache.removeAll()   // customer states depend on the library
            for slot in library.sorted(by: { batch.refs[$0] < batch.refs[$1] }) {
                try remerge(batch.refs[slot], onlyOps: batch.existed[slot] ? nil : batch.inserted[slot], indexingTags: !deferIndexes)
            }
            // A bulk load's shown pairs are not in `tagged_customers` yet (the spec sends the library first, so this is rare).
            if deferIndexes { try db.execute(Replica.tagShownPairs) }
            // Only what a customer's merge reads of a tag (its group, the group's exclusive flag,
            // its deletion) re-merges the customers holding it: a renamed or re-sorted tag re-merges
            // nobody, however many customers hold it.
            let catalogAfter = try catalog()
            let tags = try tagsAffected(by: Set(library.map { batch.refs[$0] }))
                .filter { catalogBefore?.info(forTag: $0) != catalogAfter.info(forTag: $0) }
            // With `tagHolderSlice` (a hub), more holders than one slice beyond those this commit
            // merges anyway are left pending, re-merged in slices after it (Replica+SlicedRemerge).
            let slice = deferIndexes ? nil : tagHolderSlice
            let stmt = try db.cached("SELECT customer_id FROM tagged_customers WHERE tag_id = ?")
            var affected = Set<Int>(touched)
            var others = 0
            for tag in tags.sorted() where slice.map({ others <= $0 }) ?? true {
                try stmt.queryWhile([.text(tag)]) { row in
                    if affected.insert(try batch.slot(of: InstanceRef(.customer, row.text(0) ?? ""))).inserted { others += 1 }
                    return slice.map { others <= $0 } ?? true
                }
            }
            if let slice, others > slice {
                try deferRemerges(ofHoldersOf: tags)
                affected = Set(touched)
            }
            touched = Array(affected)
        }
        // Whether an instance's rows are the merge of the ops it held before this commit, so a
        // re-merge need write only what changed (`remerge(_:over:)`): a peer's ops into a replica
        // that never drops an instance out of its scope (HQ's, a hub's), in a commit that changes no
        // tag a merge reads, with no holders of a changed tag waiting to be re-merged (their rows
        // still follow the library before the change). Asked once, when first needed.
        var rowsFollow: Bool?
        func rowsFollowOps() throws -> Bool {
            if let rowsFollow { return rowsFollow }
            let follow = try kind == .remoteApply && role != .store && library.isEmpty && pendingRemerges().isEmpty
            rowsFollow = follow
            return follow
        }
        for slot in touched.sorted(by: { batch.refs[$0] < batch.refs[$1] }) {
            guard !batch.isLibrary(slot) else { continue }
            let ref = batch.refs[slot]
            // The instance's merged state kept in memory: a local edit's, or for a peer's ops one
            // the cache holds (a local edit or an earlier apply left it there).
            var kept: InstanceState?
            if known?.instance == ref {
                kept = known
                known = nil
            } else if kind == .remoteApply, batch.existed[slot], !batch.written[slot] {
                kept = stateCache.removeValue(forKey: ref)
            }
            if var state = kept {
                kept = nil   // `state` is now the only copy: adding to it changes it in place
                // Ops with greater stamps than every op held (a local edit's always; a peer's
                // usually, as time goes on) are added to the state, at a cost independent of the
                // instance's history; otherwise, or where a rule needs every op again
                // (`InstanceState.add`), it is re-merged.
                let previous = state.output
                let ops = kind == .localEdit ? batch.inserted[slot] : batch.inserted[slot].sorted { $0.stamp < $1.stamp }
                if !state.add(ops, catalog: try catalog()) {
                    state = InstanceState.merge(ref, ops: try loadOps(ref), catalog: try catalog())
                }
                try write(state, previous: previous)
                try recordHiddenTags(batch.tagsToRecord[slot], of: state, with: tagged)
                remember(state)
            } else if batch.written[slot] {
                continue
            } else {
                let read = opsReadForMerging
                let state: InstanceState
                if batch.existed[slot], try rowsFollowOps() {
                    state = try remerge(ref, over: batch.inserted[slot])
                } else {
                    state = try remerge(ref, onlyOps: batch.existed[slot] ? nil : batch.inserted[slot], indexingTags: !deferIndexes)
                }
                try recordHiddenTags(batch.tagsToRecord[slot], of: state, with: tagged)
                // A long history is merged from the op log once: its state stays for the next ops.
                if kind == .remoteApply, opsReadForMerging - read >= Replica.keptHistoryLength { remember(state) }
            }
        }
        return (applied, touched.count)
    }

    private func tagsAffected(by library: Set<InstanceRef>) throws -> Set<String> {
        var tags = Set(library.filter { $0.kind == .tag }.map(\.id))
        let catalog = try catalog()
        let groups = Set(library.filter { $0.kind == .tagGroup }.map(\.id))
        if !groups.isEmpty {
            for (id, t) in catalog.tags where t.groupID.map(groups.contains) == true { tags.insert(id) }
        }
        return tags
    }

    /// Recomputes one instance from its ops and rewrites its rows and conflicts. `onlyOps` is given
    /// for an instance that had no ops before this commit: they are all of its ops, it has no rows
    /// yet, so nothing is read back or deleted first.
    @discardableResult
    func remerge(_ ref: InstanceRef, onlyOps: [Op]?, indexingTags: Bool = true) throws -> InstanceState {
        let ops = try onlyOps ?? loadOps(ref)
        let state = InstanceState.merge(ref, ops: ops, catalog: try catalog())
        try write(state, previous: onlyOps == nil ? nil : InstanceState.empty(ref), indexingTags: indexingTags)
        // Bulk merges do not fill the cache (it serves local edits); they only invalidate it.
        if !stateCache.isEmpty { stateCache.removeValue(forKey: ref) }
        return state
    }

    /// Re-merges an instance that held ops before this commit, whose rows and conflicts are the
    /// merge of those ops (`commit`'s `rowsFollowOps`), and writes only the rows and conflicts that
    /// the commit's ops (`added`) change — where `remerge(_:onlyOps: nil)` deletes and writes again
    /// every row of the instance in every table, dirtying pages that did not change.
    func remerge(_ ref: InstanceRef, over added: [Op]) throws -> InstanceState {
        let ops = try loadOps(ref)
        let catalog = try catalog()
        let new = Set(added.map(\.stamp))
        let before = InstanceState.merge(ref, ops: ops.filter { !new.contains($0.stamp) }, catalog: catalog)
        let state = InstanceState.merge(ref, ops: ops, catalog: catalog)
        try write(state, previous: before)
        if !stateCache.isEmpty { stateCache.removeValue(forKey: ref) }
        return state
    }

    /// The statements that write one table, built once.
    struct TableStatements {
        let insert: String, upsert: String, deleteKey: String, deleteInstance: String
        /// `insertRows[n - 1]` inserts n rows (n ≤ `Replica.rowsPerInsert`).
        let insertRows: [String]
        /// The table's place in `Table.allCases`.
        let ordinal: Int
        init(_ table: Table) {
            ordinal = Table.allCases.firstIndex(of: table) ?? 0
            let placeholders = Array(repeating: "?", count: table.columns.count).joined(separator: ", ")
            insert = "INSERT INTO \(table.rawValue) VALUES (\(placeholders))"
            insertRows = (1...Replica.rowsPerInsert).map { n in
                "INSERT INTO \(table.rawValue) VALUES " + Array(repeating: "(\(placeholders))", count: n).joined(separator: ", ")
            }
            upsert = "INSERT OR REPLACE INTO \(table.rawValue) VALUES (\(placeholders))"
            deleteKey = "DELETE FROM \(table.rawValue) WHERE "
                + table.columns.prefix(table.keyColumnCount).map { "\($0.name) = ?" }.joined(separator: " AND ")
            deleteInstance = "DELETE FROM \(table.rawValue) WHERE \(table.columns[0].name) = ?"
        }
    }
    /// Rows written by one INSERT where an instance's rows are new: executing a statement costs
    /// more than the rows it writes.
    static let rowsPerInsert = 16

    /// The prepared statement of a multi-row INSERT (`key`: one number per text). They are kept
    /// here rather than found by text through `Database.cached`, which would hash their long text
    /// on every use.
    func multiRowInsert(_ sql: String, key: Int) throws -> Statement {
        if let statement = multiRowInserts[key] { return statement }
        let statement = try db.prepare(sql)
        multiRowInserts[key] = statement
        return statement
    }
    static let statements: [Table: TableStatements] = Dictionary(uniqueKeysWithValues: Table.allCases.map { ($0, TableStatements($0)) })
    static let insertConflict = "INSERT OR REPLACE INTO conflicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

    /// Writes an instance's rows and conflicts. With the `previous` state (what the tables hold for
    /// it now), only rows and conflicts that differ are written; without it, everything of the
    /// instance is deleted and rewritten. Rows are compared byte for byte. `indexingTags` false (a
    /// bulk load) leaves a customer's shown tags out of `tagged_customers` (`finishBulkLoad` adds them).
    func write(_ state: InstanceState, previous: InstanceState?, indexingTags: Bool = true) throws {
        let ref = state.instance
        let fresh = previous.map { $0.rows.isEmpty && $0.conflicts.isEmpty } ?? false
        for table in Table.tables(of: ref.kind) {
            let sql = Replica.statements[table]!
            let rows = state.rows[table] ?? []
            if fresh {
                // Nothing of this instance is in the tables yet.
                var start = 0
                while start < rows.count {
                    let n = min(Replica.rowsPerInsert, rows.count - start)
                    var values: [SQLiteValue] = []
                    values.reserveCapacity(n * table.columns.count)
                    for row in rows[start..<start + n] { for v in row { values.append(v.sqlite) } }
                    try multiRowInsert(sql.insertRows[n - 1], key: (sql.ordinal + 1) * Replica.rowsPerInsert + n - 1).run(values)
                    start += n
                }
                continue
            }
            guard let previous else {
                try db.cached(sql.deleteInstance).run([.text(ref.id)])
                let insert = try db.cached(sql.insert)
                for row in rows { try insert.run(row.map(\.sqlite)) }
                continue
            }
            let old = previous.rows[table] ?? []
            if old.count == rows.count && zip(old, rows).allSatisfy(Replica.sameRow) { continue }
            let keyCount = table.keyColumnCount
            var oldByKey: [[Value]: [Value]] = [:]
            for row in old { oldByKey[Array(row.prefix(keyCount))] = row }
            var newKeys = Set<[Value]>()
            let upsert = try db.cached(sql.upsert)
            for row in rows {
                let key = Array(row.prefix(keyCount))
                newKeys.insert(key)
                if let before = oldByKey[key], Replica.sameRow(before, row) { continue }
                try upsert.run(row.map(\.sqlite))
            }
            let delete = try db.cached(sql.deleteKey)
            for key in oldByKey.keys where !newKeys.contains(key) { try delete.run(key.map(\.sqlite)) }
        }
        // A customer written whole (new here, back in a store's scope after it left, or re-merged
        // from scratch) has its shown tags in the tag index: a store that dropped it kept its own
        // ops of it but not their index pairs, and a tag change re-merges only indexed holders.
        if ref.kind == .customer, previous == nil || fresh, indexingTags, let shown = state.rows[.customerTags], !shown.isEmpty {
            let tagged = try db.cached("INSERT OR IGNORE INTO tagged_customers(tag_id, customer_id) VALUES (?, ?)")
            for row in shown where row.count > 1 { try tagged.run([row[1].sqlite, .text(ref.id)]) }
        }
        var keep = Set<String>()
        if let previous, !fresh {
            let before = Dictionary(previous.conflicts.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            let now = Set(state.conflicts.map(\.id))
            let delete = try db.cached("DELETE FROM conflicts WHERE conflict_id = ?")
            for id in before.keys where !now.contains(id) { try delete.run([.text(id)]) }
            for c in state.conflicts {
                if let b = before[c.id], Replica.sameRow(Replica.conflictRow(b, ref), Replica.conflictRow(c, ref)) { keep.insert(c.id) }
            }
        } else if previous == nil {
            try db.cached("DELETE FROM conflicts WHERE inst_kind = ? AND inst_id = ?").run([.text(ref.kind.name), .text(ref.id)])
        }
        if !state.conflicts.isEmpty {
            let insert = try db.cached(Replica.insertConflict)
            for c in state.conflicts where !keep.contains(c.id) {
                try insert.run(Replica.conflictRow(c, ref).map(\.sqlite))
            }
        }
    }

    /// A conflict as the values of its `conflicts` row.
    static func conflictRow(_ c: ConflictEntry, _ ref: InstanceRef) -> [Value] {
        func side(_ s: ConflictSide?) -> [Value] {
            guard let s else { return [.null, .null, .null, .null] }
            return [s.value, .text(s.stamp.node), .text(s.author), .int(Int64(bitPattern: s.stamp.hlc.raw))]
        }
        return [.text(c.id), .text(ref.kind.name), .text(ref.id), .text(c.rule.rawValue),
                .text(c.target.entity.name), .text(c.target.id), .text(c.target.sub), .text(c.field),
                .text(c.state.rawValue)] + side(c.winner) + side(c.loser) + side(c.closedBy).dropFirst()
    }

    /// Byte-exact equality of two rows (Swift's `String ==` would equate NFC and NFD text).
    static func sameRow(_ a: [Value], _ b: [Value]) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) {
            switch (x, y) {
            case let (.text(s), .text(t)): if !s.utf8.elementsEqual(t.utf8) { return false }
            default: if x != y { return false }
            }
        }
        return true
    }

    /// Recomputes every table, the conflict log and the tag index (`tagged_customers`) from the op
    /// log, in one transaction. The result
    /// must equal what incremental merging produced (tests check the digests); operators can use it
    /// to repair tables edited by hand.
    public func rebuild() throws { try rebuild(keepingDropped: true) }

    /// `rebuild()`; `keepingDropped` false when the instances' tables were remade empty (a
    /// repair), so which instances a store node had dropped can no longer be read from them.
    func rebuild(keepingDropped: Bool) throws {
        try ReplicaError.wrap("rebuilding the tables") {
            stateCache.removeAll()
            try db.transaction {
                // A store node keeps its own ops of the instances that left its scope, without
                // their rows (SPEC section 7, "Transfers"): they stay dropped, and so does anything
                // the rebuilt state puts outside its scope.
                let dropped = keepingDropped ? try instancesDroppedFromScope() : []
                for table in Table.allCases { try db.execute("DELETE FROM \(table.rawValue)") }
                try db.execute("DELETE FROM conflicts")
                try db.execute("DELETE FROM tagged_customers")
                let tagged = try db.cached("INSERT OR IGNORE INTO tagged_customers(tag_id, customer_id) VALUES (?, ?)")
                catalogCache = nil
                for ref in try opLog.instances().sorted() {
                    let ops = try loadOps(ref)
                    for op in ops where op.body.target.entity == .customerTag {
                        try tagged.run([.text(op.body.target.sub), .text(op.body.target.id)])
                    }
                    let state = InstanceState.merge(ref, ops: ops, catalog: try catalog())
                    try write(state, previous: InstanceState.empty(ref))
                }
                for instance in dropped { try drop(instance) }
                try dropInstancesOutOfScope(nil)
            }
            forgetCaches()
        }
    }

    /// Moves an origin's entry of the version vector past the sequence numbers just stored: the
    /// contiguous prefix grows through `seqs` (and through ops stored earlier out of order, looked
    /// up only where `seqs` leaves a gap).
    private func advanceVersion(of origin: NodeID, adding seqs: [UInt64]) throws {
        let row = try db.cached("SELECT contiguous, highest FROM versions WHERE origin = ?").rows([.text(origin)]).first
        var contiguous = row?[0].int64Value ?? 0
        var highest = row?[1].int64Value ?? 0
        let added = Set(seqs.map { Int64(bitPattern: $0) })
        highest = max(highest, added.max() ?? 0)
        while contiguous < highest {
            if try added.contains(contiguous + 1) || opLog.holds(origin: origin, seq: UInt64(contiguous + 1)) {
                contiguous += 1
            } else {
                break
            }
        }
        try db.cached("INSERT OR REPLACE INTO versions(origin, contiguous, highest) VALUES (?, ?, ?)")
            .run([.text(origin), .integer(contiguous), .integer(highest)])
    }
}
