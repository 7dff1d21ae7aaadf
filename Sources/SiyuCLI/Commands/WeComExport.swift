import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine
import SiyuWeCom

/// `siyu wecom export`: the merged state in WeCom's shapes, as JSON lines on standard output.
///
/// Guarantees: reads only (the file is never written); every line is one JSON value; `mark-tag`
/// and `changes` end with `{"next_cursor": …}`, and an export from that cursor gives exactly the
/// changes after it. A change enters the feed once every earlier op of its origin is held, so
/// a cursor never skips an op that arrives late. Ops written by `siyu wecom import` came from
/// WeCom and never become mark_tag bodies.
struct WeComExport {
    var path: String
    var kind: WeComCommand.Kind
    var since: WeComCursor?

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        let out = context.io.output
        try ReplicaAccess.perform("exporting \(kind.rawValue)", path: path) {
            let library = try Library(replica)
            switch kind {
            case .customers:
                for row in try replica.rows(of: .customers) where row["deleted"]?.intValue != 1 {
                    try emit(try customer(row, replica, library), to: out)
                }
            case .groups:
                let members = Dictionary(grouping: try replica.rows(of: .groupMembers), by: { $0.text("chat_id") ?? "" })
                for row in try replica.rows(of: .groupChats) {
                    try emit(GroupChatDetail(group_chat: try groupChat(row, members[row.text("chat_id") ?? ""] ?? [], replica)), to: out)
                }
            case .markTag:
                let (after, through) = try window(replica)
                for body in try markTags(replica, library, after: after, through: through) { try emit(body, to: out) }
                try emit(NextCursor(next_cursor: WeComCursor(merged(after, through)).text), to: out)
            case .changes:
                let (after, through) = try window(replica)
                for instance in try replica.instancesChanged(after: after, through: through) {
                    try emit(try change(instance, replica, library), to: out)
                }
                try emit(NextCursor(next_cursor: WeComCursor(merged(after, through)).text), to: out)
            }
        }
        return .success
    }

    private func emit<T: Encodable>(_ value: T, to out: TextStream) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        out.line(TerminalText.jsonSafe(String(decoding: try encoder.encode(value), as: UTF8.self)))
    }

    /// From the cursor (or the beginning) through what the replica holds without gaps.
    private func window(_ replica: Replica) throws -> (VersionVector, VersionVector) {
        (since?.vector ?? VersionVector(), try replica.versionVector())
    }

    private func merged(_ a: VersionVector, _ b: VersionVector) -> VersionVector {
        VersionVector(a.entries.merging(b.entries, uniquingKeysWith: max))
    }

    // MARK: Shapes

    struct NextCursor: Encodable { var next_cursor: String }

    /// The tag library, for names and types.
    struct Library {
        var tags: [String: [String: Value]] = [:]
        var groups: [String: [String: Value]] = [:]

        init(_ replica: Replica) throws {
            for t in try replica.rows(of: .tags) { tags[t.text("tag_id") ?? ""] = t }
            for g in try replica.rows(of: .tagGroups) { groups[g.text("group_id") ?? ""] = g }
        }

        func isActive(_ tag: String) -> Bool {
            guard let t = tags[tag], t.int("deleted") != 1 else { return false }
            return groups[t.text("group_id") ?? ""]?.int("deleted") != 1
        }

        func followTag(_ id: String) -> FollowUserTag {
            let group = tags[id]?.text("group_id") ?? ""
            return FollowUserTag(group_name: groups[group]?.text("name") ?? "", tag_name: tags[id]?.text("name") ?? "",
                                 type: group.hasPrefix(WeComConventions.ruleGroupPrefix) ? 3 : 1, tag_id: id)
        }
    }

    /// A customer as `externalcontact/get` returns it, plus the tags no follow relation holds.
    struct CustomerExport: Encodable {
        var errcode: Int?
        var errmsg: String?
        var external_contact: ExternalContact
        var follow_user: [FollowUser]
        /// Shown tags applied by someone with no follow relation to the customer (Siyu only).
        var siyu_unattributed_tags: [FollowUserTag]?
    }

    private func customer(_ row: [String: Value], _ replica: Replica, _ library: Library, envelope: Bool = true) throws -> CustomerExport {
        let id = row.text("customer_id") ?? ""
        let state = try replica.state(of: InstanceRef(.customer, id))
        let relations = state.rows[.followRelations] ?? []
        let shown = (state.rows[.customerTags] ?? []).compactMap { $0[1].textValue }
        var perUser: [String: [FollowUserTag]] = [:]
        var unattributed: [FollowUserTag] = []
        let userids = Set(relations.compactMap { $0[1].textValue })
        for tag in shown {
            let authors = Set(state.elements[Target(.customerTag, id, tag)]?.liveAdds.map(\.author) ?? [])
            let holders = authors.intersection(userids)
            if holders.isEmpty { unattributed.append(library.followTag(tag)) }
            for user in holders { perUser[user, default: []].append(library.followTag(tag)) }
        }
        let columns = Table.followRelations.columns.map(\.name)
        let follow: [FollowUser] = relations.map { values in
            var r: [String: Value] = [:]
            for (name, v) in zip(columns, values) { r[name] = v }
            let userid = r.text("userid") ?? ""
            return FollowUser(userid: userid, remark: r.text("remark") ?? "", description: r.text("description") ?? "",
                              createtime: r.int("createtime").map { WeComInt($0) }, tags: perUser[userid] ?? [],
                              add_way: r.int("add_way").map { WeComInt($0) }, state: r.text("state"))
        }
        let contact = ExternalContact(external_userid: id, name: row.text("name"), gender: row.int("gender").map { WeComInt($0) },
                                      unionid: row.text("unionid"))
        return CustomerExport(errcode: envelope ? 0 : nil, errmsg: envelope ? "ok" : nil, external_contact: contact,
                              follow_user: follow, siyu_unattributed_tags: unattributed.isEmpty ? nil : unattributed)
    }

    private func groupChat(_ row: [String: Value], _ members: [[String: Value]], _ replica: Replica) throws -> GroupChat {
        let id = row.text("chat_id") ?? ""
        let list = members.map { m in
            GroupChatMember(userid: m.text("member_id") ?? "", type: m.int("member_type").map { WeComInt($0) },
                            join_time: m.int("join_time").map { WeComInt($0) }, join_scene: m.int("join_scene").map { WeComInt($0) },
                            invitor: m.text("invitor").map { UserRef(userid: $0) }, group_nickname: m.text("nickname") ?? "")
        }
        return GroupChat(chat_id: id, name: row.text("name"), owner: row.text("owner"), notice: row.text("notice") ?? "",
                         member_list: list, member_version: try replica.bridgeValue(WeComImport.bridgeVersions, id))
    }

    // MARK: mark_tag

    /// The ops this node's WeCom imports wrote: (first, last) sequence numbers.
    private func importRanges(_ replica: Replica) throws -> [ClosedRange<UInt64>] {
        try replica.bridgeValues(WeComImport.bridgeImports).compactMap { kv in
            guard let first = UInt64(kv.key), let last = UInt64(kv.value), first <= last else { return nil }
            return first...last
        }
    }

    private func markTags(_ replica: Replica, _ library: Library, after: VersionVector, through: VersionVector) throws -> [MarkTagRequest] {
        let imported = try importRanges(replica)
        func fromWeCom(_ op: Op) -> Bool {
            op.stamp.node == replica.node && imported.contains { $0.contains(op.seq) }
        }
        var bodies: [MarkTagRequest] = []
        for instance in try replica.instancesChanged(after: after, through: through) where instance.kind == .customer {
            let ops = try replica.instanceOps(instance)
            let authorOf = Dictionary(ops.map { ($0.stamp, $0.author) }, uniquingKeysWith: { a, _ in a })
            // (staff member, tag) pairs whose holding changed after the cursor, not by an import.
            var pairs = Set<[String]>()
            for op in ops where op.seq > after[op.stamp.node] && op.seq <= through[op.stamp.node] && !fromWeCom(op) {
                switch op.body {
                case let .add(t, removes) where t.entity == .customerTag:
                    pairs.insert([op.author, t.sub])
                    for s in removes {
                        if let author = authorOf[s], let add = ops.first(where: { $0.stamp == s }), case let .add(rt, _) = add.body {
                            pairs.insert([author, rt.sub])
                        }
                    }
                case let .remove(t, removes) where t.entity == .customerTag:
                    for s in removes { if let author = authorOf[s] { pairs.insert([author, t.sub]) } }
                default:
                    continue
                }
            }
            guard !pairs.isEmpty else { continue }
            let state = try replica.state(of: instance)
            let relations = (state.rows[.followRelations] ?? []).compactMap { $0[1].textValue }
            guard let fallback = relations.first else { continue }   // no relation: nothing WeCom can mark
            let shown = Set((state.rows[.customerTags] ?? []).compactMap { $0[1].textValue })
            var changes: [String: (add: [String], remove: [String])] = [:]
            for pair in pairs {
                let (author, tag) = (pair[0], pair[1])
                guard library.isActive(tag) else { continue }   // deleted tags leave WeCom with del_corp_tag
                let holds = shown.contains(tag)
                    && state.elements[Target(.customerTag, instance.id, tag)]?.liveAdds.contains { $0.author == author } == true
                let userid = relations.contains(author) ? author : fallback
                if holds { changes[userid, default: ([], [])].add.append(tag) } else { changes[userid, default: ([], [])].remove.append(tag) }
            }
            for (userid, c) in changes.sorted(by: { $0.key < $1.key }) {
                let add = Array(Set(c.add)).sorted(), remove = Array(Set(c.remove).subtracting(c.add)).sorted()
                if add.isEmpty && remove.isEmpty { continue }
                bodies.append(MarkTagRequest(userid: userid, external_userid: instance.id, add_tag: add, remove_tag: remove))
            }
        }
        return bodies
    }

    // MARK: changes

    struct Change: Encodable {
        var type: String
        var id: String
        var deleted: Bool?
        var customer: CustomerExport?
        var group_chat: GroupChat?
        var rows: [String: [[String: ValueJSON]]]?
    }

    private func change(_ instance: InstanceRef, _ replica: Replica, _ library: Library) throws -> Change {
        var line = Change(type: instance.kind.name, id: instance.id)
        switch instance.kind {
        case .customer:
            if let row = try replica.rows(of: .customers, where: "customer_id", equals: instance.id).first {
                line.deleted = row.int("deleted") == 1
                if line.deleted == false { line.customer = try customer(row, replica, library, envelope: false) }
            }
        case .groupChat:
            if let row = try replica.rows(of: .groupChats, where: "chat_id", equals: instance.id).first {
                line.group_chat = try groupChat(row, try replica.rows(of: .groupMembers, where: "chat_id", equals: instance.id), replica)
            }
        default:
            var rows: [String: [[String: ValueJSON]]] = [:]
            for table in Table.tables(of: instance.kind) {
                let key = table.columns[0].name
                let found = try replica.rows(of: table, where: key, equals: instance.id)
                if !found.isEmpty { rows[table.rawValue] = found.map { $0.mapValues(ValueJSON.init) } }
            }
            line.rows = rows
        }
        return line
    }
}
