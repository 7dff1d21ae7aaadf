import Foundation
import Testing
import SiyuCore
import SiyuSQLite
@testable import SiyuStore
import SiyuTestSupport

/// The state digest of SPEC section 7 ("The state digest, byte for byte"), checked against
/// Protocol/state-digest.txt: its rows, serialized by the SPEC's rules, give its digest, and a
/// replica holding the vector's ops holds exactly those rows and has exactly that digest.
@Suite struct StateDigestVectorTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Protocol/state-digest.txt")

    /// The vector's ops: HQ defines a tag group and a tag, creates a customer and tags her.
    static func vectorReplica(_ dir: TemporaryDirectory) throws -> Replica {
        let r = try Replica(path: dir.path("digest.db"),
                            options: ReplicaOptions(node: "hq", role: .hq, wallClock: { 1_764_000_000_000 }))
        try r.defineTagGroup("pref", name: "偏好", by: "zhaolei")
        try r.defineTag("tea", group: "pref", name: "茶饮", by: "zhaolei")
        try r.createCustomer("c1", ["name": .text("林小文"), "gender": .int(2)], by: "zhaolei")
        try r.addTag("tea", to: "c1", by: "zhaolei")
        return r
    }

    @Test func theVectorsRowsGiveItsDigestAndAReplicaHoldingItsOpsHasBoth() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try StateDigestVectorTests.vectorReplica(dir)
        defer { r.close() }
        let rendered = try StateDigestVectorTests.render(r)
        if ProcessInfo.processInfo.environment["SIYU_WRITE_VECTORS"] != nil {
            try rendered.write(to: StateDigestVectorTests.file, atomically: true, encoding: .utf8)
        }
        let stored = try String(contentsOf: StateDigestVectorTests.file, encoding: .utf8)
        #expect(stored == rendered, "Protocol/state-digest.txt is not what a replica holding its ops holds")
    }

    /// The vector file: every source's rows as the digest reads them, and the digest.
    static func render(_ r: Replica) throws -> String {
        var lines = ["# The state digest (Protocol/SPEC.md, section 7, \"The state digest, byte for byte\") of a replica",
                     "# holding four HQ edits: tag group 'pref', tag 'tea' in it, customer 'c1' (name, gender), the tag on her.",
                     "# Each source in order, its rows in key order, each value as: null, an integer, or a \"text\".",
                     "# The sources without rows are listed too (their name and a count of 0 enter the digest)."]
        for (name, key, _) in Replica.digestSources {
            lines.append("source \(name)")
            try r.db.prepare("SELECT * FROM \(name) ORDER BY \(key)").query { row in
                var values: [String] = []
                for i in 0..<row.columnCount {
                    switch row[i] {
                    case .null: values.append("null")
                    case let .integer(v): values.append(String(v))
                    case let .text(t): values.append("\"\(t)\"")
                    case let .real(d): values.append("real \(d.bitPattern)")
                    case let .blob(b): values.append("blob " + b.map { String(format: "%02x", $0) }.joined())
                    }
                }
                lines.append("  row " + values.joined(separator: " | "))
            }
        }
        lines.append("digest " + (try r.digest()).map { String(format: "%02x", $0) }.joined())
        return lines.joined(separator: "\n") + "\n"
    }
}
