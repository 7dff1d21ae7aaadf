import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu orders --db FILE [ID] [--json]`: orders, or one order with its lines.
struct OrdersCommand: Command {
    static let spec = CommandSpec(
        name: "orders",
        summary: "orders with status and total; with ID, the order's lines",
        options: [ReplicaAccess.dbOption, ReplicaAccess.jsonOption],
        arguments: [ArgumentSpec("ID", optional: true, "an order id")])

    var path: String
    var id: String?
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        id = arguments.positional(0)
        json = arguments.flag("json")
    }

    static func money(_ cents: Int64?) -> String {
        guard let cents else { return "" }
        let sign = cents < 0 ? "-" : ""
        let magnitude = cents.magnitude
        let fraction = magnitude % 100
        return "\(sign)¥\(magnitude / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        var data = try ReplicaData(replica)
        let orders = try ReplicaAccess.perform("reading orders", path: path) { try data.orders() }
        let out = context.io.output
        if let id {
            guard let o = orders.first(where: { $0.id.utf8.elementsEqual(id.utf8) }) else {
                throw CLIError("order '\(id)' not found in \(path)", hint: "list orders with: siyu orders --db FILE")
            }
            if json { try JSONOutput.write(o, to: out); return .success }
            out.line("order \(Render.text(o.id)): \(o.status), total \(OrdersCommand.money(o.totalCents))")
            out.line("  customer \(Render.text(o.customerId ?? "—")), store \(Render.text(o.storeId ?? "—")), staff \(Render.text(o.staffId ?? "—"))")
            if let address = o.address { out.line("  address: \(Render.text(address))") }
            if let note = o.note { out.line("  note: \(Render.text(note))") }
            out.line("")
            out.line(o.lines.isEmpty ? "  (no lines)" : Render.table(["line", "sku", "qty", "unit price", "amount"], o.lines.map { l in
                [Render.text(l.lineId), Render.text(l.sku ?? ""), l.qty.map { "\($0)" } ?? "",
                 OrdersCommand.money(l.unitPriceCents), OrdersCommand.money(l.amountCents)]
            }))
            return .success
        }
        if json { try JSONOutput.write(orders, to: out); return .success }
        if orders.isEmpty { out.line("(no orders)"); return .success }
        out.line(Render.table(["id", "customer", "store", "status", "lines", "total"], orders.map { o in
            [Render.text(o.id), Render.text(o.customerId ?? ""), Render.text(o.storeId ?? ""), o.status,
             "\(o.lines.count)", OrdersCommand.money(o.totalCents)]
        }))
        return .success
    }
}
