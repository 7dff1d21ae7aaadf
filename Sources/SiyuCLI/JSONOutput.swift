import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine

/// The typed JSON every `--json` prints. Field names are snake_case (`target_id`, `closed_by`);
/// numbers are JSON numbers, field values keep their type (text → string, integer → number,
/// true/false → boolean, unset → null), and every time is a clock object. docs/CLI.md lists the
/// fields of each command.
enum JSONOutput {
    /// Writes `value` as pretty-printed JSON with sorted keys, format characters escaped.
    static func write<T: Encodable>(_ value: T, to stream: TextStream) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(value)
        stream.line(TerminalText.jsonSafe(String(decoding: data, as: UTF8.self)))
    }
}

/// A hybrid logical clock reading: `millis` (Unix milliseconds), `logical` (the counter that
/// orders events within one millisecond), and `time` (ISO 8601, UTC, for people).
struct ClockJSON: Encodable, Equatable {
    var millis: UInt64
    var logical: Int
    var time: String

    init(_ hlc: HLC) {
        millis = hlc.millis
        logical = Int(hlc.logical)
        time = ClockJSON.iso(hlc.millis)
    }

    static func iso(_ millis: UInt64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}

/// A field value with its type: string, number, boolean or null (bytes as a hex string).
struct ValueJSON: Encodable, Equatable {
    var value: Value

    init(_ value: Value) { self.value = value }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case .null: try c.encodeNil()
        case let .int(v): try c.encode(v)
        case let .text(s): try c.encode(s)
        case let .bool(b): try c.encode(b)
        case let .bytes(b): try c.encode(b.hexString)
        }
    }
}

/// Who wrote something: `node` (the origin), `staff` (the WeCom userid; empty for the system)
/// and `clock`.
struct WriterJSON: Encodable, Equatable {
    var node: String
    var staff: String
    var clock: ClockJSON

    init(node: String, staff: String, hlc: HLC) {
        self.node = node
        self.staff = staff
        self.clock = ClockJSON(hlc)
    }

    init(_ side: ConflictSide) { self.init(node: side.stamp.node, staff: side.author, hlc: side.stamp.hlc) }
}

/// One side of a conflict: its `value` and its `writer`.
struct ConflictSideJSON: Encodable, Equatable {
    var value: ValueJSON
    var writer: WriterJSON

    init(_ side: ConflictSide) {
        value = ValueJSON(side.value)
        writer = WriterJSON(side)
    }
}

/// One conflict as `siyu conflicts --json` prints it.
struct ConflictJSON: Encodable, Equatable {
    /// The full conflict id (any unique prefix of 4 or more digits names it in `ack`/`override`).
    var id: String
    /// open, acknowledged or overridden.
    var state: String
    /// The rule that decided (`lww`, `exclusive_tag_group`, …) and its explanation.
    var rule: String
    var explanation: String
    var entity: String
    var targetId: String
    var sub: String
    /// The field, for `lww` conflicts; empty otherwise.
    var field: String
    /// The side that was kept (null when the rule keeps nothing, e.g. an overdraft).
    var kept: ConflictSideJSON?
    var discarded: ConflictSideJSON
    /// The op that closed the conflict (null while open).
    var closedBy: WriterJSON?
    /// The field's value now, for `lww` conflicts (what an override set, once overridden).
    var currentValue: ValueJSON?
    /// Whether `siyu override` can act on it.
    var canOverride: Bool

    init(_ c: ConflictEntry, current: Value?) {
        id = c.id
        state = c.state.rawValue
        rule = c.rule.rawValue
        explanation = c.rule.explanation
        entity = c.target.entity.name
        targetId = c.target.id
        sub = c.target.sub
        field = c.field
        kept = c.winner.map(ConflictSideJSON.init)
        discarded = ConflictSideJSON(c.loser)
        closedBy = c.closedBy.map(WriterJSON.init)
        currentValue = current.map(ValueJSON.init)
        canOverride = c.state == .open && (c.rule == .lastWriterWins || c.rule == .exclusiveTagGroup)
    }
}
