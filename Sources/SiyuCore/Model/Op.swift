/// What an op does. Every op names what its author had seen of the thing it changes, which is
/// what lets every replica tell "later" from "concurrent" the same way.
public enum OpBody: Hashable, Sendable {
    /// A last-writer-wins write of one field. `overwrites` names the writes the author saw as
    /// current (all sides, when the author resolves a conflict).
    case write(Target, field: String, value: Value, overwrites: [Stamp])
    /// Add an element to an add-wins set (customer tag, group member, order line). `removes`
    /// names adds this edit removes at the same time (the other tags of an exclusive group).
    case add(Target, removes: [Stamp])
    /// Remove an element: removes exactly the adds the author observed.
    case remove(Target, removes: [Stamp])
    /// Move an order's status. For a payment (a move from before `paid` to `paid` or later), `seen`
    /// names every line edit of the order its author held — an explicit set; the payment freezes
    /// every line edit it does not name. Other moves name none (they freeze nothing).
    case status(orderID: String, from: OrderStatus, to: OrderStatus, seen: [Stamp])
    /// Award (positive) or redeem (negative) points.
    case points(customerID: String, delta: Int64)
    /// Delete a customer (a tombstone). `observed` names the field writes and tag adds the author saw.
    case deleteCustomer(customerID: String, observed: [Stamp])
    /// Acknowledge a conflict of an instance: it stays in the log, closed.
    case acknowledge(InstanceRef, conflictID: String)
    /// HQ deleted a tag or tag group having seen, per origin, the ops up to these stamps. A customer's
    /// add of the tag that the deletion did not see was concurrent with it and is logged.
    case tagDeletion(InstanceRef, seen: [Stamp])

    public var instance: InstanceRef {
        switch self {
        case let .write(t, _, _, _), let .add(t, _), let .remove(t, _): return t.instance
        case let .status(id, _, _, _): return InstanceRef(.order, id)
        case let .points(id, _), let .deleteCustomer(id, _): return InstanceRef(.customer, id)
        case let .acknowledge(ref, _), let .tagDeletion(ref, _): return ref
        }
    }

    /// The entity-level target of the op, for history queries.
    public var target: Target {
        switch self {
        case let .write(t, _, _, _), let .add(t, _), let .remove(t, _): return t
        case let .status(id, _, _, _): return Target(.order, id)
        case let .points(id, _): return Target(.points, id)
        case let .deleteCustomer(id, _): return Target(.customer, id)
        case let .acknowledge(ref, _), let .tagDeletion(ref, _):
            return Target(ref.kind.primaryEntity, ref.id)
        }
    }

    public var kindName: String {
        switch self {
        case .write: return "write"
        case .add: return "add"
        case .remove: return "remove"
        case .status: return "status"
        case .points: return "points"
        case .deleteCustomer: return "delete"
        case .acknowledge: return "acknowledge"
        case .tagDeletion: return "tag_deletion"
        }
    }
}

extension InstanceKind {
    /// The entity whose table holds the instance's main row.
    public var primaryEntity: Entity {
        switch self {
        case .store: return .store
        case .staff: return .staff
        case .tagGroup: return .tagGroup
        case .tag: return .tag
        case .customer: return .customer
        case .groupChat: return .groupChat
        case .order: return .order
        }
    }
}

/// One change, as made by one node. `(stamp.node, seq)` numbers a node's ops 1, 2, 3, …;
/// `stamp` places the op in the global total order. Ops are immutable once made.
public struct Op: Hashable, Sendable {
    public var stamp: Stamp
    public var seq: UInt64
    public var role: Role
    /// The staff member (WeCom userid) who made the edit; empty for system edits.
    public var author: String
    public var body: OpBody

    public init(stamp: Stamp, seq: UInt64, role: Role, author: String, body: OpBody) {
        self.stamp = stamp
        self.seq = seq
        self.role = role
        self.author = author
        self.body = body
    }

    public var origin: NodeID { stamp.node }
    public var hlc: HLC { stamp.hlc }
    public var instance: InstanceRef { body.instance }

    /// Checks the op against the data model's rules (ids, known fields, value types and limits,
    /// role permissions) and the limits on input: the sequence number in `1...Op.maxSeq`, ids and
    /// the author by `IdentifierRule`, a points delta within ±`Op.maxPointsDelta`, stamp lists
    /// within `Op.maxNamedStamps` / `Op.maxObservedStamps` and without repeats. An op that passes
    /// cannot make the merge or the op log trap. A replica applies nothing of a change set with an
    /// invalid op.
    public func validate() throws {
        try IdentifierRule.validate(origin, as: "origin node id")
        guard seq >= 1 && seq <= Op.maxSeq else {
            throw CoreError.invalidEdit(what: "op \(stamp) has sequence number \(seq), outside 1...\(Op.maxSeq)",
                                        hint: "a node numbers its ops 1, 2, 3, … and never past 2^63 - 1; the sending node is faulty")
        }
        try IdentifierRule.validateAuthor(author)
        let t = body.target
        if case let .acknowledge(ref, conflictID) = body {
            try IdentifierRule.validate(ref.id, as: "\(ref.kind.name) id")
            try IdentifierRule.validate(conflictID, as: "conflict id")
        } else {
            try IdentifierRule.validate(t.id, as: "\(t.entity.name) id")
            if t.entity.hasSub { try IdentifierRule.validate(t.sub, as: "\(t.entity.name) sub id") }
            else if !t.sub.isEmpty {
                throw CoreError.invalidEdit(what: "\(t.entity.name) takes no sub id", hint: "leave the sub id empty")
            }
        }
        try validateStampLists()
        if let breach = permissionBreach { throw breach }
        switch body {
        case let .write(target, field, value, _):
            guard let spec = target.entity.field(named: field) else {
                let names = target.entity.fields.map(\.name).joined(separator: ", ")
                throw CoreError.invalidEdit(what: "\(target.entity.name) has no field '\(field)'",
                                            hint: names.isEmpty ? "this entity has no editable fields" : "fields are: \(names)")
            }
            try spec.validate(value, on: target.entity)
        case let .add(target, _), let .remove(target, _):
            guard [.customerTag, .groupMember, .orderLine].contains(target.entity) else {
                throw CoreError.invalidEdit(what: "\(target.entity.name) is not a set", hint: "add/remove apply to customer tags, group members and order lines")
            }
        case let .status(_, from, to, _):
            if !from.canMove(to: to) {
                throw CoreError.invalidEdit(what: "order status cannot move from \(from) to \(to)",
                                            hint: from.legalMoves.isEmpty ? "\(from.name) is final: the order cannot move from it"
                                                : "from \(from.name) the order can move to: \(from.legalMoves.map(\.name).joined(separator: ", "))")
            }
        case let .points(_, delta):
            if delta == 0 { throw CoreError.invalidEdit(what: "a points change of 0", hint: "award or redeem a positive amount") }
            if delta.magnitude > Op.maxPointsDelta.magnitude {
                throw CoreError.invalidEdit(what: "a points change of \(delta), beyond ±\(Op.maxPointsDelta) points per op",
                                            hint: "award or redeem at most \(Op.maxPointsDelta) points in one op")
            }
        case let .tagDeletion(ref, _):
            guard ref.kind == .tag || ref.kind == .tagGroup else {
                throw CoreError.invalidEdit(what: "a tag deletion names \(ref)", hint: "tag deletions name a tag or a tag group")
            }
        case .deleteCustomer, .acknowledge:
            break
        }
    }
}

extension OpBody {
    var isAcknowledge: Bool { if case .acknowledge = self { return true }; return false }
}

// MARK: - Limits on input

extension Op {
    /// The greatest sequence number: 2^63 - 1. The op log stores sequence numbers as SQLite
    /// integers (signed 64-bit), and a node that numbers its ops one by one never gets near it.
    public static let maxSeq = UInt64(Int64.max)

    /// The largest points change one op may carry, either way: 10^12 points. A retail award or
    /// redemption is at most millions; with this bound the merged sums reach `Int64.max` only after
    /// 9.2 million maximal ops on one customer, and the merge saturates there instead of wrapping.
    public static let maxPointsDelta: Int64 = 1_000_000_000_000

    /// The most stamps a write's `overwrites` or an add's or remove's `removes` may name: 1,024.
    /// An honest edit names the heads of one field, or the live adds of one element or of one
    /// exclusive tag group, that its author saw — a handful; more than a few means concurrent
    /// writers, and the number of open heads per field is bounded (so the next honest edit always
    /// fits). A list past the cap is a faulty or hostile sender, refused before it costs a merge.
    public static let maxNamedStamps = 1_024

    /// The most stamps a customer deletion's `observed`, a status move's `seen` or a tag deletion's
    /// `seen` may name: 16,384. These name everything of an instance the author saw (every field
    /// head and live tag add of a customer — WeCom allows at most 10,000 corp tags — or every line
    /// edit of an order) or one stamp per origin (a tag deletion's frontier: the nodes of a brand,
    /// thousands of stores), so they are wider than `maxNamedStamps`, and still bounded.
    public static let maxObservedStamps = 16_384

    /// Every stamp list within its cap, naming valid node ids, with no stamp twice.
    func validateStampLists() throws {
        switch body {
        case let .write(_, _, _, list): try Op.validate(list, "the overwritten writes", cap: Op.maxNamedStamps)
        case let .add(_, list), let .remove(_, list): try Op.validate(list, "the removed adds", cap: Op.maxNamedStamps)
        case let .status(_, _, _, list): try Op.validate(list, "the status move's seen ops", cap: Op.maxObservedStamps)
        case let .deleteCustomer(_, list): try Op.validate(list, "the deletion's observed ops", cap: Op.maxObservedStamps)
        case let .tagDeletion(_, list): try Op.validate(list, "the tag deletion's frontier", cap: Op.maxObservedStamps)
        case .points, .acknowledge: break
        }
    }

    static func validate(_ list: [Stamp], _ what: String, cap: Int) throws {
        guard !list.isEmpty else { return }
        if list.count > cap {
            throw CoreError.invalidEdit(what: "\(what) name \(list.count) stamps, over the limit of \(cap)",
                                        hint: "an honest edit names the heads or adds it saw, far fewer; the sending node is faulty")
        }
        for s in list { try IdentifierRule.validate(s.node, as: "stamp node id") }
        func repeated(_ s: Stamp) -> CoreError {
            .invalidEdit(what: "\(what) name the stamp \(s.hlc)@\(IdentifierRule.printable(s.node)) twice",
                         hint: "each op is named once; the sending node is faulty")
        }
        if list.count <= 16 {
            for i in list.indices { for j in list.indices where j > i && list[i] == list[j] { throw repeated(list[i]) } }
        } else {
            var seen = Set<Stamp>(minimumCapacity: list.count)
            for s in list where !seen.insert(s).inserted { throw repeated(s) }
        }
    }
}
