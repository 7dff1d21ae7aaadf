import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine
import SiyuWeCom

/// `siyu wecom import --db FILE PAYLOAD…` and `siyu wecom export --db FILE [--kind K] [--since CURSOR]`:
/// the HQ CRM's interchange in WeCom's shapes (docs/WECOM.md).
struct WeComCommand: Command {
    enum Kind: String, CaseIterable, ArgumentConvertible {
        case customers, markTag = "mark-tag", groups, changes
        init?(argument: String) { self.init(rawValue: argument) }
        static var argumentExpectation: String { "one of customers, mark-tag, groups, changes" }
    }

    static let spec = CommandSpec(
        name: "wecom",
        summary: "import WeCom payloads into an HQ replica, or export its merged state in WeCom's shapes",
        options: [
            ReplicaAccess.dbOption,
            .value("kind", "KIND", "export: customers (default), mark-tag, groups or changes"),
            .value("batch", "N", "import: payloads (or batch entries) per transaction (default 2000): a running node daemon syncs between them"),
            .value("since", "CURSOR", "export mark-tag/changes: only what changed after this cursor (the next_cursor of the last export)"),
            ReplicaAccess.jsonOption,
        ],
        arguments: [ArgumentSpec("ACTION", "import or export"),
                    ArgumentSpec("PAYLOAD", variadic: true, "import: WeCom responses or callbacks (JSON, JSON lines, or callback XML)")],
        discussion: """
        import reads get_corp_tag_list, externalcontact/get, batch/get_by_user, groupchat/get, groupchat/list and the
        change_external_contact / change_external_chat / change_external_tag callbacks, recognising each by its shape.
        Every file is checked whole before anything is written, then written in transactions of --batch payloads (a
        running node daemon records its syncs between them); importing the same payloads again writes nothing. Needs an HQ replica (siyu init --db hq.db --node hq --role hq).
        export prints JSON lines: customers as externalcontact/get responses, groups as groupchat/get responses,
        mark-tag as mark_tag request bodies, changes as one line per changed record; mark-tag and changes end with
        {"next_cursor": …} to pass to --since next time. Fields and rules: docs/WECOM.md.
        """)

    enum Action { case importing([String], batch: Int), exporting(Kind, WeComCursor?) }

    var path: String
    var action: Action
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        json = arguments.flag("json")
        let rest = Array(arguments.positionals.dropFirst())
        switch arguments.positional(0) ?? "" {
        case "import":
            guard !rest.isEmpty else {
                throw CommandLineError.usage("wecom import needs at least one PAYLOAD file", hint: "siyu wecom import --db hq.db get_corp_tag_list.json customers.json")
            }
            if arguments.value("kind") != nil || arguments.value("since") != nil {
                throw CommandLineError.usage("--kind and --since are export options", hint: "siyu wecom import --db FILE PAYLOAD…")
            }
            let batch = try arguments.value("batch", as: Int.self) ?? WeComImport.defaultBatchSize
            guard (1...1_000_000).contains(batch) else {
                throw CommandLineError.usage("--batch must be from 1 to 1000000; got \(batch)", hint: "the default, 2000, suits most imports")
            }
            action = .importing(rest, batch: batch)
        case "export":
            guard rest.isEmpty else {
                throw CommandLineError.usage("wecom export takes no files (it prints to standard output)", hint: "redirect it: siyu wecom export --db FILE > out.jsonl")
            }
            let kind = try arguments.value("kind", as: Kind.self) ?? .customers
            var cursor: WeComCursor?
            if let since = arguments.value("since") {
                guard kind == .markTag || kind == .changes else {
                    throw CommandLineError.usage("--since is for --kind mark-tag and --kind changes", hint: "customers and groups export the whole merged state")
                }
                cursor = try WeComCursor(since)
            }
            if arguments.value("batch") != nil {
                throw CommandLineError.usage("--batch is an import option", hint: "siyu wecom export --db FILE --kind KIND")
            }
            if json {
                throw CommandLineError.usage("wecom export always prints JSON lines; --json is for import's report", hint: nil)
            }
            action = .exporting(kind, cursor)
        case let other:
            throw CommandLineError.usage("ACTION must be import or export; got '\(TerminalText.escaped(other))'", hint: "import reads WeCom payloads into the replica; export prints its state in WeCom's shapes")
        }
    }

    func run(in context: CLIContext) throws -> ExitCode {
        switch action {
        case let .importing(files, batch):
            return try WeComImport(path: path, files: files, json: json, batchSize: batch).run(in: context)
        case let .exporting(kind, cursor):
            return try WeComExport(path: path, kind: kind, since: cursor).run(in: context)
        }
    }
}

/// Where a CRM is in the change feed: per origin node, the last op number it has been given.
/// Written as `c1.` and the base64url of a JSON object `{origin: seq}`; opaque to users.
struct WeComCursor: Equatable {
    var vector: VersionVector

    static let maxBytes = 65_536

    init(_ vector: VersionVector) { self.vector = vector }

    init(_ text: String) throws {
        func bad(_ why: String) -> CommandLineError {
            CommandLineError.usage("--since is not a cursor an export wrote (\(why))",
                                   hint: "pass the next_cursor of the last export, or leave out --since to start from the beginning")
        }
        guard text.utf8.count <= WeComCursor.maxBytes else { throw bad("too long") }
        guard text.hasPrefix("c1.") else { throw bad("it does not start with c1.") }
        var b64 = String(text.dropFirst(3)).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64),
              let entries = try? JSONDecoder().decode([String: UInt64].self, from: data) else { throw bad("it cannot be decoded") }
        for (origin, seq) in entries {
            guard (try? IdentifierRule.validate(origin, as: "node id")) != nil, seq <= Op.maxSeq else { throw bad("it names an impossible position") }
        }
        vector = VersionVector(entries)
    }

    var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(vector.entries.filter { $0.value > 0 })) ?? Data("{}".utf8)
        return "c1." + data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
