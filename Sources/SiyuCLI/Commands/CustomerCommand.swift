import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu customer add|set|delete --db FILE CUSTOMER [--name N] [--phone P] …`: create, edit or
/// delete a customer on this replica (an ordinary op: it replicates like any edit).
struct CustomerCommand: Command {
    static let fieldOptions: [(option: String, field: String)] = [
        ("name", "name"), ("phone", "phone"), ("gender", "gender"), ("unionid", "unionid"),
        ("owner-store", "owner_store"), ("owner-staff", "owner_staff"),
    ]

    static let spec = CommandSpec(
        name: "customer",
        summary: "create, edit or delete a customer (add, set, delete)",
        options: [
            ReplicaAccess.dbOption,
            .value("name", "NAME", "add/set: the customer's name (add: default the id)"),
            .value("phone", "PHONE", "add/set: the phone number"),
            .value("gender", "G", "add/set: 0 unknown, 1 male, 2 female (WeCom's codes)"),
            .value("unionid", "ID", "add/set: the WeChat unionid"),
            .value("owner-store", "STORE", "add/set: the store that owns the customer"),
            .value("owner-staff", "USERID", "add/set: the staff member who owns the customer"),
            .repeatable("clear", "FIELD", "set: empty a field (phone, gender, unionid, owner-store, owner-staff)"),
            EditRun.byOption,
            ReplicaAccess.jsonOption,
        ],
        arguments: [ArgumentSpec("ACTION", "add, set or delete"), ArgumentSpec("CUSTOMER", "the customer's id (its external_userid)")],
        discussion: """
        add creates the customer (refused if the id exists); set changes the fields given (--clear phone empties one);
        delete deletes the customer (an edit made elsewhere concurrently shows as a conflict).
        Every edit is one write transaction: checked and written together, or refused with nothing written.
        """)

    enum Action: String { case add, set, delete }

    var run: EditRun
    var action: Action
    var customer: String
    var fields: [String: Value]

    init(parsing arguments: ParsedArguments) throws {
        run = try EditRun(arguments)
        action = Action(rawValue: try EditRun.action(arguments, of: "customer", ["add", "set", "delete"]))!
        customer = try EditRun.operands(arguments, action.rawValue, of: "customer", ["CUSTOMER"])[0]
        fields = try EditRun.fields(arguments, CustomerCommand.fieldOptions, of: .customer)
        for option in arguments.allValues("clear") {
            guard let field = CustomerCommand.fieldOptions.first(where: { $0.option == option && $0.option != "name" })?.field else {
                throw CommandLineError.usage("--clear takes one of phone, gender, unionid, owner-store, owner-staff; got '\(TerminalText.escaped(option))'",
                                             hint: "a customer always has a name: change it with --name")
            }
            guard fields[field] == nil else {
                throw CommandLineError.usage("--\(option) and --clear \(option) contradict each other", hint: "give one of them")
            }
            guard action == .set else {
                throw CommandLineError.usage("--clear is for customer set", hint: "siyu customer set --db FILE CUSTOMER --clear \(option)")
            }
            fields[field] = .null
        }
        switch action {
        case .add: break
        case .set:
            if fields.isEmpty {
                throw CommandLineError.usage("customer set needs at least one field to change",
                                             hint: "such as: siyu customer set --db FILE \(TerminalText.escaped(customer)) --phone 13800000001")
            }
        case .delete:
            try EditRun.refuse(arguments, CustomerCommand.fieldOptions.map(\.option), for: "delete", of: "customer")
        }
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let target = Target(.customer, customer)
        let c = Render.text(customer)
        switch action {
        case .add:
            return try run.run("customer add", target: target, done: "created customer \(c)", in: context) {
                try $0.createCustomer(customer, fields, by: run.staff)
            }
        case .set:
            let names = fields.keys.sorted().joined(separator: ", ")
            return try run.run("customer set", target: target, done: "set \(names) of customer \(c)", in: context) {
                try $0.editCustomer(customer, fields, by: run.staff)
            }
        case .delete:
            return try run.run("customer delete", target: target, done: "deleted customer \(c)", in: context) {
                try $0.deleteCustomer(customer, by: run.staff)
            }
        }
    }
}
