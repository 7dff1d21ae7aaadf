/// What customer merges need to know about a tag: its group, whether the group is exclusive, and
/// whether (and by which write) HQ deleted the tag or its group.
public struct TagInfo: Hashable, Sendable {
    public var groupID: String?
    public var exclusive: Bool
    public var deletedBy: ConflictSide?

    public init(groupID: String?, exclusive: Bool, deletedBy: ConflictSide?) {
        self.groupID = groupID
        self.exclusive = exclusive
        self.deletedBy = deletedBy
    }

    public var isDeleted: Bool { deletedBy != nil }
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
        return TagInfo(groupID: tag.groupID, exclusive: group?.exclusive ?? false,
                       deletedBy: tag.deletedBy ?? group?.deletedBy)
    }
}

/// A merged tag definition.
public struct TagDefinition: Hashable, Sendable {
    public var id: String
    public var groupID: String?
    public var name: String?
    public var deletedBy: ConflictSide?
    public var isDeleted: Bool { deletedBy != nil }
}

/// A merged tag group definition.
public struct TagGroupDefinition: Hashable, Sendable {
    public var id: String
    public var name: String?
    public var exclusive: Bool
    public var deletedBy: ConflictSide?
    public var isDeleted: Bool { deletedBy != nil }
}
