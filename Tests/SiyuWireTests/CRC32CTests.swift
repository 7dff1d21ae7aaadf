import Foundation
import Testing
import SiyuWire

// Every expected value below was computed independently, before this file was written, with a
// bit-by-bit Python reference (reflected poly 0x82F63B78, init and final XOR 0xFFFFFFFF); the
// 16 MiB value with a separate byte-table Python implementation cross-checked against it.

/// Bit-at-a-time CRC-32C, straight from the definition: the oracle the table-driven code is
/// compared against. Deliberately shares nothing with the implementation under test.
private func referenceCRC32C<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 {
            crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
        }
    }
    return crc ^ 0xFFFF_FFFF
}

/// Deterministic, non-periodic test bytes: byte i = (i * 167 + i / 2048) mod 256.
private func patternBytes(_ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 167 &+ ($0 >> 11)) }
}

/// The CRC-32C of `bytes` computed through the raw-buffer overload.
private func rawChecksum(_ bytes: [UInt8]) -> UInt32 {
    var crc = CRC32C()
    bytes.withUnsafeBytes { crc.update($0) }
    return crc.value
}

@Suite("CRC-32C")
struct CRC32CTests {

    // MARK: Published check values

    @Test("check value: ASCII \"123456789\" -> 0xE3069283")
    func checkValue() {
        let bytes = Array("123456789".utf8)
        #expect(CRC32C.checksum(bytes) == 0xE306_9283)
        #expect(CRC32C.checksum(bytes[...]) == 0xE306_9283)
        #expect(rawChecksum(bytes) == 0xE306_9283)
        #expect(referenceCRC32C(bytes) == 0xE306_9283)
    }

    @Test("RFC 3720 appendix B.4: 32 bytes of 0x00 -> 0x8A9136AA")
    func rfc3720Zeros() {
        let bytes = [UInt8](repeating: 0x00, count: 32)
        #expect(CRC32C.checksum(bytes) == 0x8A91_36AA)
        #expect(rawChecksum(bytes) == 0x8A91_36AA)
    }

    @Test("RFC 3720 appendix B.4: 32 bytes of 0xFF -> 0x62A8AB43")
    func rfc3720Ones() {
        let bytes = [UInt8](repeating: 0xFF, count: 32)
        #expect(CRC32C.checksum(bytes) == 0x62A8_AB43)
        #expect(rawChecksum(bytes) == 0x62A8_AB43)
    }

    @Test("RFC 3720 appendix B.4: 32 bytes ascending 0x00...0x1F -> 0x46DD794E")
    func rfc3720Ascending() {
        let bytes = (0..<32).map { UInt8($0) }
        #expect(bytes.first == 0x00 && bytes.last == 0x1F)
        #expect(CRC32C.checksum(bytes) == 0x46DD_794E)
        #expect(rawChecksum(bytes) == 0x46DD_794E)
    }

    @Test("RFC 3720 appendix B.4: 32 bytes descending 0x1F...0x00 -> 0x113FDB5C")
    func rfc3720Descending() {
        let bytes = (0..<32).reversed().map { UInt8($0) }
        #expect(bytes.first == 0x1F && bytes.last == 0x00)
        #expect(CRC32C.checksum(bytes) == 0x113F_DB5C)
        #expect(rawChecksum(bytes) == 0x113F_DB5C)
    }

    @Test("\"The quick brown fox jumps over the lazy dog\" -> 0x22620404")
    func quickBrownFox() {
        let bytes = Array("The quick brown fox jumps over the lazy dog".utf8)
        #expect(CRC32C.checksum(bytes) == 0x2262_0404)
    }

    @Test("polynomial constant: 0x1EDC6F41 bit-reversed is 0x82F63B78")
    func polynomial() {
        let normal: UInt32 = 0x1EDC_6F41
        var reversed: UInt32 = 0
        for bit in 0..<32 where normal & (1 << bit) != 0 {
            reversed |= 1 << (31 - bit)
        }
        #expect(reversed == 0x82F6_3B78)
        #expect(CRC32C.reflectedPolynomial == reversed)
    }

    // MARK: Empty input

    @Test("empty input -> 0x00000000 through every entry point")
    func emptyInput() {
        #expect(CRC32C().value == 0x0000_0000)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum(ArraySlice<UInt8>()) == 0)
        #expect(rawChecksum([]) == 0)

        var crc = CRC32C()
        crc.update([UInt8]())
        crc.update(ArraySlice<UInt8>())
        crc.update(UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(crc.value == 0)

        // Empty updates in the middle of real input change nothing.
        var mixed = CRC32C()
        mixed.update(Array("1234".utf8))
        mixed.update([])
        mixed.update(UnsafeRawBufferPointer(start: nil, count: 0))
        mixed.update(Array("56789".utf8)[...])
        #expect(mixed.value == 0xE306_9283)
    }

    // MARK: Incremental use

    @Test("a 100-byte message split at every offset equals the one-shot value")
    func splitAtEveryOffset() {
        let message = (0..<100).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        let oneShot = CRC32C.checksum(message)
        #expect(oneShot == 0x594B_1B65)
        #expect(oneShot == referenceCRC32C(message))

        for split in 0...message.count {
            var viaArrays = CRC32C()
            viaArrays.update(Array(message[..<split]))
            viaArrays.update(Array(message[split...]))
            #expect(viaArrays.value == oneShot, "Array split at \(split)")

            var viaSlices = CRC32C()
            viaSlices.update(message[..<split])
            viaSlices.update(message[split...])
            #expect(viaSlices.value == oneShot, "ArraySlice split at \(split)")

            var viaRaw = CRC32C()
            message.withUnsafeBytes { raw in
                viaRaw.update(UnsafeRawBufferPointer(rebasing: raw[..<split]))
                viaRaw.update(UnsafeRawBufferPointer(rebasing: raw[split...]))
            }
            #expect(viaRaw.value == oneShot, "raw-buffer split at \(split)")
        }
    }

    @Test("a 100-byte message split into three at every pair of offsets equals the one-shot value")
    func splitIntoThree() {
        let message = (0..<100).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        let oneShot = CRC32C.checksum(message)
        var mismatches = 0
        for first in 0...message.count {
            for second in first...message.count {
                var crc = CRC32C()
                crc.update(message[..<first])
                crc.update(message[first..<second])
                crc.update(message[second...])
                if crc.value != oneShot { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("byte-at-a-time feeding equals the one-shot value")
    func byteAtATime() {
        let message = patternBytes(257)
        var crc = CRC32C()
        for byte in message { crc.update([byte]) }
        #expect(crc.value == CRC32C.checksum(message))
    }

    @Test("reading value does not end the computation")
    func valueIsNonTerminal() {
        var crc = CRC32C()
        crc.update(Array("1234".utf8))
        #expect(crc.value == CRC32C.checksum(Array("1234".utf8)))
        #expect(crc.value == crc.value)  // reading twice changes nothing
        crc.update(Array("56789".utf8))
        #expect(crc.value == 0xE306_9283)
    }

    @Test("copying a partially-fed checksum forks it")
    func copiesAreIndependent() {
        var a = CRC32C()
        a.update(Array("1234".utf8))
        var b = a
        a.update(Array("56789".utf8))
        b.update(Array("5678X".utf8))
        #expect(a.value == 0xE306_9283)
        #expect(b.value == CRC32C.checksum(Array("12345678X".utf8)))
        #expect(b.value != a.value)
    }

    // MARK: Overloads agree, at every length and alignment

    @Test("Array, ArraySlice and raw-buffer paths agree with the bitwise reference")
    func overloadsAgree() {
        // Lengths 0...300 cover the empty input, tail-only inputs (< 8 bytes) and every tail
        // length after one or many 8-byte blocks; start offsets 0...7 cover every alignment.
        let backing = patternBytes(320)
        var mismatches: [String] = []
        for offset in 0..<8 {
            for length in 0...300 {
                let slice = backing[offset..<(offset + length)]   // startIndex != 0 when offset > 0
                let array = Array(slice)
                let expected = referenceCRC32C(array)
                let viaArray = CRC32C.checksum(array)
                let viaSlice = CRC32C.checksum(slice)
                let viaRaw = backing.withUnsafeBytes { raw -> UInt32 in
                    var crc = CRC32C()
                    crc.update(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
                    return crc.value
                }
                if viaArray != expected || viaSlice != expected || viaRaw != expected {
                    mismatches.append("offset \(offset) length \(length)")
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
    }

    @Test("update(ArraySlice) and checksum(ArraySlice) read only the slice's own bytes")
    func sliceBoundsRespected() {
        let bytes = Array("xx123456789yy".utf8)
        let inner = bytes[2..<11]
        #expect(inner.startIndex == 2)
        #expect(CRC32C.checksum(inner) == 0xE306_9283)
        var crc = CRC32C()
        crc.update(inner)
        #expect(crc.value == 0xE306_9283)
    }

    // MARK: Algebraic property

    @Test("appending the CRC little-endian gives the constant CRC-32C residue")
    func residue() {
        // For this reflected CRC, message || crc (LE) always checksums to 0xB798B438 ^ 0xFFFFFFFF.
        for message in [Array("123456789".utf8), [], patternBytes(1), patternBytes(77)] {
            let crc = CRC32C.checksum(message)
            let withCRC = message + [
                UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8),
                UInt8(truncatingIfNeeded: crc >> 16), UInt8(truncatingIfNeeded: crc >> 24),
            ]
            #expect(CRC32C.checksum(withCRC) == 0x4867_4BC7)
        }
    }

    // MARK: Long input and throughput

    @Test("16 MiB: known answer, chunked equals one-shot, and throughput (printed, not asserted)")
    func sixteenMegabytes() {
        let size = 16 * 1024 * 1024
        let data = patternBytes(size)

        // Warm up (builds the tables) so the timing measures only the checksum loop.
        _ = CRC32C.checksum(Array(data[..<4096]))

        let clock = ContinuousClock()
        var result: UInt32 = 0
        let elapsed = clock.measure {
            result = CRC32C.checksum(data)
        }
        #expect(result == 0xEC92_E3FD)

        // Chunked feeding with an odd chunk size (misaligned boundaries) gives the same value.
        var chunked = CRC32C()
        var start = 0
        while start < size {
            let end = min(start + 65_537, size)
            chunked.update(data[start..<end])
            start = end
        }
        #expect(chunked.value == result)

        let seconds = Double(elapsed.components.seconds)
            + Double(elapsed.components.attoseconds) / 1e18
        let megabytesPerSecond = Double(size) / 1_000_000 / max(seconds, 1e-9)
        print(String(format: "CRC32C throughput: %.0f MB/s (16 MiB in %.2f ms)",
                     megabytesPerSecond, seconds * 1000))
    }
}
