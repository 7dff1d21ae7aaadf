import Foundation
import SiyuCore

/// The kinds of WeCom payload the importer recognises, by their shape.
public enum PayloadKind: String, Sendable, CaseIterable {
    case corpTagList = "get_corp_tag_list"
    case customerDetail = "externalcontact/get"
    case customerBatch = "batch/get_by_user"
    case groupChatDetail = "groupchat/get"
    case groupChatList = "groupchat/list"
    case contactCallback = "change_external_contact"
    case chatCallback = "change_external_chat"
    case tagCallback = "change_external_tag"

    /// What `siyu` calls each kind in messages.
    public var label: String { rawValue }

    static let acceptedList = "get_corp_tag_list, externalcontact/get, batch/get_by_user, groupchat/get, groupchat/list, "
        + "and the change_external_contact / change_external_chat / change_external_tag callbacks"

    /// The kind of a JSON object with these top-level keys (`event` is the value of `Event`).
    static func recognise(keys: Set<String>, event: String?) throws -> PayloadKind {
        if keys.contains("Event") || keys.contains("MsgType") {
            switch event {
            case "change_external_contact": return .contactCallback
            case "change_external_chat": return .chatCallback
            case "change_external_tag": return .tagCallback
            default:
                throw WeComError(path: "$.Event", "is '\(event ?? "")', not a customer-contact change event",
                                 hint: "the importer reads change_external_contact, change_external_chat and change_external_tag callbacks")
            }
        }
        if keys.contains("tag_group") { return .corpTagList }
        if keys.contains("external_contact_list") { return .customerBatch }
        if keys.contains("external_contact") { return .customerDetail }
        if keys.contains("group_chat") { return .groupChatDetail }
        if keys.contains("group_chat_list") { return .groupChatList }
        let shown = keys.sorted().prefix(8).joined(separator: ", ")
        throw WeComError(path: "$", "is not a WeCom payload this importer knows (its keys: \(shown.isEmpty ? "none" : shown))",
                         hint: "give a response of \(acceptedList)")
    }
}

/// Turns decoded payloads into `WeComEdit`s. Pure: no replica, no I/O.
///
/// Guarantees: every id passes `IdentifierRule`, every field value its `FieldSpec`, and every
/// list is within WeCom's documented bounds; otherwise a `WeComError` names the JSON path.
enum Mapping {
    static let maxTags = 10_000            // corp + rule-group tags per enterprise
    static let maxTagsPerRelation = 3_000  // tags per (member, customer)
    static let maxFollowUsers = 500        // per page of externalcontact/get
    static let maxMembers = 500            // members of a customer group
    static let maxListEntries = 1_000      // groupchat/list page
    /// The group id rule-group (type 3) tags are kept under: `rule:` + the group's name.
    static let ruleGroupPrefix = WeComConventions.ruleGroupPrefix

    // MARK: Checks

    static func id(_ s: String, _ path: String, _ what: String) throws -> String {
        do {
            try IdentifierRule.validate(s, as: what)
        } catch {
            throw WeComError(path: path, "is not a usable \(what): \(describe(error))",
                             hint: "WeCom ids are short ASCII strings; check the payload")
        }
        return s
    }

    static func check(_ entity: Entity, _ field: String, _ value: Value, _ path: String) throws -> Value {
        guard let spec = entity.field(named: field) else { return value }
        do {
            try spec.validate(value, on: entity)
        } catch {
            throw WeComError(path: path, describe(error), hint: "Siyu keeps WeCom's limits (docs/WECOM.md); fix the value in the payload")
        }
        return value
    }

    static func text(_ s: String?, _ entity: Entity, _ field: String, _ path: String) throws -> Value? {
        guard let s else { return nil }
        return try check(entity, field, s.isEmpty ? .null : .text(s), path)
    }

    static func int(_ n: WeComInt?, _ entity: Entity, _ field: String, _ path: String) throws -> Value? {
        guard let n else { return nil }
        return try check(entity, field, .int(n.value), path)
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? CoreError, case let .invalidEdit(what, _) = e { return what }
        return String(describing: error)
    }

    static func bounded<T>(_ list: [T]?, _ max: Int, _ path: String, _ what: String) throws -> [T] {
        let list = list ?? []
        guard list.count <= max else {
            throw WeComError(path: path, "holds \(list.count) \(what), more than WeCom allows (\(max))",
                             hint: "WeCom pages its responses: give each page as its own payload")
        }
        return list
    }

    // MARK: Tags

    static func corpTags(_ list: CorpTagList) throws -> [WeComEdit] {
        var out: [WeComEdit] = []
        var total = 0
        for (g, group) in list.tag_group.enumerated() {
            let at = "$.tag_group[\(g)]"
            let groupID = try id(group.group_id, at + ".group_id", "tag group id")
            let name = try check(.tagGroup, "name", .text(group.group_name), at + ".group_name")
            let order = try check(.tagGroup, "sort_order", .int(group.order?.value ?? 0), at + ".order")
            var tags: [TagEdit] = []
            for (t, tag) in (group.tag ?? []).enumerated() {
                let tat = at + ".tag[\(t)]"
                total += 1
                guard total <= maxTags else {
                    throw WeComError(path: tat, "is tag number \(total), more than an enterprise holds (\(maxTags))", hint: "check the payload")
                }
                let tagID = try id(tag.id, tat + ".id", "tag id")
                let tagName = try check(.tag, "name", .text(tag.name), tat + ".name")
                let tagOrder = try check(.tag, "sort_order", .int(tag.order?.value ?? 0), tat + ".order")
                tags.append(TagEdit(id: tagID, name: tagName.textValue ?? "", order: tagOrder.intValue ?? 0, deleted: tag.deleted ?? false))
            }
            out.append(.tagGroup(TagGroupEdit(id: groupID, name: name.textValue ?? "", order: order.intValue ?? 0,
                                              deleted: group.deleted ?? false, onlyIfMissing: false, tags: tags)))
        }
        return out
    }

    // MARK: Customers

    static func customerFields(_ c: ExternalContact, _ at: String) throws -> (String, [String: Value]) {
        let customer = try id(c.external_userid, at + ".external_userid", "external_userid")
        var fields: [String: Value] = [:]
        if let name = c.name { fields["name"] = try check(.customer, "name", name.isEmpty ? .null : .text(name), at + ".name") }
        if let v = try int(c.gender, .customer, "gender", at + ".gender") { fields["gender"] = v }
        if let v = try text(c.unionid, .customer, "unionid", at + ".unionid") { fields["unionid"] = v }
        return (customer, fields)
    }

    /// A relation's fields and tags; `ruleTags` collects the rule-group tags to define if missing.
    static func relation(_ f: FollowUser, _ at: String, ruleTags: inout [String: TagGroupEdit], personal: inout Int) throws -> RelationEdit {
        let userid = try id(f.userid, at + ".userid", "staff userid")
        var fields: [String: Value] = [:]
        if let v = try text(f.remark, .followRelation, "remark", at + ".remark") { fields["remark"] = v }
        if let v = try text(f.description, .followRelation, "description", at + ".description") { fields["description"] = v }
        if let v = try int(f.add_way, .followRelation, "add_way", at + ".add_way") { fields["add_way"] = v }
        if let v = try int(f.createtime, .followRelation, "createtime", at + ".createtime") { fields["createtime"] = v }
        if let v = try text(f.state, .followRelation, "state", at + ".state") { fields["state"] = v }
        var tags: [String] = []
        for (i, tag) in try bounded(f.tags, maxTagsPerRelation, at + ".tags", "tags").enumerated() {
            let tat = at + ".tags[\(i)]"
            switch tag.type?.value ?? 1 {
            case 1, 3:
                guard let tagID = tag.tag_id else {
                    throw WeComError(path: tat + ".tag_id", "is missing on a tag of type \(tag.type?.value ?? 1)",
                                     hint: "corp (1) and rule-group (3) tags carry tag_id; only personal tags (2) have none")
                }
                let checked = try id(tagID, tat + ".tag_id", "tag id")
                if tag.type?.value == 3 {
                    let groupName = tag.group_name ?? ""
                    let groupID = try id(ruleGroupPrefix + (groupName.isEmpty ? "-" : groupName), tat + ".group_name", "rule group id")
                    let name = try check(.tag, "name", .text(tag.tag_name ?? checked), tat + ".tag_name")
                    _ = try check(.tagGroup, "name", .text(groupName), tat + ".group_name")
                    var group = ruleTags[groupID] ?? TagGroupEdit(id: groupID, name: groupName, order: 0, deleted: false,
                                                                  onlyIfMissing: true, tags: [])
                    if !group.tags.contains(where: { $0.id == checked }) {
                        group.tags.append(TagEdit(id: checked, name: name.textValue ?? checked, order: 0, deleted: false))
                    }
                    ruleTags[groupID] = group
                }
                if !tags.contains(checked) { tags.append(checked) }
            case 2:
                personal += 1
            case let other:
                throw WeComError(path: tat + ".type", "is \(other); WeCom tag types are 1 (corp), 2 (personal) and 3 (rule group)",
                                 hint: "check the payload")
            }
        }
        for (i, tagID) in try bounded(f.tag_id, maxTagsPerRelation, at + ".tag_id", "tags").enumerated() {
            let checked = try id(tagID, at + ".tag_id[\(i)]", "tag id")
            if !tags.contains(checked) { tags.append(checked) }
        }
        return RelationEdit(userid: userid, fields: fields, tags: tags)
    }

    /// The customer's phone as WeCom holds it: WeCom has no phone on the customer itself; a member
    /// records it among the follow relation's `remark_mobiles`. The first non-empty one of the
    /// first follow user that has any (nil when none does).
    static func phone(_ follows: [(FollowUser, String)]) throws -> Value? {
        for (f, at) in follows {
            for (j, mobile) in (f.remark_mobiles ?? []).enumerated() {
                let trimmed = mobile.trimmingCharacters(in: .whitespaces)
                if !trimmed.isEmpty { return try check(.customer, "phone", .text(trimmed), at + ".remark_mobiles[\(j)]") }
            }
        }
        return nil
    }

    /// The userid of the oldest follow relation (earliest createtime, the first listed on a tie).
    static func firstFollower(_ follows: [FollowUser]) -> String? {
        var best: (userid: String, time: Int64)?
        for f in follows {
            let t = f.createtime?.value ?? Int64.max
            if best == nil || t < best!.time { best = (f.userid, t) }
        }
        return best?.userid
    }

    static func customer(_ d: CustomerDetail) throws -> [WeComEdit] {
        var (customer, fields) = try customerFields(d.external_contact, "$.external_contact")
        let follows = d.follow_user ?? []
        if let p = try phone(follows.enumerated().map { ($1, "$.follow_user[\($0)]") }) { fields["phone"] = p }
        var ruleTags: [String: TagGroupEdit] = [:]
        var personal = 0
        var relations: [RelationEdit] = []
        for (i, f) in try bounded(d.follow_user, maxFollowUsers, "$.follow_user", "follow users").enumerated() {
            let r = try relation(f, "$.follow_user[\(i)]", ruleTags: &ruleTags, personal: &personal)
            if let same = relations.firstIndex(where: { $0.userid == r.userid }) {
                throw WeComError(path: "$.follow_user[\(i)].userid", "repeats the follow user of $.follow_user[\(same)]",
                                 hint: "a customer has one follow relation per staff member")
            }
            relations.append(r)
        }
        var out = ruleTags.keys.sorted().map { WeComEdit.tagGroup(ruleTags[$0]!) }
        out.append(.customer(CustomerEdit(id: customer, fields: fields, relations: relations, personalTagsSkipped: personal,
                                          firstFollower: relations.isEmpty ? nil : firstFollower(follows))))
        if let next = d.next_cursor, !next.isEmpty {
            out.append(.notice("customer \(customer) has more follow users: fetch externalcontact/get again with cursor \(next)"))
        }
        return out
    }

    static func batchEntry(_ e: BatchEntry, at: String) throws -> [WeComEdit] {
        var (customer, fields) = try customerFields(e.external_contact, at + ".external_contact")
        if let p = try phone([(e.follow_info, at + ".follow_info")]) { fields["phone"] = p }
        var ruleTags: [String: TagGroupEdit] = [:]
        var personal = 0
        let r = try relation(e.follow_info, at + ".follow_info", ruleTags: &ruleTags, personal: &personal)
        return [.customer(CustomerEdit(id: customer, fields: fields, relations: [r], personalTagsSkipped: personal,
                                       firstFollower: r.userid))]
    }

    // MARK: Group chats

    static func groupChat(_ d: GroupChatDetail) throws -> [WeComEdit] {
        let g = d.group_chat, at = "$.group_chat"
        let chat = try id(g.chat_id, at + ".chat_id", "chat_id")
        var fields: [String: Value] = [:]
        if let v = try text(g.name, .groupChat, "name", at + ".name") { fields["name"] = v }
        if let owner = g.owner { fields["owner"] = try check(.groupChat, "owner", .text(try id(owner, at + ".owner", "owner userid")), at + ".owner") }
        if let v = try text(g.notice, .groupChat, "notice", at + ".notice") { fields["notice"] = v }
        var members: [MemberEdit] = []
        var seen: Set<String> = []
        for (i, m) in try bounded(g.member_list, maxMembers, at + ".member_list", "members").enumerated() {
            let mat = at + ".member_list[\(i)]"
            let member = try id(m.userid, mat + ".userid", "member userid")
            guard seen.insert(member).inserted else {
                throw WeComError(path: mat + ".userid", "lists member \(member) twice", hint: "a roster names each member once")
            }
            var mf: [String: Value] = [:]
            if let v = try int(m.type, .groupMember, "member_type", mat + ".type") { mf["member_type"] = v }
            if let v = try int(m.join_time, .groupMember, "join_time", mat + ".join_time") { mf["join_time"] = v }
            if let v = try int(m.join_scene, .groupMember, "join_scene", mat + ".join_scene") { mf["join_scene"] = v }
            if let inv = m.invitor?.userid {
                mf["invitor"] = try check(.groupMember, "invitor", .text(try id(inv, mat + ".invitor.userid", "invitor userid")), mat + ".invitor.userid")
            }
            if let v = try text(m.group_nickname, .groupMember, "nickname", mat + ".group_nickname") { mf["nickname"] = v }
            members.append(MemberEdit(id: member, fields: mf))
        }
        var version: String?
        if let v = g.member_version, !v.isEmpty {
            guard v.utf8.count <= 128, !v.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value > 0x7e }) else {
                throw WeComError(path: at + ".member_version", "is not a member version (WeCom sends up to 128 printable ASCII characters)",
                                 hint: "check the payload")
            }
            version = v
        }
        return [.groupChat(GroupChatEdit(id: chat, fields: fields, members: members, memberVersion: version))]
    }

    static func groupChatList(_ l: GroupChatList) throws -> [WeComEdit] {
        var out: [WeComEdit] = []
        for (i, e) in try bounded(l.group_chat_list, maxListEntries, "$.group_chat_list", "chats").enumerated() {
            let chat = try id(e.chat_id, "$.group_chat_list[\(i)].chat_id", "chat_id")
            out.append(.refetch(Refetch(api: "groupchat/get", id: chat, reason: "listed by groupchat/list", onlyIfUnknown: true)))
        }
        if let next = l.next_cursor, !next.isEmpty {
            out.append(.notice("groupchat/list has more chats: call it again with cursor \(next)"))
        }
        return out
    }

    // MARK: Callbacks

    static func callback(_ c: WeComCallback, kind: PayloadKind, xml: Bool) throws -> [WeComEdit] {
        func path(_ key: String) -> String { xml ? "xml/\(key)" : "$.\(key)" }
        func required(_ key: String) throws -> String {
            guard let v = c[key], !v.isEmpty else {
                throw WeComError(path: path(key), "is missing", hint: "this callback always carries \(key); check the payload")
            }
            return v
        }
        func checkedID(_ key: String, _ what: String) throws -> String { try id(try required(key), path(key), what) }
        let change = try required("ChangeType")
        let time = c["CreateTime"].flatMap { Int64($0) }
        func unknownChange() -> WeComError {
            WeComError(path: path("ChangeType"), "is '\(change)', not a change type of \(kind.label)",
                       hint: "docs/WECOM.md lists the change types the importer reads")
        }
        switch kind {
        case .contactCallback:
            let customer = try checkedID("ExternalUserID", "external_userid")
            let staff = try checkedID("UserID", "staff userid")
            switch change {
            case "add_external_contact", "add_half_external_contact", "edit_external_contact":
                return [.refetch(Refetch(api: "externalcontact/get", id: customer, reason: "\(change) by \(staff) (callbacks carry no data)"))]
            case "del_external_contact", "del_follow_user":
                let who = change == "del_follow_user" ? "the customer deleted \(staff)" : "\(staff) deleted the customer"
                let transfer = c["Source"] == "DELETE_BY_TRANSFER" ? " (on-job transfer)" : ""
                return [.notice("follow relation \(staff)–\(customer) ended in WeCom: \(who)\(transfer); Siyu keeps the relation and its tags until they are edited"),
                        .refetch(Refetch(api: "externalcontact/get", id: customer, reason: "\(change) by \(staff)"))]
            case "transfer_fail":
                return [.notice("transfer of \(customer) to \(staff) failed: \(c["FailReason"] ?? "no reason given")")]
            default:
                throw unknownChange()
            }
        case .chatCallback:
            let chat = try checkedID("ChatId", "chat_id")
            switch change {
            case "create":
                return [.refetch(Refetch(api: "groupchat/get", id: chat, reason: "created in WeCom"))]
            case "dismiss":
                return [.notice("group chat \(chat) was dismissed in WeCom; Siyu has no op to delete a group, nothing was changed")]
            case "update":
                let detail = try required("UpdateDetail")
                guard detail == "add_member" || detail == "del_member" else {
                    guard ["change_owner", "change_name", "change_notice"].contains(detail) else {
                        throw WeComError(path: path("UpdateDetail"), "is '\(detail)', not an update WeCom documents",
                                         hint: "expected add_member, del_member, change_owner, change_name or change_notice")
                    }
                    return [.refetch(Refetch(api: "groupchat/get", id: chat, reason: "\(detail) (callbacks carry no data)"))]
                }
                guard let last = c["LastMemVer"], let current = c["CurMemVer"], !last.isEmpty, !current.isEmpty else {
                    return [.refetch(Refetch(api: "groupchat/get", id: chat, reason: "\(detail) without member versions"))]
                }
                var ids: [String] = []
                for (i, m) in c.memChangeList.enumerated() {
                    ids.append(try id(m, xml ? "xml/MemChangeList/Item[\(i)]" : "$.MemChangeList.Item[\(i)]", "member userid"))
                }
                if let count = c["MemChangeCnt"].flatMap({ Int($0) }), count != ids.count {
                    return [.refetch(Refetch(api: "groupchat/get", id: chat,
                                             reason: "MemChangeCnt \(count) but \(ids.count) members listed"))]
                }
                var scene: Int64?
                if detail == "add_member", c["JoinScene"] == "3" { scene = 3 }
                return [.rosterChange(RosterChange(chatID: chat, lastVersion: last, currentVersion: current,
                                                   joined: detail == "add_member" ? ids : [], left: detail == "del_member" ? ids : [],
                                                   time: time, joinScene: scene))]
            default:
                throw unknownChange()
            }
        case .tagCallback:
            let tagType = c["TagType"] ?? "tag"
            guard tagType == "tag" || tagType == "tag_group" else {
                throw WeComError(path: path("TagType"), "is '\(tagType)', not tag or tag_group", hint: "check the payload")
            }
            switch change {
            case "create", "update":
                let tag = try checkedID("Id", "tag id")
                return [.refetch(Refetch(api: "get_corp_tag_list", id: tag, reason: "\(tagType) \(change)d in WeCom"))]
            case "delete":
                let tag = try checkedID("Id", "tag id")
                return [.deleteTag(id: tag, isGroup: tagType == "tag_group")]
            case "shuffle":
                return [.refetch(Refetch(api: "get_corp_tag_list", id: c["Id"] ?? "", reason: "tag order shuffled"))]
            default:
                throw unknownChange()
            }
        default:
            throw unknownChange()
        }
    }
}
