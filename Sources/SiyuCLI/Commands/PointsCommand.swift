import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu points award|redeem --db FILE CUSTOMER AMOUNT`: a customer's loyalty points.
struct PointsCommand: Command {
    static let spec = CommandSpec(
        name: "points",
        summary: "award points to a customer (any node) or redeem them (HQ)",
        options: [ReplicaAccess.dbOption, EditRun.byOption, ReplicaAccess.jsonOption],
        arguments: [ArgumentSpec("ACTION", "award or redeem"), ArgumentSpec("CUSTOMER", "the customer's id"),
                    ArgumentSpec("AMOUNT", "how many points (a positive integer)")],
        discussion: """
        Awards from every node add up. Only HQ redeems, and never more than the balance it sees, so the balance
        never goes below zero. A customer's balance: siyu customers --db FILE --id CUSTOMER.
        """)

    var run: EditRun
    var awarding: Bool
    var customer: String
    var amount: Int64

    init(parsing arguments: ParsedArguments) throws {
        run = try EditRun(arguments)
        awarding = try EditRun.action(arguments, of: "points", ["award", "redeem"]) == "award"
        let operands = try EditRun.operands(arguments, awarding ? "award" : "redeem", of: "points", ["CUSTOMER", "AMOUNT"])
        customer = operands[0]
        guard let n = Int64(operands[1]), n > 0, n <= Op.maxPointsDelta else {
            throw CommandLineError.usage("AMOUNT must be a whole number from 1 to \(Op.maxPointsDelta); got '\(TerminalText.escaped(operands[1]))'",
                                         hint: "such as: siyu points \(awarding ? "award" : "redeem") --db FILE CUSTOMER 100")
        }
        amount = n
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let target = Target(.customer, customer)
        let r = Render.text
        if awarding {
            return try run.run("points award", target: target, done: "awarded \(amount) points to customer \(r(customer))", in: context) {
                try $0.awardPoints(amount, to: customer, by: run.staff)
            }
        }
        return try run.run("points redeem", target: target, done: "redeemed \(amount) points of customer \(r(customer))", in: context) {
            try $0.redeemPoints(amount, from: customer, by: run.staff)
        }
    }
}
