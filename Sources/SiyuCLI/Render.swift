import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine

/// Human-readable rendering of replica contents for the CLI. Pure formatting over a replica's
/// queries.
///
/// Guarantee: every string that comes from data (ids, names, authors, values) goes through
/// `TerminalText.escaped`, so a record cannot move the cursor, colour the terminal, reverse a
/// line or forge a line of output.
public enum Render {
    private static let timeFormatter: DateFormatter = {
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss.SSS"
        f.timeZone = TimeZone(identifier: "Asia/Shanghai")
        return f
    }()

    private static let dateFormatter: DateFormatter = {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss xxx"   // the offset says the zone (logs are in UTC, ending Z)
        f.timeZone = TimeZone(identifier: "Asia/Shanghai")
        return f
    }()

    /// A clock as `HH:mm:ss.SSS+L` in Asia/Shanghai (`+L` only when the logical counter is set).
    public static func time(_ hlc: HLC) -> String {
        timeFormatter.string(from: Date(timeIntervalSince1970: Double(hlc.millis) / 1000)) + (hlc.logical > 0 ? "+\(hlc.logical)" : "")
    }

    /// Unix seconds as a date and time in Asia/Shanghai.
    static func date(unixSeconds: Int64) -> String {
        dateFormatter.string(from: Date(timeIntervalSince1970: Double(unixSeconds)))
    }

    /// Unix milliseconds as a date and time in Asia/Shanghai.
    static func date(unixMillis: Int64) -> String {
        dateFormatter.string(from: Date(timeIntervalSince1970: Double(unixMillis) / 1000))
    }

    /// `n` and the noun, plural unless n is 1: "1 op", "2 ops", "0 customers".
    public static func count<N: BinaryInteger>(_ n: N, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }

    /// Data, safe to print.
    static func text(_ s: String) -> String { TerminalText.escaped(s) }

    /// A value with its type visible (text quoted), safe to print.
    static func quoted(_ v: Value) -> String {
        if case let .text(s) = v { return "\"\(text(s))\"" }
        return text(v.description)
    }

    /// A value for a table cell: text unquoted, null empty.
    static func cell(_ v: Value?) -> String {
        guard let v, v != .null else { return "" }
        return text(v.description)
    }

    static func writer(_ side: ConflictSide?) -> String {
        guard let side else { return "—" }
        return "\(side.author.isEmpty ? "system" : text(side.author))@\(text(side.stamp.node)) \(time(side.stamp.hlc))"
    }

    /// Columns padded to their widest cell (CJK counts two), a rule under the header.
    public static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.displayWidth)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.displayWidth) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in c + String(repeating: " ", count: max(0, widths[min(i, widths.count - 1)] - c.displayWidth)) }
                .joined(separator: "  ").trailingSpacesRemoved
        }
        return ([line(header), line(widths.map { String(repeating: "─", count: $0) })] + rows.map(line)).joined(separator: "\n")
    }

    /// The conflict log. `current` gives a field's value now, for closed `lww` conflicts.
    public static func conflicts(_ entries: [ConflictEntry], current: [String: Value] = [:]) -> String {
        if entries.isEmpty { return "  (no conflicts)" }
        return entries.map { c in
            var s = "  [\(c.id)] \(c.state.rawValue.uppercased())  \(c.rule.rawValue) on \(text(c.target.description))\(c.field.isEmpty ? "" : ".\(text(c.field))")\n"
            s += "      kept:      \(c.winner.map { quoted($0.value) } ?? "—")  by \(writer(c.winner))\n"
            s += "      discarded: \(quoted(c.loser.value))  by \(writer(c.loser))\n"
            s += "      rule:      \(c.rule.explanation)"
            if let closed = c.closedBy { s += "\n      closed by: \(writer(closed))" }
            if c.state != .open, let now = current[c.id] { s += "\n      now:       \(quoted(now))" }
            return s
        }.joined(separator: "\n")
    }

    /// Customers with tags and points, group chats, and orders: the whole replica in three tables.
    public static func state(of r: Replica) throws -> String {
        var out: [String] = []
        let tagNames = Dictionary(try r.rows(of: .tags).map { (cell($0["tag_id"]), cell($0["name"])) }, uniquingKeysWith: { a, _ in a })
        let tagsByCustomer = Dictionary(grouping: try r.rows(of: .customerTags), by: { cell($0["customer_id"]) })
        let points = Dictionary(try r.rows(of: .points).map { (cell($0["customer_id"]), cell($0["balance"])) }, uniquingKeysWith: { a, _ in a })
        out.append("Customers")
        out.append(table(["id", "name", "phone", "tags", "points", ""], try r.rows(of: .customers).map { c in
            let id = cell(c["customer_id"])
            let tags = (tagsByCustomer[id] ?? []).map { tagNames[cell($0["tag_id"])] ?? cell($0["tag_id"]) }
            return [id, cell(c["name"]), cell(c["phone"]), tags.joined(separator: ","), points[id] ?? "",
                    c["deleted"] == .int(1) ? "(deleted)" : ""]
        }))
        out.append("\nGroup chats")
        let members = Dictionary(grouping: try r.rows(of: .groupMembers), by: { cell($0["chat_id"]) })
        out.append(table(["id", "name", "members", "overflow"], try r.rows(of: .groupChats).map { g in
            let id = cell(g["chat_id"])
            let m = members[id] ?? []
            let over = m.filter { $0["overflow"] == .int(1) }.map { cell($0["member_id"]) }
            let capacity = g["capacity"].flatMap { $0 == .null ? nil : $0 }?.description ?? "\(InstanceState.defaultCapacity)"
            return [id, cell(g["name"]), "\(m.count - over.count)/\(capacity)", over.joined(separator: ",")]
        }))
        out.append("\nOrders")
        let lines = Dictionary(grouping: try r.rows(of: .orderLines), by: { cell($0["order_id"]) })
        out.append(table(["id", "customer", "status", "lines"], try r.rows(of: .orders).map { o in
            let id = cell(o["order_id"])
            let l = (lines[id] ?? []).map { "\(cell($0["sku"]))×\(cell($0["qty"]))" }
            return [id, cell(o["customer_id"]), cell(o["status"]), l.joined(separator: " ")]
        }))
        return out.joined(separator: "\n")
    }
}

extension String {
    /// The string without trailing spaces.
    var trailingSpacesRemoved: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }

    /// Terminal columns: CJK characters take two.
    var displayWidth: Int {
        unicodeScalars.reduce(0) { w, s in
            let v = s.value
            let wide = (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
                || (0xFFE0...0xFFE6).contains(v) || (0x20000...0x3FFFD).contains(v)
            return w + (wide ? 2 : (s.properties.generalCategory == .nonspacingMark ? 0 : 1))
        }
    }
}
