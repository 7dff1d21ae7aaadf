import Foundation

/// A `batch/get_by_user` entry read straight from its bytes, without `JSONDecoder`: the shape
/// WeCom sends (plain strings, integer numbers, known keys once each) is read here several times
/// faster; anything else — an escape in a string, a number with a fraction, a repeated key, a
/// value of the wrong type, a `tags` list — is left to `JSONDecoder`, which reads it (or reports
/// what is wrong) exactly as before.
///
/// Guarantee: when `quickly` returns an entry, it equals what `JSONDecoder` decodes from the same
/// bytes (`BatchEntryReadingTests` checks seeded variants of both paths against each other).
extension BatchEntry {
    /// The entry in `range` (a complete JSON value, as `JSONScanner` found it), or nil when it is
    /// not of the plain shape.
    static func quickly(_ s: JSONScanner, _ range: Range<Int>) -> BatchEntry? {
        guard let members = s.plainMembers(range) else { return nil }
        var contact: ExternalContact?, follow: FollowUser?
        for (key, value) in members {
            switch key {
            case "external_contact": contact = ExternalContact.quickly(s, value); if contact == nil { return nil }
            case "follow_info": follow = FollowUser.quickly(s, value); if follow == nil { return nil }
            default: continue
            }
        }
        guard let contact, let follow else { return nil }
        return BatchEntry(external_contact: contact, follow_info: follow)
    }
}

extension ExternalContact {
    static func quickly(_ s: JSONScanner, _ range: Range<Int>) -> ExternalContact? {
        guard let members = s.plainMembers(range) else { return nil }
        var id: String?
        var c = ExternalContact(external_userid: "", name: nil, gender: nil, unionid: nil)
        for (key, value) in members {
            switch key {
            case "external_userid": guard let v = s.plainString(value), let text = v else { return nil }; id = text
            case "name": guard let v = s.plainString(value) else { return nil }; c.name = v
            case "type": guard let v = s.weComInt(value) else { return nil }; c.type = v
            case "gender": guard let v = s.weComInt(value) else { return nil }; c.gender = v
            case "unionid": guard let v = s.plainString(value) else { return nil }; c.unionid = v
            case "position": guard let v = s.plainString(value) else { return nil }; c.position = v
            case "corp_name": guard let v = s.plainString(value) else { return nil }; c.corp_name = v
            default: continue
            }
        }
        guard let id else { return nil }
        c.external_userid = id
        return c
    }
}

extension FollowUser {
    static func quickly(_ s: JSONScanner, _ range: Range<Int>) -> FollowUser? {
        guard let members = s.plainMembers(range) else { return nil }
        var userid: String?
        var f = FollowUser(userid: "", remark: nil, description: nil, createtime: nil, tags: nil, add_way: nil, state: nil)
        for (key, value) in members {
            switch key {
            case "userid": guard let v = s.plainString(value), let text = v else { return nil }; userid = text
            case "remark": guard let v = s.plainString(value) else { return nil }; f.remark = v
            case "description": guard let v = s.plainString(value) else { return nil }; f.description = v
            case "createtime": guard let v = s.weComInt(value) else { return nil }; f.createtime = v
            case "tags": return nil   // (externalcontact/get's shape: JSONDecoder reads it)
            case "tag_id": guard let v = s.plainStrings(value) else { return nil }; f.tag_id = v
            case "remark_corp_name": guard let v = s.plainString(value) else { return nil }; f.remark_corp_name = v
            case "remark_mobiles": guard let v = s.plainStrings(value) else { return nil }; f.remark_mobiles = v
            case "add_way": guard let v = s.weComInt(value) else { return nil }; f.add_way = v
            case "oper_userid": guard let v = s.plainString(value) else { return nil }; f.oper_userid = v
            case "state": guard let v = s.plainString(value) else { return nil }; f.state = v
            default: continue
            }
        }
        guard let userid else { return nil }
        f.userid = userid
        return f
    }
}

extension JSONScanner {
    /// The members of the object at `range`, when it is an object whose keys are all different.
    func plainMembers(_ range: Range<Int>) -> [(key: String, value: Range<Int>)]? {
        guard isObject(range), let members = try? members(range) else { return nil }
        for i in members.indices.dropFirst() {   // a handful of keys: comparing beats hashing
            for j in 0..<i where members[j].key == members[i].key { return nil }
        }
        return members
    }

    /// A string without escapes (`.some(nil)` for `null`); nil for anything else.
    func plainString(_ range: Range<Int>) -> String?? {
        let first = bytes[range.lowerBound]
        if first == UInt8(ascii: "n") { return .some(nil) }
        guard first == UInt8(ascii: "\""), range.count >= 2 else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
        guard !inner.contains(UInt8(ascii: "\\")) else { return nil }
        guard let text = String(validating: inner, as: UTF8.self) else { return nil }
        return .some(text)
    }

    /// An array of strings without escapes (`.some(nil)` for `null`); nil for anything else.
    func plainStrings(_ range: Range<Int>) -> [String]?? {
        let first = bytes[range.lowerBound]
        if first == UInt8(ascii: "n") { return .some(nil) }
        guard isArray(range) else { return nil }
        var out: [String] = []
        var plain = true
        do {
            try elements(range) { _, element in
                guard plain, let value = plainString(element), let text = value else { plain = false; return }
                out.append(text)
            }
        } catch {
            return nil
        }
        return plain ? .some(out) : nil
    }

    /// A `WeComInt` as its decoder reads it — an integer number, or a string of at most 20 bytes
    /// that is an integer once spaces are trimmed (`.some(nil)` for `null`); nil for anything
    /// else (a fraction, an exponent, a leading zero, a value out of range: JSONDecoder decides).
    func weComInt(_ range: Range<Int>) -> WeComInt?? {
        let first = bytes[range.lowerBound]
        if first == UInt8(ascii: "n") { return .some(nil) }
        if first == UInt8(ascii: "\"") {
            guard let value = plainString(range), let text = value, text.utf8.count <= 20,
                  let n = Int64(text.trimmingCharacters(in: .whitespaces)) else { return nil }
            return .some(WeComInt(n))
        }
        var i = range.lowerBound
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        let digits = i
        while i < range.upperBound, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
        guard i == range.upperBound, i > digits, i - digits <= 19,
              !(bytes[digits] == UInt8(ascii: "0") && i - digits > 1) else { return nil }
        guard let n = Int64(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)) else { return nil }
        return .some(WeComInt(n))
    }
}
