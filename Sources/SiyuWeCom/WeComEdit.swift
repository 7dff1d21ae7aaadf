import SiyuCore

/// What a WeCom payload asks of a replica, as plain values: the mapping's output, applied by the
/// CLI through the replica's edit API. Every id in it passes `IdentifierRule` and every field
/// value passes its `FieldSpec`, so an edit can be refused only by what the replica holds (a
/// deleted customer, a tag name taken in its group).
public enum WeComEdit: Sendable, Equatable {
    /// Define or update a tag group and its tags (deleted ones as tombstones).
    case tagGroup(TagGroupEdit)
    /// Create or update a customer, its follow relations, and the tags each relation holds.
    case customer(CustomerEdit)
    /// Set a group chat and its whole roster as `groupchat/get` returned it.
    case groupChat(GroupChatEdit)
    /// Members joined or left (a `change_external_chat` callback); applied only when
    /// `lastVersion` is the member version the replica recorded for the chat.
    case rosterChange(RosterChange)
    /// A callback said this tag (or tag group) was deleted in WeCom.
    case deleteTag(id: String, isGroup: Bool)
    /// Something the payload does not carry: fetch it from WeCom and import the response.
    case refetch(Refetch)
    /// Something to tell the user (a cursor to page on, a relation WeCom ended).
    case notice(String)
}

public struct TagGroupEdit: Sendable, Equatable {
    public var id: String
    public var name: String
    public var order: Int64
    public var deleted: Bool
    /// Only create the group (and tags) if missing: a rule-group tag seen on a customer, which
    /// `get_corp_tag_list` never lists.
    public var onlyIfMissing: Bool
    public var tags: [TagEdit]
}

public struct TagEdit: Sendable, Equatable {
    public var id: String
    public var name: String
    public var order: Int64
    public var deleted: Bool
}

public struct CustomerEdit: Sendable, Equatable {
    public var id: String
    /// Customer fields to write (name, gender, unionid); a field WeCom did not send is absent.
    public var fields: [String: Value]
    public var relations: [RelationEdit]
    /// Personal tags (type 2) seen and left out: WeCom gives them no id and no API writes them.
    public var personalTagsSkipped: Int
    /// The staff member whose follow relation is the oldest in the payload (earliest createtime;
    /// the first listed on a tie): the owner an import gives a customer that has none yet.
    public var firstFollower: String?
}

public struct RelationEdit: Sendable, Equatable {
    /// The staff member's userid: the follow relation's key, and who applied its tags.
    public var userid: String
    /// remark, description, add_way, createtime, state (an empty string clears: `.null`).
    public var fields: [String: Value]
    /// Corp and rule-group tag ids this relation holds.
    public var tags: [String]
}

public struct GroupChatEdit: Sendable, Equatable {
    public var id: String
    /// name, owner, notice.
    public var fields: [String: Value]
    /// The whole roster: members not in it leave the group.
    public var members: [MemberEdit]
    public var memberVersion: String?
}

public struct MemberEdit: Sendable, Equatable {
    public var id: String
    /// member_type, join_time, join_scene, invitor, nickname.
    public var fields: [String: Value]
}

public struct RosterChange: Sendable, Equatable {
    public var chatID: String
    public var lastVersion: String
    public var currentVersion: String
    public var joined: [String]
    public var left: [String]
    /// The callback's CreateTime, as the joiners' join_time.
    public var time: Int64?
    /// join_scene for joiners: 3 for a QR code; nil when the callback says "invited" (0), which
    /// `groupchat/get` splits into 1 (direct) and 2 (link).
    public var joinScene: Int64?
}

public struct Refetch: Sendable, Equatable {
    /// The WeCom API to call: `externalcontact/get`, `groupchat/get` or `get_corp_tag_list`.
    public var api: String
    /// The id to ask for (external_userid, chat_id, tag or group id; empty for everything).
    public var id: String
    public var reason: String
    /// Only worth fetching if the replica does not know `id` yet (a chat listed by groupchat/list).
    public var onlyIfUnknown: Bool = false

    public init(api: String, id: String, reason: String, onlyIfUnknown: Bool = false) {
        self.api = api; self.id = id; self.reason = reason; self.onlyIfUnknown = onlyIfUnknown
    }
}

/// Conventions Siyu keeps for WeCom data, shared by import and export.
public enum WeComConventions {
    /// Rule-group (type 3) tags are kept in a tag group with this id prefix and the rule
    /// group's name (`rule:会员标签`): WeCom shows only the group's name on a customer's tags,
    /// and `get_corp_tag_list` never lists rule-group tags. Export gives these tags type 3.
    public static let ruleGroupPrefix = "rule:"
}
