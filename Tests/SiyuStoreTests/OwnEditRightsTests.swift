import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuTestSupport

/// A store node checks its own edits against the write rights of its store (SPEC section 7,
/// "Write rights") before it makes them: a clerk is refused at edit time, nothing is written, and
/// the node's numbering does not move.
@Suite struct OwnEditRightsTests {
    /// A store node of store xihu holding HQ's staff rows and a customer of each store.
    func xihu(_ files: TemporaryDirectory) throws -> Replica {
        let hq = try Replica.create(at: files.path("hq.db"), node: "hq", role: .hq)
        try hq.defineStaff("chenjing", name: "陈静", storeID: "xihu")
        try hq.defineStaff("lina", name: "李娜", storeID: "binjiang")
        try hq.createCustomer("c_b", ["name": .text("周"), "owner_store": .text("binjiang")], by: "")
        let store = try Replica.create(at: files.path("xihu.db"), node: "xihu-1", role: .store, store: "xihu")
        _ = try store.apply(try hq.changeSet(since: VersionVector()))
        hq.close()
        return store
    }

    @Test func aStoreNodeRefusesItsOwnEditOutsideItsScopeAndWritesNothing() throws {
        let files = try TemporaryDirectory()
        defer { files.remove() }
        let store = try xihu(files)
        let before = try store.lastIssuedSeq()
        #expect(throws: ReplicaError.self) { try store.editCustomer("c_b", ["phone": .text("139")], by: "chenjing") }
        #expect(try store.lastIssuedSeq() == before)
        #expect(throws: ReplicaError.self) { try store.createCustomer("c_new", ["name": .text("新")], by: "lina") }
        #expect(throws: ReplicaError.self) { try store.deleteCustomer("c_b", by: "chenjing") }
        #expect(try store.lastIssuedSeq() == before)
    }

    @Test func aStoreNodesNewCustomersAndOrdersAreItsOwn() throws {
        let files = try TemporaryDirectory()
        defer { files.remove() }
        let store = try xihu(files)
        try store.createCustomer("c_new", ["name": .text("新")], by: "chenjing")
        try store.createOrder("o_new", ["customer_id": .text("c_new")], by: "chenjing")
        #expect(try store.heldHome(of: InstanceRef(.customer, "c_new")) == .store("xihu"))
        #expect(try store.heldHome(of: InstanceRef(.order, "o_new")) == .store("xihu"))
        try store.editCustomer("c_new", ["phone": .text("139")], by: "chenjing")
    }
}
