import Foundation
import Testing
import SiyuTestSupport

/// `removeDatabaseFiles` deletes a database's file, log and index, and nothing else.
@Suite struct DatabaseFilesTests {
    @Test func theFileItsLogAndItsIndexGoAndTheirNeighboursStay() throws {
        try withTemporaryDirectory { dir in
            for name in ["a.db", "a.db-wal", "a.db-shm", "a.db-journal", "b.db"] {
                try Data(name.utf8).write(to: dir.url(for: name))
            }
            removeDatabaseFiles(atPath: dir.path("a.db"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["a.db-journal", "b.db"])
            removeDatabaseFiles(atPath: dir.path("a.db"))   // none there: no error
        }
    }
}
