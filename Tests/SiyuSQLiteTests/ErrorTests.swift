import Foundation
import Testing
@testable import SiyuSQLite
import SiyuTestSupport

@Suite("Errors")
struct ErrorTests {
    @Test("a constraint error carries codes, SQLite's message and the SQL")
    func constraintErrorDescription() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (a UNIQUE)")
        let sql = "INSERT INTO t (a) VALUES (?)"
        try db.prepare(sql).run([.integer(1)])
        let error = try #require(throws: SQLiteError.self) {
            try db.prepare(sql).run([.integer(1)])
        }
        #expect(error.code == .constraint)
        #expect(error.extendedCode == .constraintUnique && error.extendedCode.rawValue == 2067)
        #expect(error.message == "UNIQUE constraint failed: t.a")
        #expect(error.sql == sql)
        #expect(error.isConstraintViolation)
        #expect(!error.isBusy && !error.isNotADatabase)
        #expect(error.description == "SQLite error 19 (constraint): UNIQUE constraint failed: t.a — in: \(sql)")
    }

    @Test("a result code matches its family as a pattern, an extended code only itself")
    func resultCodesMatchAsPatterns() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (a UNIQUE NOT NULL)")
        try db.execute("INSERT INTO t (a) VALUES (1)")
        func outcome(_ sql: String) -> String {
            do { try db.execute(sql); return "ok" }
            catch ResultCode.constraintNotNull { return "not null" }
            catch ResultCode.constraint { return "other constraint" }
            catch { return "other" }
        }
        #expect(outcome("INSERT INTO t (a) VALUES (NULL)") == "not null")
        #expect(outcome("INSERT INTO t (a) VALUES (1)") == "other constraint")
        #expect(outcome("INSERT INTO missing VALUES (1)") == "other")
        #expect(ResultCode.constraintUnique.primary == .constraint && ResultCode.busy.primary == .busy)
        #expect(ResultCode.constraintUnique != .constraint)
        #expect(ResultCode.busy.text == "database is locked")
    }

    @Test("syntax errors from prepare and execute carry the SQL and the message")
    func syntaxErrors() throws {
        let db = try Database(path: ":memory:")
        let prepareError = try #require(throws: SQLiteError.self) { try db.prepare("SELEC 1") }
        #expect(prepareError.code == .error)
        #expect(prepareError.description.contains("SELEC 1"))
        #expect(prepareError.description.contains("syntax error"))

        let executeError = try #require(throws: SQLiteError.self) { try db.execute("CREATE TABLE x (a); DROP TABLE missing") }
        #expect(executeError.message.contains("no such table: missing"))
        #expect(executeError.sql == "CREATE TABLE x (a); DROP TABLE missing")
    }

    @Test("a file of random bytes opens, then the first query throws isNotADatabase")
    func notADatabase() throws {
        try withTemporaryDirectory { directory in
            let url = directory.url(for: "garbage.sqlite")
            var generator = SystemRandomNumberGenerator()
            var bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
            bytes[0] = 0x00  // can never be the "SQLite format 3" header
            try Data(bytes).write(to: url)

            let db = try Database(path: url.path)
            let error = try #require(throws: SQLiteError.self) {
                try db.prepare("SELECT count(*) FROM sqlite_master").scalar()
            }
            #expect(error.isNotADatabase)
            #expect(error.code == .notADatabase)
        }
    }

    @Test("readWrite and readOnly modes refuse a missing file; readWriteCreate creates it")
    func missingFile() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("missing.sqlite")
            let error = try #require(throws: SQLiteError.self) { try Database(path: path, mode: .readWrite) }
            #expect(error.code == .cantOpen)
            #expect(error.description.contains(path))
            #expect(throws: SQLiteError.self) { try Database(path: path, mode: .readOnly) }
            #expect(!FileManager.default.fileExists(atPath: path))

            _ = try Database(path: path, mode: .readWriteCreate)
            #expect(FileManager.default.fileExists(atPath: path))
            _ = try Database(path: path, mode: .readWrite)
        }
    }

    @Test("writing through a read-only connection throws a readonly error")
    func readOnlyWrite() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("ro.sqlite")
            try Database(path: path).execute("CREATE TABLE t (a)")
            let db = try Database(path: path, mode: .readOnly)
            let error = try #require(throws: SQLiteError.self) { try db.execute("INSERT INTO t VALUES (1)") }
            #expect(error.code == .readOnly)
        }
    }

    @Test("a second writer gets isBusy once the busy timeout expires")
    func busy() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("busy.sqlite")
            let first = try Database(path: path)
            try first.execute("CREATE TABLE t (a); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
            let second = try Database(path: path)
            try second.execute("PRAGMA busy_timeout = 50")
            let error = try #require(throws: SQLiteError.self) { try second.execute("BEGIN IMMEDIATE") }
            #expect(error.isBusy)
            try first.execute("COMMIT")
        }
    }
}
