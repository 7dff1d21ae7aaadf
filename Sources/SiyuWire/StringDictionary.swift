/// The strings one direction of a connection has carried so far (Protocol/SPEC.md, "String
/// dictionary"). The sender and the receiver of that direction each keep one: a change set lists
/// only the strings the dictionary does not hold yet, and refers to the others by their position.
///
/// Guarantees:
/// - sender and receiver, applying the same change sets in the same order, hold the same list:
///   entries are appended in the order the change sets define them and never reordered;
/// - it never holds more than `maxEntries` strings or `maxBytes` bytes of UTF-8: a change set after
///   which it would, empties it (both sides compute this alike), and the next one starts afresh;
/// - strings are told apart by their UTF-8 bytes, never by Unicode canonical equivalence.
///
/// It is a value: to try an encoding without committing to it (say, to see whether a batch fits a
/// byte budget), encode against a copy and keep the copy only if the bytes are sent.
public struct StringDictionary: Sendable, Equatable {
    /// At most this many strings are kept between change sets (so an index is at most 2 bytes).
    public static let maxEntries = 16_384
    /// At most this many bytes of UTF-8 are kept between change sets.
    public static let maxBytes = 524_288

    /// The strings, in the order they were defined.
    public private(set) var strings: [String] = []
    /// Their total length in UTF-8 bytes.
    public private(set) var byteCount = 0
    private var positions: [UTF8Key: UInt64] = [:]

    public init() {}

    public var count: Int { strings.count }

    /// Where `key` (a string's UTF-8 bytes) is, if the dictionary holds it (the first place, if a
    /// non-canonical sender defined it twice).
    func position(of key: UTF8Key) -> UInt64? { positions[key] }

    /// Whether adding `count` strings of `bytes` bytes in total would go over a limit.
    func wouldOverflow(adding count: Int, bytes: Int) -> Bool {
        strings.count + count > Self.maxEntries || byteCount + bytes > Self.maxBytes
    }

    /// Appends what a change set defined, then empties the dictionary if it went over a limit.
    mutating func append(_ defined: [String]) {
        for s in defined {
            let key = UTF8Key(s)
            if positions[key] == nil { positions[key] = UInt64(strings.count) }
            strings.append(s)
            byteCount += key.bytes.count
        }
        if strings.count > Self.maxEntries || byteCount > Self.maxBytes { removeAll() }
    }

    mutating func removeAll() {
        strings = []
        positions = [:]
        byteCount = 0
    }
}

/// A string as its UTF-8 bytes, the key of the dictionaries' lookups: equal when the bytes are
/// (never by canonical equivalence, as `String`'s `==` would), hashed as one run of bytes — an
/// `[UInt8]` key hashes byte by byte, which made encoding a change set (a hub's snapshot, on its
/// loop thread) cost several times reading its ops.
struct UTF8Key: Hashable {
    let bytes: [UInt8]

    init(_ s: String) { bytes = Array(s.utf8) }

    static func == (a: UTF8Key, b: UTF8Key) -> Bool { a.bytes == b.bytes }

    func hash(into hasher: inout Hasher) {
        hasher.combine(bytes.count)
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
