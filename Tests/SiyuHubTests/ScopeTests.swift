import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuTestSupport

/// Per-store scopes at the hub (SPEC section 7, "Scope"): what a store's PULL, snapshot and digest
/// hold, read through the production calls (`changes`, `snapshotPart`, `scopeDigest`).
@Suite struct ScopeTests {
    typealias World = WriteRightsTests.World

    /// Every op a store's PULLs from `cursor` return, and the last cursor.
    func pullAll(_ hub: Replica, store: String, leavingOut node: String? = nil, from cursor: UInt64 = 0,
                 budget: Int = 1 << 20) throws -> (ops: [Op], cursor: UInt64) {
        var cursor = cursor
        var ops: [Op] = []
        for _ in 0..<10_000 {
            let read = try hub.changes(after: cursor, byteBudget: budget, scope: .store(store), leavingOut: node)
            ops += read.ops.map(\.op)
            #expect(read.nextCursor >= cursor)
            cursor = read.nextCursor
            if !read.more { break }
        }
        return (ops, cursor)
    }

    static let xihuInstances: Set<InstanceRef> = [
        InstanceRef(.store, "xihu"), InstanceRef(.store, "binjiang"), InstanceRef(.staff, "chenjing"),
        InstanceRef(.tagGroup, "g_level"), InstanceRef(.tag, "et_gold"), InstanceRef(.customer, "c_x"),
        InstanceRef(.order, "o_x"), InstanceRef(.groupChat, "g_x"),
    ]

    @Test func aStoresPullCarriesTheSharedInstancesAndItsOwnOnly() throws {
        let w = try World()
        let (ops, cursor) = try pullAll(w.hub, store: "xihu")
        #expect(Set(ops.map(\.instance)) == ScopeTests.xihuInstances)
        let head = try w.hub.logHead()
        #expect(cursor == head, "the cursor moves to the head past the other stores' ops")
        // Every op of those instances, none twice.
        let all = try w.hq.outbox(after: 0).filter { ScopeTests.xihuInstances.contains($0.instance) }
        #expect(ops.count == all.count && Set(ops) == Set(all))
        // A small budget pages through the same ops.
        #expect(Set(try pullAll(w.hub, store: "xihu", budget: 1).ops) == Set(ops))
    }

    @Test func anEmptyPullOfAStoreMovesItsCursorToTheHeadAndSaysNoMore() throws {
        let w = try World()
        let (_, cursor) = try pullAll(w.hub, store: "xihu")
        for i in 0..<50 {
            #expect(try w.push("binjiang", [w.write("binjiang", .customer, "c_b", "phone", .text("\(i)"), author: "lina")]) == nil)
        }
        let head = try w.hub.logHead()
        let read = try w.hub.changes(after: cursor, byteBudget: 1 << 20, scope: .store("xihu"))
        #expect(read.ops.isEmpty && !read.more && read.nextCursor == head)
        // binjiang's PULL leaves its own ops out and still moves past them.
        let own = try w.hub.changes(after: cursor, byteBudget: 1 << 20, scope: .store("binjiang"), leavingOut: "binjiang")
        #expect(own.ops.isEmpty && !own.more && own.nextCursor == head)
    }

    /// SPEC section 7: a customer followed by clerks of two stores is in its owner store's scope
    /// only (one home per instance).
    @Test func aCustomerFollowedByClerksOfTwoStoresIsInItsOwnerStoresScopeOnly() throws {
        let w = try World()
        try w.hq.setFollowRelation(customer: "c_x", userid: "lina", ["remark": .text("滨江也加了")], by: "lina")
        _ = try w.push("hq", try w.hq.outbox(after: 0))
        let xihu = try pullAll(w.hub, store: "xihu").ops
        let binjiang = try pullAll(w.hub, store: "binjiang").ops
        #expect(xihu.contains { $0.body.target == Target(.followRelation, "c_x", "lina") })
        #expect(!binjiang.contains { $0.instance == InstanceRef(.customer, "c_x") })
        #expect(try w.hub.heldHome(of: InstanceRef(.customer, "c_x")) == .store("xihu"))
    }

    @Test func theHubsDigestOfAStoresScopeEqualsTheDigestOfANodeHoldingItsPull() throws {
        let w = try World()
        _ = try w.push("xihu", [w.write("xihu", .customer, "c_x", "phone", .text("139")),
                                w.op("xihu", .points(customerID: "c_x", delta: 10))])
        let node = try Replica.create(at: w.dir.path("xihu-node.db"), node: "xihu-node", role: .store, store: "xihu")
        defer { node.close() }
        let (ops, cursor) = try pullAll(w.hub, store: "xihu")
        _ = try node.applyChanges(ChangeSet(ops: ops), nextCursor: cursor)
        let scoped = try w.hub.scopeDigest(.store("xihu"))
        #expect(scoped.position == cursor)
        #expect(scoped.digest == (try node.digest()))
        #expect(scoped.digest != (try w.hub.digest()), "the scope is not everything")
        #expect(try node.rows(of: .customers).map { $0["customer_id"] } == [.text("c_x")])
    }

    @Test func aStoresSnapshotHoldsExactlyItsScope() throws {
        let w = try World()
        var position: SnapshotPosition?
        var ops: [Op] = []
        for _ in 0..<1_000 {
            let part = try w.hub.snapshotPart(after: position, maxOps: 3, scope: .store("xihu"))
            ops += part.ops
            guard let next = part.next else { break }
            position = next
        }
        #expect(Set(ops.map(\.instance)) == ScopeTests.xihuInstances)
        #expect(Set(ops) == Set(try pullAll(w.hub, store: "xihu").ops))
    }

    @Test func aHubOfLayout5GetsItsLogIndexedByHomeWhenItOpens() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let w = try World()
        let path = dir.path("hub.db")
        // A hub file of layout 5 whose log holds every op (as `logUnpositionedOps` of layout 5 left it).
        let old = try Replica(path: path, options: ReplicaOptions(node: "hub", role: .hq, migrations: Array(ReplicaSchema.migrations.prefix(4))))
        _ = try old.apply(ChangeSet(ops: try w.hq.outbox(after: 0)))
        old.close()
        let logged = SchemaMigration(version: 5) { db in
            try ReplicaSchema.migrations[4].apply(db)
            try db.execute("INSERT INTO hub_log(origin, seq) SELECT origin, seq FROM ops ORDER BY hlc, origin, seq")
        }
        try Replica(path: path, options: ReplicaOptions(migrations: Array(ReplicaSchema.migrations.prefix(4)) + [logged])).close()
        let hub = try Replica(path: path, options: ReplicaOptions(node: "hub", role: .hq))
        defer { hub.close() }
        #expect(try hub.schemaVersion() == Int64(ReplicaSchema.migrations.last?.version ?? 0))   // the current layout
        #expect(Set(try pullAll(hub, store: "xihu").ops.map(\.instance)) == ScopeTests.xihuInstances)
    }
}
