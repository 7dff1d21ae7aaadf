/// A materialised table: a plain SQLite table named after the entity, that `sqlite3` reads naturally.
/// Every table's first column is the id of the instance its rows belong to.
public enum Table: String, Sendable, CaseIterable {
    case stores, staff, customers
    case followRelations = "follow_relations"
    case tagGroups = "tag_groups"
    case tags
    case customerTags = "customer_tags"
    case groupChats = "group_chats"
    case groupMembers = "group_members"
    case orders
    case orderLines = "order_lines"
    case points

    /// A column: name and whether it holds integers (otherwise text).
    public struct Column: Sendable {
        public let name: String
        public let isInteger: Bool
    }

    private static func cols(_ spec: String) -> [Column] {
        spec.split(separator: " ").map { part in
            part.hasSuffix(":i") ? Column(name: String(part.dropLast(2)), isInteger: true)
                                 : Column(name: String(part), isInteger: false)
        }
    }

    /// The table's columns, in order (computed once per table).
    public var columns: [Column] { Table.columnCache[self]! }

    private static let columnCache: [Table: [Column]] = Dictionary(uniqueKeysWithValues: allCases.map { ($0, $0.columnSpec) })

    private var columnSpec: [Column] {
        switch self {
        case .stores: return Table.cols("store_id name region")
        case .staff: return Table.cols("userid name store_id")
        case .customers: return Table.cols("customer_id name gender:i phone unionid owner_store owner_staff deleted:i")
        case .followRelations: return Table.cols("customer_id userid remark description add_way:i createtime:i state")
        case .tagGroups: return Table.cols("group_id name sort_order:i exclusive:i deleted:i")
        case .tags: return Table.cols("tag_id group_id name sort_order:i deleted:i")
        case .customerTags: return Table.cols("customer_id tag_id added_by added_node added_at:i")
        case .groupChats: return Table.cols("chat_id name owner notice capacity:i")
        case .groupMembers: return Table.cols("chat_id member_id member_type:i join_time:i join_scene:i invitor nickname overflow:i")
        case .orders: return Table.cols("order_id customer_id store_id staff_id address note status")
        case .orderLines: return Table.cols("order_id line_id sku qty:i unit_price_cents:i")
        case .points: return Table.cols("customer_id balance:i awarded:i redeemed:i")
        }
    }

    /// How many leading columns form the primary key.
    public var keyColumnCount: Int {
        switch self {
        case .followRelations, .customerTags, .groupMembers, .orderLines: return 2
        default: return 1
        }
    }

    /// The instance kind whose merge writes this table.
    public var instanceKind: InstanceKind {
        switch self {
        case .stores: return .store
        case .staff: return .staff
        case .customers, .followRelations, .customerTags, .points: return .customer
        case .tagGroups: return .tagGroup
        case .tags: return .tag
        case .groupChats, .groupMembers: return .groupChat
        case .orders, .orderLines: return .order
        }
    }

    public static func tables(of kind: InstanceKind) -> [Table] { allCases.filter { $0.instanceKind == kind } }
}
