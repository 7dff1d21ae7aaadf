import Testing
@testable import SiyuCore

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite("HMAC-SHA-256 (RFC 4231)")
struct HMACTests {

    @Test("RFC 4231 test case 1")
    func case1() {
        let mac = HMACSHA256.authenticationCode(
            for: bytes("Hi There"),
            key: [UInt8](repeating: 0x0b, count: 20))
        #expect(mac.hexString == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    @Test("RFC 4231 test case 2 (key shorter than output)")
    func case2() {
        let mac = HMACSHA256.authenticationCode(
            for: bytes("what do ya want for nothing?"),
            key: bytes("Jefe"))
        #expect(mac.hexString == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("RFC 4231 test case 3 (50 bytes of 0xdd)")
    func case3() {
        let mac = HMACSHA256.authenticationCode(
            for: [UInt8](repeating: 0xdd, count: 50),
            key: [UInt8](repeating: 0xaa, count: 20))
        #expect(mac.hexString == "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe")
    }

    @Test("RFC 4231 test case 4 (25-byte key 0x01...0x19)")
    func case4() {
        let key = [UInt8](hexString: "0102030405060708090a0b0c0d0e0f10111213141516171819")!
        #expect(key.count == 25)
        let mac = HMACSHA256.authenticationCode(
            for: [UInt8](repeating: 0xcd, count: 50),
            key: key)
        #expect(mac.hexString == "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")
    }

    @Test("RFC 4231 test case 5 (truncation to 128 bits)")
    func case5() {
        let mac = HMACSHA256.authenticationCode(
            for: bytes("Test With Truncation"),
            key: [UInt8](repeating: 0x0c, count: 20))
        #expect(mac.count == 32)
        #expect(Array(mac.prefix(16)).hexString == "a3b6167473100ee06e0c796c2955552b")
    }

    @Test("RFC 4231 test case 6 (131-byte key is hashed first)")
    func case6() {
        let mac = HMACSHA256.authenticationCode(
            for: bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
            key: [UInt8](repeating: 0xaa, count: 131))
        #expect(mac.hexString == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test("RFC 4231 test case 7 (large key and large data)")
    func case7() {
        let mac = HMACSHA256.authenticationCode(
            for: bytes("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
            key: [UInt8](repeating: 0xaa, count: 131))
        #expect(mac.hexString == "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2")
    }

    @Test("A key longer than 64 bytes is equivalent to its SHA-256 digest; 64 bytes is used as is")
    func keyLengthBoundary() {
        let message = bytes("boundary")
        let longKey = [UInt8](repeating: 0x42, count: 65)
        #expect(HMACSHA256.authenticationCode(for: message, key: longKey)
                == HMACSHA256.authenticationCode(for: message, key: SHA256.hash(longKey)))
        let blockKey = [UInt8](repeating: 0x42, count: 64)
        #expect(HMACSHA256.authenticationCode(for: message, key: blockKey)
                != HMACSHA256.authenticationCode(for: message, key: SHA256.hash(blockKey)))
        // Zero padding: a short key equals itself padded with zeros up to 64 bytes.
        #expect(HMACSHA256.authenticationCode(for: message, key: bytes("k"))
                == HMACSHA256.authenticationCode(for: message, key: bytes("k") + [UInt8](repeating: 0, count: 63)))
    }
}

@Suite("constantTimeEquals")
struct ConstantTimeEqualsTests {
    @Test("Equal arrays compare true")
    func equal() {
        #expect(constantTimeEquals([], []))
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        let mac = HMACSHA256.authenticationCode(for: bytes("m"), key: bytes("k"))
        #expect(constantTimeEquals(mac, mac))
    }

    @Test("Arrays differing in any position compare false")
    func different() {
        let a = [UInt8](repeating: 0x5a, count: 32)
        for i in 0..<a.count {
            var b = a
            b[i] ^= 0x01
            #expect(!constantTimeEquals(a, b), "position \(i)")
        }
        #expect(!constantTimeEquals([0x00], [0x80]))
    }

    @Test("Different lengths compare false")
    func differentLengths() {
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(!constantTimeEquals([1, 2], [1, 2, 3]))
        #expect(!constantTimeEquals([], [0]))
        #expect(!constantTimeEquals([0], []))
    }
}
