import Foundation
import Testing
@testable import SiyuCore

/// Bytes 0, 1, 2, ... (mod 256) of the given length; reference digests below come from an
/// independent implementation (Python hashlib).
private func countingBytes(_ n: Int) -> [UInt8] {
    (0..<n).map { UInt8(truncatingIfNeeded: $0) }
}

@Suite("SHA-256")
struct SHA256Tests {

    // MARK: FIPS 180-4 / NIST published examples

    @Test("FIPS 180-4: \"abc\"")
    func abc() {
        #expect(SHA256.hash("abc").hexString
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("FIPS 180-4: empty message")
    func empty() {
        let expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        #expect(SHA256.hash("").hexString == expected)
        #expect(SHA256.hash([UInt8]()).hexString == expected)
        var h = SHA256()
        #expect(h.finalize().hexString == expected)
    }

    @Test("FIPS 180-4: 448-bit message")
    func message448() {
        let m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        #expect(m.utf8.count * 8 == 448)
        #expect(SHA256.hash(m).hexString
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("FIPS 180-4: 896-bit message")
    func message896() {
        let m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
        #expect(m.utf8.count * 8 == 896)
        #expect(SHA256.hash(m).hexString
                == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    @Test("FIPS 180-4: one million 'a'")
    func millionA() {
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        // One shot.
        #expect(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)).hexString == expected)
        // Non-contiguous collection path.
        var h1 = SHA256()
        h1.update(contentsOf: repeatElement(UInt8(ascii: "a"), count: 1_000_000))
        #expect(h1.finalize().hexString == expected)
        // Many small, block-misaligned updates.
        var h2 = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h2.update(chunk) }
        #expect(h2.finalize().hexString == expected)
    }

    // MARK: Incremental vs one-shot

    @Test("Splitting a 200-byte message at every offset gives the one-shot digest")
    func splitAtEveryOffset() {
        let message = countingBytes(200)
        let oneShot = SHA256.hash(message)
        #expect(oneShot.hexString == "1901da1c9f699b48f6b2636e65cbf73abf99d0441ef67f5c540a42f7051dec6f")
        for split in 0...message.count {
            var h = SHA256()
            h.update(Array(message[..<split]))
            h.update(contentsOf: message[split...])   // ArraySlice, contiguous path
            #expect(h.finalize() == oneShot, "split at \(split)")
        }
        // Three-way splits too.
        for i in stride(from: 0, through: 200, by: 7) {
            for j in stride(from: i, through: 200, by: 13) {
                var h = SHA256()
                h.update(contentsOf: message[..<i])
                h.update(contentsOf: message[i..<j])
                h.update(contentsOf: message[j...])
                #expect(h.finalize() == oneShot, "split at \(i), \(j)")
            }
        }
    }

    @Test("Lengths 0...130 (padding boundaries 55, 56, 63, 64, 119, 120): incremental == one-shot")
    func paddingBoundaries() {
        for n in 0...130 {
            let message = countingBytes(n)
            let oneShot = SHA256.hash(message)
            #expect(oneShot.count == 32)

            var byteByByte = SHA256()
            for b in message { byteByByte.update([b]) }
            #expect(byteByByte.finalize() == oneShot, "length \(n), byte by byte")

            var lazyPath = SHA256()
            lazyPath.update(contentsOf: message.lazy.map { $0 })   // generic, non-contiguous
            #expect(lazyPath.finalize() == oneShot, "length \(n), generic collection")

            var halves = SHA256()
            halves.update(contentsOf: message[..<(n / 2)])
            halves.update(contentsOf: message[(n / 2)...])
            #expect(halves.finalize() == oneShot, "length \(n), halves")
        }
    }

    @Test("Boundary lengths match independent reference digests")
    func boundaryReferenceDigests() {
        let reference: [Int: String] = [
            0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            55: "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59",
            56: "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562",
            57: "2fe741af801cc238602ac0ec6a7b0c3a8a87c7fc7d7f02a3fe03d1c12eac4d8f",
            63: "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488",
            64: "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108",
            65: "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2fabb31781",
            119: "da18797ed7c3a777f0847f429724a2d8cd5138e6ed2895c3fa1a6d39d18f7ec6",
            120: "f52b23db1fbb6ded89ef42a23ce0c8922c45f25c50b568a93bf1c075420bbb7c",
            128: "471fb943aa23c511f6f72f8d1652d9c880cfa392ad80503120547703e56a2be5",
            130: "8d39b60b9c767c58975b270c1d6b13c9b4507e5aee7ad496a3528e4c7f880721",
        ]
        for (n, hex) in reference.sorted(by: { $0.key < $1.key }) {
            #expect(SHA256.hash(countingBytes(n)).hexString == hex, "length \(n)")
        }
    }

    @Test("String input hashes its UTF-8 bytes")
    func stringIsUTF8() {
        let s = "思语 café 🍵"
        #expect(SHA256.hash(s) == SHA256.hash(Array(s.utf8)))
        var h = SHA256()
        h.update("思语 ")
        h.update("café 🍵")
        #expect(h.finalize() == SHA256.hash(s))
    }

    @Test("Copying a partially fed hasher forks it")
    func valueSemantics() {
        var a = SHA256()
        a.update("abc")
        var b = a
        b.update("def")
        #expect(a.finalize() == SHA256.hash("abc"))
        #expect(b.finalize() == SHA256.hash("abcdef"))
    }

    // MARK: Throughput (informational only, no timing assertions)

    @Test("Throughput on 16 MB (printed, not asserted)")
    func throughput() {
        let size = 16 * 1024 * 1024
        let data = [UInt8](unsafeUninitializedCapacity: size) { buf, n in
            for i in 0..<size { buf[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
            n = size
        }
        let clock = ContinuousClock()
        var digest: [UInt8] = []
        let elapsed = clock.measure { digest = SHA256.hash(data) }
        #expect(digest.count == 32)
        let seconds = Double(elapsed.components.seconds)
            + Double(elapsed.components.attoseconds) / 1e18
        let mbPerSecond = 16.0 / max(seconds, 1e-9)
        print(String(format: "SHA256 throughput: 16 MB in %.3f s = %.1f MB/s", seconds, mbPerSecond))
    }
}

@Suite("Hex encoding")
struct HexTests {
    @Test("hexString is lowercase, two digits per byte")
    func encode() {
        #expect([UInt8]().hexString == "")
        #expect([0x00, 0x0a, 0xff, 0x10].hexString == "000aff10")
        #expect([0xAB, 0xCD, 0xEF].hexString == "abcdef")
    }

    @Test("Round trip over all byte values")
    func roundTrip() {
        let all = (0...255).map { UInt8($0) }
        #expect([UInt8](hexString: all.hexString) == all)
        #expect([UInt8](hexString: "") == [])
        let digest = SHA256.hash("abc")
        #expect([UInt8](hexString: digest.hexString) == digest)
    }

    @Test("Accepts upper and mixed case")
    func caseInsensitive() {
        #expect([UInt8](hexString: "DEADBEEF") == [0xde, 0xad, 0xbe, 0xef])
        #expect([UInt8](hexString: "DeAdBeEf") == [0xde, 0xad, 0xbe, 0xef])
        #expect([UInt8](hexString: "0aF9") == [0x0a, 0xf9])
    }

    @Test("Rejects odd length and non-hex characters", arguments: [
        "a", "abc", "0", "zz", "0g", "g0", "0x00", " 00", "00 ", "12-34", "ab\n", "éé", "🍵🍵", "+1",
    ])
    func rejects(_ input: String) {
        #expect([UInt8](hexString: input) == nil)
    }
}
