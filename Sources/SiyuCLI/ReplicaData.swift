import Foundation
import SiyuCore
import SiyuStore

/// The plain tables of a replica, read once, as the typed records the query commands print.
struct ReplicaData {
    let replica: Replica
    private var cache: [Table: [[String: Value]]] = [:]

    init(_ replica: Replica) throws {
        self.replica = replica
    }

    mutating func rows(_ table: Table) throws -> [[String: Value]] {
        if let hit = cache[table] { return hit }
        let rows = try replica.rows(of: table)
        cache[table] = rows
        return rows
    }

    // MARK: Customers

    mutating func customers() throws -> [CustomerJSON] {
        try customers(from: try rows(.customers))
    }

    /// The customers of `selected` (customers rows, as `Replica.customerRows` finds them), with
    /// their tags, points and follow relations: looked up one customer at a time for a few, read
    /// whole for many.
    mutating func customers(from selected: [[String: Value]]) throws -> [CustomerJSON] {
        let tags = Dictionary(try rows(.tags).map { ($0.text("tag_id") ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        var tagRows: [[String: Value]] = [], pointRows: [[String: Value]] = [], followRows: [[String: Value]] = []
        if selected.count <= 1_000 {
            for c in selected {
                let id = c.text("customer_id") ?? ""
                tagRows += try replica.rows(of: .customerTags, where: "customer_id", equals: id)
                pointRows += try replica.rows(of: .points, where: "customer_id", equals: id)
                followRows += try replica.rows(of: .followRelations, where: "customer_id", equals: id)
            }
        } else {
            (tagRows, pointRows, followRows) = (try rows(.customerTags), try rows(.points), try rows(.followRelations))
        }
        let tagsByCustomer = Dictionary(grouping: tagRows, by: { $0.text("customer_id") ?? "" })
        let points = Dictionary(pointRows.map { ($0.text("customer_id") ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        let follows = Dictionary(grouping: followRows, by: { $0.text("customer_id") ?? "" })
        return selected.map { c in
            let id = c.text("customer_id") ?? ""
            return CustomerJSON(
                id: id, name: c.text("name"), gender: c.int("gender"), phone: c.text("phone"), unionid: c.text("unionid"),
                ownerStore: c.text("owner_store"), ownerStaff: c.text("owner_staff"), deleted: c.int("deleted") == 1,
                tags: (tagsByCustomer[id] ?? []).map { t in
                    let tagID = t.text("tag_id") ?? ""
                    return CustomerTagJSON(tagId: tagID, name: tags[tagID]?.text("name"), groupId: tags[tagID]?.text("group_id"),
                                           addedBy: t.text("added_by") ?? "", addedNode: t.text("added_node") ?? "",
                                           addedAt: ClockJSON.iso(UInt64(max(0, t.int("added_at") ?? 0))),
                                           addedAtMillis: t.int("added_at") ?? 0)
                },
                points: points[id].map { PointsJSON(balance: $0.int("balance") ?? 0, awarded: $0.int("awarded") ?? 0, redeemed: $0.int("redeemed") ?? 0) },
                followRelations: (follows[id] ?? []).map { f in
                    FollowRelationJSON(userid: f.text("userid") ?? "", remark: f.text("remark"), description: f.text("description"),
                                       addWay: f.int("add_way"), createtime: f.int("createtime"), state: f.text("state"))
                })
        }
    }

    // MARK: Tags

    mutating func tagLibrary() throws -> [TagGroupJSON] {
        var holders: [String: Int] = [:]
        for row in try rows(.customerTags) { holders[row.text("tag_id") ?? "", default: 0] += 1 }
        let tagsByGroup = Dictionary(grouping: try rows(.tags), by: { $0.text("group_id") ?? "" })
        func tag(_ t: [String: Value]) -> TagJSON {
            let id = t.text("tag_id") ?? ""
            return TagJSON(id: id, name: t.text("name"), sortOrder: t.int("sort_order") ?? 0, deleted: t.int("deleted") == 1,
                           customers: holders[id] ?? 0)
        }
        func sorted(_ tags: [[String: Value]]) -> [TagJSON] {
            tags.map(tag).sorted { $0.sortOrder != $1.sortOrder ? $0.sortOrder > $1.sortOrder : $0.id < $1.id }
        }
        var out: [TagGroupJSON] = try rows(.tagGroups).map { g in
            let id = g.text("group_id") ?? ""
            return TagGroupJSON(id: id, name: g.text("name"), sortOrder: g.int("sort_order") ?? 0, exclusive: g.int("exclusive") == 1,
                                deleted: g.int("deleted") == 1, tags: sorted(tagsByGroup[id] ?? []))
        }
        let known = Set(out.map(\.id))
        for (group, tags) in tagsByGroup.sorted(by: { $0.key < $1.key }) where !known.contains(group) {
            out.append(TagGroupJSON(id: group, name: nil, sortOrder: 0, exclusive: false, deleted: false, tags: sorted(tags)))
        }
        return out.sorted { $0.sortOrder != $1.sortOrder ? $0.sortOrder > $1.sortOrder : $0.id < $1.id }
    }

    // MARK: Group chats

    mutating func groupChats() throws -> [GroupChatJSON] {
        let members = Dictionary(grouping: try rows(.groupMembers), by: { $0.text("chat_id") ?? "" })
        return try rows(.groupChats).map { g in
            let id = g.text("chat_id") ?? ""
            let roster = (members[id] ?? []).map { m in
                MemberJSON(memberId: m.text("member_id") ?? "", memberType: m.int("member_type"), joinTime: m.int("join_time"),
                           joinScene: m.int("join_scene"), invitor: m.text("invitor"), nickname: m.text("nickname"),
                           overflow: m.int("overflow") == 1)
            }
            return GroupChatJSON(id: id, name: g.text("name"), owner: g.text("owner"), notice: g.text("notice"),
                                 capacity: g.int("capacity") ?? InstanceState.defaultCapacity,
                                 memberCount: roster.filter { !$0.overflow }.count,
                                 overflowCount: roster.filter(\.overflow).count, members: roster)
        }
    }

    // MARK: Orders

    mutating func orders() throws -> [OrderJSON] {
        let lines = Dictionary(grouping: try rows(.orderLines), by: { $0.text("order_id") ?? "" })
        return try rows(.orders).map { o in
            let id = o.text("order_id") ?? ""
            let l = (lines[id] ?? []).map { line -> OrderLineJSON in
                let qty = line.int("qty"), price = line.int("unit_price_cents")
                let (amount, overflow) = (qty ?? 0).multipliedReportingOverflow(by: price ?? 0)
                return OrderLineJSON(lineId: line.text("line_id") ?? "", sku: line.text("sku"), qty: qty, unitPriceCents: price,
                                     amountCents: overflow ? nil : amount)
            }
            let total = l.reduce(Int64(0)) { sum, line in sum.addingReportingOverflow(line.amountCents ?? 0).partialValue }
            return OrderJSON(id: id, customerId: o.text("customer_id"), storeId: o.text("store_id"), staffId: o.text("staff_id"),
                             address: o.text("address"), note: o.text("note"), status: o.text("status") ?? "draft",
                             totalCents: total, lines: l)
        }
    }
}

extension Dictionary where Key == String, Value == SiyuCore.Value {
    /// The text in `column`, nil when null.
    func text(_ column: String) -> String? {
        guard let v = self[column], v != .null else { return nil }
        return v.textValue ?? v.description
    }

    /// The integer in `column`, nil when null.
    func int(_ column: String) -> Int64? { self[column]?.intValue }
}

/// One customer. Fields: `id`, `name`, `gender` (0 unknown, 1 male, 2 female), `phone`, `unionid`,
/// `owner_store`, `owner_staff`, `deleted`, `tags`, `points` (null when never awarded),
/// `follow_relations`.
struct CustomerJSON: Encodable {
    var id: String
    var name: String?
    var gender: Int64?
    var phone: String?
    var unionid: String?
    var ownerStore: String?
    var ownerStaff: String?
    var deleted: Bool
    var tags: [CustomerTagJSON]
    var points: PointsJSON?
    var followRelations: [FollowRelationJSON]
}

/// A tag a customer holds: `tag_id`, `name`, `group_id`, who applied it (`added_by`, the staff
/// userid; `added_node`) and when (`added_at`, ISO 8601).
struct CustomerTagJSON: Encodable {
    var tagId: String
    var name: String?
    var groupId: String?
    var addedBy: String
    var addedNode: String
    var addedAt: String
    /// `added_at` for the text output (not in the JSON).
    var addedAtMillis: Int64

    enum CodingKeys: String, CodingKey { case tagId, name, groupId, addedBy, addedNode, addedAt }
}

/// Points: `balance` = `awarded` − `redeemed`.
struct PointsJSON: Encodable {
    var balance: Int64
    var awarded: Int64
    var redeemed: Int64
}

/// A follow relation (customer ↔ staff member): `userid`, `remark`, `description`, `add_way`,
/// `createtime` (Unix seconds), `state`.
struct FollowRelationJSON: Encodable {
    var userid: String
    var remark: String?
    var description: String?
    var addWay: Int64?
    var createtime: Int64?
    var state: String?
}

/// A tag group: `id`, `name`, `sort_order`, `exclusive` (at most one of its tags per customer),
/// `deleted`, `tags`.
struct TagGroupJSON: Encodable {
    var id: String
    var name: String?
    var sortOrder: Int64
    var exclusive: Bool
    var deleted: Bool
    var tags: [TagJSON]
}

/// A tag: `id`, `name`, `sort_order`, `deleted`, `customers` (how many customers show it).
struct TagJSON: Encodable {
    var id: String
    var name: String?
    var sortOrder: Int64
    var deleted: Bool
    var customers: Int
}

/// A group chat: `id`, `name`, `owner`, `notice`, `capacity`, `member_count` (members within
/// capacity), `overflow_count`, `members`.
struct GroupChatJSON: Encodable {
    var id: String
    var name: String?
    var owner: String?
    var notice: String?
    var capacity: Int64
    var memberCount: Int
    var overflowCount: Int
    var members: [MemberJSON]
}

/// A member of a group chat: `member_id`, `member_type` (1 staff, 2 customer), `join_time` (Unix
/// seconds), `join_scene`, `invitor`, `nickname`, `overflow` (joined beyond capacity).
struct MemberJSON: Encodable {
    var memberId: String
    var memberType: Int64?
    var joinTime: Int64?
    var joinScene: Int64?
    var invitor: String?
    var nickname: String?
    var overflow: Bool
}

/// An order: `id`, `customer_id`, `store_id`, `staff_id`, `address`, `note`, `status`,
/// `total_cents`, `lines`.
struct OrderJSON: Encodable {
    var id: String
    var customerId: String?
    var storeId: String?
    var staffId: String?
    var address: String?
    var note: String?
    var status: String
    var totalCents: Int64
    var lines: [OrderLineJSON]
}

/// An order line: `line_id`, `sku`, `qty`, `unit_price_cents`, `amount_cents` (qty × price).
struct OrderLineJSON: Encodable {
    var lineId: String
    var sku: String?
    var qty: Int64?
    var unitPriceCents: Int64?
    var amountCents: Int64?
}
