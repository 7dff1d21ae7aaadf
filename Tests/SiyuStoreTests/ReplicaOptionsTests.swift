import Foundation
import Testing
import SiyuCore
import SiyuSQLite
@testable import SiyuStore

/// How a replica sizes SQLite's page cache: by role unless told, so a store node stays small.
@Suite struct ReplicaOptionsTests {
    static func cacheKiB(_ replica: Replica) throws -> Int64 {
        -(try replica.db.prepare("PRAGMA cache_size").scalar()?.int64Value ?? 0)
    }

    @Test func thePageCacheFollowsTheRoleUnlessGiven() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        #expect(try ReplicaOptionsTests.cacheKiB(c["hq"]) == 64 * 1024)
        #expect(try ReplicaOptionsTests.cacheKiB(c["xihu"]) == 16 * 1024)
        // Reopened without a role, a replica takes the role it stores; an explicit size wins.
        c["hq"].close()
        let reopened = try Replica(existing: c.path("hq"))
        #expect(try ReplicaOptionsTests.cacheKiB(reopened) == 64 * 1024)
        reopened.close()
        let sized = try Replica(path: c.path("hq"), options: ReplicaOptions(cacheMegabytes: 8))
        #expect(try ReplicaOptionsTests.cacheKiB(sized) == 8 * 1024)
        sized.close()
    }
}
