/// What customer merges need to know about a tag: its group, whether the group is exclusive, and
/// whether (and by which write) HQ deleted the tag or its group.
public struct TagInfo: Hashable, Sendable {
    public var groupID: String?
    public var exclusive: Bool
    public var deletedBy: ConflictSide?

    /// Per origin, the latest op the deletion had seen.
    public var deletionSeen: [NodeID: Stamp]

    public init(groupID: String?, exclusive: Bool, deletedBy: ConflictSide?, deletionSeen: [NodeID: Stamp] = [:]) {
        self.groupID = groupID
        self.exclusive = exclusive
        self.deletedBy = deletedBy
        self.deletionSeen = deletionSeen
    }

    public var isDeleted: Bool { deletedBy != nil }

    /// Whether the deletion had seen an op: concurrent adds are the ones it had not.
    public func deletionSaw(_ stamp: Stamp) -> Bool {
        deletionSeen[stamp.node].map { stamp <= $0 } ?? false
    }
}

/// The tag library as seen by customer merges. Built from the merged tag and tag-group instances,
/// so it too is a function of the set of ops.
public struct TagCatalog: Sendable {
    public var tags: [String: TagDefinition]
    public var groups: [String: TagGroupDefinition]

    public init(tags: [String: TagDefinition] = [:], groups: [String: TagGroupDefinition] = [:]) {
        self.tags = tags
        self.groups = groups
    }

    public func info(forTag id: String) -> TagInfo? {
        guard let tag = tags[id] else { return nil }
        let group = tag.groupID.flatMap { groups[$0] }
        let deletedBy = tag.deletedBy ?? group?.deletedBy
        return TagInfo(groupID: tag.groupID, exclusive: group?.exclusive ?? false, deletedBy: deletedBy,
                       deletionSeen: tag.deletedBy != nil ? tag.deletionSeen : (group?.deletionSeen ?? [:]))
    }
}

/// A merged tag definition.
public struct TagDefinition: Hashable, Sendable {
    public var id: String
    public var groupID: String?
    public var name: String?
    public var deletedBy: ConflictSide?
    public var deletionSeen: [NodeID: Stamp] = [:]
    public var isDeleted: Bool { deletedBy != nil }
}

/// A merged tag group definition.
public struct TagGroupDefinition: Hashable, Sendable {
    public var id: String
    public var name: String?
    public var exclusive: Bool
    public var deletedBy: ConflictSide?
    public var deletionSeen: [NodeID: Stamp] = [:]
    public var isDeleted: Bool { deletedBy != nil }
}
