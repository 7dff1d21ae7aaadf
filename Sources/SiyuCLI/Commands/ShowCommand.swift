import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu show --db FILE [--json]`: customers, group chats and orders in one view.
struct ShowCommand: Command {
    static let spec = CommandSpec(
        name: "show",
        summary: "the replica's customers (with tags and points), group chats and orders",
        options: [ReplicaAccess.dbOption, ReplicaAccess.jsonOption])

    var path: String
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        json = arguments.flag("json")
    }

    /// `siyu show --json`: {`customers`, `group_chats`, `orders`}, each as its own command prints it.
    struct Report: Encodable {
        var customers: [CustomerJSON]
        var groupChats: [GroupChatJSON]
        var orders: [OrderJSON]
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        try ReplicaAccess.perform("reading the replica", path: path) {
            if json {
                var data = try ReplicaData(replica)
                try JSONOutput.write(Report(customers: data.customers(), groupChats: data.groupChats(), orders: data.orders()),
                                     to: context.io.output)
            } else {
                context.io.output.line(try Render.state(of: replica))
            }
        }
        return .success
    }
}
