/// One protocol frame: version, message type and payload. On the wire:
///
///     offset  size  field
///     0       2     magic 0x53 0x59 ("SY")
///     2       1     protocol version
///     3       1     message type
///     4       4     payload length N, unsigned big-endian, at most `Frame.maxPayload`
///     8       N     payload
///     8+N     T     a sealed frame's MAC (T = 16; SPEC section 3, "Sealed frames"), else nothing
///     8+N+T   4     CRC-32C of bytes 0 ..< 8+N+T, unsigned big-endian
///
/// Whether a frame is sealed is not written in it: both ends know it from the connection's state
/// (the decoder is told the tag size per message type).
public struct Frame: Hashable, Sendable {
    public static let magic: [UInt8] = [0x53, 0x59]
    public static let headerSize = 8
    public static let trailerSize = 4
    /// The largest payload a frame may carry: 1 MiB.
    public static let maxPayload = 1 << 20
    /// The protocol versions this build speaks (offered in HELLO, chosen in CHALLENGE).
    public static let supportedVersions: [UInt8] = [2]
    /// The frame versions this build decodes: 1 for HELLO and CHALLENGE (always version 1 frames,
    /// SPEC section 4), and those it speaks.
    public static let decodableVersions: [UInt8] = [1, 2]

    public var version: UInt8
    public var type: UInt8
    public var payload: [UInt8]
    /// A sealed frame's MAC (`Authentication.tagSize` bytes); empty for a frame that is not sealed.
    public var tag: [UInt8]

    public init(version: UInt8 = 1, type: UInt8, payload: [UInt8], tag: [UInt8] = []) {
        self.version = version
        self.type = type
        self.payload = payload
        self.tag = tag
    }

    /// Bytes 0 ..< 8: magic, version, type, payload length.
    public var header: [UInt8] { Frame.magic + [version, type] + bigEndian(UInt32(truncatingIfNeeded: payload.count)) }

    /// The frame's bytes on the wire.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Frame.headerSize + payload.count + tag.count + Frame.trailerSize)
        out += header
        out += payload
        out += tag
        out += bigEndian(CRC32C.checksum(out))
        return out
    }

    /// What `decode` found at the start of a buffer.
    public enum DecodeResult: Equatable {
        /// A whole frame, and how many bytes it took.
        case frame(Frame, consumed: Int)
        /// Not enough bytes yet: at least this many more are needed.
        case needMoreBytes(Int)

        /// The decoded frame, if a whole one was present.
        public var decodedFrame: Frame? { if case let .frame(f, _) = self { return f }; return nil }
    }

    /// Decodes the frame at the start of `buffer`. Checks the magic, version and declared length
    /// as soon as the header is present (an oversized frame is refused before its payload arrives),
    /// then the checksum. `tagSize` says how many MAC bytes follow the payload of a frame of a
    /// given type (0: not sealed). Never traps and never reads past the buffer.
    public static func decode(_ buffer: ArraySlice<UInt8>, tagSize: (UInt8) -> Int = { _ in 0 }) throws -> DecodeResult {
        let start = buffer.startIndex
        let available = buffer.count
        // Reported from the first mismatching byte, so the error is the same however bytes are chunked.
        for (i, byte) in buffer.prefix(2).enumerated() where byte != magic[i] {
            throw WireError.badMagic(found: Array(buffer.prefix(i + 1)))
        }
        if available < headerSize { return .needMoreBytes(headerSize - available) }
        let version = buffer[start + 2]
        guard decodableVersions.contains(version) else { throw WireError.unsupportedVersion(version) }
        let length = buffer[start + 4 ..< start + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length <= UInt64(maxPayload) else { throw WireError.frameTooLarge(length: length, limit: maxPayload) }
        let tagBytes = max(0, min(tagSize(buffer[start + 3]), 64))
        let payloadEnd = start + headerSize + Int(length)
        let total = headerSize + Int(length) + tagBytes + trailerSize
        if available < total { return .needMoreBytes(total - available) }
        let body = buffer[start ..< payloadEnd + tagBytes]
        let stored = buffer[payloadEnd + tagBytes ..< start + total].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let computed = CRC32C.checksum(body)
        guard stored == computed else { throw WireError.badChecksum(expected: stored, computed: computed) }
        let frame = Frame(version: version, type: buffer[start + 3], payload: Array(buffer[start + headerSize ..< payloadEnd]),
                          tag: Array(buffer[payloadEnd ..< payloadEnd + tagBytes]))
        return .frame(frame, consumed: total)
    }

    public static func decode(_ buffer: [UInt8], tagSize: (UInt8) -> Int = { _ in 0 }) throws -> DecodeResult {
        try decode(buffer[...], tagSize: tagSize)
    }
}

/// Accumulates bytes from a stream and yields whole frames. After an error the stream is unusable
/// (framing is lost); the connection must be closed.
public struct FrameReader: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    public var bufferedByteCount: Int { buffer.count - start }

    /// The payload length the next frame's header declares, once its 8 header bytes are here and
    /// its magic and version are good (nil otherwise: `next()` reports what is wrong). Not checked
    /// against any limit: a receiver uses it to refuse early.
    public var nextDeclaredPayloadLength: Int? {
        guard buffer.count - start >= Frame.headerSize, buffer[start] == 0x53, buffer[start + 1] == 0x59,
              Frame.decodableVersions.contains(buffer[start + 2]) else { return nil }
        let b = buffer[(start + 4)..<(start + 8)].map(UInt32.init)
        return Int(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3])
    }

    public mutating func feed(_ bytes: [UInt8]) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer += bytes
    }

    /// The next whole frame, or nil if more bytes are needed. `tagSize` as in `Frame.decode`.
    public mutating func next(tagSize: (UInt8) -> Int = { _ in 0 }) throws -> Frame? {
        switch try Frame.decode(buffer[start...], tagSize: tagSize) {
        case .needMoreBytes: return nil
        case let .frame(frame, consumed):
            start += consumed
            return frame
        }
    }
}

func bigEndian(_ v: UInt32) -> [UInt8] {
    [UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
}
