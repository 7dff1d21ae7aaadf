import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuCommandLine
@testable import SiyuCLI
import SiyuTestSupport

/// The WeCom sample payloads kept beside the tests (copied from the WeCom reference samples).
enum WeComSamples {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("WeComSamples").path
    static func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
    static let tags = path("get_corp_tag_list.json")
    static let lin = path("externalcontact_get.c1_lin_xiaowen.json")
    static let ma = path("externalcontact_get.c5_ma_yiming.json")
    static let group = path("groupchat_get.xihu_members.json")
    static let editJSON = path("01_change_external_contact.edit.json")
    static let editXML = path("01_change_external_contact.edit.xml")
    static let all = [tags, lin, ma, group, editJSON, editXML]

    static let linID = "wmQm7wCAAASYqp9kD9WxOV-9jYjFouYA"
    static let gold = "etQm7wCAAA7ZppTlogtGPr0e7RF64VzA"
    static let silver = "etQm7wCAAAfRqUrLi1rfqJ3iuuDhuOuA"
    static let coffee = "etQm7wCAAA1zRLu_tNh6HmM4MjEtkXyA"
    static let tea = "etQm7wCAAAhKeHAqzB0UGTiMNg64YCXA"
    static let chat = "wrQm7wCAAALSXWwuG6TIYm6sYgDM4A"
}

/// An HQ replica in a temporary directory, and payload files written there.
struct WeComFixture {
    let directory: TemporaryDirectory
    let clock = TestClock()
    var db: String { directory.path("hq.db") }

    init() throws {
        directory = try TemporaryDirectory()
        let r = siyu(["init", "--db", db, "--node", "hq", "--role", "hq"])
        #expect(r.code == 0, "\(r.err)")
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory.path(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @discardableResult
    func run(_ arguments: [String]) -> RunResult { siyu(arguments, clock: clock) }

    @discardableResult
    func importing(_ files: [String], json: Bool = false) -> RunResult {
        run(["wecom", "import", "--db", db] + (json ? ["--json"] : []) + files)
    }

    func replica() throws -> Replica { try Replica(path: db, options: ReplicaOptions(wallClock: clock.read)) }

    func ops() throws -> Int { let r = try replica(); defer { r.close() }; return try r.opCounts().total }

    func rows(_ table: Table) throws -> [[String: Value]] { let r = try replica(); defer { r.close() }; return try r.rows(of: table) }
}

@Suite struct WeComImportTests {
    @Test func theCorpTagListDefinesEveryGroupAndTagWithItsOrder() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        let r = f.importing([WeComSamples.tags])
        #expect(r.code == 0, "\(r.err)")
        let groups = try f.rows(.tagGroups), tags = try f.rows(.tags)
        #expect(groups.count == 3)
        #expect(tags.count == 13)
        let level = groups.first { $0["name"] == .text("会员等级") }
        #expect(level?["sort_order"] == .int(300))
        #expect(level?["exclusive"] == .int(0))   // WeCom has no single-choice group
        #expect(tags.first { $0["tag_id"] == .text(WeComSamples.gold) }?["name"] == .text("金卡会员"))
    }

    @Test func deletedTagsAndGroupsInTheTagListBecomeTombstones() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        let payload = try f.write("tags.json", """
        {"errcode":0,"errmsg":"ok","tag_group":[
          {"group_id":"et_g1","group_name":"偏好","order":5,"deleted":false,"tag":[
            {"id":"et_a","name":"茶","order":1,"deleted":false},{"id":"et_b","name":"酒","order":2,"deleted":true}]},
          {"group_id":"et_g2","group_name":"旧活动","order":1,"deleted":true,"tag":[{"id":"et_c","name":"旧","order":1,"deleted":true}]}]}
        """)
        #expect(f.importing([payload]).code == 0)
        let tags = Dictionary(uniqueKeysWithValues: try f.rows(.tags).map { ($0["tag_id"]!.textValue!, $0) })
        #expect(tags["et_a"]?["deleted"] == .int(0))
        #expect(tags["et_b"]?["deleted"] == .int(1))
        #expect(tags["et_c"]?["deleted"] == .int(1))
        #expect(try f.rows(.tagGroups).first { $0["group_id"] == .text("et_g2") }?["deleted"] == .int(1))
        let before = try f.ops()
        #expect(f.importing([payload]).code == 0)
        #expect(try f.ops() == before)
    }

    @Test func aCustomerDetailSetsTheCustomerItsFollowRelationsAndTheirTags() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        let r = f.importing([WeComSamples.tags, WeComSamples.lin])
        #expect(r.code == 0, "\(r.err)")
        let customer = try f.rows(.customers).first
        #expect(customer?["name"] == .text("林晓雯"))
        #expect(customer?["gender"] == .int(2))
        #expect(customer?["unionid"] == .text("o0H-e5LF67PZBayKdf6oKGADI20R"))
        let relations = try f.rows(.followRelations)
        #expect(relations.map { $0["userid"] } == [.text("chenjing"), .text("liuyang")])
        #expect(relations[0]["remark"] == .text("林晓雯(金卡)"))
        #expect(relations[0]["add_way"] == .int(1))
        #expect(relations[0]["createtime"] == .int(1716012207))
        #expect(relations[0]["state"] == .text("xihu_counter_qr"))
        #expect(relations[1]["add_way"] == .int(201))
        #expect(Set(try f.rows(.customerTags).compactMap { $0["tag_id"]?.textValue })
                == [WeComSamples.gold, WeComSamples.coffee, "etQm7wCAAAlmZalTVLbld8PpCkgl5lVA"])
        #expect(r.out.contains("left out 1 personal tag"))
    }

    @Test func importingTheSamePayloadsTwiceWritesNoNewOps() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        #expect(f.importing(WeComSamples.all).code == 0)
        let before = try f.ops()
        let (digest, _) = try { () -> ([UInt8], Int) in let r = try f.replica(); defer { r.close() }; return (try r.digest(), 0) }()
        let again = f.importing(WeComSamples.all)
        #expect(again.code == 0)
        #expect(again.out.contains("0 ops written"))
        #expect(try f.ops() == before)
        let r = try f.replica(); defer { r.close() }
        #expect(try r.digest() == digest)
    }

    @Test func tagsOfEveryFollowRelationUnionIntoTheCustomerKeepingEachStaffMemberWhoAppliedThem() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        let batch = try f.write("batch.json", """
        {"errcode":0,"errmsg":"ok","external_contact_list":[
          {"external_contact":{"external_userid":"wm_zhou","name":"周子豪","type":1,"gender":"1"},
           "follow_info":{"userid":"chenjing","remark":"","description":"","createtime":1700000000,"tag_id":["\(WeComSamples.gold)","\(WeComSamples.coffee)"],"add_way":1}},
          {"external_contact":{"external_userid":"wm_zhou","name":"周子豪","type":1,"gender":1},
           "follow_info":{"userid":"wangfang","remark":"老客","description":"","createtime":1700000500,"tag_id":["\(WeComSamples.gold)","\(WeComSamples.tea)"],"add_way":201}}],
         "next_cursor":"CURSOR_2","fail_info":{"unlicensed_userid_list":["zhaolei"]}}
        """)
        let r = f.importing([WeComSamples.tags, batch])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("cursor CURSOR_2"))
        #expect(r.out.contains("zhaolei"))
        let replica = try f.replica(); defer { replica.close() }
        let state = try replica.state(of: InstanceRef(.customer, "wm_zhou"))
        func appliers(_ tag: String) -> Set<String> {
            Set(state.elements[Target(.customerTag, "wm_zhou", tag)]?.liveAdds.map(\.author) ?? [])
        }
        #expect(appliers(WeComSamples.gold) == ["chenjing", "wangfang"])
        #expect(appliers(WeComSamples.coffee) == ["chenjing"])
        #expect(appliers(WeComSamples.tea) == ["wangfang"])
        #expect(try replica.rows(of: .customers).first?["gender"] == .int(1))   // "1" read as a number
        #expect(try replica.rows(of: .followRelations).count == 2)
    }

    @Test func twoRelationsHoldingDifferentLevelsOfAnExclusiveGroupAreLoggedAsAConflictNotDecided() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        #expect(f.importing([WeComSamples.tags]).code == 0)
        do {   // HQ's own policy: 会员等级 is single-choice
            let r = try f.replica(); defer { r.close() }
            try r.defineTagGroup("etQm7wCAAAjTrSSzQXdaWILx2Jj-XRuA", name: "会员等级", order: 300, exclusive: true)
        }
        #expect(f.importing([WeComSamples.tags]).code == 0)
        #expect(try f.rows(.tagGroups).first { $0["name"] == .text("会员等级") }?["exclusive"] == .int(1))   // kept
        let detail = try f.write("zhou.json", """
        {"errcode":0,"errmsg":"ok","external_contact":{"external_userid":"wm_zhou","name":"周子豪","type":1,"gender":1},
         "follow_user":[
          {"userid":"chenjing","remark":"","description":"","createtime":1700000000,"tags":[{"group_name":"会员等级","tag_name":"金卡会员","tag_id":"\(WeComSamples.gold)","type":1}]},
          {"userid":"wangfang","remark":"","description":"","createtime":1700000500,"tags":[{"group_name":"会员等级","tag_name":"银卡会员","tag_id":"\(WeComSamples.silver)","type":1}]}]}
        """)
        #expect(f.importing([detail]).code == 0)
        let r = try f.replica(); defer { r.close() }
        #expect(try r.rows(of: .customerTags).count == 1)
        #expect(try r.conflicts(state: .open).contains { $0.rule == .exclusiveTagGroup })
    }

    @Test func personalTagsAreLeftOutAndRuleGroupTagsAreKeptUnderTheirRuleGroup() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        let detail = try f.write("rule.json", """
        {"errcode":0,"errmsg":"ok","external_contact":{"external_userid":"wm_rule","name":"客户","type":1,"gender":0},
         "follow_user":[{"userid":"chenjing","remark":"","description":"","createtime":1700000000,"tags":[
           {"group_name":"","tag_name":"爱喝燕麦","type":2},
           {"group_name":"高价值客户","tag_name":"月消费千元","tag_id":"stAAAA1","type":3}]}]}
        """)
        let r = f.importing([detail])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("left out 1 personal tag"))
        #expect(try f.rows(.tagGroups).first?["group_id"] == .text("rule:高价值客户"))
        #expect(try f.rows(.tags).first?["name"] == .text("月消费千元"))
        #expect(try f.rows(.customerTags).first?["tag_id"] == .text("stAAAA1"))
        #expect(try f.rows(.customerTags).first?["added_by"] == .text("chenjing"))
        let before = try f.ops()
        #expect(f.importing([detail]).code == 0)
        #expect(try f.ops() == before)
        let export = f.run(["wecom", "export", "--db", f.db])
        #expect(export.out.contains("\"tag_id\":\"stAAAA1\",\"tag_name\":\"月消费千元\",\"type\":3"))
    }

    @Test func tagsTheLibraryDoesNotHoldAreLeftOutAndNamed() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        let r = f.importing([WeComSamples.lin])   // no tag list first
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("the tag library does not hold"))
        #expect(r.out.contains("import get_corp_tag_list first"))
        #expect(try f.rows(.customers).count == 1)
    }

    @Test func aGroupChatSetsItsRosterAndAGroupChatListAsksForTheChatsNotHeld() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        #expect(f.importing([WeComSamples.group]).code == 0)
        let chat = try f.rows(.groupChats).first
        #expect(chat?["name"] == .text("栖木·西湖店会员福利群"))
        #expect(chat?["owner"] == .text("chenjing"))
        let members = try f.rows(.groupMembers)
        #expect(members.count == 6)
        let liuyang = members.first { $0["member_id"] == .text("liuyang") }
        #expect(liuyang?["invitor"] == .text("chenjing"))
        #expect(liuyang?["nickname"] == .text("西湖店店长-刘洋"))
        #expect(liuyang?["member_type"] == .int(1))
        let list = try f.write("list.json", """
        {"errcode":0,"errmsg":"ok","group_chat_list":[{"chat_id":"\(WeComSamples.chat)","status":0},{"chat_id":"wr_new","status":0}],"next_cursor":"N2"}
        """)
        let r = f.importing([list])
        #expect(r.code == 0)
        #expect(r.out.contains("groupchat/get wr_new"))
        #expect(!r.out.contains("groupchat/get \(WeComSamples.chat)"))
        #expect(r.out.contains("cursor N2"))
    }

    func memberCallback(_ f: WeComFixture, _ name: String, last: String, current: String, detail: String, members: [String]) throws -> String {
        try f.write(name, """
        <xml><ToUserName><![CDATA[ww7f3a9c2e5b1d8046]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>
        <CreateTime>1763950400</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>
        <ChatId><![CDATA[\(WeComSamples.chat)]]></ChatId><ChangeType><![CDATA[update]]></ChangeType>
        <UpdateDetail><![CDATA[\(detail)]]></UpdateDetail><JoinScene>3</JoinScene><QuitScene>0</QuitScene>
        <MemChangeCnt>\(members.count)</MemChangeCnt><MemChangeList>\(members.map { "<Item><![CDATA[\($0)]]></Item>" }.joined())</MemChangeList>
        <LastMemVer><![CDATA[\(last)]]></LastMemVer><CurMemVer><![CDATA[\(current)]]></CurMemVer></xml>
        """)
    }

    @Test func aMemberCallbackFollowingTheRecordedVersionChangesTheRosterAndAGapAsksForARefetch() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        #expect(f.importing([WeComSamples.group]).code == 0)
        let join = try memberCallback(f, "join.xml", last: "0a728af81d9dc35213d94c7ebbe6c1ec", current: "v2", detail: "add_member", members: ["wm_new"])
        let r = f.importing([join])
        #expect(r.code == 0, "\(r.err)")
        let joined = try f.rows(.groupMembers).first { $0["member_id"] == .text("wm_new") }
        #expect(joined?["join_scene"] == .int(3))
        #expect(joined?["join_time"] == .int(1763950400))
        let before = try f.ops()
        #expect(f.importing([join]).code == 0)   // the same callback again: already applied
        #expect(try f.ops() == before)
        // A callback that follows a version this replica never saw: nothing guessed.
        let gap = try memberCallback(f, "gap.xml", last: "v3", current: "v4", detail: "del_member", members: ["chenjing"])
        let g = f.importing([gap])
        #expect(g.code == 0)
        #expect(g.out.contains("groupchat/get \(WeComSamples.chat)"))
        #expect(g.out.contains("member version gap"))
        #expect(try f.ops() == before)
        #expect(try f.rows(.groupMembers).contains { $0["member_id"] == .text("chenjing") })
        // The next callback in order removes the member.
        let leave = try memberCallback(f, "leave.xml", last: "v2", current: "v3", detail: "del_member", members: ["wm_new"])
        #expect(f.importing([leave]).code == 0)
        #expect(!(try f.rows(.groupMembers).contains { $0["member_id"] == .text("wm_new") }))
    }

    @Test func callbacksInXMLAndInJSONReadTheSame() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        let xml = f.importing([WeComSamples.editXML]), json = f.importing([WeComSamples.editJSON])
        #expect(xml.code == 0 && json.code == 0)
        #expect(xml.out == json.out)
        #expect(xml.out.contains("externalcontact/get wmQm7wCAAAUO18MK3FxGaGCsaUfV0BtA"))
        let tagDeleted = try f.write("tagdel.json", """
        {"ToUserName":"ww1","FromUserName":"sys","CreateTime":1763950400,"MsgType":"event","Event":"change_external_tag",
         "Id":"\(WeComSamples.tea)","TagType":"tag","ChangeType":"delete"}
        """)
        #expect(f.importing([WeComSamples.tags, tagDeleted]).code == 0)
        #expect(try f.rows(.tags).first { $0["tag_id"] == .text(WeComSamples.tea) }?["deleted"] == .int(1))
    }

    @Test func malformedJSONIsRefusedWithItsPathAndNothingIsWritten() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        let bytes = snapshot(f.db)
        let syntax = try f.write("bad.json", """
        {"external_contact":{"external_userid":"wm_1","name":"甲"},
         "follow_user":[{"userid":"chenjing","createtime":17160x}]}
        """)
        let r = f.importing([WeComSamples.tags, syntax])
        #expect(r.code == 1)
        #expect(r.err.contains("$.follow_user[0].createtime"), "\(r.err)")
        #expect(r.err.contains("line 2"))
        #expect(r.err.contains("nothing was written"))
        #expect(r.err.split(separator: "\n").count == 2)   // one line and a hint
        let typed = try f.write("typed.json", """
        {"external_contact":{"external_userid":"wm_1","name":"甲","gender":"male"},"follow_user":[]}
        """)
        let t = f.importing([typed])
        #expect(t.code == 1)
        #expect(t.err.contains("$.external_contact.gender"), "\(t.err)")
        let limit = try f.write("limit.json", """
        {"external_contact":{"external_userid":"wm_1"},"follow_user":[{"userid":"chenjing","remark":"一二三四五六七八九十一二三四五六七八九十一"}]}
        """)
        let l = f.importing([limit])
        #expect(l.code == 1)
        #expect(l.err.contains("$.follow_user[0].remark"), "\(l.err)")
        #expect(snapshot(f.db) == bytes)
        #expect(try f.ops() == 0)
    }

    @Test func aPayloadOfTheWrongShapeIsRefused() throws {
        let f = try WeComFixture(); defer { f.directory.remove() }
        let wrong = try f.write("wrong.json", #"{"errcode":0,"errmsg":"ok","userid":"chenjing","name":"陈静"}"#)
        let r = f.importing([wrong])
        #expect(r.code == 1)
        #expect(r.err.contains("not a WeCom payload this importer knows"))
        #expect(r.err.contains("hint:"))
        let error = try f.write("error.json", #"{"errcode":701008,"errmsg":"no license"}"#)
        #expect(f.importing([error]).err.contains("errcode"))
        let array = try f.write("array.json", "[1, 2]")
        #expect(f.importing([array]).err.contains("not a JSON object"))
        #expect(try f.ops() == 0)
    }

    @Test func aStoreReplicaIsRefused() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let db = dir.path("xihu.db")
        #expect(siyu(["init", "--db", db, "--node", "xihu", "--role", "store"]).code == 0)
        let r = siyu(["wecom", "import", "--db", db, WeComSamples.tags])
        #expect(r.code == 1)
        #expect(r.err.contains("only HQ"))
    }
}

/// Large imports: committed in batches, line numbers counted as the file is read.
@Suite struct WeComBatchedImportTests {
    static func lines(_ count: Int, badAt bad: Int? = nil) -> String {
        (0..<count).map { i in
            i == bad ? #"{"errcode":0,"external_contact":{"external_userid":"wm_x","name":7}}"#
                : #"{"errcode":0,"errmsg":"ok","external_contact":{"external_userid":"wmL\#(i)","name":"客户\#(i)","type":1},"follow_user":[]}"#
        }.joined(separator: "\n") + "\n"
    }

    @Test func anImportInBatchesWritesWhatOneTransactionWritesAndRecordsEachBatchAsTheImports() throws {
        let one = try WeComFixture(), batched = try WeComFixture()
        defer { one.directory.remove(); batched.directory.remove() }
        let file = try one.write("c.jsonl", WeComBatchedImportTests.lines(25))
        #expect(one.importing([file]).code == 0)
        let r = batched.run(["wecom", "import", "--db", batched.db, "--batch", "10", file])
        #expect(r.code == 0, "\(r.err)")
        #expect(try batched.rows(.customers).count == 25)
        #expect(try batched.rows(.customers).map { $0["customer_id"] } == (try one.rows(.customers).map { $0["customer_id"] }))
        #expect(try batched.ops() == (try one.ops()))
        // Each batch recorded the ops it wrote as the import's (mark-tag export leaves them out): three
        // batches (10, 10, 5 payloads), covering every op of the node without a gap.
        let replica = try batched.replica()
        let ranges = try replica.bridgeValues(WeComImport.bridgeImports).compactMap { kv in UInt64(kv.key).flatMap { a in UInt64(kv.value).map { a...$0 } } }
            .sorted { $0.lowerBound < $1.lowerBound }
        let own = try replica.opCounts().own
        replica.close()
        #expect(ranges.count == 3)
        #expect(ranges.first?.lowerBound == 1 && ranges.last?.upperBound == UInt64(own))
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound + 1 == $1.lowerBound })
        #expect(batched.run(["wecom", "import", "--db", batched.db, "--batch", "10", file]).out.contains("0 ops written"))
    }

    @Test func aBadPayloadDeepInAJSONLinesFileIsReportedOnItsLine() throws {
        let f = try WeComFixture()
        defer { f.directory.remove() }
        let file = try f.write("bad.jsonl", WeComBatchedImportTests.lines(300, badAt: 276))
        let r = f.importing([file])
        #expect(r.code == 1)
        #expect(r.err.contains("line 277"), "\(r.err)")
        #expect(try f.ops() == 0)
    }
}

/// The two mapping gaps: `remark_mobiles` is the customer's phone; the oldest follow relation's
/// staff member (and that member's store) owns a customer that has no owner yet.
@Suite struct WeComOwnerAndPhoneTests {
    @Test func remarkMobilesBecomeThePhoneAndTheOldestFollowerAndTheirStoreTheOwner() throws {
        let f = try WeComFixture()
        defer { f.directory.remove() }
        do {
            let r = try f.replica(); defer { r.close() }
            try r.defineStore("xihu", name: "西湖店")
            try r.defineStaff("chenjing", name: "陈静", storeID: "xihu")
        }
        #expect(f.importing([WeComSamples.tags, WeComSamples.lin]).code == 0)
        let lin = try #require(try f.rows(.customers).first { $0["customer_id"] == .text(WeComSamples.linID) })
        #expect(lin["phone"] == .text("13857112345"))
        #expect(lin["owner_staff"] == .text("chenjing"))
        #expect(lin["owner_store"] == .text("xihu"))
        let found = f.run(["customers", "--db", f.db, "--store", "xihu"])
        #expect(found.out.contains(WeComSamples.linID))
    }

    @Test func anOwnerHQOrAStoreSetIsNeverOverwrittenByAnImport() throws {
        let f = try WeComFixture()
        defer { f.directory.remove() }
        #expect(f.importing([WeComSamples.tags, WeComSamples.lin]).code == 0)
        do {
            let r = try f.replica(); defer { r.close() }
            try r.editCustomer(WeComSamples.linID, ["owner_staff": .text("liuyang"), "owner_store": .text("jingan")], by: "")
        }
        #expect(f.importing([WeComSamples.lin]).code == 0)
        let lin = try #require(try f.rows(.customers).first { $0["customer_id"] == .text(WeComSamples.linID) })
        #expect(lin["owner_staff"] == .text("liuyang"))
        #expect(lin["owner_store"] == .text("jingan"))
    }
}

/// HQ's own transfer of a customer (`siyu customer transfer`) moves the owner and owner store; a
/// `transfer_fail` callback for it puts them back; one for another member changes nothing.
@Suite struct WeComTransferTests {
    @Test func aFailedTransferPutsTheOwnerBackAndOnlyThen() throws {
        let f = try WeComFixture()
        defer { f.directory.remove() }
        do {
            let r = try f.replica(); defer { r.close() }
            try r.defineStore("xihu", name: "西湖店")
            try r.defineStore("jingan", name: "静安店")
            try r.defineStaff("chenjing", name: "陈静", storeID: "xihu")
            try r.defineStaff("liuyang", name: "刘洋", storeID: "jingan")
        }
        #expect(f.importing([WeComSamples.tags, WeComSamples.lin]).code == 0)
        func owner() throws -> [Value?] {
            let lin = try #require(try f.rows(.customers).first { $0["customer_id"] == .text(WeComSamples.linID) })
            return [lin["owner_staff"], lin["owner_store"]]
        }
        #expect(try owner() == [.text("chenjing"), .text("xihu")])
        let moved = f.run(["customer", "transfer", "--db", f.db, WeComSamples.linID, "--to", "liuyang"])
        #expect(moved.code == 0, "\(moved.err)")
        #expect(try owner() == [.text("liuyang"), .text("jingan")])
        func callback(_ member: String) throws -> String {
            try f.write("fail-\(member).json", """
                {"ToUserName":"ww7f3a9c2e5b1d8046","FromUserName":"sys","CreateTime":1763950400,"MsgType":"event",
                 "Event":"change_external_contact","ChangeType":"transfer_fail","UserID":"\(member)",
                 "ExternalUserID":"\(WeComSamples.linID)","FailReason":"customer_refused"}
                """)
        }
        #expect(f.importing([try callback("wangfang")]).code == 0)
        #expect(try owner() == [.text("liuyang"), .text("jingan")])
        let failed = f.importing([try callback("liuyang")])
        #expect(failed.code == 0, "\(failed.err)")
        #expect(failed.out.contains("transfer of \(WeComSamples.linID) to liuyang failed"))
        #expect(try owner() == [.text("chenjing"), .text("xihu")])
    }
}
