import Foundation

/// Finds the values of a JSON text without decoding them: the top-level values of a file (one
/// document, or JSON lines), the members of an object and the elements of an array, as byte
/// ranges. This is what lets a 100,000-customer batch be decoded one entry at a time.
///
/// Guarantees: every value it returns is syntactically complete JSON (strings closed, brackets
/// balanced, no control characters in strings, numbers and literals well formed), nested at
/// most `maxDepth` deep; a syntax error is a `WeComError` naming the JSON path of the value it is
/// in and its line and column. It never reads outside `bytes`.
struct JSONScanner {
    static let maxDepth = 64

    let bytes: UnsafeRawBufferPointer

    enum Component {
        case key(Range<Int>)
        case index(Int)
    }

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func skipSpace(_ start: Int) -> Int {
        var i = start
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0a, 0x0d: i += 1
            default: return i
            }
        }
        return i
    }

    /// The next top-level value at or after `start`, or nil at the end of the text.
    func nextValue(from start: Int) throws -> Range<Int>? {
        var i = skipSpace(start)
        if i < bytes.count, bytes[i] == 0xef, i + 2 < bytes.count, bytes[i + 1] == 0xbb, bytes[i + 2] == 0xbf {
            i = skipSpace(i + 3)   // a byte-order mark some editors write
        }
        guard i < bytes.count else { return nil }
        var path: [Component] = []
        let end = try skipValue(i, depth: 0, path: &path)
        return i..<end
    }

    /// The members of the object at `range`, in order (keys decoded).
    func members(_ range: Range<Int>) throws -> [(key: String, value: Range<Int>)] {
        var out: [(String, Range<Int>)] = []
        guard bytes[range.lowerBound] == UInt8(ascii: "{") else { return [] }
        var i = skipSpace(range.lowerBound + 1)
        var path: [Component] = []
        if bytes[i] == UInt8(ascii: "}") { return [] }
        while true {
            let keyEnd = try skipString(i, path: path)
            let key = decodeKey(i..<keyEnd)
            i = skipSpace(keyEnd) + 1   // the colon (checked by skipValue before)
            i = skipSpace(i)
            let end = try skipValue(i, depth: 1, path: &path)
            out.append((key, i..<end))
            i = skipSpace(end)
            if bytes[i] == UInt8(ascii: "}") { return out }
            i = skipSpace(i + 1)
        }
    }

    /// Calls `body` with each element of the array at `range` and its index.
    func elements(_ range: Range<Int>, _ body: (Int, Range<Int>) throws -> Void) throws {
        guard bytes[range.lowerBound] == UInt8(ascii: "[") else { return }
        var i = skipSpace(range.lowerBound + 1)
        if bytes[i] == UInt8(ascii: "]") { return }
        var index = 0
        var path: [Component] = []
        while true {
            let end = try skipValue(i, depth: 1, path: &path)
            try body(index, i..<end)
            index += 1
            i = skipSpace(end)
            if bytes[i] == UInt8(ascii: "]") { return }
            i = skipSpace(i + 1)
        }
    }

    func isObject(_ range: Range<Int>) -> Bool { bytes[range.lowerBound] == UInt8(ascii: "{") }
    func isArray(_ range: Range<Int>) -> Bool { bytes[range.lowerBound] == UInt8(ascii: "[") }

    /// The bytes of `range` as Data (a copy: one value, bounded by the caller).
    func data(_ range: Range<Int>) -> Data { Data(bytes[range]) }

    /// 1-based line and column of a byte offset.
    /// Line numbers of offsets met in increasing order, each found by counting only the bytes
    /// since the previous one: reading a file of N payloads costs O(file size) in all, where
    /// `location` from byte 0 for each would cost O(N × size).
    struct LineCounter {
        private var offset = 0
        private var line = 1

        /// The line of `target` (≥ every offset asked before; an earlier one restarts from 0).
        mutating func line(at target: Int, in bytes: UnsafeRawBufferPointer) -> Int {
            if target < offset { offset = 0; line = 1 }
            let end = min(target, bytes.count)
            var i = offset
            while i < end {
                if bytes[i] == 0x0a { line += 1 }
                i += 1
            }
            offset = max(offset, end)
            return line
        }
    }

    func location(_ offset: Int) -> (line: Int, column: Int) {
        var line = 1, column = 1
        for i in 0..<min(offset, bytes.count) {
            if bytes[i] == 0x0a { line += 1; column = 1 } else if bytes[i] & 0xc0 != 0x80 { column += 1 }
        }
        return (line, column)
    }

    // MARK: Syntax

    private func fail(_ at: Int, _ what: String, _ path: [Component]) -> WeComError {
        let (line, column) = location(at)
        var error = WeComError(path: render(path), "\(what) (column \(column))",
                               hint: "the file is not valid JSON there; export the payload from WeCom again or fix it by hand")
        error.line = line
        return error
    }

    func render(_ path: [Component]) -> String {
        var out = "$"
        for c in path {
            switch c {
            case let .key(r): out += "." + decodeKey(r)
            case let .index(i): out += "[\(i)]"
            }
        }
        return out
    }

    private func decodeKey(_ r: Range<Int>) -> String {
        let inner = bytes[(r.lowerBound + 1)..<(r.upperBound - 1)]
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        return (try? JSONDecoder().decode(String.self, from: Data(bytes[r]))) ?? String(decoding: inner, as: UTF8.self)
    }

    private func skipValue(_ start: Int, depth: Int, path: inout [Component]) throws -> Int {
        guard start < bytes.count else { throw fail(start, "the text ends where a value should be", path) }
        guard depth < JSONScanner.maxDepth else { throw fail(start, "values are nested more than \(JSONScanner.maxDepth) deep", path) }
        switch bytes[start] {
        case UInt8(ascii: "{"):
            var i = skipSpace(start + 1)
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { return i + 1 }
            while true {
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail(i, "expected a key in quotes", path) }
                let keyStart = i
                let keyEnd = try skipString(i, path: path)
                i = skipSpace(keyEnd)
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail(i, "expected ':' after a key", path) }
                path.append(.key(keyStart..<keyEnd))
                i = try skipValue(skipSpace(i + 1), depth: depth + 1, path: &path)
                i = skipSpace(i)
                guard i < bytes.count else { throw fail(i, "the object is not closed ('}' missing)", path) }
                guard bytes[i] == UInt8(ascii: ",") || bytes[i] == UInt8(ascii: "}") else {
                    throw fail(i, "unexpected '\(printable(bytes[i]))' after the value (expected ',' or '}')", path)
                }
                path.removeLast()
                if bytes[i] == UInt8(ascii: "}") { return i + 1 }
                i = skipSpace(i + 1)
            }
        case UInt8(ascii: "["):
            var i = skipSpace(start + 1)
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { return i + 1 }
            var index = 0
            while true {
                path.append(.index(index))
                i = try skipValue(i, depth: depth + 1, path: &path)
                i = skipSpace(i)
                guard i < bytes.count else { throw fail(i, "the array is not closed (']' missing)", path) }
                guard bytes[i] == UInt8(ascii: ",") || bytes[i] == UInt8(ascii: "]") else {
                    throw fail(i, "unexpected '\(printable(bytes[i]))' after the value (expected ',' or ']')", path)
                }
                path.removeLast()
                if bytes[i] == UInt8(ascii: "]") { return i + 1 }
                i = skipSpace(i + 1)
                index += 1
            }
        case UInt8(ascii: "\""):
            return try skipString(start, path: path)
        case UInt8(ascii: "t"): return try literal("true", start, path)
        case UInt8(ascii: "f"): return try literal("false", start, path)
        case UInt8(ascii: "n"): return try literal("null", start, path)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try skipNumber(start, path: path)
        default:
            throw fail(start, "unexpected character '\(printable(bytes[start]))'", path)
        }
    }

    private func printable(_ b: UInt8) -> String {
        (0x21...0x7e).contains(b) ? String(UnicodeScalar(b)) : String(format: "0x%02x", b)
    }

    private func literal(_ word: String, _ start: Int, _ path: [Component]) throws -> Int {
        let w = Array(word.utf8)
        guard start + w.count <= bytes.count, zip(w.indices, w).allSatisfy({ bytes[start + $0] == $1 }) else {
            throw fail(start, "unexpected word (expected \(word), a number, a string, an object or an array)", path)
        }
        return start + w.count
    }

    private func skipNumber(_ start: Int, path: [Component]) throws -> Int {
        var i = start
        func digits() -> Int {
            let from = i
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
            return i - from
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard digits() > 0 else { throw fail(start, "malformed number", path) }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw fail(start, "malformed number", path) }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail(start, "malformed number", path) }
        }
        return i
    }

    private func skipString(_ start: Int, path: [Component]) throws -> Int {
        var i = start + 1
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { return i + 1 }
            if b < 0x20 { throw fail(i, "a control character inside a string (write it as \\u00XX)", path) }
            if b == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { break }
                switch bytes[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard i + 5 < bytes.count, (2...5).allSatisfy({ isHex(bytes[i + $0]) }) else {
                        throw fail(i, "a malformed \\u escape in a string", path)
                    }
                    i += 6
                default:
                    throw fail(i, "an unknown escape '\\\(printable(bytes[i + 1]))' in a string", path)
                }
                continue
            }
            i += 1
        }
        throw fail(start, "a string is not closed (the closing quote is missing)", path)
    }

    private func isHex(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b)
    }
}
