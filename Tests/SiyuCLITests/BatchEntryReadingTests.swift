import Foundation
import Testing
import SiyuCore
@testable import SiyuWeCom

/// The fast reading of `batch/get_by_user` entries (`BatchEntry.quickly`) gives what
/// `JSONDecoder` gives, or leaves the entry to it: seeded variants of every field — escapes,
/// nulls, strings for numbers, fractions, leading zeros, repeated keys, wrong types.
@Suite struct BatchEntryReadingTests {
    /// Variants of each kind of value; the first `plain` of them are the shape WeCom sends.
    static let strings = [#""wm_abc123""#, #""林小文""#, #""""#, "null", #""a\nb""#, #""\u6797""#, "7", "[]", #""caf\u00e9 ok""#]
    static let ints = ["0", "1", "2", "-0", #""1""#, #"" 2 ""#, "null", "-9223372036854775808",
                       "01", "1.5", "1e2", #""x""#, "true", "99999999999999999999", #""123456789012345678901""#]
    static let lists = [#"["et_a","et_b"]"#, "[]", "null", #"["et_a",1]"#, #"["et\u0041"]"#, #""et_a""#]
    static let plain = (strings: 4, ints: 8, lists: 3)

    /// One entry: each field present or not, with one of its variants; sometimes a key twice.
    static func entry(_ rng: inout SeededRandom) -> String {
        func fields(_ spec: [(String, [String])]) -> String {
            var parts: [String] = []
            for (key, options) in spec where rng.next() % 5 != 0 {
                let plain = options == strings ? Self.plain.strings : options == ints ? Self.plain.ints : Self.plain.lists
                parts.append("\"\(key)\":\(rng.pick(options, plain: plain))")
                if rng.next() % 40 == 0 { parts.append("\"\(key)\":\(rng.pick(options, plain: plain))") }
            }
            if rng.next() % 3 == 0 { parts.append(#""avatar":"http://x/y.png","external_profile":{"a":[1,{"b":null}]}"#) }
            return "{" + parts.shuffled(using: &rng).joined(separator: ",") + "}"
        }
        let contact = fields([("external_userid", strings), ("name", strings), ("type", ints), ("gender", ints),
                              ("unionid", strings), ("position", strings), ("corp_name", strings)])
        var follow = fields([("userid", strings), ("remark", strings), ("description", strings), ("createtime", ints),
                             ("tag_id", lists), ("remark_corp_name", strings), ("remark_mobiles", lists), ("add_way", ints),
                             ("oper_userid", strings), ("state", strings)])
        if rng.next() % 10 == 0 { follow = follow.replacingOccurrences(of: "{", with: #"{"tags":[{"tag_id":"et_a","type":1}],"#, range: follow.range(of: "{")) }
        var top = [#""external_contact":\#(contact)"#, #""follow_info":\#(follow)"#]
        if rng.next() % 30 == 0 { top.append(#""follow_info":\#(follow)"#) }
        if rng.next() % 20 == 0 { top.removeFirst() }
        return "{" + top.joined(separator: ",") + "}"
    }

    static func read(_ text: String) throws -> (quick: BatchEntry?, decoded: BatchEntry?) {
        let data = Data(text.utf8)
        let quick = try data.withUnsafeBytes { raw -> BatchEntry? in
            let scanner = JSONScanner(raw)
            let range = try #require(try scanner.nextValue(from: 0))
            return BatchEntry.quickly(scanner, range)
        }
        return (quick, try? JSONDecoder().decode(BatchEntry.self, from: data))
    }

    @Test func whatIsReadQuicklyEqualsWhatJSONDecoderReads() throws {
        let seed: UInt64 = 20_261_126
        print("BatchEntryReadingTests seed \(seed)")
        var rng = SeededRandom(seed: seed)
        var quick = 0, decoded = 0
        for _ in 0..<3_000 {
            let text = Self.entry(&rng)
            let (q, d) = try Self.read(text)
            if let q {
                quick += 1
                #expect(q == d, "seed \(seed): \(text)")
            }
            if d != nil { decoded += 1 }
        }
        // Both paths are exercised: many entries are read quickly, and others left to JSONDecoder.
        #expect(quick > 50 && quick < decoded, "quick \(quick), decoded \(decoded)")
    }

    @Test func theShapeWeComSendsIsReadQuickly() throws {
        let text = """
            {"external_contact":{"external_userid":"wmQm7wCAAA","name":"周子豪","type":1,"gender":"1","unionid":"oU123",
             "avatar":"http://p.qlogo.cn/x/0"},
             "follow_info":{"userid":"chenjing","remark":"老客","description":"","createtime":1700000000,
             "tag_id":["etQm7wCAAAm1q","etQm7wCAAA1zR"],"remark_corp_name":"","remark_mobiles":["13800000000"],
             "add_way":1,"oper_userid":"chenjing","state":""}}
            """
        let (q, d) = try Self.read(text)
        #expect(q != nil)
        #expect(q == d)
        #expect(q?.external_contact.gender == 1)
    }
}

extension SeededRandom {
    /// Mostly (7 in 8) one of the first `plain` options, else any.
    fileprivate mutating func pick<T>(_ options: [T], plain: Int) -> T {
        options[Int(next() % UInt64(next() % 8 == 0 ? options.count : plain))]
    }
}
