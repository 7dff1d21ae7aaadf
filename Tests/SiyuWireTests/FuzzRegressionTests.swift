import Foundation
import Testing
import SiyuCore
import SiyuWire

/// Every input the fuzzer (tools/fuzz) ever crashed on, replayed: decoding must not trap, and a
/// change set that decodes must survive encode → decode with every string byte-identical.
@Suite struct FuzzRegressionTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("tools/fuzz/crashes")

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".bin") }.sorted()
    }

    static func strings(_ cs: ChangeSet) -> [[UInt8]] {
        cs.ops.flatMap { op -> [[UInt8]] in
            var out = [Array(op.origin.utf8), Array(op.author.utf8)]
            let t = op.body.target
            out += [Array(t.id.utf8), Array(t.sub.utf8)]
            if case let .write(_, f, v, _) = op.body {
                out.append(Array(f.utf8))
                if case let .text(s) = v { out.append(Array(s.utf8)) }
            }
            return out
        }
    }

    @Test func thereAreReproducersToReplay() { #expect(!FuzzRegressionTests.files.isEmpty) }

    @Test(arguments: files)
    func reproducerNoLongerFails(_ name: String) throws {
        let bytes = Array(try Data(contentsOf: FuzzRegressionTests.directory.appendingPathComponent(name)))
        let decoded = try? ChangeSetCodec.decode(bytes)
        if name.hasPrefix("changeset-") { #expect(decoded != nil, "\(name) is a whole change set and must decode") }
        guard let cs = decoded else { return }   // refused cleanly: fine
        let again = try ChangeSetCodec.decode(ChangeSetCodec.encode(cs))
        #expect(again == cs)
        #expect(FuzzRegressionTests.strings(again) == FuzzRegressionTests.strings(cs), "\(name): string bytes changed in a round trip")
    }
}
