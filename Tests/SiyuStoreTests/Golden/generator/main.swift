// Writes a small replica file with the Siyu commit this is built at (Tests/SiyuStoreTests/Golden/README.md).
// Usage: golden OUT-DIR   → OUT-DIR/hq.db (HQ, holds every op) and OUT-DIR/xihu.db (a store).
import Foundation
import SiyuCore
import SiyuStore

let out = CommandLine.arguments[1]
var now: UInt64 = 1_764_000_000_000
func options(_ node: String, _ role: Role) -> ReplicaOptions {
    ReplicaOptions(node: node, role: role, wallClock: { now })
}
let hq = try Replica(path: out + "/hq.db", options: options("hq", .hq))
let xihu = try Replica(path: out + "/xihu.db", options: options("xihu", .store))
func tick() { now += 7 }
func send(_ a: Replica, _ b: Replica) throws { tick(); try b.apply(try a.changeSet(since: try b.versionVector())) }

try hq.defineStore("xihu", name: "西湖店", region: "杭州"); tick()
try hq.defineStaff("zhaolei", name: "赵磊", storeID: nil); tick()
try hq.defineStaff("chenjing", name: "陈静", storeID: "xihu"); tick()
try hq.defineTagGroup("g_level", name: "会员等级", exclusive: true); tick()
try hq.defineTag("t_silver", group: "g_level", name: "银卡"); tick()
try hq.defineTag("t_gold", group: "g_level", name: "金卡"); tick()
try hq.defineTagGroup("g_pref", name: "偏好"); tick()
try hq.defineTag("t_tea", group: "g_pref", name: "茶饮"); tick()
try hq.createCustomer("wm_lin", ["name": .text("林小文"), "phone": .text("13800000001"), "owner_store": .text("xihu")], by: "zhaolei"); tick()
try hq.createCustomer("wm_zhou", ["name": .text("周子豪"), "gender": .int(1)], by: "zhaolei"); tick()
try hq.createCustomer("wm_ma", ["name": .text("马一鸣")], by: "zhaolei"); tick()
try hq.addTag("t_tea", to: "wm_lin", by: "zhaolei"); tick()
try hq.createOrder("o_1", ["customer_id": .text("wm_lin"), "store_id": .text("xihu")], by: "zhaolei"); tick()
try hq.setOrderLine("l1", of: "o_1", ["sku": .text("sku-1"), "qty": .int(2), "unit_price_cents": .int(1500)], by: "zhaolei"); tick()
try hq.awardPoints(100, to: "wm_lin", by: "zhaolei"); tick()
try send(hq, xihu)
// Offline on both sides: a phone edit on each (lww), a level tag on each (exclusive group).
try xihu.editCustomer("wm_lin", ["phone": .text("13800000011")], by: "chenjing"); tick()
try hq.editCustomer("wm_lin", ["phone": .text("13900000022")], by: "zhaolei"); tick()
try xihu.addTag("t_silver", to: "wm_zhou", by: "chenjing"); tick()
try hq.addTag("t_gold", to: "wm_zhou", by: "zhaolei"); tick()
try xihu.awardPoints(20, to: "wm_lin", by: "chenjing"); tick()
try xihu.moveOrder("o_1", to: .placed, by: "chenjing"); tick()
try send(xihu, hq)
try send(hq, xihu)
for r in [hq, xihu] {
    let counts = try r.opCounts()
    print("\(r.node): schema \(try r.schemaVersion()) ops \(counts.total) own \(counts.own) conflicts \(try r.conflicts().count) digest \(try r.digest().map { String(format: "%02x", $0) }.joined())")
    r.close()
}
