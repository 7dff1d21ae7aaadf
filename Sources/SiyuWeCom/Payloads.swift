import Foundation

/// A WeCom integer: a JSON number, or a string of decimal digits (batch responses have been seen
/// sending `gender` as a string). Encodes as a number.
public struct WeComInt: Codable, Hashable, Sendable, ExpressibleByIntegerLiteral {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }
    public init(integerLiteral value: Int64) { self.value = value }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int64.self) { value = n; return }
        if let s = try? c.decode(String.self), s.utf8.count <= 20, let n = Int64(s.trimmingCharacters(in: .whitespaces)) {
            value = n
            return
        }
        throw DecodingError.typeMismatch(WeComInt.self, DecodingError.Context(
            codingPath: decoder.codingPath, debugDescription: "expected an integer (a number or a string of digits)"))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value)
    }
}

// MARK: Corp tags (get_corp_tag_list)

/// `get_corp_tag_list`'s response: `{tag_group: [...]}`.
public struct CorpTagList: Codable, Sendable, Equatable {
    public var errcode: WeComInt?
    public var errmsg: String?
    public var tag_group: [CorpTagGroup]

    public init(tag_group: [CorpTagGroup]) { self.errcode = 0; self.errmsg = "ok"; self.tag_group = tag_group }
}

public struct CorpTagGroup: Codable, Sendable, Equatable {
    public var group_id: String
    public var group_name: String
    public var create_time: WeComInt?
    public var order: WeComInt?
    public var deleted: Bool?
    public var tag: [CorpTag]?

    public init(group_id: String, group_name: String, order: WeComInt?, deleted: Bool?, tag: [CorpTag]?) {
        self.group_id = group_id; self.group_name = group_name; self.order = order; self.deleted = deleted; self.tag = tag
    }
}

public struct CorpTag: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var create_time: WeComInt?
    public var order: WeComInt?
    public var deleted: Bool?

    public init(id: String, name: String, order: WeComInt?, deleted: Bool?) {
        self.id = id; self.name = name; self.order = order; self.deleted = deleted
    }
}

// MARK: Customers (externalcontact/get, batch/get_by_user)

/// `external_contact`: the customer. `external_profile` and `avatar` are read past, not kept.
public struct ExternalContact: Codable, Sendable, Equatable {
    public var external_userid: String
    public var name: String?
    public var type: WeComInt?
    public var gender: WeComInt?
    public var unionid: String?
    public var position: String?
    public var corp_name: String?

    public init(external_userid: String, name: String?, gender: WeComInt?, unionid: String?) {
        self.external_userid = external_userid; self.name = name; self.gender = gender; self.unionid = unionid
    }
}

/// One tag on a follow relation in `externalcontact/get`: type 1 corp tag, 2 personal (no id),
/// 3 rule-group tag.
public struct FollowUserTag: Codable, Sendable, Equatable {
    public var group_name: String?
    public var tag_name: String?
    public var type: WeComInt?
    public var tag_id: String?

    public init(group_name: String?, tag_name: String?, type: WeComInt?, tag_id: String?) {
        self.group_name = group_name; self.tag_name = tag_name; self.type = type; self.tag_id = tag_id
    }
}

/// A follow relation (`follow_user[]` of `get`, `follow_info` of batch; batch has `tag_id` in
/// place of `tags`).
public struct FollowUser: Codable, Sendable, Equatable {
    public var userid: String
    public var remark: String?
    public var description: String?
    public var createtime: WeComInt?
    public var tags: [FollowUserTag]?
    public var tag_id: [String]?
    public var remark_corp_name: String?
    public var remark_mobiles: [String]?
    public var add_way: WeComInt?
    public var oper_userid: String?
    public var state: String?

    public init(userid: String, remark: String?, description: String?, createtime: WeComInt?, tags: [FollowUserTag]?,
                add_way: WeComInt?, state: String?) {
        self.userid = userid; self.remark = remark; self.description = description; self.createtime = createtime
        self.tags = tags; self.add_way = add_way; self.state = state
    }
}

/// `externalcontact/get`'s response.
public struct CustomerDetail: Codable, Sendable, Equatable {
    public var errcode: WeComInt?
    public var errmsg: String?
    public var external_contact: ExternalContact
    public var follow_user: [FollowUser]?
    public var next_cursor: String?

    public init(external_contact: ExternalContact, follow_user: [FollowUser]) {
        errcode = 0; errmsg = "ok"; self.external_contact = external_contact; self.follow_user = follow_user
    }
}

/// One entry of `batch/get_by_user`'s `external_contact_list`: a (customer, member) pair.
public struct BatchEntry: Codable, Sendable, Equatable {
    public var external_contact: ExternalContact
    public var follow_info: FollowUser
}

/// `batch/get_by_user`'s `fail_info`.
public struct BatchFailInfo: Codable, Sendable, Equatable {
    public var unlicensed_userid_list: [String]?
}

// MARK: Group chats (groupchat/get, groupchat/list)

public struct GroupChatDetail: Codable, Sendable, Equatable {
    public var errcode: WeComInt?
    public var errmsg: String?
    public var group_chat: GroupChat

    public init(group_chat: GroupChat) { errcode = 0; errmsg = "ok"; self.group_chat = group_chat }
}

public struct GroupChat: Codable, Sendable, Equatable {
    public var chat_id: String
    public var name: String?
    public var owner: String?
    public var create_time: WeComInt?
    public var notice: String?
    public var member_list: [GroupChatMember]?
    public var admin_list: [UserRef]?
    public var member_version: String?

    public init(chat_id: String, name: String?, owner: String?, notice: String?, member_list: [GroupChatMember], member_version: String?) {
        self.chat_id = chat_id; self.name = name; self.owner = owner; self.notice = notice
        self.member_list = member_list; self.member_version = member_version
    }
}

public struct UserRef: Codable, Sendable, Equatable {
    public var userid: String?
    public init(userid: String?) { self.userid = userid }
}

public struct GroupChatMember: Codable, Sendable, Equatable {
    public var userid: String
    /// 1 staff, 2 external contact (absent only in Siyu's export of a member a callback added).
    public var type: WeComInt?
    public var unionid: String?
    public var join_time: WeComInt?
    public var join_scene: WeComInt?
    public var invitor: UserRef?
    public var group_nickname: String?
    public var name: String?
    public var state: String?

    public init(userid: String, type: WeComInt?, join_time: WeComInt?, join_scene: WeComInt?, invitor: UserRef?, group_nickname: String?) {
        self.userid = userid; self.type = type; self.join_time = join_time; self.join_scene = join_scene
        self.invitor = invitor; self.group_nickname = group_nickname
    }
}

public struct GroupChatList: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var chat_id: String
        public var status: WeComInt?
    }
    public var errcode: WeComInt?
    public var errmsg: String?
    public var group_chat_list: [Entry]
    public var next_cursor: String?
}

// MARK: mark_tag (export)

/// A `mark_tag` request body: tags to add to and remove from one follow relation.
public struct MarkTagRequest: Codable, Sendable, Equatable {
    public var userid: String
    public var external_userid: String
    public var add_tag: [String]?
    public var remove_tag: [String]?

    public init(userid: String, external_userid: String, add_tag: [String], remove_tag: [String]) {
        self.userid = userid
        self.external_userid = external_userid
        self.add_tag = add_tag.isEmpty ? nil : add_tag
        self.remove_tag = remove_tag.isEmpty ? nil : remove_tag
    }
}
