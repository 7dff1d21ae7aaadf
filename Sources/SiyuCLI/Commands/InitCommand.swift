import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu init --db FILE --node NODE --role hq|store [--store STORE]`: a new, empty replica.
struct InitCommand: Command {
    static let spec = CommandSpec(
        name: "init",
        summary: "make a new, empty replica file for a node",
        options: [
            .value("db", "FILE", required: true, "where to create the replica (must not exist)"),
            .value("node", "NODE", required: true, "the node's id (at most 64 characters)"),
            .value("role", "ROLE", required: true, "hq or store"),
            .value("store", "STORE", "for a store node: the store whose data it holds"),
            ReplicaAccess.jsonOption,
        ],
        discussion: "An existing file is never touched, even an empty one.")

    var path: String
    var node: String
    var role: Role
    var store: String?
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        node = try arguments.required("node")
        switch try arguments.required("role") {
        case "hq": role = .hq
        case "store": role = .store
        case let other:
            throw CommandLineError.usage("--role must be hq or store; got '\(TerminalText.escaped(other))'", hint: nil)
        }
        store = arguments.value("store")
        json = arguments.flag("json")
        if role == .hq && store != nil {
            throw CommandLineError.usage("--store is for store nodes; HQ holds every store", hint: "leave out --store, or use --role store")
        }
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.perform("creating \(path)", path: path) {
            try Replica.create(at: path, node: node, role: role, store: store,
                               options: ReplicaOptions(wallClock: context.wallClock))
        }
        defer { replica.close() }
        if json {
            try JSONOutput.write(try StatusReport(replica), to: context.io.output)
        } else {
            context.io.output.line("created \(Render.text(path)): node \(Render.text(node)) (\(role))"
                                   + (store.map { ", store \(Render.text($0))" } ?? "") + ", empty")
        }
        return .success
    }
}
