import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu order create|add-line|set-status --db FILE ORDER …`: orders and their lines.
struct OrderCommand: Command {
    static let orderOptions: [(option: String, field: String)] = [
        ("customer", "customer_id"), ("store", "store_id"), ("staff", "staff_id"), ("address", "address"), ("note", "note"),
    ]
    static let lineOptions: [(option: String, field: String)] = [("sku", "sku"), ("qty", "qty"), ("price", "unit_price_cents")]

    static let spec = CommandSpec(
        name: "order",
        summary: "create an order, add or change a line, move its status (create, add-line, set-status)",
        options: [
            ReplicaAccess.dbOption,
            .value("customer", "CUSTOMER", "create: the customer ordering (required)"),
            .value("store", "STORE", "create: the store selling"),
            .value("staff", "USERID", "create: the staff member selling"),
            .value("address", "TEXT", "create: the delivery address"),
            .value("note", "TEXT", "create: a note"),
            .value("sku", "SKU", "add-line: the item (required for a new line)"),
            .value("qty", "N", "add-line: how many (required for a new line)"),
            .value("price", "CENTS", "add-line: the unit price in cents (required for a new line)"),
            EditRun.byOption,
            ReplicaAccess.jsonOption,
        ],
        arguments: [ArgumentSpec("ACTION", "create, add-line or set-status"), ArgumentSpec("ORDER", "the order's id"),
                    ArgumentSpec("ARG", optional: true, "add-line: the LINE number or id; set-status: the STATUS")],
        discussion: """
        siyu order create --db FILE ORDER --customer C   (also --store, --staff, --address, --note; status: draft)
        siyu order add-line --db FILE ORDER LINE --sku SKU --qty N --price CENTS    (an existing line: the fields given)
        siyu order set-status --db FILE ORDER STATUS
        Statuses: draft → placed → paid → fulfilled → completed; cancelled before payment, refunded after.
        Lines are frozen once the order is paid.
        """)

    enum Action: String { case create, addLine = "add-line", setStatus = "set-status" }

    var run: EditRun
    var action: Action
    var order: String
    var argument: String
    var fields: [String: Value]
    var status: OrderStatus?

    init(parsing arguments: ParsedArguments) throws {
        run = try EditRun(arguments)
        action = Action(rawValue: try EditRun.action(arguments, of: "order", ["create", "add-line", "set-status"]))!
        switch action {
        case .create:
            order = try EditRun.operands(arguments, "create", of: "order", ["ORDER"])[0]
            argument = ""
            try EditRun.refuse(arguments, OrderCommand.lineOptions.map(\.option), for: "create", of: "order")
            fields = try EditRun.fields(arguments, OrderCommand.orderOptions, of: .order)
            if fields["customer_id"] == nil || fields["customer_id"] == .null {
                throw CommandLineError.usage("order create needs --customer", hint: "siyu order create --db FILE ORDER --customer CUSTOMER")
            }
        case .addLine:
            let operands = try EditRun.operands(arguments, "add-line", of: "order", ["ORDER", "LINE"])
            (order, argument) = (operands[0], operands[1])
            try EditRun.refuse(arguments, OrderCommand.orderOptions.map(\.option), for: "add-line", of: "order")
            fields = try EditRun.fields(arguments, OrderCommand.lineOptions, of: .orderLine)
            if fields.isEmpty {
                throw CommandLineError.usage("order add-line needs --sku, --qty and --price (or, for an existing line, the ones to change)",
                                             hint: "siyu order add-line --db FILE ORDER 1 --sku SKU --qty 2 --price 1250")
            }
        case .setStatus:
            let operands = try EditRun.operands(arguments, "set-status", of: "order", ["ORDER", "STATUS"])
            (order, argument) = (operands[0], operands[1])
            try EditRun.refuse(arguments, (OrderCommand.orderOptions + OrderCommand.lineOptions).map(\.option), for: "set-status", of: "order")
            fields = [:]
            guard let s = OrderStatus(name: argument) else {
                throw CommandLineError.usage("STATUS must be one of \(OrderStatus.allCases.map(\.name).joined(separator: ", ")); got '\(TerminalText.escaped(argument))'",
                                             hint: "see an order's status with: siyu orders --db FILE ORDER")
            }
            status = s
        }
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let r = Render.text
        switch action {
        case .create:
            return try run.run("order create", target: Target(.order, order), done: "created order \(r(order)) (draft)", in: context) {
                try $0.createOrder(order, fields, by: run.staff)
            }
        case .addLine:
            return try run.run("order add-line", target: Target(.orderLine, order, argument),
                               done: "set line \(r(argument)) of order \(r(order))", in: context) { replica in
                // A new line needs all three fields; the library checks the order's state in the edit's transaction.
                try replica.setOrderLine(argument, of: order, fields, by: run.staff)
            }
        case .setStatus:
            return try run.run("order set-status", target: Target(.order, order), done: "moved order \(r(order)) to \(status!)", in: context) {
                try $0.moveOrder(order, to: status!, by: run.staff)
            }
        }
    }
}
