import Foundation
import Testing
import SiyuCommandLine
@testable import SiyuCLI

/// Every `siyu …` command line quoted in a string of SiyuCLI and SiyuStore (hints, help, errors) names a
/// command that exists, with options it declares and a number of arguments it takes.
@Suite struct HintTests {
    /// A command line quoted in a source string.
    struct Mention: CustomStringConvertible {
        var file: String
        var line: Int
        var words: [String]
        var description: String { "\(file):\(line): siyu \(words.joined(separator: " "))" }
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The contents of every string literal in Swift source, with `(line, text)`; interpolations
    /// become `X`; comments are skipped.
    static func stringLiterals(in source: String) -> [(line: Int, text: String)] {
        let c = Array(source.unicodeScalars)
        var out: [(Int, String)] = []
        var i = 0, line = 1
        func at(_ k: Int) -> Unicode.Scalar? { k < c.count ? c[k] : nil }
        /// Skips a string literal starting at `k` (at its opening quote); returns the index after it.
        func skipString(_ k: Int) -> Int {
            var j = k
            let triple = at(j) == "\"" && at(j + 1) == "\"" && at(j + 2) == "\""
            j += triple ? 3 : 1
            while j < c.count {
                if c[j] == "\\" { j += 2; continue }
                if triple ? (c[j] == "\"" && at(j + 1) == "\"" && at(j + 2) == "\"") : c[j] == "\"" { return j + (triple ? 3 : 1) }
                j += 1
            }
            return j
        }
        while i < c.count {
            let ch = c[i]
            if ch == "\n" { line += 1; i += 1; continue }
            if ch == "/" && at(i + 1) == "/" { while i < c.count && c[i] != "\n" { i += 1 }; continue }
            if ch == "/" && at(i + 1) == "*" {
                i += 2
                while i < c.count && !(c[i] == "*" && at(i + 1) == "/") { if c[i] == "\n" { line += 1 }; i += 1 }
                i += 2
                continue
            }
            guard ch == "\"" else { i += 1; continue }
            let triple = at(i + 1) == "\"" && at(i + 2) == "\""
            let startLine = line
            var text = String.UnicodeScalarView()
            i += triple ? 3 : 1
            while i < c.count {
                if triple ? (c[i] == "\"" && at(i + 1) == "\"" && at(i + 2) == "\"") : c[i] == "\"" { i += triple ? 3 : 1; break }
                if c[i] == "\n" { line += 1; if !triple { break } }
                if c[i] == "\\" && at(i + 1) == "(" {
                    var depth = 0
                    i += 1
                    while i < c.count {
                        if c[i] == "\"" { i = skipString(i); continue }
                        if c[i] == "(" { depth += 1 }
                        if c[i] == ")" { depth -= 1; if depth == 0 { i += 1; break } }
                        i += 1
                    }
                    text.append("X")
                    continue
                }
                if c[i] == "\\" { text.append(c[i]); if let n = at(i + 1) { text.append(n) }; i += 2; continue }
                text.append(c[i])
                i += 1
            }
            out.append((startLine, String(text)))
        }
        return out
    }

    /// Every `siyu WORD …` in the string literals of the Swift files under `directory`.
    static func mentions(under directory: String) throws -> [Mention] {
        let root = repositoryRoot.appendingPathComponent(directory)
        let files = try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "swift" }
            + ((try? FileManager.default.contentsOfDirectory(at: root.appendingPathComponent("Commands"), includingPropertiesForKeys: nil)) ?? [])
        var out: [Mention] = []
        for file in files.sorted(by: { $0.path < $1.path }) {
            let source = try String(contentsOf: file, encoding: .utf8)
            for (line, text) in stringLiterals(in: source) {
                var rest = Substring(text)
                while let r = rest.range(of: "siyu ") {
                    let before = rest[..<r.lowerBound].last
                    rest = rest[r.upperBound...]
                    if let before, before.isLetter || before == "-" || before == "_" { continue }
                    guard rest.first?.isLowercase == true else { continue }
                    var words: [String] = []
                    let commandLine = rest.prefix { $0 != "\n" }
                    for token in commandLine.split(separator: " ", omittingEmptySubsequences: true) {
                        if token.hasPrefix("(") || token.hasPrefix("'") || token.hasPrefix("\\n") { break }
                        var t = String(token)
                        var last = false
                        if let cut = t.range(of: "\\n") { t = String(t[..<cut.lowerBound]); last = true }
                        while let end = t.last, ")],.;:'`".contains(end) { t.removeLast(); last = true }
                        if !t.isEmpty { words.append(t) }
                        if last { break }
                    }
                    out.append(Mention(file: "\(directory)/\(file.lastPathComponent)", line: line, words: words))
                }
            }
        }
        return out
    }

    static func problems(_ mentions: [Mention]) -> [String] {
        mentions.compactMap { m in SiyuProgram.program.problem(withMention: m.words).map { "\(m): \($0)" } }
    }

    @Test func theScannerFindsCommandLinesInStringsAndNotInComments() {
        let source = """
        // siyu nothing here
        let a = "list them with: siyu tags --db FILE"
        let b = "see \\(x.y("q")): siyu conflicts --db \\(path) --state open (or more)"
        """
        let found = HintTests.stringLiterals(in: source).map(\.text).filter { $0.contains("siyu") }
        #expect(found == ["list them with: siyu tags --db FILE", "see X: siyu conflicts --db X --state open (or more)"])
    }

    @Test func everyCommandTheCLIQuotesExists() throws {
        let mentions = try HintTests.mentions(under: "Sources/SiyuCLI")
        #expect(mentions.count >= 15, "the scanner found too few hints to be working: \(mentions)")
        let problems = HintTests.problems(mentions)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    @Test func theCheckRefusesCommandsThatDoNotExist() {
        #expect(SiyuProgram.program.problem(withMention: ["edit", "customer"]) != nil)
        #expect(SiyuProgram.program.problem(withMention: ["conflicts", "ack", "ID"]) != nil)
        #expect(SiyuProgram.program.problem(withMention: ["status", "--bogus"]) != nil)
        #expect(SiyuProgram.program.problem(withMention: ["ack", "--db", "FILE", "ID"]) == nil)
        #expect(SiyuProgram.program.problem(withMention: ["tags"]) == nil)
    }

    @Test func everyCommandTheStoreQuotesExists() throws {
        let mentions = try HintTests.mentions(under: "Sources/SiyuStore")
        #expect(mentions.count >= 5, "the scanner found too few hints to be working: \(mentions)")
        let problems = HintTests.problems(mentions)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }
}
