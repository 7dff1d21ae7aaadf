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
    /// role permissions). A replica applies nothing of a change set with an invalid op.
    public func validate() throws {
        try IdentifierRule.validate(origin, as: "origin node id")
        if seq == 0 { throw CoreError.invalidEdit(what: "op \(stamp) has sequence number 0", hint: "sequence numbers start at 1") }
        let t = body.target
        if !body.isAcknowledge {
            try IdentifierRule.validate(t.id, as: "\(t.entity.name) id")
            if t.entity.hasSub { try IdentifierRule.validate(t.sub, as: "\(t.entity.name) sub id") }
            else if !t.sub.isEmpty {
                throw CoreError.invalidEdit(what: "\(t.entity.name) takes no sub id", hint: "leave the sub id empty")
            }
        }
        switch body {
        case let .write(target, field, value, _):
            guard let spec = target.entity.field(named: field) else {
                let names = target.entity.fields.map(\.name).joined(separator: ", ")
                throw CoreError.invalidEdit(what: "\(target.entity.name) has no field '\(field)'",
                                            hint: names.isEmpty ? "this entity has no editable fields" : "fields are: \(names)")
            }
            try spec.validate(value, on: target.entity)
            if target.entity.isTagLibrary && role != .hq {
                throw CoreError.invalidEdit(what: "node '\(origin)' (a store) wrote the tag library (\(target))",
                                            hint: "only HQ defines, edits and deletes tags")
            }
        case let .add(target, _), let .remove(target, _):
            guard [.customerTag, .groupMember, .orderLine].contains(target.entity) else {
                throw CoreError.invalidEdit(what: "\(target.entity.name) is not a set", hint: "add/remove apply to customer tags, group members and order lines")
            }
        case let .status(_, from, to, _):
            if !from.canMove(to: to) {
                throw CoreError.invalidEdit(what: "order status cannot move from \(from) to \(to)",
                                            hint: "from \(from) the order can move to: \(from.legalMoves.map(\.name).joined(separator: ", "))")
            }
        case let .points(_, delta):
            if delta == 0 { throw CoreError.invalidEdit(what: "a points change of 0", hint: "award or redeem a positive amount") }
            if delta < 0 && role != .hq {
                throw CoreError.invalidEdit(what: "node '\(origin)' (a store) redeemed points", hint: "stores award points; HQ redeems them")
            }
        case let .tagDeletion(ref, _):
            guard ref.kind == .tag || ref.kind == .tagGroup else {
                throw CoreError.invalidEdit(what: "a tag deletion names \(ref)", hint: "tag deletions name a tag or a tag group")
            }
            if role != .hq {
                throw CoreError.invalidEdit(what: "node '\(origin)' (a store) deleted \(ref)", hint: "only HQ deletes tags")
            }
        case .deleteCustomer, .acknowledge:
            break
        }
    }
}

extension OpBody {
    var isAcknowledge: Bool { if case .acknowledge = self { return true }; return false }
}
