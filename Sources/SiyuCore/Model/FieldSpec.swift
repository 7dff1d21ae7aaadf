import Foundation

/// The type a field holds.
public enum FieldType: Sendable {
    case text(maxLength: Int?)
    case int(range: ClosedRange<Int64>?)
    case bool
}

/// A last-writer-wins field of an entity, with the rule its values must satisfy.
/// Lengths are counted in characters, as WeCom counts them (一个汉字 = 1).
public struct FieldSpec: Sendable {
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
            if let max, s.count > max {
                throw CoreError.invalidEdit(
                    what: "\(subject) is \(s.count) characters long, over the limit of \(max)\(source.isEmpty ? "" : " (\(source))")",
                    hint: "shorten it to at most \(max) characters")
            }
            if s.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) {
                throw CoreError.invalidEdit(what: "\(subject) contains control characters",
                                            hint: "remove tabs and control characters")
            }
        case let (.int(range), .int(v)):
            if let range, !range.contains(v) {
                throw CoreError.invalidEdit(what: "\(subject) = \(v) is outside \(range.lowerBound)...\(range.upperBound)",
                                            hint: "use a value in that range\(source.isEmpty ? "" : " (\(source))")")
            }
        case (.bool, .bool):
            return
        default:
            throw CoreError.invalidEdit(what: "\(subject) has the wrong type (\(value.quoted))",
                                        hint: "expected \(type.name)")
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

/// Rules for ids: non-empty, at most 64 characters, no control characters, Unicode NFC. NFC matters:
/// Swift compares strings by canonical equivalence while SQLite compares bytes, so two byte-different
/// spellings of one id would be one record in memory and two on disk.
public enum IdentifierRule {
    public static let maxLength = 64

    public static func validate(_ id: String, as what: String) throws {
        if id.isEmpty {
            throw CoreError.invalidEdit(what: "\(what) is empty", hint: "give a non-empty id")
        }
        // Most ids (WeCom's, staff userids) are printable ASCII, which is NFC and one character
        // per byte: checked without Unicode normalisation, which is costly.
        if id.utf8.count <= maxLength, id.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) { return }
        if id.count > maxLength {
            throw CoreError.invalidEdit(what: "\(what) '\(id.prefix(20))…' is \(id.count) characters long (limit \(maxLength))",
                                        hint: "use a shorter id")
        }
        if id.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw CoreError.invalidEdit(what: "\(what) contains control characters", hint: "use printable characters only")
        }
        if !id.utf8.elementsEqual(id.precomposedStringWithCanonicalMapping.utf8) {
            throw CoreError.invalidEdit(what: "\(what) '\(id)' is not in Unicode normalization form C",
                                        hint: "normalize ids to NFC before sending them")
        }
    }
}
