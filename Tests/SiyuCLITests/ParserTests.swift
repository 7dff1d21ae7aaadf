import Testing
@testable import SiyuCommandLine

/// The strict parser shared by the executables.
@Suite struct ParserTests {
    static let spec = CommandSpec(
        name: "try",
        summary: "a command for the tests",
        options: [.value("db", "FILE", required: true, "the file"),
                  .flag("json", "JSON"),
                  .value("count", "N", "a number"),
                  .repeatable("tag", "T", "a tag"),
                  .flag("verbose", short: "v", "more")],
        arguments: [ArgumentSpec("ID", "an id"), ArgumentSpec("SUB", optional: true, "a sub id")])

    func parse(_ words: [String]) throws -> ParsedArguments {
        try ArgumentParser.parse(words, for: ParserTests.spec)
    }

    func usageError(_ words: [String]) -> (message: String, hint: String?)? {
        do {
            _ = try parse(words)
            return nil
        } catch let CommandLineError.usage(message, hint) {
            return (message, hint)
        } catch {
            return nil
        }
    }

    @Test func optionsTakeTheirValueSeparatedOrAfterAnEqualsSign() throws {
        let a = try parse(["--db", "x.db", "--count=3", "--json", "id1"])
        #expect(a.value("db") == "x.db")
        #expect(try a.value("count", as: Int.self) == 3)
        #expect(a.flag("json"))
        #expect(!a.flag("verbose"))
        #expect(a.positionals == ["id1"])
    }

    @Test func aRepeatableOptionKeepsEveryValueInOrder() throws {
        let a = try parse(["--tag", "b", "--db", "f", "--tag=a", "x"])
        #expect(a.allValues("tag") == ["b", "a"])
    }

    @Test func anUnknownOptionIsRefusedWithTheValidOnesAndASuggestion() throws {
        let e = try #require(usageError(["--db", "f", "--jsn", "x"]))
        #expect(e.message == "unknown option '--jsn'")
        #expect(e.hint?.contains("did you mean --json?") == true)
        #expect(e.hint?.contains("--db FILE") == true)
    }

    @Test func anUnknownOptionDoesNotEatTheNextWord() throws {
        // The old parser took `--bogus x` as an option with a value; now it is refused.
        #expect(usageError(["--db", "f", "--bogus", "x"])?.message == "unknown option '--bogus'")
    }

    @Test func aSingleValueOptionGivenTwiceIsRefused() throws {
        #expect(usageError(["--db", "f", "--db", "g", "x"])?.message == "--db is given twice")
        #expect(usageError(["--db", "f", "--json", "--json", "x"])?.message == "--json is given twice")
    }

    @Test func aFlagRefusesAValue() throws {
        #expect(usageError(["--db", "f", "--json=yes", "x"])?.message == "--json takes no value")
    }

    @Test func aValueIsNeverTakenFromAnOption() throws {
        let e = try #require(usageError(["--db", "--json", "x"]))
        #expect(e.message.contains("--db needs a value"))
        #expect(e.hint?.contains("--db=VALUE") == true)
        #expect(try parse(["--db=--json", "x"]).value("db") == "--json")
        #expect(try parse(["--db", "f", "--count", "-5", "x"]).value("count", as: Int.self) == -5)
    }

    @Test func aMissingOrEmptyValueIsRefused() throws {
        #expect(usageError(["x", "--db"])?.message == "--db needs a value (FILE)")
        #expect(usageError(["x", "--db="])?.message.contains("non-empty") == true)
    }

    @Test func doubleDashEndsTheOptions() throws {
        let a = try parse(["--db", "f", "--", "--json", "-v"])
        #expect(a.positionals == ["--json", "-v"])
        #expect(!a.flag("json"))
    }

    @Test func aWordStartingWithADashBeforeDoubleDashIsAnOption() throws {
        let e = try #require(usageError(["--db", "f", "-5"]))
        #expect(e.message == "unknown option '-5'")
        #expect(e.hint?.contains("after --") == true)
    }

    @Test func shortNamesWorkOnlyWhereDeclared() throws {
        #expect(try parse(["-v", "--db", "f", "x"]).flag("verbose"))
        #expect(usageError(["-j", "--db", "f", "x"])?.message == "unknown option '-j'")
    }

    @Test func typedValuesAreCheckedWithAClearError() throws {
        let a = try parse(["--db", "f", "--count", "three", "x"])
        #expect(throws: CommandLineError.usage("--count must be an integer; got 'three'", hint: nil)) {
            try a.value("count", as: Int.self)
        }
    }

    @Test func positionalArgumentsAreCounted() throws {
        #expect(usageError(["--db", "f"])?.message == "missing ID (an id)")
        #expect(usageError(["--db", "f", "a", "b", "c"])?.message.hasPrefix("unexpected argument 'c'") == true)
    }

    @Test func aRequiredOptionMustBeGiven() throws {
        #expect(usageError(["x"])?.message == "--db FILE is required")
    }

    @Test func helpWinsAnywhereBeforeDoubleDashEvenWhenOtherWordsAreWrong() throws {
        #expect(throws: CommandLineError.helpRequested) { try parse(["--help"]) }
        #expect(throws: CommandLineError.helpRequested) { try parse(["--bogus", "-h"]) }
        #expect(try parse(["--db", "f", "--", "--help"]).positionals == ["--help"])
    }

    @Test func theUsageListsEveryDeclaredOption() {
        let usage = ParserTests.spec.usage(program: "siyu")
        #expect(usage.hasPrefix("usage: siyu try --db FILE [--json] [--count N] [--tag T]… [--verbose] ID [SUB]"))
        for option in ["--db FILE", "--json", "--count N", "--tag T", "-v, --verbose", "-h, --help"] {
            #expect(usage.contains(option))
        }
    }

    @Test func valuesInErrorsAreEscaped() throws {
        let e = try #require(usageError(["--db", "f", "--\u{1b}[31mred", "x"]))
        #expect(!e.message.contains("\u{1b}"))
        #expect(e.message.contains("\\u{1B}"))
    }
}

/// Escaping text that came from data.
@Suite struct TerminalTextTests {
    @Test func controlBidiAndFormatCharactersAreShownEscaped() {
        #expect(TerminalText.escaped("a\nb") == "a\\u{A}b")
        #expect(TerminalText.escaped("\u{1b}[2J") == "\\u{1B}[2J")
        #expect(TerminalText.escaped("abc\u{202E}fed") == "abc\\u{202E}fed")
        #expect(TerminalText.escaped("zero\u{200B}width") == "zero\\u{200B}width")
        #expect(TerminalText.escaped("c1\u{9B}") == "c1\\u{9B}")
        #expect(TerminalText.escaped("back\\slash") == "back\\\\slash")
    }

    @Test func ordinaryTextIncludingCJKAndEmojiIsUnchanged() {
        for s in ["林小文", "周末拼团群", "wm_lin", "👨‍👩‍👧", "café"] {
            #expect(TerminalText.escaped(s) == s)
        }
    }

    @Test func jsonKeepsItsMeaningButHidesFormatCharacters() {
        let json = "{\"name\":\"a\u{202E}b\u{E0041}\"}"
        #expect(TerminalText.jsonSafe(json) == "{\"name\":\"a\\u202eb\\udb40\\udc41\"}")
    }
}
