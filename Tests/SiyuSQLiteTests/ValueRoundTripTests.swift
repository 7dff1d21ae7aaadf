import Testing
@testable import SiyuSQLite

@Suite("SQLiteValue round trips")
struct ValueRoundTripTests {
    /// Inserts each value into an untyped column (no affinity, so the storage class is kept)
    /// and reads it back through both `rows` and `Row`'s accessors.
    @Test("every value type survives a round trip", arguments: [
        SQLiteValue.null,
        .integer(0), .integer(-1), .integer(Int64.max), .integer(Int64.min),
        .real(3.141592653589793), .real(-0.5), .real(Double.infinity), .real(1e-300),
        .text(""), .text("plain ASCII"), .text("思语 客户数据 — 张三 🙂"), .text("zero\u{0}inside"),
        .blob([]), .blob([0]), .blob([0, 1, 0, 255, 0]), .blob([0xFF, 0x00, 0x80, 0x7F]),
    ])
    func roundTrip(value: SQLiteValue) throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (v)")
        try db.prepare("INSERT INTO t (v) VALUES (?)").run([value])
        let rows = try db.prepare("SELECT v FROM t").rows()
        #expect(rows == [[value]])
    }

    @Test("storage classes are the expected ones, including empty text and empty blob")
    func storageClasses() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
        let insert = try db.prepare("INSERT INTO t (id, v) VALUES (?, ?)")
        let values: [SQLiteValue] = [.null, .integer(7), .real(0.25), .text(""), .blob([])]
        for (offset, value) in values.enumerated() {
            try insert.run([.integer(Int64(offset)), value])
        }
        let types = try db.prepare("SELECT typeof(v) FROM t ORDER BY id").rows().map { $0[0] }
        #expect(types == ["null", "integer", "real", "text", "blob"].map(SQLiteValue.text))
    }

    @Test("Chinese text is bound as UTF-8: SQLite sees characters, not bytes")
    func chineseTextIsUTF8() throws {
        let db = try Database(path: ":memory:")
        let text = "企业微信零售客户"
        let statement = try db.prepare("SELECT length(?1), length(CAST(?1 AS BLOB)), ?1 || '！'")
        var checked = false
        try statement.query([.text(text)]) { row in
            #expect(row.int64(0) == 8)
            #expect(row.int64(1) == Int64(text.utf8.count))
            #expect(row.text(2) == text + "！")
            checked = true
        }
        #expect(checked)
    }

    @Test("blobs with zero bytes keep their length and content")
    func blobWithZeroBytes() throws {
        let db = try Database(path: ":memory:")
        let bytes: [UInt8] = [0, 0, 0x53, 0, 0x51, 0, 0]
        let statement = try db.prepare("SELECT length(?1), hex(?1), ?1")
        var checked = false
        try statement.query([.blob(bytes)]) { row in
            #expect(row.int64(0) == 7)
            #expect(row.text(1) == "00005300510000")
            #expect(row.blob(2) == bytes)
            checked = true
        }
        #expect(checked)

        let large = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try db.prepare("SELECT ?").scalar([.blob(large)]) == .blob(large))
    }

    @Test("Row accessors: names, NULL handling, out-of-range indexes")
    func rowAccessors() throws {
        let db = try Database(path: ":memory:")
        let statement = try db.prepare("SELECT 42 AS answer, NULL AS missing, '客户' AS 名字, x'' AS empty")
        var visited = 0
        try statement.query { row in
            visited += 1
            #expect(row.columnCount == 4)
            #expect(row.columnName(0) == "answer")
            #expect(row.columnName(2) == "名字")
            #expect(row.int64(0) == 42)
            #expect(row[0] == .integer(42))
            #expect(row.isNull(1))
            #expect(row.text(1) == nil)
            #expect(row.blob(1) == [])
            #expect(row[1] == .null)
            #expect(row.text(2) == "客户")
            #expect(row.blob(3) == [])
            #expect(!row.isNull(3))
            // Invalid indexes read as NULL instead of trapping.
            #expect(row[99] == .null)
            #expect(row[-1] == .null)
            #expect(row.columnName(99) == "")
            #expect(row.isNull(4))
        }
        #expect(visited == 1)
    }

    @Test("a Row kept after its callback reads as NULL instead of touching a reset statement")
    func staleRowIsHarmless() throws {
        let db = try Database(path: ":memory:")
        let statement = try db.prepare("SELECT 1, 'x'")
        var kept: Row?
        try statement.query { row in kept = row }
        let row = try #require(kept)
        #expect(row[0] == .null)
        #expect(row.text(1) == nil)
        statement.finalize()
        #expect(row.int64(0) == 0)
    }
}
