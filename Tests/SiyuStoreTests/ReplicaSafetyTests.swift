import Foundation
import Testing
import SiyuCore
import SiyuSQLite
import SiyuStore

/// Crash safety of edits, refusal of bad input, schema versions, clocks and idempotence.
@Suite struct ReplicaSafetyTests {
    struct InjectedCrash: Error {}

    @Test func anEditInterruptedBetweenStatementsLeavesNothingVisible() throws {
        let c = try Cluster([("hq", .hq)])
        let hq = c["hq"]
        try hq.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        let before = try hq.digest()
        let opsBefore = try hq.opCounts().total
        // Fail the k-th statement of the edit's transaction, for every k the edit runs.
        var statements = 0
        hq.faultInjector = { _ in statements += 1 }
        try hq.editCustomer("c1", ["name": .text("x"), "phone": .text("1")], by: "zhaolei")
        hq.faultInjector = nil
        let total = statements
        #expect(total > 5)
        let after = try hq.digest()
        for k in 1..<total {
            var n = 0
            hq.faultInjector = { sql in n += 1; if n == k { throw InjectedCrash() } }
            #expect(throws: (any Error).self) {
                try hq.editCustomer("c1", ["name": .text("y\(k)"), "phone": .text("2")], by: "zhaolei")
            }
            hq.faultInjector = nil
            #expect(try hq.digest() == after, "statement \(k) of \(total) left a partial edit")
        }
        // A second connection sees the same committed state.
        let other = try Database(path: c.path("hq"), mode: .readOnly)
        #expect(try other.prepare("SELECT name FROM customers").scalar() == .text("x"))
        #expect(try other.prepare("SELECT count(*) FROM ops").scalar() == .integer(Int64(opsBefore + 2)))
        other.close()
        #expect(before != after)
        // And the replica still works afterwards: sequence numbers have no holes.
        try hq.editCustomer("c1", ["name": .text("z")], by: "zhaolei")
        #expect(try hq.versionVector()["hq"] == UInt64(opsBefore + 3))
    }

    @Test func aRuleBreakingEditWritesNothing() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        try c["hq"].createCustomer("c1", [:], by: "zhaolei")
        try c.syncAll()
        let x = c["xihu"]
        let before = try x.digest(), ops = try x.opCounts().total
        #expect(throws: ReplicaError.self) { try x.addTag("nope", to: "c1", by: "chenjing") }
        #expect(throws: ReplicaError.self) { try x.defineTagGroup("g", name: "店内") }
        #expect(throws: ReplicaError.self) {
            try x.setFollowRelation(customer: "c1", userid: "chenjing", ["remark": .text("这是一个超过二十个字的备注这是一个超过二十个字的备注")], by: "chenjing")
        }
        #expect(throws: ReplicaError.self) { try x.editCustomer("c1", ["name": .text("ok"), "gender": .int(7)], by: "chenjing") }
        #expect(throws: ReplicaError.self) { try x.editCustomer("c1", ["shoe_size": .int(40)], by: "chenjing") }
        #expect(throws: ReplicaError.self) { try x.editCustomer("nobody", ["name": .text("x")], by: "chenjing") }
        #expect(try x.digest() == before)
        #expect(try x.opCounts().total == ops)
    }

    @Test func errorsSayWhatWasWrongAndGiveAHint() throws {
        let c = try Cluster([("xihu", .store)])
        do {
            try c["xihu"].defineTag("t", group: "g", name: "x")
            Issue.record("a store defined a tag")
        } catch let e as ReplicaError {
            #expect(e.description.contains("store") && e.description.contains("Hint"))
        }
    }

    /// Several change sets in one transaction (a snapshot's chunks): a refused one takes the
    /// earlier ones with it; when all are good, the result equals applying them one by one.
    @Test func changeSetsAppliedInOneTransactionAreAllOrNothing() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store), ("jingan", .store)])
        try c["hq"].createCustomer("c1", ["name": .text("A")], by: "zhaolei")
        let first = try c["hq"].changeSet(since: VersionVector())
        try c["hq"].createCustomer("c2", [:], by: "zhaolei")
        let second = try c["hq"].changeSet(since: VersionVector(["hq": first.ops.last!.seq]))
        // A store's write to the tag library refuses its whole change set.
        let forged = Op(stamp: Stamp(hlc: HLC(millis: c.clock.now, logical: 0), node: "jingan"), seq: 1, role: .store,
                        author: "wangfang", body: .write(Target(.tag, "t"), field: "name", value: .text("x"), overwrites: []))
        let refused = ChangeSet(ops: second.ops + [forged])
        #expect(throws: ReplicaError.self) {
            try c["xihu"].inOneTransaction { try c["xihu"].apply(first); try c["xihu"].apply(refused) }
        }
        #expect(try c["xihu"].opCounts().total == 0)
        #expect(try c["xihu"].versionVector() == VersionVector())
        // A step that fails after it started writing fails the whole transaction, even if the
        // caller swallows its error (there is no savepoint to undo only that step).
        var statements = 0
        c["xihu"].faultInjector = { _ in statements += 1; if statements == 3 { throw InjectedCrash() } }
        #expect(throws: (any Error).self) {
            try c["xihu"].inOneTransaction { _ = try? c["xihu"].apply(first) }
        }
        c["xihu"].faultInjector = nil
        #expect(statements >= 3)
        #expect(try c["xihu"].opCounts().total == 0)
        // A step refused before it wrote anything leaves nothing behind, so the rest may commit.
        try c["xihu"].inOneTransaction {
            _ = try? c["xihu"].apply(refused)
            try c["xihu"].apply(first)
        }
        #expect(try c["xihu"].opCounts().total == first.ops.count)
        c.skew["hq"] = 0
        c.clock.now += 7 * 60 * 1000
        try c["xihu"].inOneTransaction { try c["xihu"].apply(second) }
        try c["jingan"].apply(first)
        try c["jingan"].apply(second)
        #expect(try c["xihu"].digest() == c["jingan"].digest())
        #expect(try c["xihu"].versionVector() == c["hq"].versionVector())
    }

    @Test func anOpFromTheFarFutureIsRefusedAloneAndTheRestOfItsChangeSetIsApplied() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        try c["hq"].createCustomer("c1", [:], by: "zhaolei")
        c.skew["hq"] = 6 * 60 * 1000            // six minutes fast
        try c["hq"].createCustomer("c2", ["name": .text("B")], by: "zhaolei")
        c.skew["hq"] = 0
        let cs = try c["hq"].changeSet(since: try c["xihu"].versionVector())
        let report = try c["xihu"].apply(cs)
        #expect(report.applied == 1)
        #expect(report.refused.map(\.seq) == [2])
        #expect(report.refused.first?.reason == .clockSkew && report.refused.first?.reason.protocolCode == 9)
        #expect(report.refused.first?.description.contains("ahead") == true)
        #expect(try c["xihu"].rows(of: .customers).map { $0["customer_id"] } == [.text("c1")])
        #expect(c["xihu"].lastClock.millis < c.clock.now + 60_000)   // the clock did not adopt it
        #expect(try c["xihu"].versionVector()["hq"] == 1)
        // Once the clocks agree, the op is taken and the replicas converge.
        c.clock.now += 6 * 60 * 1000
        #expect(try c["xihu"].apply(cs).refused.isEmpty)
        #expect(try c["xihu"].digest() == c["hq"].digest())
    }

    @Test func aRefusalNamesItsOpWithTheCodeASessionSends() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        func refusal(_ op: Op) -> OpRefusal? {
            do { try c["hq"].apply(ChangeSet(ops: [op])); return nil } catch let ReplicaError.refused(r) { return r } catch { return nil }
        }
        let stamp = Stamp(hlc: HLC(millis: c.clock.now, logical: 0), node: "xihu")
        let library = refusal(Op(stamp: stamp, seq: 4, role: .store, author: "chenjing",
                                 body: .write(Target(.tag, "t"), field: "name", value: .text("x"), overwrites: [])))
        #expect(library?.reason == .permission && library?.reason.protocolCode == 8 && library?.seq == 4 && library?.origin == "xihu")
        let redeem = refusal(Op(stamp: stamp, seq: 5, role: .store, author: "chenjing", body: .points(customerID: "c1", delta: -5)))
        #expect(redeem?.reason == .permission)
        let invalid = refusal(Op(stamp: stamp, seq: 6, role: .store, author: "chenjing",
                                 body: .write(Target(.customer, "c1"), field: "shoe_size", value: .int(40), overwrites: [])))
        #expect(invalid?.reason == .invalidOp && invalid?.reason.protocolCode == 14 && invalid?.hint.isEmpty == false)
        #expect(invalid?.reason.isRetryable == false && OpRefusal.Reason.clockSkew.isRetryable)
        let own = refusal(Op(stamp: Stamp(hlc: HLC(millis: c.clock.now, logical: 0), node: "hq"), seq: 99, role: .hq, author: "zhaolei",
                             body: .write(Target(.customer, "c1"), field: "name", value: .text("x"), overwrites: [])))
        #expect(own?.reason == .permission)
        #expect(try c["hq"].opCounts().total == 0)
    }

    @Test func theClockWindowIsThirtySecondsByDefault() throws {
        #expect(ReplicaOptions().maxClockDriftMillis == 30_000)
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        c.skew["hq"] = 29_000
        try c["hq"].createCustomer("c1", [:], by: "zhaolei")
        c.skew["hq"] = 31_000
        try c["hq"].createCustomer("c2", [:], by: "zhaolei")
        let report = try c["xihu"].apply(try c["hq"].changeSet(since: VersionVector()))
        #expect(report.applied == 1 && report.refused.map(\.seq) == [2])
    }

    @Test func aStoreOpOnTheTagLibraryIsRefusedOnApply() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        let forged = Op(stamp: Stamp(hlc: HLC(millis: c.clock.now, logical: 0), node: "xihu"), seq: 1, role: .store,
                        author: "chenjing", body: .write(Target(.tag, "t"), field: "name", value: .text("x"), overwrites: []))
        #expect(throws: ReplicaError.self) { try c["hq"].apply(ChangeSet(ops: [forged])) }
        #expect(try c["hq"].opCounts().total == 0)
        #expect(throws: ReplicaError.self) { try c["hq"].apply(ChangeSet(schemaVersion: 99, ops: [])) }
    }

    @Test func applyingIsIdempotent() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        try c["hq"].createCustomer("c1", ["name": .text("A"), "phone": .text("1")], by: "zhaolei")
        let cs = try c["hq"].changeSet(since: VersionVector())
        let first = try c["xihu"].apply(cs)
        let d = try c["xihu"].digest()
        let second = try c["xihu"].apply(cs)
        #expect(first.applied == 2 && second.applied == 0 && second.duplicates == 2)
        #expect(try c["xihu"].digest() == d)
        #expect(try c["xihu"].digest() == c["hq"].digest())
        #expect(try c["hq"].outbox(after: 0).map(\.seq) == [1, 2])     // the outbox, in sequence order
        #expect(try c["hq"].outbox(after: 1).count == 1)
        #expect(try c["xihu"].outbox(after: 0).isEmpty)
    }

    @Test func aFileThatIsNotAReplicaIsRefusedAndLeftUntouched() throws {
        let c = try Cluster([])
        let junk = c.path("junk")
        let bytes = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: URL(fileURLWithPath: junk))
        #expect(throws: ReplicaError.self) { try Replica(path: junk, options: ReplicaOptions(node: "x")) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: junk)) == bytes)

        let other = c.path("other")
        let db = try Database(path: other)
        try db.execute("CREATE TABLE t(a); INSERT INTO t VALUES (1);")
        db.close()
        let size = try FileManager.default.attributesOfItem(atPath: other)[.size] as? Int
        #expect(throws: ReplicaError.self) { try Replica(path: other, options: ReplicaOptions(node: "x")) }
        #expect(try FileManager.default.attributesOfItem(atPath: other)[.size] as? Int == size)
    }

    @Test func aNewerReplicaIsRefusedAndAnOlderOneIsMigrated() throws {
        let c = try Cluster([("hq", .hq)])
        try c["hq"].createCustomer("c1", ["name": .text("A")], by: "zhaolei")
        c["hq"].close()
        // A build whose schema history has one more step migrates the file on open.
        let next = ReplicaSchema.migrations.last!.version + 1
        let newer = ReplicaSchema.migrations + [SchemaMigration(version: next) { db in
            try db.execute("CREATE TABLE customer_notes(customer_id TEXT PRIMARY KEY, note TEXT)")
        }]
        let migrated = try Replica(path: c.path("hq"), options: ReplicaOptions(migrations: newer))
        #expect(try migrated.schemaVersion() == next)
        #expect(try migrated.rows(of: .customers).count == 1)
        migrated.close()
        // Now the file is newer than this build: refused, untouched.
        let size = try FileManager.default.attributesOfItem(atPath: c.path("hq"))[.size] as? Int
        do {
            _ = try Replica(path: c.path("hq"), options: ReplicaOptions())
            Issue.record("a newer replica was opened")
        } catch let e as ReplicaError {
            #expect(e.description.contains("newer"))
        }
        #expect(try FileManager.default.attributesOfItem(atPath: c.path("hq"))[.size] as? Int == size)
    }

    /// A replica in the first schema's layout (the thirteen-column op log, this node's own version
    /// row, the indexes later dropped) opens migrated, with the same version vector, tables, history
    /// and digest, and keeps working: the tag index the migration fills finds the customer a tag
    /// deletion must update, and the next edit continues the node's numbering.
    @Test func aSchema1ReplicaIsMigratedToTheCurrentOne() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        let hq = c["hq"], xihu = c["xihu"]
        try hq.defineTagGroup("pref", name: "偏好")
        try hq.defineTag("t1", group: "pref", name: "茶")
        try hq.defineTag("t2", group: "pref", name: "咖啡")
        try hq.createCustomer("c1", ["name": .text("A")], by: "zhaolei")
        try hq.editCustomer("c1", ["name": .text("B")], by: "zhaolei")
        try hq.addTag("t1", to: "c1", by: "zhaolei")
        try hq.addTag("t2", to: "c1", by: "zhaolei")
        try xihu.apply(try hq.changeSet(since: VersionVector()))
        try xihu.removeTag("t1", from: "c1", by: "chenjing")
        try xihu.editCustomer("c1", ["name": .text("C")], by: "chenjing")
        try hq.apply(try xihu.changeSet(since: try hq.versionVector()))
        let (vector, digest, history) = (try hq.versionVector(), try hq.digest(), try hq.history(of: Target(.customer, "c1"), field: "name"))
        #expect(history.count == 3)

        // The same replica, written in schema 1's layout.
        let path = c.path("hq") + ".v1"
        let v1 = try Database(path: path, mode: .readWriteCreate)
        try v1.transaction {
            try ReplicaSchema.migrations[0].apply(v1)
            try v1.execute("""
                INSERT INTO siyu_meta(key, value) VALUES ('format', 'siyu-replica'), ('schema_version', 1), ('node_id', 'hq'), ('role', 'hq');
                PRAGMA user_version = 1;
                """)
            try v1.prepare("ATTACH DATABASE ? AS source").run([.text(c.path("hq"))])
            for table in Table.allCases.map(\.rawValue) + ["conflicts", "versions"] {
                try v1.execute("INSERT INTO \(table) SELECT * FROM source.\(table)")
            }
            try v1.prepare("INSERT INTO versions VALUES ('hq', ?, ?)").run([.integer(Int64(vector["hq"])), .integer(Int64(vector["hq"]))])
            let insert = try v1.prepare("INSERT INTO ops VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            // Schema 1 stored whole ops (OpCoding version 1).
            var ops: [Op] = []
            try v1.prepare("SELECT inst_id, origin, seq, hlc, body FROM source.ops").query { row in
                let keys = OpKeys(origin: row.text(1) ?? "", seq: UInt64(row.int64(2)), hlc: HLC(raw: UInt64(bitPattern: row.int64(3))),
                                  instanceID: row.text(0) ?? "")
                ops.append(try OpCoding.decode(row.blob(4), keys: keys))
            }
            for op in ops { try insert.run(ReplicaSafetyTests.schema1Row(op, body: OpCoding.encode(op))) }
        }
        try v1.execute("DETACH DATABASE source")
        v1.close()

        let current = try Replica(path: path, options: ReplicaOptions())
        #expect(try current.schemaVersion() == ReplicaSchema.migrations.last!.version)
        #expect(try current.versionVector() == vector)
        #expect(try current.digest() == digest)
        #expect(try current.history(of: Target(.customer, "c1"), field: "name").map(\.op) == history.map(\.op))
        #expect(try current.opCounts().total == (try hq.opCounts().total))
        try current.deleteTag("t2", by: "zhaolei")
        #expect(try current.rows(of: .customerTags).isEmpty, "the migrated tag index did not lead the deletion to c1")
        #expect(try current.versionVector()["hq"] == vector["hq"] + 2)   // the tag's deleted flag, and the deletion
        current.close()
    }

    /// An op as schema 1 stored it: keys, the columns that repeated the body, and the body.
    static func schema1Row(_ op: Op, body: [UInt8]) -> [SQLiteValue] {
        let target = op.body.target
        var field = "", value = SQLiteValue.null
        switch op.body {
        case let .write(_, f, v, _):
            field = f
            switch v {
            case .null: value = .null
            case let .int(i): value = .integer(i)
            case let .text(t): value = .text(t)
            case let .bytes(b): value = .blob(b)
            case let .bool(b): value = .integer(b ? 1 : 0)
            }
        case let .status(_, _, to, _): field = "status"; value = .text(to.name)
        case let .points(_, d): value = .integer(d)
        case let .acknowledge(_, id): value = .text(id)
        case .add, .remove, .deleteCustomer, .tagDeletion: break
        }
        return [.text(op.origin), .integer(Int64(op.seq)), .integer(Int64(bitPattern: op.hlc.raw)),
                .text(op.instance.kind.name), .text(op.instance.id), .text(target.entity.name), .text(target.id),
                .text(target.sub), .text(field), .text(op.body.kindName), value, .text(op.author), .blob(body)]
    }

    @Test func aReopenedReplicaContinuesItsSequenceAndClock() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        try c["hq"].createCustomer("c1", ["name": .text("A"), "phone": .text("1")], by: "zhaolei")
        try c.send("hq", to: "xihu")
        c.skew["xihu"] = 20_000                        // xihu's clock runs 20 s ahead (within the window)
        try c["xihu"].setFollowRelation(customer: "c1", userid: "chenjing", ["remark": .text("x")], by: "chenjing")
        try c.send("xihu", to: "hq")                    // hq observes xihu's later clock
        try c.send("hq", to: "xihu")
        let observed = c["hq"].lastClock
        c["hq"].close()
        let reopened = try Replica(path: c.path("hq"), options: ReplicaOptions(wallClock: { c.clock.now }))
        #expect(reopened.lastClock >= observed)
        try reopened.editCustomer("c1", ["name": .text("B")], by: "zhaolei")
        let own = try reopened.outbox(after: 0)
        #expect(own.map(\.seq) == [1, 2, 3])           // no number reused after reopening
        #expect(own.last!.hlc > observed)               // and its clock stays ahead of all it saw
        reopened.close()
    }

    @Test func twoConnectionsToOneFileNeverWorkFromStaleState() throws {
        let c = try Cluster([("hq", .hq)])
        let first = c["hq"]
        try first.createCustomer("c1", ["name": .text("A")], by: "zhaolei")
        try first.editCustomer("c1", ["name": .text("B")], by: "zhaolei")        // first's memory now holds c1
        let second = try Replica(path: c.path("hq"), options: ReplicaOptions(wallClock: { c.clock.now }))
        c.clock.advance(10)
        try second.editCustomer("c1", ["name": .text("C")], by: "liuyang")       // e.g. the CLI beside a node
        second.close()
        c.clock.advance(10)
        try first.editCustomer("c1", ["name": .text("D")], by: "zhaolei")
        #expect(try first.rows(of: .customers)[0]["name"] == .text("D"))
        #expect(try first.conflicts().isEmpty)                                   // D overwrote C knowingly
        let digest = try first.digest()
        try first.rebuild()
        #expect(try first.digest() == digest)
    }

    @Test func aReplicaKeepsItsIdentity() throws {
        let c = try Cluster([("hq", .hq)])
        c["hq"].close()
        #expect(throws: ReplicaError.self) { try Replica(path: c.path("hq"), options: ReplicaOptions(node: "xihu")) }
        let reopened = try Replica(existing: c.path("hq"))
        #expect(reopened.node == "hq" && reopened.role == .hq)
        reopened.close()
    }
}
