import Foundation
import SiyuCore
import SiyuStore
import SiyuCLI

/// `siyu`: the command-line tool. Parses arguments and wires the replica to the output.
let usage = """
usage: siyu <command> [options]

  demo [--keep DIR]                 HQ and two stores in one process: offline edits, conflicts, convergence
  status    --db FILE               node identity, clock, op counts, digest
  conflicts --db FILE [--state S] [--json]
                                    the conflict log (S: open, acknowledged, overridden)
  ack       --db FILE ID [--by STAFF]        acknowledge a conflict
  override  --db FILE ID [--value V] [--by STAFF]
                                    make the discarded side (or V) current
  history   --db FILE ENTITY ID [SUB] [FIELD]
                                    every op that touched a record ("why is this value what it is?")
  show      --db FILE               the replica's customers, groups and orders
  rebuild   --db FILE               recompute every table and the conflict log from the op log

Exit codes: 0 ok, 1 failure (message on stderr), 2 usage error.
"""

struct UsageError: Error, CustomStringConvertible { let description: String }

struct Arguments {
    var positional: [String] = []
    var options: [String: String] = [:]
    var flags: Set<String> = []

    init(_ args: ArraySlice<String>, flags known: Set<String> = ["--json"]) throws {
        var it = args.makeIterator()
        while let a = it.next() {
            if known.contains(a) { flags.insert(a) }
            else if a.hasPrefix("--") {
                guard let v = it.next() else { throw UsageError(description: "\(a) needs a value") }
                options[a] = v
            } else { positional.append(a) }
        }
    }

    func db() throws -> Replica {
        guard let path = options["--db"] else { throw UsageError(description: "--db FILE is required") }
        return try Replica(existing: path)
    }
}

func json(_ value: Any) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    return String(decoding: data, as: UTF8.self)
}

func run(_ argv: [String]) throws -> Int32 {
    guard let command = argv.dropFirst().first else { print(usage); return 2 }
    let args = try Arguments(argv.dropFirst(2))
    switch command {
    case "demo":
        return try Demo(keep: args.options["--keep"]).run()
    case "status":
        let r = try args.db()
        let counts = try r.opCounts()
        print("node \(r.node) (\(r.role)), file layout \(try r.schemaVersion()), data model \(currentSchemaVersion), clock \(r.lastClock)")
        print("ops \(counts.total) (\(counts.own) own), open conflicts \(try r.conflicts(state: .open).count)")
        print("digest \(try r.digest().hexString)")
    case "conflicts":
        let r = try args.db()
        var state: ConflictState?
        if let s = args.options["--state"] {
            guard let parsed = ConflictState(rawValue: s) else { throw UsageError(description: "unknown state '\(s)' (open, acknowledged, overridden)") }
            state = parsed
        }
        let entries = try r.conflicts(state: state)
        if args.flags.contains("--json") {
            print(json(entries.map { c in [
                "id": c.id, "rule": c.rule.rawValue, "state": c.state.rawValue, "entity": c.target.entity.name,
                "target": c.target.id, "sub": c.target.sub, "field": c.field,
                "kept": c.winner?.value.description ?? NSNull(), "kept_by": c.winner.map { "\($0.author)@\($0.stamp.node)" } ?? NSNull(),
                "discarded": c.loser.value.description, "discarded_by": "\(c.loser.author)@\(c.loser.stamp.node)",
            ] as [String: Any] }))
        } else {
            print(Render.conflicts(entries))
        }
    case "ack", "override":
        let r = try args.db()
        guard let id = args.positional.first else { throw UsageError(description: "\(command) needs a conflict id") }
        let by = args.options["--by"] ?? ""
        if command == "ack" { try r.acknowledgeConflict(id, by: by) }
        else { try r.overrideConflict(id, with: args.options["--value"].map(Value.text), by: by) }
        print(Render.conflicts([try r.conflict(id)]))
    case "history":
        let r = try args.db()
        guard args.positional.count >= 2, let entity = Entity(name: args.positional[0]) else {
            throw UsageError(description: "history needs ENTITY ID [SUB] [FIELD]; entities: \(Entity.allCases.map(\.name).joined(separator: ", "))")
        }
        let rest = Array(args.positional.dropFirst(2))
        let sub = entity.hasSub ? (rest.first ?? "") : ""
        let field = entity.hasSub ? rest.dropFirst().first : rest.first
        for h in try r.history(of: Target(entity, args.positional[1], sub), field: field) {
            var what = h.op.body.kindName
            if case let .write(_, f, v, over) = h.op.body { what = "\(f) = \(v.quoted)" + (over.count > 1 ? " (resolves \(over.count) sides)" : "") }
            if case let .status(_, from, to, _) = h.op.body { what = "status \(from) → \(to)" }
            print("\(h.isCurrent ? "*" : " ") \(Render.time(h.op.hlc))  \(h.op.author)@\(h.op.origin)#\(h.op.seq)  \(what)")
        }
    case "show":
        print(try Render.state(of: try args.db()))
    case "rebuild":
        let r = try args.db()
        let before = try r.digest().hexString
        try r.rebuild()
        let after = try r.digest().hexString
        print(before == after ? "rebuilt; digest unchanged \(after)" : "rebuilt; digest was \(before), now \(after) (the tables had drifted from the op log)")
    case "help", "--help", "-h":
        print(usage)
    default:
        throw UsageError(description: "unknown command '\(command)'")
    }
    return 0
}

do {
    exit(try run(CommandLine.arguments))
} catch let e as UsageError {
    FileHandle.standardError.write(Data("siyu: \(e.description)\n\n\(usage)\n".utf8))
    exit(2)
} catch {
    FileHandle.standardError.write(Data("siyu: \(error)\n".utf8))
    exit(1)
}
