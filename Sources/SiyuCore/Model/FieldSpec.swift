import Foundation

/// The type a field holds.
public enum FieldType: Sendable {
    case text(maxLength: Int?)
    case int(range: ClosedRange<Int64>?)
    case bool
}

/// A last-writer-wins field of an entity, with the rule its values must satisfy.
/// Text lengths are counted in characters, as WeCom counts them (一个汉字 = 1), **and** in bytes of
/// UTF-8: a text field of at most N characters holds at most `N × utf8BytesPerCharacter` bytes.
/// The byte limit is what bounds storage: one character can carry any number of combining marks
/// ("x" followed by 100,000 accents is one character of 200,001 bytes). Text holds no control
/// characters (C0 except the line feed, DEL, C1); format characters are allowed in text (the
/// zero-width joiner builds emoji) but not in ids (`IdentifierRule`).
public struct FieldSpec: Sendable {
    /// Bytes of UTF-8 allowed per character of a text field's limit: 4, the most one Unicode
    /// scalar takes, so any text of at most N scalars fits (64 Chinese characters take 192 of a
    /// name's 256 bytes). Characters made of several scalars (a ZWJ family emoji is one character
    /// of 25 bytes) reach the byte limit first.
    public static let utf8BytesPerCharacter = 4

    public let name: String
    public let type: FieldType
    /// Where the limit comes from, for error messages.
    public let source: String

    init(_ name: String, _ type: FieldType, _ source: String = "") {
        self.name = name
        self.type = type
        self.source = source
    }

    /// Checks a value for this field; `.null` clears a field and is always allowed.
    public func validate(_ value: Value, on entity: Entity) throws {
        let subject = "\(entity.name).\(name)"
        switch (type, value) {
        case (_, .null):
            return
        case let (.text(max), .text(s)):
            if let max {
                // Bytes first: O(1), and before any work proportional to a hostile length.
                let bytes = s.utf8.count, maxBytes = max * FieldSpec.utf8BytesPerCharacter
                if bytes > maxBytes {
                    throw CoreError.invalidEdit(
                        what: "\(subject) is \(bytes) bytes of UTF-8, over the limit of \(maxBytes) bytes (\(max) characters × \(FieldSpec.utf8BytesPerCharacter))",
                        hint: "shorten it; characters built of many code points (combining marks, emoji sequences) take more bytes")
                }
                // Counted in Unicode scalar values (SPEC §9): the same on every Unicode version,
                // unlike grapheme clusters.
                if bytes > max, case let scalars = s.unicodeScalars.count, scalars > max {
                    throw CoreError.invalidEdit(
                        what: "\(subject) is \(scalars) Unicode scalar values long, over the limit of \(max)\(source.isEmpty ? "" : " (\(source))")",
                        hint: "shorten it to at most \(max) characters (an accent or emoji part counts as one)")
                }
            }
            if s.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\n") || (0x7f...0x9f).contains($0.value) }) {
                throw CoreError.invalidEdit(what: "\(subject) contains control characters",
                                            hint: "remove tabs and control characters (C0, DEL, C1)")
            }
        case let (.int(range), .int(v)):
            if let range, !range.contains(v) {
                throw CoreError.invalidEdit(what: "\(subject) = \(v) is outside \(range.lowerBound)...\(range.upperBound)",
                                            hint: "use a value in that range\(source.isEmpty ? "" : " (\(source))")")
            }
        case (.bool, .bool):
            return
        default:
            throw CoreError.invalidEdit(what: "\(subject) was given \(value.typeName) \(value.quoted)",
                                        hint: "it takes \(type.name)")
        }
    }

    static let table: [Entity: [FieldSpec]] = [
        .store: [FieldSpec("name", .text(maxLength: 64)), FieldSpec("region", .text(maxLength: 64))],
        .staff: [FieldSpec("name", .text(maxLength: 64)), FieldSpec("store_id", .text(maxLength: 64))],
        .customer: [
            FieldSpec("name", .text(maxLength: 64), "Siyu limit for customer names"),
            FieldSpec("gender", .int(range: 0...2), "WeCom: 0 unknown, 1 male, 2 female"),
            FieldSpec("phone", .text(maxLength: 32)),
            FieldSpec("unionid", .text(maxLength: 64)),
            FieldSpec("owner_store", .text(maxLength: 64)),
            FieldSpec("owner_staff", .text(maxLength: 64)),
        ],
        .followRelation: [
            FieldSpec("remark", .text(maxLength: 20), "WeCom remark limit"),
            FieldSpec("description", .text(maxLength: 150), "WeCom description limit"),
            FieldSpec("add_way", .int(range: 0...255), "WeCom add_way code"),
            FieldSpec("createtime", .int(range: 0...Int64(UInt32.max)), "Unix seconds"),
            FieldSpec("state", .text(maxLength: 30), "WeCom state limit"),
        ],
        .tagGroup: [
            FieldSpec("name", .text(maxLength: 30), "WeCom tag group name limit"),
            FieldSpec("sort_order", .int(range: 0...Int64(UInt32.max)), "WeCom order is a u32"),
            FieldSpec("exclusive", .bool),
            FieldSpec("deleted", .bool),
        ],
        .tag: [
            FieldSpec("group_id", .text(maxLength: 64)),
            FieldSpec("name", .text(maxLength: 30), "WeCom tag name limit"),
            FieldSpec("sort_order", .int(range: 0...Int64(UInt32.max)), "WeCom order is a u32"),
            FieldSpec("deleted", .bool),
        ],
        .groupChat: [
            FieldSpec("name", .text(maxLength: 50), "Siyu limit; WeCom states none for customer groups"),
            FieldSpec("owner", .text(maxLength: 64)),
            FieldSpec("notice", .text(maxLength: 1000), "Siyu limit for group notices"),
            FieldSpec("capacity", .int(range: 1...500), "WeCom customer groups hold at most 500"),
        ],
        .groupMember: [
            FieldSpec("member_type", .int(range: 1...2), "WeCom: 1 staff, 2 external contact"),
            FieldSpec("join_time", .int(range: 0...Int64(UInt32.max)), "Unix seconds"),
            FieldSpec("join_scene", .int(range: 0...3), "WeCom join_scene"),
            FieldSpec("invitor", .text(maxLength: 64)),
            FieldSpec("nickname", .text(maxLength: 64)),
        ],
        .order: [
            FieldSpec("customer_id", .text(maxLength: 64)),
            FieldSpec("store_id", .text(maxLength: 64)),
            FieldSpec("staff_id", .text(maxLength: 64)),
            FieldSpec("address", .text(maxLength: 200), "Siyu limit for addresses"),
            FieldSpec("note", .text(maxLength: 500), "Siyu limit for order notes"),
        ],
        .orderLine: [
            FieldSpec("sku", .text(maxLength: 64)),
            FieldSpec("qty", .int(range: 1...100_000)),
            FieldSpec("unit_price_cents", .int(range: 0...1_000_000_000)),
        ],
    ]
}

extension FieldType {
    var name: String {
        switch self {
        case .text: return "text"
        case .int: return "integer"
        case .bool: return "true/false"
        }
    }
}

/// Rules for ids (node ids, entity ids, stamps' nodes, conflict ids) and, allowing empty, authors.
///
/// Guarantees: an id that passes is non-empty; at most `maxLength` characters **and** `maxUTF8Bytes`
/// bytes of UTF-8; holds no control (Cc, C0 and C1), format (Cf: zero-width characters, U+FEFF,
/// bidi overrides and isolates such as U+202E), line or paragraph separator (U+2028, U+2029); has
/// no whitespace at either end (so it is not blank); and is in Unicode normalization form C. NFC
/// matters: Swift compares strings by canonical equivalence while SQLite compares bytes, so two
/// byte-different spellings of one id would be one record in memory and two on disk.
///
/// The limits follow WeCom: a member's `userid` is 1–64 bytes of letters, digits and `_-@.`
/// (member API, document 90195); `external_userid`, `chat_id` and tag ids are ASCII of about 32
/// bytes. Siyu's own ids (stores, orders, order lines) may be Chinese, hence characters as well as
/// bytes; the byte limit is what bounds storage, since one character can carry any number of
/// combining marks ("x" followed by 100,000 accents is one character of 200,001 bytes).
public enum IdentifierRule {
    /// At most 64 characters (grapheme clusters), as a WeCom userid.
    public static let maxLength = 64
    /// At most 256 bytes of UTF-8: 64 characters of up to 4 bytes each (64 CJK characters take 192).
    public static let maxUTF8Bytes = 256

    /// Checks an id; `what` names it in the error ("customer id").
    public static func validate(_ id: String, as what: String) throws {
        try check(id, as: what, allowEmpty: false)
    }

    /// Checks the author of an op: the WeCom userid of the staff member who made the edit, or
    /// empty for a system edit. Otherwise the rules of ids.
    public static func validateAuthor(_ author: String) throws {
        try check(author, as: "author", allowEmpty: true)
    }

    private static func check(_ id: String, as what: String, allowEmpty: Bool) throws {
        if id.isEmpty {
            if allowEmpty { return }
            throw CoreError.invalidEdit(what: "\(what) is empty", hint: "give a non-empty id")
        }
        // Bytes first: O(1), and before any work proportional to a hostile length.
        let bytes = id.utf8.count
        if bytes > maxUTF8Bytes {
            throw CoreError.invalidEdit(what: "\(what) \(printable(id)) is \(bytes) bytes of UTF-8 (limit \(maxUTF8Bytes) bytes, \(maxLength) characters)",
                                        hint: "use a shorter id")
        }
        // Most ids (WeCom's, staff userids) are printable ASCII, which is NFC and one character
        // per byte: checked without Unicode normalisation, which is costly.
        if bytes <= maxLength, id.utf8.withContiguousStorageIfAvailable(isPlainASCII) == true { return }
        if let bad = id.unicodeScalars.first(where: isRefused) {
            throw CoreError.invalidEdit(what: "\(what) \(printable(id)) contains \(describe(bad))",
                                        hint: "ids may not hold control, format (zero-width, bidi) or separator characters; use printable characters only")
        }
        if let first = id.unicodeScalars.first, let last = id.unicodeScalars.last,
           first.properties.isWhitespace || last.properties.isWhitespace {
            throw CoreError.invalidEdit(what: "\(what) \(printable(id)) \(id.allSatisfy(\.isWhitespace) ? "is only whitespace" : "begins or ends with whitespace")",
                                        hint: "trim whitespace from ids")
        }
        let count = id.unicodeScalars.count   // scalar values, as SPEC §9 counts
        if count > maxLength {
            throw CoreError.invalidEdit(what: "\(what) \(printable(id)) is \(count) Unicode scalar values long (limit \(maxLength))",
                                        hint: "use a shorter id")
        }
        if !id.utf8.elementsEqual(id.precomposedStringWithCanonicalMapping.utf8) {
            throw CoreError.invalidEdit(what: "\(what) \(printable(id)) is not in Unicode normalization form C",
                                        hint: "normalize ids to NFC before sending them")
        }
    }

    /// Printable ASCII (space to tilde) not beginning or ending with a space.
    private static func isPlainASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = bytes.first, let last = bytes.last, first != 0x20, last != 0x20 else { return false }
        for b in bytes where b < 0x20 || b >= 0x7f { return false }
        return true
    }

    /// Control (Cc: C0, DEL, C1), format (Cf) and line/paragraph separators (Zl, Zp).
    static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: return true
        default: return false
        }
    }

    static func describe(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex) (\(scalar.properties.generalCategory))"
    }

    /// A string as error messages show it: quoted, at most 24 Unicode scalars, with anything that is
    /// not a visible character or a plain space written as `\u{…}`, so that a hostile id cannot
    /// move a terminal's cursor or reorder the text around it.
    public static func printable(_ s: String, limit: Int = 24) -> String {
        var out = "'"
        var characters = 0
        for scalar in s.unicodeScalars {
            if characters == limit { out += "…"; break }
            characters += 1
            let category = scalar.properties.generalCategory
            let visible = scalar == " " || !(isRefused(scalar) || category == .spaceSeparator
                                             || category == .surrogate || category == .privateUse || category == .unassigned
                                             || category == .nonspacingMark || category == .enclosingMark)
            out += visible ? String(scalar) : "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
        }
        return out + "'"
    }
}
