/// Every kind of thing an op can change. Sub-entities (a follow relation, a customer's tag, a group
/// member, an order line) belong to a top-level *instance* (customer, group chat, order), and the
/// instance is the unit of merging: its materialised rows and conflicts are a function of its ops.
public enum Entity: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case store = 1
    case staff = 2
    case customer = 3
    case followRelation = 4
    case tagGroup = 5
    case tag = 6
    case customerTag = 7
    case groupChat = 8
    case groupMember = 9
    case order = 10
    case orderLine = 11
    case points = 12

    public var name: String {
        switch self {
        case .store: return "store"
        case .staff: return "staff"
        case .customer: return "customer"
        case .followRelation: return "follow_relation"
        case .tagGroup: return "tag_group"
        case .tag: return "tag"
        case .customerTag: return "customer_tag"
        case .groupChat: return "group_chat"
        case .groupMember: return "group_member"
        case .order: return "order"
        case .orderLine: return "order_line"
        case .points: return "points"
        }
    }

    public var description: String { name }

    public init?(name: String) {
        guard let e = Entity.allCases.first(where: { $0.name == name }) else { return nil }
        self = e
    }

    /// The instance this entity's ops are merged with.
    public var instanceKind: InstanceKind {
        switch self {
        case .store: return .store
        case .staff: return .staff
        case .customer, .followRelation, .customerTag, .points: return .customer
        case .tagGroup: return .tagGroup
        case .tag: return .tag
        case .groupChat, .groupMember: return .groupChat
        case .order, .orderLine: return .order
        }
    }

    /// Whether the entity is keyed by (instance id, sub id).
    public var hasSub: Bool {
        switch self {
        case .followRelation, .customerTag, .groupMember, .orderLine: return true
        default: return false
        }
    }

    /// Tag library entities: written by HQ only.
    public var isTagLibrary: Bool { self == .tag || self == .tagGroup }

    /// The LWW fields of the entity, with their rules.
    public var fields: [FieldSpec] { FieldSpec.table[self] ?? [] }

    public func field(named name: String) -> FieldSpec? { fields.first { $0.name == name } }
}

/// The unit of merging: a top-level record and everything that belongs to it.
public enum InstanceKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case store = 1, staff, tagGroup, tag, customer, groupChat, order

    public var name: String {
        switch self {
        case .store: return "store"
        case .staff: return "staff"
        case .tagGroup: return "tag_group"
        case .tag: return "tag"
        case .customer: return "customer"
        case .groupChat: return "group_chat"
        case .order: return "order"
        }
    }

    public var description: String { name }

    public init?(name: String) {
        guard let k = InstanceKind.allCases.first(where: { $0.name == name }) else { return nil }
        self = k
    }

    /// Instances are merged in this order within one apply, so that the tag library is settled
    /// before the customers whose tags depend on it.
    public var mergeRank: Int { Int(rawValue) }
}

/// One top-level record: what gets re-merged when any of its ops arrives.
public struct InstanceRef: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var kind: InstanceKind
    public var id: String

    public init(_ kind: InstanceKind, _ id: String) {
        self.kind = kind
        self.id = id
    }

    public static func < (a: InstanceRef, b: InstanceRef) -> Bool {
        a.kind != b.kind ? a.kind.mergeRank < b.kind.mergeRank : a.id < b.id
    }

    public var description: String { "\(kind.name) \(id)" }
}

/// What an op changes: an entity, its id, and for sub-entities the sub id
/// (follow relation → staff userid, customer tag → tag id, group member → member id, order line → line id).
public struct Target: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var entity: Entity
    public var id: String
    public var sub: String

    public init(_ entity: Entity, _ id: String, _ sub: String = "") {
        self.entity = entity
        self.id = id
        self.sub = sub
    }

    public var instance: InstanceRef { InstanceRef(entity.instanceKind, id) }

    public static func < (a: Target, b: Target) -> Bool {
        (a.entity.rawValue, a.id, a.sub) < (b.entity.rawValue, b.id, b.sub)
    }

    public var description: String { sub.isEmpty ? "\(entity.name) \(id)" : "\(entity.name) \(id)/\(sub)" }
}
