import Testing
@testable import SiyuSQLite

@Suite("Statements")
struct StatementTests {
    @Test("cached returns the same statement for the same SQL, reset and with bindings cleared")
    func cachedStatementReuse() throws {
        let db = try Database(path: ":memory:")
        let first = try db.cached("SELECT ?")
        try first.bind([.text("bound")])
        #expect(try first.scalar() == .text("bound"))

        let second = try db.cached("SELECT ?")
        #expect(first === second)
        #expect(try second.scalar() == .null)  // bindings were cleared
        #expect(try db.cached("SELECT ? + 1") !== first)
    }

    @Test("cached hands out a fresh statement while the cached one is being iterated")
    func cachedWhileIterating() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (a); INSERT INTO t VALUES (1), (2), (3)")
        let sql = "SELECT a FROM t WHERE a >= ? ORDER BY a"
        var outer: [Int64] = []
        var inner: [Int] = []
        try db.cached(sql).query([.integer(1)]) { row in
            outer.append(row.int64(0))
            inner.append(try db.cached(sql).rows([.integer(row.int64(0))]).count)
        }
        #expect(outer == [1, 2, 3])
        #expect(inner == [3, 2, 1])
    }

    @Test("queryPlan names the index a search uses and SCAN for a whole-table read, running nothing")
    func queryPlanOfASearchAndAScan() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v TEXT); CREATE INDEX t_by_k ON t(k)")
        let search = try db.queryPlan("SELECT id FROM t WHERE k = ?")
        #expect(search.count == 1 && search[0].hasPrefix("SEARCH t USING COVERING INDEX t_by_k"))
        #expect(try db.queryPlan("SELECT id FROM t WHERE v = ?") == ["SCAN t"])
        #expect(try db.queryPlan("DELETE FROM t WHERE v = 'x'") == ["SCAN t"])
        #expect(try db.prepare("SELECT count(*) FROM t").scalar() == .integer(0))
        #expect(throws: SQLiteError.self) { try db.queryPlan("SELECT nothing FROM nowhere") }
    }

    @Test("work counts the steps of every statement run: a search visits its rows, a scan every row")
    func workCountsWhatStatementsVisit() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT); CREATE INDEX t_by_k ON t(k)")
        let insert = try db.prepare("INSERT INTO t (k) VALUES (?)")
        for i in 0..<1_000 { try insert.run([.text("k\(i % 10)")]) }
        func cost(_ sql: String) throws -> StatementWork {
            let before = db.work
            _ = try db.prepare(sql).rows([.text("k3")])
            return db.work.since(before)
        }
        let search = try cost("SELECT id FROM t WHERE k = ?")
        let scan = try cost("SELECT id FROM t WHERE k || '' = ?")
        #expect(search.executions == 1 && scan.executions == 1)
        #expect(search.fullScanSteps == 0)
        #expect(scan.fullScanSteps >= 999)   // a step to each row after the first, which the scan starts on
        #expect(scan.virtualMachineSteps > 5 * search.virtualMachineSteps)
        #expect(try cost("SELECT id FROM t WHERE k = ? ORDER BY id % 7").sorts == 1)
        #expect(search.sorts == 0)
    }

    @Test("run, rows, scalar, changes and lastInsertRowID")
    func basics() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        let insert = try db.prepare("INSERT INTO t (name) VALUES (?)")
        try insert.run([.text("a")])
        #expect(db.lastInsertRowID == 1)
        try insert.run([.text("b")])
        #expect(db.lastInsertRowID == 2)
        try db.prepare("UPDATE t SET name = upper(name)").run()
        #expect(db.changes == 2)
        #expect(try db.prepare("SELECT id, name FROM t ORDER BY id").rows()
                == [[.integer(1), .text("A")], [.integer(2), .text("B")]])
        #expect(try db.prepare("SELECT name FROM t WHERE id = ?").scalar([.integer(9)]) == nil)
        #expect(!Database.libraryVersion.isEmpty)
    }

    @Test("bind(_:at:) keeps the other bindings and run() without values reuses them")
    func bindAtIndex() throws {
        let db = try Database(path: ":memory:")
        let statement = try db.prepare("SELECT ?1 || '-' || ?2")
        try statement.bind([.text("左"), .text("右")])
        #expect(try statement.scalar() == .text("左-右"))
        try statement.bind(.text("上"), at: 1)
        #expect(try statement.scalar() == .text("上-右"))
        #expect(throws: SQLiteError.self) { try statement.bind(.null, at: 3) }
    }

    @Test("a wrong number of bindings throws instead of binding partially")
    func bindingCountMismatch() throws {
        let db = try Database(path: ":memory:")
        let statement = try db.prepare("SELECT ?, ?")
        let error = try #require(throws: SQLiteError.self) { try statement.run([.integer(1)]) }
        #expect(error.code == .range)
        #expect(error.sql == "SELECT ?, ?")
    }

    @Test("query resets the statement even when the callback throws")
    func queryResetsOnThrow() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (a); INSERT INTO t VALUES (1), (2)")
        let statement = try db.prepare("SELECT a FROM t ORDER BY a")
        #expect(throws: TestFailure.self) {
            try statement.query { _ in throw TestFailure(reason: "stop") }
        }
        // Not left mid-read: a write on the same connection and a full re-run both work.
        try db.execute("INSERT INTO t VALUES (3)")
        #expect(try statement.rows().count == 3)
    }

    @Test("re-entering a statement from its own query callback throws")
    func reentrancyIsRefused() throws {
        let db = try Database(path: ":memory:")
        let statement = try db.prepare("SELECT 1")
        try statement.query { _ in
            #expect(throws: SQLiteError.self) { try statement.run() }
            #expect(throws: SQLiteError.self) { try statement.bind([]) }
        }
    }

    @Test("prepare accepts exactly one statement")
    func prepareOneStatement() throws {
        let db = try Database(path: ":memory:")
        #expect(throws: SQLiteError.self) { try db.prepare("SELECT 1; SELECT 2") }
        #expect(throws: SQLiteError.self) { try db.prepare("   ") }
        #expect(throws: SQLiteError.self) { try db.prepare("-- only a comment") }
        #expect(try db.prepare("SELECT 1; -- trailing comment\n  ;").scalar() == .integer(1))
    }

    @Test("statements and the database are unusable, not crashing, after close")
    func useAfterClose() throws {
        let db = try Database(path: ":memory:")
        let statement = try db.prepare("SELECT 1")
        let cached = try db.cached("SELECT 2")
        db.close()
        db.close()  // idempotent
        #expect(statement.isFinalized)
        #expect(cached.isFinalized)
        let error = try #require(throws: SQLiteError.self) { try statement.scalar() }
        #expect(error.code == .misuse)
        #expect(throws: SQLiteError.self) { try statement.bind([.integer(1)]) }
        #expect(throws: SQLiteError.self) { try db.execute("SELECT 1") }
        #expect(throws: SQLiteError.self) { try db.prepare("SELECT 1") }
        #expect(throws: SQLiteError.self) { try db.cached("SELECT 2") }
        #expect(throws: SQLiteError.self) { try db.transaction {} }
        #expect(!db.isInTransaction)
    }

    @Test("closing the database from inside a query callback ends the iteration with an error")
    func closeDuringQuery() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (a); INSERT INTO t VALUES (1), (2)")
        var visited = 0
        #expect(throws: SQLiteError.self) {
            try db.prepare("SELECT a FROM t").query { _ in
                visited += 1
                db.close()
            }
        }
        #expect(visited == 1)
    }

    @Test("a statement outliving its database is finalized, not dangling")
    func statementOutlivesDatabase() throws {
        var db: Database? = try Database(path: ":memory:")
        let statement = try db!.prepare("SELECT 1")
        db = nil
        #expect(statement.isFinalized)
        #expect(throws: SQLiteError.self) { try statement.scalar() }
    }
}
