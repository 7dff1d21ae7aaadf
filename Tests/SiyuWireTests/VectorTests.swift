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
        var sealed: String?
    }

    static func render(_ v: VectorCatalog.Vector) -> String {
        var out = "# \(v.name): \(v.summary)\n"
        if let bad = v.malformed {
            out += "# Malformed: a decoder must refuse these bytes with the error below and yield no frame.\n"
            out += "error:\n  \(v.expectedError!.description)\nbytes:\n" + hexLines(bad)
        } else {
            let bytes = VectorTests.bytes(of: v)
            out += "# \(v.messages.count) message\(v.messages.count == 1 ? "" : "s"), \(bytes.count) bytes.\n"
            if let sealed = v.sealed {
                out += "sealed:\n  \(sealed)\n"
            }
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
            case "sealed": file.sealed = content
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

    static func bytes(of v: VectorCatalog.Vector) -> [UInt8] {
        if let sealed = v.sealed { return VectorCatalog.sealedSession(v.messages, direction: sealed) }
        return v.wireBytes ?? VectorCatalog.session(v.messages)
    }

    /// Decodes a vector's frames as one direction of one connection (one string dictionary); a
    /// sealed one's MACs checked in sequence.
    static func decodeAll(_ chunks: [[UInt8]], sealed: String? = nil) throws -> [Message] {
        var reader = FrameReader()
        var dictionary = StringDictionary()
        var out: [Message] = []
        var sequence: UInt64 = 0
        let authenticator = sealed.map { FrameAuthenticator(key: VectorCatalog.key($0)) }
        for c in chunks {
            reader.feed(c)
            while let f = try reader.next(tagSize: { _ in authenticator == nil ? 0 : Authentication.tagSize }) {
                if let authenticator {
                    #expect(authenticator.verify(f, sequence: sequence), "frame \(sequence): MAC does not verify")
                    sequence += 1
                }
                if let m = try Message.decodeIfKnown(f, dictionary: &dictionary) { out.append(m) }
            }
        }
        #expect(reader.bufferedByteCount == 0)
        return out
    }

    @Test(arguments: VectorCatalog.all.filter { $0.malformed == nil }.map(\.name))
    func messageVector(_ name: String) throws {
        let v = VectorCatalog.all.first { $0.name == name }!
        let file = try VectorTests.load(v)
        #expect(VectorTests.bytes(of: v) == file.bytes, "\(name): encoding differs from the file")
        #expect(file.sealed == v.sealed)
        #expect(v.messages.flatMap(\.describedLines) == file.meaning, "\(name): readable meaning differs")
        #expect(try VectorTests.decodeAll([file.bytes], sealed: v.sealed) == v.messages)
        #expect(try VectorTests.decodeAll(file.bytes.map { [$0] }, sealed: v.sealed) == v.messages, "\(name): byte-by-byte decoding differs")
        for split in 0...file.bytes.count {
            let parts = [Array(file.bytes[..<split]), Array(file.bytes[split...])]
            #expect(try VectorTests.decodeAll(parts, sealed: v.sealed) == v.messages, "\(name): split at \(split) differs")
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

    @Test func theAuthVectorVerifiesAndAWrongSecretOrAnotherTranscriptDoesNot() {
        let proof = Authentication.proof(VectorCatalog.keys, transcript: VectorCatalog.transcript)
        let verifiers = Authentication.verifiers(secret: VectorCatalog.secret, salt: VectorCatalog.salt, iterations: 4096)
        #expect(Authentication.clientKey(fromProof: proof, verifiers, transcript: VectorCatalog.transcript) == VectorCatalog.keys.clientKey)
        let wrong = Authentication.verifiers(secret: Array("wrong".utf8), salt: VectorCatalog.salt, iterations: 4096)
        #expect(Authentication.clientKey(fromProof: proof, wrong, transcript: VectorCatalog.transcript) == nil)
        var other = VectorCatalog.transcript; other[other.count - 40] ^= 1   // one bit of the hub's nonce
        #expect(Authentication.clientKey(fromProof: proof, verifiers, transcript: other) == nil)
    }

    /// The worked example of SPEC section 11: the intermediate values printed there.
    @Test func theWorkedHandshakeExampleOfTheSpecHolds() throws {
        let spec = try String(contentsOf: VectorTests.directory.deletingLastPathComponent().appendingPathComponent("SPEC.md"), encoding: .utf8)
        let k = VectorCatalog.keys, s = VectorCatalog.sessionKeys
        let salted = PBKDF2SHA256.derive(key: VectorCatalog.secret, salt: VectorCatalog.salt, iterations: 4096)
        for value in [salted, k.clientKey, k.storedKey, k.serverKey, s.nodeToHub, s.hubToNode,
                      Authentication.proof(k, transcript: VectorCatalog.transcript)] {
            #expect(spec.contains(value.hexString), "SPEC section 11 lacks \(value.hexString)")
        }
    }

    /// RFC 7914 section 11's PBKDF2-HMAC-SHA256 vector (first 32 bytes), and the RFC 2104
    /// property layout 6's migration rests on: a key over 64 bytes and its SHA-256 derive the same.
    @Test func pbkdf2MatchesRFC7914AndALongKeyEqualsItsHash() {
        let dk = PBKDF2SHA256.derive(key: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1)
        #expect(dk.hexString == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")
        let long = Array(repeating: UInt8(7), count: 100)
        #expect(PBKDF2SHA256.derive(key: long, salt: [1], iterations: 3) == PBKDF2SHA256.derive(key: SHA256.hash(long), salt: [1], iterations: 3))
    }
}
