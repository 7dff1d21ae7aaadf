import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine

/// `siyu customers --db FILE [--id ID] [--name S] [--phone P] [--tag T] [--store S] [--json]`.
struct CustomersCommand: Command {
    static let spec = CommandSpec(
        name: "customers",
        summary: "customers with tags, points and owner store; filters combine",
        options: [
            ReplicaAccess.dbOption,
            .value("id", "ID", "one customer, in detail (tags with who applied them, follow relations)"),
            .value("name", "TEXT", "names containing TEXT (ASCII letters case-insensitive)"),
            .value("phone", "TEXT", "phone numbers containing TEXT"),
            .value("tag", "TAG", "customers showing the tag (tag id or name)"),
            .value("store", "STORE", "customers owned by the store"),
            ReplicaAccess.jsonOption,
        ])

    var path: String
    var id: String?
    var name: String?
    var phone: String?
    var tag: String?
    var store: String?
    var json: Bool

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        id = arguments.value("id")
        name = arguments.value("name")
        phone = arguments.value("phone")
        tag = arguments.value("tag")
        store = arguments.value("store")
        json = arguments.flag("json")
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        var data = try ReplicaData(replica)
        // Filters run in SQL: a lookup by id reads one row, not every customer.
        var tagIDs: [String]?
        if let tag {
            let library = try ReplicaAccess.perform("reading tags", path: path) { try data.tagLibrary() }
            let ids = library.flatMap(\.tags).filter { $0.id == tag || $0.name == tag }.map(\.id)
            if ids.isEmpty {
                throw CLIError("tag '\(tag)' not found in \(path)", hint: "list tags with: siyu tags --db FILE")
            }
            tagIDs = ids
        }
        let customers = try ReplicaAccess.perform("reading customers", path: path) { () throws -> [CustomerJSON] in
            let selected = try replica.customerRows(id: id, name: name, phone: phone, store: store, tagIDs: tagIDs)
            return try data.customers(from: selected)
        }
        if let id, customers.isEmpty {
            throw CLIError("customer '\(id)' not found in \(path)", hint: "list customers with: siyu customers --db FILE")
        }
        if json {
            try JSONOutput.write(customers, to: context.io.output)
            return .success
        }
        let out = context.io.output
        if id != nil, let c = customers.first {
            out.line(detail(c))
            return .success
        }
        if customers.isEmpty {
            out.line("(no customers\(name ?? phone ?? tag ?? store != nil ? " match" : ""))")
            return .success
        }
        out.line(Render.table(["id", "name", "phone", "store", "tags", "points", ""], customers.map { c in
            [Render.text(c.id), Render.text(c.name ?? ""), Render.text(c.phone ?? ""), Render.text(c.ownerStore ?? ""),
             c.tags.map { Render.text($0.name ?? $0.tagId) }.joined(separator: ","),
             c.points.map { "\($0.balance)" } ?? "", c.deleted ? "(deleted)" : ""]
        }))
        out.line("\(customers.count) customer\(customers.count == 1 ? "" : "s")")
        return .success
    }

    private func detail(_ c: CustomerJSON) -> String {
        let genders = ["unknown", "male", "female"]
        var lines = ["customer \(Render.text(c.id))\(c.deleted ? " (deleted)" : "")"]
        func field(_ label: String, _ value: String?) {
            lines.append("  " + label.padding(toLength: 12, withPad: " ", startingAt: 0) + (value.map(Render.text) ?? "—"))
        }
        field("name", c.name)
        field("gender", c.gender.map { $0 >= 0 && $0 < 3 ? genders[Int($0)] : "\($0)" })
        field("phone", c.phone)
        field("unionid", c.unionid)
        field("owner store", c.ownerStore)
        field("owner staff", c.ownerStaff)
        field("points", c.points.map { "\($0.balance) (awarded \($0.awarded), redeemed \($0.redeemed))" })
        lines.append("\nTags")
        lines.append(c.tags.isEmpty ? "  (none)" : Render.table(["tag", "name", "group", "applied by", "at"], c.tags.map { t in
            [Render.text(t.tagId), Render.text(t.name ?? ""), Render.text(t.groupId ?? ""),
             "\(Render.text(t.addedBy.isEmpty ? "system" : t.addedBy))@\(Render.text(t.addedNode))", Render.date(unixMillis: t.addedAtMillis)]
        }))
        if !c.followRelations.isEmpty {
            lines.append("\nFollowed by")
            lines.append(Render.table(["staff", "remark", "description", "added", "state"], c.followRelations.map { f in
                [Render.text(f.userid), Render.text(f.remark ?? ""), Render.text(f.description ?? ""),
                 f.createtime.map { Render.date(unixSeconds: $0) } ?? "", Render.text(f.state ?? "")]
            }))
        }
        return lines.joined(separator: "\n")
    }
}
