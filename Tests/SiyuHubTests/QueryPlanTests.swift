import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuSQLite
@testable import SiyuStore
import SiyuTestSupport

/// What a store's sync costs the hub (issue 17: "a PULL costs O(ops in the node's scope after its
/// cursor), not a walk of the whole log"), on the path production runs: `HubStoreExecutor`
/// carrying out a store node's PUSH, PULL, snapshot and digest. Every statement those run is
/// planned by SQLite as index searches (no table scan but of the shared tables, whose every row
/// is in every scope), and what a store's PULL reads does not grow with the other stores' ops.
@Suite struct QueryPlanTests {
    static let clock: UInt64 = 1_764_000_000_000

    /// A hub holding the brand's shape in miniature: HQ's tag library, and per store a store row,
    /// a clerk, a customer (tagged, followed, with points), an order with a line and a group chat
    /// with a member, all pushed by HQ; store rows for the first `storeRows` stores only (they are
    /// shared: every scope holds them all). Store node `n_<store>` is registered for the stores
    /// named in `nodes`.
    final class Brand {
        let dir: TemporaryDirectory
        let hub: Replica
        let hq: Replica
        let executor: HubStoreExecutor
        var seq: [String: UInt64] = [:]

        static func store(_ i: Int) -> String { "s\(String(format: "%04d", i))" }

        init(stores: Int, nodes: [Int], bootstrapSnapshotOps: UInt64? = nil, storeRows: Int = .max) throws {
            dir = try TemporaryDirectory()
            let hub = try Replica(path: dir.path("hub.db"),
                              options: ReplicaOptions(node: "hub", role: .hq, wallClock: { QueryPlanTests.clock }))
            let hq = try Replica(path: dir.path("hq.db"),
                             options: ReplicaOptions(node: "hq", role: .hq, wallClock: { QueryPlanTests.clock }))
            try hub.registerNode("hq", role: .hq, secret: Array("hq-secret".utf8), iterations: 1)
            try hq.inOneTransaction {
                try hq.defineStaff("boss", name: "总部", storeID: nil)
                try hq.defineTagGroup("g_level", name: "等级", exclusive: true, by: "boss")
                try hq.defineTag("et_gold", group: "g_level", name: "金卡", by: "boss")
                for i in 0..<stores {
                    let s = Brand.store(i)
                    if i < storeRows { try hq.defineStore(s, name: s) }
                    try hq.defineStaff("u_\(s)", name: "clerk", storeID: s)
                    try hq.createCustomer("c_\(s)", ["name": .text("客户"), "phone": .text("1390000"), "owner_store": .text(s)], by: "boss")
                    try hq.setFollowRelation(customer: "c_\(s)", userid: "u_\(s)", ["remark": .text("老客")], by: "boss")
                    try hq.addTag("et_gold", to: "c_\(s)", by: "boss")
                    try hq.awardPoints(10, to: "c_\(s)", by: "boss")
                    try hq.createOrder("o_\(s)", ["customer_id": .text("c_\(s)"), "store_id": .text(s)], by: "boss")
                    try hq.setOrderLine("l1", of: "o_\(s)", ["sku": .text("tea"), "qty": .int(1)], by: "boss")
                    try hq.createGroupChat("g_\(s)", ["name": .text("群"), "owner": .text("u_\(s)")], by: "boss")
                    try hq.addMember("c_\(s)", to: "g_\(s)", by: "boss")
                }
            }
            try Brand.push(from: hq, to: hub)
            for i in nodes {
                try hub.registerNode("n_\(Brand.store(i))", role: .store, store: Brand.store(i), secret: Array("secret".utf8), iterations: 1)
            }
            self.hub = hub
            self.hq = hq
            executor = try HubStoreExecutor(replica: hub, options: HubStoreExecutor.Options(bootstrapSnapshotOps: bootstrapSnapshotOps))
        }

        deinit { hub.close(); hq.close(); dir.remove() }

        /// Pushes HQ's ops to the hub (those it holds are skipped); expects them stored.
        func pushHQ() throws { try Brand.push(from: hq, to: hub) }

        static func push(from hq: Replica, to hub: Replica) throws {
            guard case .stored = try hub.acceptPush(from: "hq", ChangeSet(ops: try hq.outbox(after: 0))) else {
                Issue.record("HQ's PUSH was not stored")
                return
            }
        }

        /// A write of store `i`'s node to a field of its customer, made without seeing HQ's
        /// (a conflict when HQ wrote the field too).
        func storeWrite(_ i: Int, field: String, _ value: Value) -> Op {
            let node = "n_\(Brand.store(i))"
            let next = (seq[node] ?? 0) + 1
            seq[node] = next
            return Op(stamp: Stamp(hlc: HLC(millis: QueryPlanTests.clock + 1, logical: UInt16(truncatingIfNeeded: next)), node: node), seq: next,
                      role: .store, author: "u_\(Brand.store(i))",
                      body: .write(Target(.customer, "c_\(Brand.store(i))", ""), field: field, value: value, overwrites: []))
        }

        /// Carries out a store node's PULL from `cursor`, as the hub's session asks for it.
        func pull(_ i: Int, after cursor: UInt64) -> HubEffectResult {
            executor.execute(.readChanges(node: "n_\(Brand.store(i))", after: cursor, byteBudget: 1 << 20,
                                          schemaVersion: UInt64(currentSchemaVersion), ownOps: false))
        }

        /// PULLs of store `i` from `cursor` until the log is read to its end; the cursor reached.
        func pullToHead(_ i: Int, from cursor: UInt64 = 0) throws -> UInt64 {
            var cursor = cursor
            for _ in 0..<1_000 {
                guard case let .changes(_, next, more, _) = pull(i, after: cursor) else {
                    Issue.record("the PULL was not answered with changes")
                    return cursor
                }
                cursor = next
                if !more { return cursor }
            }
            return cursor
        }

        /// A store node's snapshot from a PULL at 0 (the hub's bootstrap threshold reached), every
        /// part read; the cursor it continues from.
        func readSnapshot(_ i: Int) throws -> UInt64 {
            guard case let .startSnapshot(id, cursor, _) = pull(i, after: 0) else {
                Issue.record("a PULL from 0 past the threshold starts a snapshot")
                return 0
            }
            for part in 0..<1_000 {
                guard case let .snapshotPart(_, isLast, digest, _) = executor.execute(.readSnapshotPart(node: "n_\(Brand.store(i))", snapshotID: id, part: UInt64(part))) else {
                    Issue.record("a snapshot part was not read")
                    return cursor
                }
                if isLast {
                    #expect(digest.count == 32)
                    return cursor
                }
            }
            Issue.record("the snapshot did not end")
            return cursor
        }

        /// Every SQL statement `body` runs on the hub's connection, in order of first use.
        func statements(of body: () throws -> Void) throws -> [String] {
            var seen: [String] = []
            hub.db.faultInjector = { sql in if !seen.contains(sql) { seen.append(sql) } }
            defer { hub.db.faultInjector = nil }
            try body()
            return seen
        }

        /// What `body` cost the hub's connection.
        func work(of body: () throws -> Void) throws -> StatementWork {
            let before = hub.db.work
            try body()
            return hub.db.work.since(before)
        }
    }

    /// The tables whose every row is in every store's scope: reading them whole is reading the
    /// scope (SPEC section 7, "Scope").
    static let sharedTables: Set<String> = ["stores", "tags", "tag_groups"]

    /// The plan steps of `sql` that read a table or index whole, other than a shared table's.
    static func fullScans(in sql: String, of db: Database) throws -> [String] {
        let trimmed = sql.trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
        for control in ["BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK", "PRAGMA"] where trimmed.hasPrefix(control) { return [] }
        return try db.queryPlan(sql).filter { step in
            guard step.hasPrefix("SCAN ") else { return false }
            let table = step.dropFirst(5).split(separator: " ").first.map(String.init) ?? ""
            return !sharedTables.contains(table) && table != "CONSTANT"
        }
    }

    static func expectIndexed(_ statements: [String], in db: Database, _ what: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(!statements.isEmpty, "\(what) ran no statement", sourceLocation: sourceLocation)
        for sql in statements {
            let scans = try fullScans(in: sql, of: db)
            #expect(scans.isEmpty, "\(what) scans: \(scans) in \(sql)", sourceLocation: sourceLocation)
        }
    }

    @Test func everyStatementOfAStoresPullIsAnIndexSearch() throws {
        let brand = try Brand(stores: 3, nodes: [1])
        let head = try brand.hub.logHead()
        var statements = try brand.statements { _ = try brand.pullToHead(1) }
        // A PULL with a new op of its scope and of another store's after the cursor, and an empty one.
        try brand.hq.editCustomer("c_s0001", ["name": .text("新名")], by: "boss")
        try brand.hq.editCustomer("c_s0002", ["name": .text("新名")], by: "boss")
        try brand.pushHQ()
        statements += try brand.statements {
            let cursor = try brand.pullToHead(1, from: head)
            #expect(cursor == (try brand.hub.logHead()))
            _ = try brand.pullToHead(1, from: cursor)
        }
        try Self.expectIndexed(statements, in: brand.hub.db, "a store's PULL")
    }

    @Test func everyStatementOfAStoresSnapshotAndDigestIsAnIndexSearch() throws {
        let brand = try Brand(stores: 3, nodes: [1], bootstrapSnapshotOps: 1)
        // A conflict in store 1's scope: its clerk wrote the phone HQ wrote, without seeing it.
        #expect(brand.executor.execute(.storePush(node: "n_s0001", ChangeSet(ops: [brand.storeWrite(1, field: "phone", .text("1380000"))])))
                == .pushStored(ackedSeq: 1))
        #expect(try !brand.hub.conflicts().isEmpty)
        let snapshot = try brand.statements { _ = try brand.readSnapshot(1) }
        try Self.expectIndexed(snapshot, in: brand.hub.db, "a store's snapshot")
        let digest = try brand.statements {
            guard case .digest = brand.executor.execute(.readDigest(node: "n_s0001")) else {
                Issue.record("the digest was not read")
                return
            }
        }
        try Self.expectIndexed(digest, in: brand.hub.db, "a store's digest")
    }

    @Test func everyStatementOfAStoresPushIsAnIndexSearch() throws {
        let brand = try Brand(stores: 3, nodes: [1])
        let push = try brand.statements {
            #expect(brand.executor.execute(.storePush(node: "n_s0001", ChangeSet(ops: [brand.storeWrite(1, field: "name", .text("林"))])))
                    == .pushStored(ackedSeq: 1))
        }
        try Self.expectIndexed(push, in: brand.hub.db, "a store's PUSH")
    }

    /// What a store's sync reads is its scope's: its snapshot, its digest, an empty PULL, and a
    /// PULL of the one new op of its scope among one new op of every other store cost the same
    /// whether the hub holds 10 stores or 1,000 (the shared store rows kept equal). SQLite's
    /// virtual machine steps count the rows and index entries visited; an index seek is one step
    /// whatever the depth of the tree.
    @Test func aStoresSyncReadsTheSameWhetherTheHubHolds10Or1000Stores() throws {
        struct Cost { var snapshot = StatementWork(), digest = StatementWork(), empty = StatementWork(), one = StatementWork(), ops = 0 }
        func cost(stores: Int) throws -> Cost {
            let brand = try Brand(stores: stores, nodes: [1], bootstrapSnapshotOps: 1, storeRows: 10)
            var c = Cost()
            var cursor: UInt64 = 0
            c.snapshot = try brand.work { cursor = try brand.readSnapshot(1) }
            c.digest = try brand.work {
                guard case .digest = brand.executor.execute(.readDigest(node: "n_s0001")) else { Issue.record("no digest"); return }
            }
            cursor = try brand.pullToHead(1, from: cursor)
            _ = try brand.pullToHead(1, from: cursor)   // the cursor recorded: the next PULL writes nothing
            var after: UInt64 = 0
            c.empty = try brand.work { after = try brand.pullToHead(1, from: cursor) }
            #expect(after == cursor)
            // One new op in every store's scope.
            try brand.hq.inOneTransaction {
                for i in 0..<stores { try brand.hq.editCustomer("c_\(Brand.store(i))", ["name": .text("新")], by: "boss") }
            }
            try brand.pushHQ()
            _ = brand.pull(1, after: cursor)   // the cursor recorded
            c.one = try brand.work {
                if case let .changes(ops, _, more, _) = brand.pull(1, after: cursor) {
                    c.ops = ops.count
                    #expect(!more)
                }
            }
            return c
        }
        let small = try cost(stores: 10)
        let large = try cost(stores: 1_000)
        #expect(small.ops == 1 && large.ops == 1)
        for (what, a, b) in [("snapshot", small.snapshot, large.snapshot), ("digest", small.digest, large.digest),
                             ("empty PULL", small.empty, large.empty), ("one-op PULL", small.one, large.one)] {
            #expect(b.fullScanSteps == a.fullScanSteps, "\(what): \(a) with 10 stores, \(b) with 1,000")
            #expect(b.virtualMachineSteps == a.virtualMachineSteps, "\(what): \(a) with 10 stores, \(b) with 1,000")
        }
        #expect(large.empty.fullScanSteps == 0 && large.one.fullScanSteps == 0)
    }
}
