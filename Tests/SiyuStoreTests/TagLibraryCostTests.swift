import Testing
import SiyuCore
@testable import SiyuStore

/// A tag-library write re-merges the customers holding the tag only when it changes what their
/// merge reads (group, exclusive flag, deletion): renaming a tag held by many customers costs one
/// instance, not every holder.
@Suite struct TagLibraryCostTests {
    @Test func renamingATagReMergesNoneOfItsHoldersAndDeletingItReMergesThemAll() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        let hq = c["hq"], xihu = c["xihu"]
        try hq.defineTagGroup("pref", name: "消费偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        for i in 0..<200 {
            try hq.createCustomer("c\(i)", ["name": .text("客户\(i)")], by: "zhaolei")
            try hq.addTag("tea", to: "c\(i)", by: "zhaolei")
        }
        try c.syncAll()
        try hq.defineTag("tea", group: "pref", name: "绿茶")   // a rename
        xihu.opsReadForMerging = 0
        try c.send("hq", to: "xihu")
        #expect(xihu.opsReadForMerging < 20, "a rename re-merged holders: \(xihu.opsReadForMerging) ops read")
        #expect(try xihu.rows(of: .tags).first?["name"] == .text("绿茶"))
        #expect(try xihu.rows(of: .customerTags).count == 200)

        try hq.deleteTag("tea")
        xihu.opsReadForMerging = 0
        try c.send("hq", to: "xihu")
        #expect(xihu.opsReadForMerging >= 400)   // every holder: its create and its tag add
        #expect(try xihu.rows(of: .customerTags).isEmpty)
        let incremental = try xihu.digest()
        try xihu.rebuild()
        #expect(try xihu.digest() == incremental)
    }

    /// The library as it was is taken before the commit stores its ops: a replica just opened
    /// (nothing cached) that receives a tag deletion still re-merges the holders.
    @Test func aDeletionReceivedByAFreshlyOpenedReplicaStillReMergesTheHolders() throws {
        let c = try Cluster([("hq", .hq), ("xihu", .store)])
        let hq = c["hq"]
        try hq.defineTagGroup("pref", name: "消费偏好")
        try hq.defineTag("tea", group: "pref", name: "茶")
        try hq.createCustomer("c1", ["name": .text("林小文")], by: "zhaolei")
        try hq.addTag("tea", to: "c1", by: "zhaolei")
        try c.syncAll()
        try hq.deleteTag("tea")
        let deletion = try hq.changeSet(since: try c["xihu"].versionVector())
        c["xihu"].close()
        let reopened = try Replica(existing: c.path("xihu"))
        defer { reopened.close() }
        try reopened.apply(deletion)
        #expect(try reopened.rows(of: .customerTags).isEmpty)
        let incremental = try reopened.digest()
        try reopened.rebuild()
        #expect(try reopened.digest() == incremental)
    }
}
