// How the benchmark reports: every section yields human-readable lines and named figures; the
// figures become one JSON object under stable snake_case names (`--json`), and the headline
// figures are gathered into a summary table with their targets and the peer's (Loro's) figures.
// Measures nothing by itself.

import Foundation

/// A JSON value with object keys kept in the order they were added (stable output).
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// A number rounded to `digits` decimals (measurements are not more precise than that).
    static func rounded(_ x: Double, _ digits: Int = 3) -> JSONValue {
        guard x.isFinite else { return .null }
        let scale = pow(10, Double(digits))
        return .number((x * scale).rounded() / scale)
    }

    /// The value as JSON text: readable (", " and ": " between items) or compact (no spaces).
    func serialized(compact: Bool = false) -> String {
        let (comma, colon) = compact ? (",", ":") : (", ", ": ")
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .number(d):
            guard d.isFinite else { return "null" }
            if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
            return String(d)
        case let .string(s): return JSONValue.quote(s)
        case let .array(items): return "[" + items.map { $0.serialized(compact: compact) }.joined(separator: comma) + "]"
        case let .object(fields):
            return "{" + fields.map { JSONValue.quote($0.0) + colon + $0.1.serialized(compact: compact) }.joined(separator: comma) + "}"
        }
    }

    var doubleValue: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .number(d): return d
        default: return nil
        }
    }

    private static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension JSONValue: Decodable {
    /// Reads a scalar the way it was written: integer, number, bool or string (the peer's output).
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .null }
    }
}

/// One row of the summary table: a headline figure, its baseline, the design's target and,
/// where the peer measures the same thing, the peer's figure.
struct SummaryRow {
    var what: String
    var siyu: String
    var baseline: String
    var ratio: String
    var target: String
    var met: Bool?
    /// What the verdict cell says when `met` is nil (say, "not judged at this size").
    var unjudged: String = ""
    /// The row's name in the `--json` object's "targets" (rows with a target only).
    var key: String? = nil
    /// The `loro_*` key of the peer's comparable figure, and how to render it.
    var peerKey: String? = nil
    var peerUnit: String = ""
}

/// What one benchmark section produced.
struct SectionReport {
    var title: String
    var lines: [String] = []
    var figures: [(String, JSONValue)] = []
    var summary: [SummaryRow] = []

    init(_ title: String) { self.title = title }

    mutating func line(_ text: String) { lines.append(text) }
    mutating func figure(_ key: String, _ value: JSONValue) { figures.append((key, value)) }
    mutating func figure(_ key: String, _ value: Double, digits: Int = 3) { figures.append((key, .rounded(value, digits))) }
    mutating func figure(_ key: String, _ value: Int) { figures.append((key, .int(value))) }

    /// The section as printed: a title line and indented lines.
    var text: String { ([title] + lines.map { "  " + $0 }).joined(separator: "\n") }
}

/// The summary rows that carry a target, as the `--json` object's "targets": per row key, what is
/// measured, Siyu's figure, the baseline, the ratio, the target and whether it is met (null: not
/// judged, as at `--quick` sizes, or not measured).
func targetsJSON(_ rows: [SummaryRow]) -> JSONValue {
    .object(rows.compactMap { row in
        row.key.map { key in
            (key, .object([("what", .string(row.what)), ("siyu", .string(row.siyu)), ("baseline", .string(row.baseline)),
                           ("ratio", .string(row.ratio)), ("target", .string(row.target)), ("met", row.met.map(JSONValue.bool) ?? .null),
                           ("verdict", .string(row.met.map(verdict) ?? row.unjudged))]))
        }
    })
}

/// Renders the summary table, with the peer's column when the peer ran.
func summaryTable(_ rows: [SummaryRow], peer: PeerResult) -> [String] {
    var header = ["what", "siyu", "baseline (same run)", "ratio", "target", ""]
    if peer.isAvailable { header.append("peer: Loro \(peer.version)") }
    var table: [[String]] = [header]
    for row in rows {
        var cells = [row.what, row.siyu, row.baseline, row.ratio, row.target, row.met.map(verdict) ?? row.unjudged]
        if peer.isAvailable {
            cells.append(row.peerKey.flatMap { peer.figures[$0]?.doubleValue }.map { figureText($0) + row.peerUnit } ?? "—")
        }
        table.append(cells)
    }
    let widths = (0..<header.count).map { c in table.map { $0[c].count }.max() ?? 0 }
    return table.map { cells in
        cells.enumerated().map { i, cell in cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
}
