import Foundation
import Testing
@testable import SiyuSQLite
import SiyuTestSupport

@Suite("Transactions")
struct TransactionTests {
    private func makeDatabase(at directory: TemporaryDirectory) throws -> Database {
        let db = try Database(path: directory.path("test.sqlite"))
        try db.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
        return db
    }

    private func count(_ db: Database) throws -> Int64? {
        try db.prepare("SELECT count(*) FROM t").scalar()?.int64Value
    }

    @Test("a committed transaction keeps its work and returns the body's value")
    func commit() throws {
        try withTemporaryDirectory { directory in
            let db = try makeDatabase(at: directory)
            #expect(!db.isInTransaction)
            let result = try db.transaction { () throws -> String in
                #expect(db.isInTransaction)
                try db.prepare("INSERT INTO t (a, b) VALUES (?, ?)").run([.integer(1), .text("一")])
                try db.prepare("INSERT INTO t (a, b) VALUES (?, ?)").run([.integer(2), .text("二")])
                return "done"
            }
            #expect(result == "done")
            #expect(!db.isInTransaction)
            #expect(try count(db) == 2)

            let other = try Database(path: db.path, mode: .readOnly)
            #expect(try other.prepare("SELECT b FROM t ORDER BY a").rows() == [[.text("一")], [.text("二")]])
        }
    }

    @Test("a thrown error rolls everything back and is rethrown unchanged")
    func rollbackOnError() throws {
        try withTemporaryDirectory { directory in
            let db = try makeDatabase(at: directory)
            let error = try #require(throws: TestFailure.self) {
                try db.transaction {
                    try db.execute("INSERT INTO t (a, b) VALUES (1, 'x')")
                    try db.execute("INSERT INTO t (a, b) VALUES (2, 'y')")
                    throw TestFailure(reason: "boom")
                }
            }
            #expect(error == TestFailure(reason: "boom"))
            #expect(!db.isInTransaction)
            #expect(try count(db) == 0)
        }
    }

    @Test("an SQL error inside a transaction rolls back the earlier statements")
    func rollbackOnSQLError() throws {
        try withTemporaryDirectory { directory in
            let db = try makeDatabase(at: directory)
            let error = try #require(throws: SQLiteError.self) {
                try db.transaction {
                    try db.execute("INSERT INTO t (a, b) VALUES (1, 'x')")
                    try db.execute("INSERT INTO t (a, b) VALUES (1, 'duplicate')")
                }
            }
            #expect(error.code == .constraint)
            #expect(try count(db) == 0)
        }
    }

    @Test("a failed nested transaction (savepoint) keeps the outer work")
    func nestedRollbackKeepsOuterWork() throws {
        try withTemporaryDirectory { directory in
            let db = try makeDatabase(at: directory)
            try db.transaction {
                try db.execute("INSERT INTO t (a, b) VALUES (1, 'outer')")
                #expect(throws: TestFailure.self) {
                    try db.transaction {
                        try db.execute("INSERT INTO t (a, b) VALUES (2, 'inner')")
                        throw TestFailure(reason: "inner fails")
                    }
                }
                #expect(db.isInTransaction)
                try db.transaction {
                    try db.execute("INSERT INTO t (a, b) VALUES (3, 'inner ok')")
                }
                try db.execute("INSERT INTO t (a, b) VALUES (4, 'outer again')")
            }
            #expect(try db.prepare("SELECT a FROM t ORDER BY a").rows() == [[.integer(1)], [.integer(3)], [.integer(4)]])
        }
    }

    @Test("a failing outer transaction also discards released savepoints")
    func outerRollbackDiscardsInner() throws {
        try withTemporaryDirectory { directory in
            let db = try makeDatabase(at: directory)
            #expect(throws: TestFailure.self) {
                try db.transaction {
                    try db.transaction {
                        try db.execute("INSERT INTO t (a, b) VALUES (1, 'inner')")
                    }
                    throw TestFailure(reason: "outer fails")
                }
            }
            #expect(try count(db) == 0)
        }
    }

    @Test("faultInjector failing the 2nd statement leaves nothing visible to another connection")
    func faultInjectionMidTransaction() throws {
        try withTemporaryDirectory { directory in
            let db = try makeDatabase(at: directory)
            var seen: [String] = []
            db.faultInjector = { sql in
                seen.append(sql)
                let inserts = seen.filter { $0.hasPrefix("INSERT") }.count
                if sql.hasPrefix("INSERT") && inserts == 2 {
                    throw TestFailure(reason: "injected")
                }
            }
            let insert = "INSERT INTO t (a, b) VALUES (?, ?)"
            #expect(throws: TestFailure.self) {
                try db.transaction {
                    try db.cached(insert).run([.integer(1), .text("first")])
                    try db.cached(insert).run([.integer(2), .text("second")])
                    try db.cached(insert).run([.integer(3), .text("third")])
                }
            }
            // The 2nd insert was never run; the 1st was rolled back; COMMIT was never reached.
            #expect(seen == ["BEGIN IMMEDIATE", insert, insert])
            #expect(!db.isInTransaction)

            let other = try Database(path: db.path, mode: .readOnly)
            #expect(try other.prepare("SELECT count(*) FROM t").scalar() == .integer(0))
            db.faultInjector = nil
            #expect(try count(db) == 0)
        }
    }

    @Test("faultInjector failing COMMIT rolls the transaction back")
    func faultInjectionAtCommit() throws {
        try withTemporaryDirectory { directory in
            let db = try makeDatabase(at: directory)
            db.faultInjector = { sql in
                if sql == "COMMIT" { throw TestFailure(reason: "crash before commit") }
            }
            #expect(throws: TestFailure.self) {
                try db.transaction {
                    try db.execute("INSERT INTO t (a, b) VALUES (1, 'x')")
                }
            }
            #expect(!db.isInTransaction)
            let other = try Database(path: db.path, mode: .readOnly)
            #expect(try other.prepare("SELECT count(*) FROM t").scalar() == .integer(0))
        }
    }

    @Test("a read transaction always ends, even when its COMMIT fails, so later writes commit")
    func readTransactionEndsWhenCommitFails() throws {
        try withTemporaryDirectory { directory in
            let db = try makeDatabase(at: directory)
            db.faultInjector = { sql in
                if sql == "COMMIT" { throw TestFailure(reason: "crash at commit") }
            }
            #expect(throws: TestFailure.self) {
                try db.readTransaction { try db.prepare("SELECT count(*) FROM t").scalar() }
            }
            db.faultInjector = nil
            #expect(!db.isInTransaction, "a read transaction left open turns later writes into savepoints never committed")
            try db.transaction { try db.execute("INSERT INTO t (a, b) VALUES (1, 'x')") }
            let other = try Database(path: db.path, mode: .readOnly)
            #expect(try other.prepare("SELECT count(*) FROM t").scalar() == .integer(1), "the write is durable for another connection")
        }
    }

    @Test("a read transaction sees one snapshot and, inside a transaction, just runs its body")
    func readTransactionSnapshot() throws {
        try withTemporaryDirectory { directory in
            let db = try makeDatabase(at: directory)
            try db.execute("PRAGMA journal_mode = WAL")
            let writer = try Database(path: db.path)
            let seen: [Int64?] = try db.readTransaction {
                let first = try db.prepare("SELECT count(*) FROM t").scalar()?.int64Value
                try writer.execute("INSERT INTO t (a, b) VALUES (1, 'x')")
                return [first, try db.prepare("SELECT count(*) FROM t").scalar()?.int64Value]
            }
            #expect(seen == [0, 0])
            #expect(!db.isInTransaction)
            try db.transaction {
                _ = try db.readTransaction { try db.prepare("SELECT 1").scalar() }
                #expect(db.isInTransaction, "the outer transaction is left to its owner")
            }
        }
    }

    @Test("faultInjector blocks the statement it throws for")
    func faultInjectorBlocksStatement() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (a)")
        db.faultInjector = { _ in throw TestFailure(reason: "no") }
        #expect(throws: TestFailure.self) { try db.execute("INSERT INTO t VALUES (1)") }
        #expect(throws: TestFailure.self) { try db.prepare("INSERT INTO t VALUES (2)").run() }
        db.faultInjector = nil
        #expect(try db.prepare("SELECT count(*) FROM t").scalar() == .integer(0))
    }
}
