import Foundation
import SiyuCore
import SiyuStore

/// Human-readable rendering of replica contents for the CLI. Pure formatting over a replica's queries.
public enum Render {
    public static func time(_ hlc: HLC) -> String {
        let date = Date(timeIntervalSince1970: Double(hlc.millis) / 1000)
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss.SSS"
        f.timeZone = TimeZone(identifier: "Asia/Shanghai")
        return f.string(from: date) + (hlc.logical > 0 ? "+\(hlc.logical)" : "")
    }

    static func writer(_ side: ConflictSide?) -> String {
        guard let side else { return "—" }
        return "\(side.author.isEmpty ? "system" : side.author)@\(side.stamp.node) \(time(side.stamp.hlc))"
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.displayWidth)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.displayWidth) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in c + String(repeating: " ", count: max(0, widths[i] - c.displayWidth)) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(header), line(widths.map { String(repeating: "─", count: $0) })] + rows.map(line)).joined(separator: "\n")
    }

    public static func conflicts(_ entries: [ConflictEntry]) -> String {
        if entries.isEmpty { return "  (no conflicts)" }
        return entries.map { c in
            var s = "  [\(c.id)] \(c.state.rawValue.uppercased())  \(c.rule.rawValue) on \(c.target)\(c.field.isEmpty ? "" : ".\(c.field)")\n"
            s += "      kept:      \(c.winner.map { $0.value.quoted } ?? "—")  by \(writer(c.winner))\n"
            s += "      discarded: \(c.loser.value.quoted)  by \(writer(c.loser))\n"
            s += "      rule:      \(c.rule.explanation)"
            if let closed = c.closedBy { s += "\n      closed by: \(writer(closed))" }
            return s
        }.joined(separator: "\n")
    }

    public static func state(of r: Replica) throws -> String {
        var out: [String] = []
        let tagNames = Dictionary(uniqueKeysWithValues: try r.rows(of: .tags).map { ($0["tag_id"]!.description, $0["name"]!.description) })
        let tagsByCustomer = Dictionary(grouping: try r.rows(of: .customerTags), by: { $0["customer_id"]!.description })
        let points = Dictionary(uniqueKeysWithValues: try r.rows(of: .points).map { ($0["customer_id"]!.description, $0["balance"]!.description) })
        out.append("Customers")
        out.append(table(["id", "name", "phone", "tags", "points", ""], try r.rows(of: .customers).map { c in
            let id = c["customer_id"]!.description
            let tags = (tagsByCustomer[id] ?? []).map { tagNames[$0["tag_id"]!.description] ?? $0["tag_id"]!.description }
            return [id, c["name"]!.description, c["phone"] == .null ? "" : c["phone"]!.description,
                    tags.joined(separator: ","), points[id] ?? "", c["deleted"] == .int(1) ? "(deleted)" : ""]
        }))
        out.append("\nGroup chats")
        let members = Dictionary(grouping: try r.rows(of: .groupMembers), by: { $0["chat_id"]!.description })
        out.append(table(["id", "name", "members", "overflow"], try r.rows(of: .groupChats).map { g in
            let id = g["chat_id"]!.description
            let m = members[id] ?? []
            let over = m.filter { $0["overflow"] == .int(1) }.map { $0["member_id"]!.description }
            return [id, g["name"]!.description, "\(m.count - over.count)/\(g["capacity"]!)", over.joined(separator: ",")]
        }))
        out.append("\nOrders")
        let lines = Dictionary(grouping: try r.rows(of: .orderLines), by: { $0["order_id"]!.description })
        out.append(table(["id", "customer", "status", "lines"], try r.rows(of: .orders).map { o in
            let id = o["order_id"]!.description
            let l = (lines[id] ?? []).map { "\($0["sku"]!)×\($0["qty"]!)" }
            return [id, o["customer_id"]!.description, o["status"]!.description, l.joined(separator: " ")]
        }))
        return out.joined(separator: "\n")
    }
}

extension String {
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
