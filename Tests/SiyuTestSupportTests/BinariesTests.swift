import Foundation
import Testing
import SiyuTestSupport

/// What `Binaries` promises the tests that start the package's executables.
@Suite struct BinariesTests {
    @Test func anExecutableThatIsNotBesideTheTestsIsRefusedNamingWhereItWasSought() throws {
        let error = try #require(throws: BinaryNotFound.self) { try Binaries.url("siyu-no-such-binary") }
        #expect(error.name == "siyu-no-such-binary" && !error.searched.isEmpty)
        #expect(error.description.contains("siyu-no-such-binary") && error.description.contains(error.searched[0]))
    }
}
