import Foundation

/// Where a command writes text: standard output or error, or a buffer in tests.
///
/// Guarantees: text is written in the order given; `isTerminal` says whether a person is
/// probably reading it live (progress output is only for terminals).
public final class TextStream: @unchecked Sendable {
    private let sink: (String) -> Void
    private let flusher: () -> Void
    /// Whether the stream is an interactive terminal.
    public let isTerminal: Bool

    public init(isTerminal: Bool = false, flush: @escaping () -> Void = {}, _ sink: @escaping (String) -> Void) {
        self.isTerminal = isTerminal
        self.sink = sink
        self.flusher = flush
    }

    /// Writes `text` as is.
    public func write(_ text: String) { sink(text) }

    /// Writes `text` and a newline.
    public func line(_ text: String = "") { sink(text + "\n") }

    /// Pushes buffered text to its destination.
    public func flush() { flusher() }

    /// The process's standard output (buffered; flushed by `flush()` and at exit).
    public static let standardOutput = TextStream(isTerminal: isatty(1) == 1, flush: { fflush(stdout) }) { fputs($0, stdout) }

    /// The process's standard error.
    public static let standardError = TextStream(isTerminal: isatty(2) == 1, flush: { fflush(stderr) }) { text in
        fflush(stdout)
        fputs(text, stderr)
    }
}

/// Collects what is written to it, for tests and for commands that build output before writing.
public final class TextBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var collected = ""

    public init() {}

    /// Everything written so far.
    public var text: String { lock.lock(); defer { lock.unlock() }; return collected }

    /// A stream that appends to this buffer.
    public func stream(isTerminal: Bool = false) -> TextStream {
        TextStream(isTerminal: isTerminal) { [self] s in lock.lock(); collected += s; lock.unlock() }
    }
}

/// The two streams a command writes to.
public struct CommandIO: Sendable {
    public let output: TextStream
    public let error: TextStream

    public init(output: TextStream, error: TextStream) {
        self.output = output
        self.error = error
    }

    /// Standard output and standard error.
    public static var standard: CommandIO { CommandIO(output: .standardOutput, error: .standardError) }
}

/// Making text from data safe to print: nothing a record holds can move the cursor, change
/// colours, reverse the direction of the line, hide characters, or start a new line.
public enum TerminalText {
    /// `text` with every control character (C0, DEL, C1), line and paragraph separator, and
    /// format character (bidi controls, zero-width spaces, BOM, tag characters; the zero-width
    /// joiner of emoji sequences is kept) replaced by `\u{XXXX}`, and backslashes doubled, so the
    /// printed form is unambiguous.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if needsEscape(s) {
                if s == "\\" { out.append(contentsOf: "\\\\".unicodeScalars); continue }
                out.append(contentsOf: "\\u{\(String(s.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                out.append(s)
            }
        }
        return String(out)
    }

    /// Whether a scalar is printed escaped by `escaped(_:)`.
    public static func needsEscape(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || v == 0x5C { return true }
        if v < 0xA0 { return false }
        if v == 0x200D { return false }   // zero-width joiner: emoji sequences
        switch s.properties.generalCategory {
        case .format, .lineSeparator, .paragraphSeparator, .control, .surrogate: return true
        default: return false
        }
    }

    /// JSON text with every format character and line/paragraph separator inside it written as
    /// a `\uXXXX` escape (JSON decoders read them back unchanged), so printing JSON to a
    /// terminal cannot reorder or hide what it shows. DEL and C1 controls are escaped too; C0
    /// controls are already escaped by any JSON encoder; backslashes are left alone (they only
    /// occur as JSON escapes).
    public static func jsonSafe(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { $0.value >= 0x7F && needsEscape($0) }) else { return json }
        var out = String.UnicodeScalarView()
        for s in json.unicodeScalars {
            if s.value >= 0x7F && needsEscape(s) {
                for unit in String(s).utf16 {
                    let hex = String(unit, radix: 16)
                    out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
                }
            } else {
                out.append(s)
            }
        }
        return String(out)
    }
}
