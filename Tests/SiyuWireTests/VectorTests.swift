import Foundation
import Testing
import SiyuCore
import SiyuWire

/// Golden vectors from Protocol/vectors/: every value encodes to exactly the file's bytes, the bytes
/// decode to exactly the value (and to the file's readable meaning), also when fed one byte at a
/// time and when split at every offset; malformed vectors are refused with exactly their error.
/// Regenerate the files (after a deliberate protocol change) with SIYU_WRITE_VECTORS=1.
@Suite struct VectorTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Protocol/vectors")

    struct VectorFile {
        var meaning: [String] = []
        var bytes: [UInt8] = []
        var error: String?
    }

    static func render(_ v: VectorCatalog.Vector) -> String {
        var out = "# \(v.name): \(v.summary)\n"
        if let bad = v.malformed {
            out += "# Malformed: a decoder must refuse these bytes with the error below and yield no frame.\n"
            out += "error:\n  \(v.expectedError!.description)\nbytes:\n" + hexLines(bad)
        } else {
            let bytes = v.wireBytes ?? VectorCatalog.session(v.messages)
            out += "# \(v.messages.count) message\(v.messages.count == 1 ? "" : "s"), \(bytes.count) bytes.\n"
            if v.wireBytes != nil {
                out += "noncanonical:\n  these bytes decode to the meaning below but are not its canonical encoding\n"
            }
            out += "meaning:\n" + v.messages.flatMap(\.describedLines).map { "  " + $0 }.joined(separator: "\n") + "\n"
            out += "bytes:\n" + hexLines(bytes)
        }
        return out
    }

    static func hexLines(_ bytes: [UInt8]) -> String {
        stride(from: 0, to: bytes.count, by: 16).map { i in
            "  " + bytes[i..<min(i + 16, bytes.count)].map { String(format: "%02x", $0) }.joined(separator: " ")
        }.joined(separator: "\n") + "\n"
    }

    static func parse(_ text: String) -> VectorFile {
        var file = VectorFile()
        var section = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") || line.isEmpty { continue }
            if !line.hasPrefix(" ") { section = String(line.dropLast()); continue }
            let content = String(line.dropFirst(2))
            switch section {
            case "meaning": file.meaning.append(content)
            case "error": file.error = content
            case "bytes": file.bytes += content.split(separator: " ").compactMap { UInt8($0, radix: 16) }
            default: break
            }
        }
        return file
    }

    static func load(_ v: VectorCatalog.Vector) throws -> VectorFile {
        let url = directory.appendingPathComponent("\(v.name).vec")
        if ProcessInfo.processInfo.environment["SIYU_WRITE_VECTORS"] != nil {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try render(v).write(to: url, atomically: true, encoding: .utf8)
        }
        return parse(try String(contentsOf: url, encoding: .utf8))
    }

    /// Decodes a vector's frames as one direction of one connection (one string dictionary).
    static func decodeAll(_ chunks: [[UInt8]]) throws -> [Message] {
        var reader = FrameReader()
        var dictionary = StringDictionary()
        var out: [Message] = []
        for c in chunks {
            reader.feed(c)
            while let f = try reader.next() { if let m = try Message.decodeIfKnown(f, dictionary: &dictionary) { out.append(m) } }
        }
        #expect(reader.bufferedByteCount == 0)
        return out
    }

    @Test(arguments: VectorCatalog.all.filter { $0.malformed == nil }.map(\.name))
    func messageVector(_ name: String) throws {
        let v = VectorCatalog.all.first { $0.name == name }!
        let file = try VectorTests.load(v)
        #expect((v.wireBytes ?? VectorCatalog.session(v.messages)) == file.bytes, "\(name): encoding differs from the file")
        #expect(v.messages.flatMap(\.describedLines) == file.meaning, "\(name): readable meaning differs")
        #expect(try VectorTests.decodeAll([file.bytes]) == v.messages)
        #expect(try VectorTests.decodeAll(file.bytes.map { [$0] }) == v.messages, "\(name): byte-by-byte decoding differs")
        for split in 0...file.bytes.count {
            let parts = [Array(file.bytes[..<split]), Array(file.bytes[split...])]
            #expect(try VectorTests.decodeAll(parts) == v.messages, "\(name): split at \(split) differs")
        }
    }

    @Test(arguments: VectorCatalog.all.filter { $0.malformed != nil }.map(\.name))
    func malformedVector(_ name: String) throws {
        let v = VectorCatalog.all.first { $0.name == name }!
        let file = try VectorTests.load(v)
        #expect(file.bytes == v.malformed!)
        #expect(file.error == v.expectedError!.description)
        // Whole, and fed byte by byte: the same typed error, and never a message.
        for chunks in [[file.bytes], file.bytes.map { [$0] }] {
            var reader = FrameReader()
            var dictionary = StringDictionary()
            var thrown: WireError?
            var messages: [Message] = []
            outer: for c in chunks {
                reader.feed(c)
                do {
                    while let f = try reader.next() { if let m = try Message.decodeIfKnown(f, dictionary: &dictionary) { messages.append(m) } }
                } catch let e as WireError { thrown = e; break outer }
            }
            #expect(thrown == v.expectedError, "\(name): got \(String(describing: thrown))")
            #expect(messages.isEmpty)
        }
    }

    @Test func everyMessageTypeHasAVector() {
        let covered = Set(VectorCatalog.all.flatMap(\.messages).map(\.type))
        #expect(covered == Set(MessageType.allCases))
    }

    @Test func theAuthVectorVerifiesAndAWrongSecretDoesNot() {
        let mac = Authentication.mac(secret: VectorCatalog.secret, nonce: VectorCatalog.nonce, node: "xihu", hub: "hub-hz")
        #expect(Authentication.verify(mac, secret: VectorCatalog.secret, nonce: VectorCatalog.nonce, node: "xihu", hub: "hub-hz"))
        #expect(!Authentication.verify(mac, secret: Array("wrong".utf8), nonce: VectorCatalog.nonce, node: "xihu", hub: "hub-hz"))
        var other = VectorCatalog.nonce; other[0] ^= 1
        #expect(!Authentication.verify(mac, secret: VectorCatalog.secret, nonce: other, node: "xihu", hub: "hub-hz"))
    }
}
