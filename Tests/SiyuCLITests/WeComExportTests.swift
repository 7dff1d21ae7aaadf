import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuCommandLine
@testable import SiyuCLI

@Suite struct WeComExportTests {
    func lines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    /// The fields a CRM reads, from an `externalcontact/get` shape (times and order left out).
    func meaning(_ customer: [String: Any]) -> String {
        let contact = customer["external_contact"] as? [String: Any] ?? [:]
        let follow = (customer["follow_user"] as? [[String: Any]] ?? []).map { f -> String in
            let tags = (f["tags"] as? [[String: Any]] ?? []).compactMap { $0["tag_id"] as? String }.sorted()
            return "\(f["userid"] ?? "")|\(f["remark"] ?? "")|\(f["description"] ?? "")|\(f["add_way"] ?? "")|\(f["createtime"] ?? "")|\(f["state"] ?? "")|\(tags)"
        }.sorted()
        return "\(contact["external_userid"] ?? "")|\(contact["name"] ?? "")|\(contact["gender"] ?? "")|\(contact["unionid"] ?? "")|\(follow)"
    }

    @Test func exportedCustomersHaveTheShapeOfExternalcontactGetAndReimportToTheSameMeaning() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        #expect(f.importing([WeComSamples.tags, WeComSamples.lin, WeComSamples.ma]).code == 0)
        let export = f.run(["wecom", "export", "--db", f.db])
        #expect(export.code == 0, "\(export.err)")
        let customers = try lines(export.out)
        #expect(customers.count == 2)
        let lin = try #require(customers.first { ($0["external_contact"] as? [String: Any])?["external_userid"] as? String == WeComSamples.linID })
        #expect(lin["errcode"] as? Int == 0)
        let follow = try #require(lin["follow_user"] as? [[String: Any]])
        #expect(follow.map { $0["userid"] as? String } == ["chenjing", "liuyang"])
        // liuyang holds 金卡 too: both relations show it, as WeCom does.
        let liuyangTags = (follow[1]["tags"] as? [[String: Any]] ?? []).compactMap { $0["tag_id"] as? String }
        #expect(liuyangTags == [WeComSamples.gold])
        let tag = try #require((follow[0]["tags"] as? [[String: Any]])?.first { $0["tag_id"] as? String == WeComSamples.gold })
        #expect(tag["tag_name"] as? String == "金卡会员")
        #expect(tag["group_name"] as? String == "会员等级")
        #expect(tag["type"] as? Int == 1)

        // Round trip: the samples and the export, read by a CRM, say the same thing.
        let samples = try [WeComSamples.lin, WeComSamples.ma].map { path in
            try #require(try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }
        #expect(Set(samples.map(meaning)) == Set(customers.map(meaning)))

        // The export is itself importable: into a fresh replica, the same export comes out.
        let second = try WeComFixture(); defer { second.directory.remove() }
        let exported = try second.write("customers.jsonl", export.out)
        #expect(second.importing([WeComSamples.tags, exported]).code == 0)
        let again = second.run(["wecom", "export", "--db", second.db])
        #expect(Set(try lines(again.out).map(meaning)) == Set(customers.map(meaning)))
        // And into the first, it changes nothing.
        let before = try f.ops()
        #expect(f.importing([exported]).code == 0)
        #expect(try f.ops() == before)
    }

    @Test func exportedGroupsHaveTheShapeOfGroupchatGetWithTheMemberVersion() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        #expect(f.importing([WeComSamples.group]).code == 0)
        let export = f.run(["wecom", "export", "--db", f.db, "--kind", "groups"])
        let chat = try #require(try lines(export.out).first?["group_chat"] as? [String: Any])
        #expect(chat["chat_id"] as? String == WeComSamples.chat)
        #expect(chat["member_version"] as? String == "0a728af81d9dc35213d94c7ebbe6c1ec")
        #expect((chat["member_list"] as? [Any])?.count == 6)
        let reimport = try f.write("groups.jsonl", export.out)
        let before = try f.ops()
        #expect(f.importing([reimport]).code == 0)
        #expect(try f.ops() == before)
    }

    @Test func markTagBodiesCarryTheTagChangesMadeInSiyuPerStaffMemberAndNothingThatCameFromWeCom() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        #expect(f.importing([WeComSamples.tags, WeComSamples.lin]).code == 0)
        let first = f.run(["wecom", "export", "--db", f.db, "--kind", "mark-tag"])
        #expect(first.code == 0)
        let firstLines = try lines(first.out)
        #expect(firstLines.count == 1)   // only the cursor: the imported tags are WeCom's own
        let cursor = try #require(firstLines.last?["next_cursor"] as? String)

        do {   // A clerk (through a store, here directly) adds 茶饮 and removes 咖啡豆; HQ adds 会员日.
            let r = try f.replica(); defer { r.close() }
            try r.addTag(WeComSamples.tea, to: WeComSamples.linID, by: "liuyang")
            try r.removeTag(WeComSamples.coffee, from: WeComSamples.linID, by: "liuyang")
            try r.addTag("etQm7wCAAA8ee7UnMQYsKeKm-GIbKjZA", to: WeComSamples.linID, by: "zhaolei")
        }
        let next = f.run(["wecom", "export", "--db", f.db, "--kind", "mark-tag", "--since", cursor])
        #expect(next.code == 0, "\(next.err)")
        let bodies = try lines(next.out).dropLast()
        let byUser = Dictionary(uniqueKeysWithValues: bodies.map { ($0["userid"] as? String ?? "", $0) })
        // 咖啡豆 was applied by chenjing: removing it is a mark_tag on chenjing's relation.
        #expect(byUser["chenjing"]?["remove_tag"] as? [String] == [WeComSamples.coffee])
        #expect(byUser["chenjing"]?["external_userid"] as? String == WeComSamples.linID)
        // zhaolei has no relation with the customer: the first relation marks it.
        #expect((byUser["chenjing"]?["add_tag"] as? [String]) == ["etQm7wCAAA8ee7UnMQYsKeKm-GIbKjZA"])
        #expect(byUser["liuyang"]?["add_tag"] as? [String] == [WeComSamples.tea])
        #expect(byUser["liuyang"]?["remove_tag"] == nil)
        // From the new cursor, nothing is pending.
        let after = try #require(try lines(next.out).last?["next_cursor"] as? String)
        let none = f.run(["wecom", "export", "--db", f.db, "--kind", "mark-tag", "--since", after])
        #expect(try lines(none.out).count == 1)
    }

    @Test func theChangeFeedListsEachChangedRecordOnceAndEndsWithACursor() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        #expect(f.importing([WeComSamples.tags, WeComSamples.lin]).code == 0)
        let all = try lines(f.run(["wecom", "export", "--db", f.db, "--kind", "changes"]).out)
        #expect(all.filter { $0["type"] as? String == "customer" }.count == 1)
        #expect(all.filter { $0["type"] as? String == "tag" }.count == 13)
        let cursor = try #require(all.last?["next_cursor"] as? String)
        do {
            let r = try f.replica(); defer { r.close() }
            try r.editCustomer(WeComSamples.linID, ["phone": .text("13857100000")], by: "chenjing")
        }
        let changes = try lines(f.run(["wecom", "export", "--db", f.db, "--kind", "changes", "--since", cursor]).out)
        #expect(changes.count == 2)
        #expect(changes[0]["type"] as? String == "customer")
        #expect(changes[0]["id"] as? String == WeComSamples.linID)
        #expect(changes[0]["deleted"] as? Bool == false)
        let bad = f.run(["wecom", "export", "--db", f.db, "--kind", "changes", "--since", "nonsense"])
        #expect(bad.code == 2)
        #expect(bad.err.contains("not a cursor"))
    }
}
