/// Which nodes' scope an instance lies in (SPEC section 7, "Scope"): every node's, one store's
/// (and HQ's), or HQ's alone.
public enum InstanceHome: Hashable, Sendable, CustomStringConvertible {
    /// The tag library (tag groups, tags) and the store rows: in every node's scope.
    case shared
    /// In the scope of this store and of HQ: its staff (`staff.store_id`), the customers it owns
    /// (`customer.owner_store`), the group chats of its staff (`group_chat.owner`'s store) and its
    /// orders (`order.store_id`).
    case store(String)
    /// In HQ's scope only: a customer without `owner_store`, staff without a store, a group chat
    /// whose owner has no store, an order without `store_id`.
    case hq

    public var description: String {
        switch self {
        case .shared: return "shared"
        case let .store(id): return "store \(IdentifierRule.printable(id, limit: 64))"
        case .hq: return "HQ only"
        }
    }

    /// The home an instance of `kind` has when the field that decides it (`owner_store`,
    /// `store_id`, or for a group chat its owner's `store_id`) holds `value` (nil: unset).
    public static func of(_ kind: InstanceKind, decidedBy value: String?) -> InstanceHome {
        switch kind {
        case .tagGroup, .tag, .store: return .shared
        case .customer, .staff, .order, .groupChat:
            guard let value, !value.isEmpty else { return .hq }
            return .store(value)
        }
    }

    /// The field name that decides the home of `entity`'s instances, nil for shared entities and
    /// sub-entities.
    public static func decidingFieldName(of entity: Entity) -> String? {
        switch entity {
        case .customer: return "owner_store"
        case .staff: return "store_id"
        case .order: return "store_id"
        case .groupChat: return "owner"
        default: return nil
        }
    }
}

/// The node whose ops are checked: its registered role and, for a store, the store it serves
/// (nil: a store node registered without one, checked by the rules that need no store).
public struct Writer: Hashable, Sendable {
    public var role: Role
    public var store: String?

    public init(role: Role, store: String? = nil) {
        self.role = role
        self.store = store
    }
}

/// What a rights check reads of the checking replica's state (a hub's, or a node's for its own
/// edits), before the ops being checked.
public protocol WriteRightsState {
    /// The home of `instance` as the replica holds it; nil when it holds no op of it (new).
    func heldHome(of instance: InstanceRef) throws -> InstanceHome?
    /// The store of staff member `userid` (`staff.store_id`); nil when unknown or without one.
    func store(ofStaff userid: String) throws -> String?
    /// When `instance` last left store `store`'s scope (a hub's record; nil: it never did, or
    /// it is back).
    func departure(of instance: InstanceRef, from store: String) throws -> ScopeDeparture?
    /// The lowest clock of the ops held of `instance`; nil when none is held.
    func earliestHeldClock(of instance: InstanceRef) throws -> HLC?
}

/// An instance's move out of a store's scope, as a hub recorded it (SPEC section 7, "Transfers").
public struct ScopeDeparture: Hashable, Sendable {
    /// The log position of the op that moved it.
    public var position: UInt64
    /// The hub's wall time (ms) when a node of the store first pulled past `position`; nil while
    /// none has.
    public var seenAtMillis: UInt64?

    public init(position: UInt64, seenAtMillis: UInt64?) {
        self.position = position
        self.seenAtMillis = seenAtMillis
    }

    /// Whether a late op of the store with clock `hlc` is taken: while no node of the store has
    /// pulled past the move, or when the op's clock is before that moment plus the clock window
    /// (an op made before the store could have known).
    public func takes(_ hlc: HLC, windowMillis: UInt64) -> Bool {
        guard let seen = seenAtMillis else { return true }
        return hlc.millis < seen.addingReportingOverflow(windowMillis).partialValue
    }
}

/// One batch of ops (a PUSH, or one local edit) being checked against `WriteRights.rules`, with
/// what the rules need: the writer, the state before the batch, and the homes the batch's own
/// ops give the instances the state does not hold yet.
///
/// Guarantees: each instance's and staff member's lookup is made once per batch.
public final class WriteCheck {
    public let writer: Writer
    let state: WriteRightsState?
    let batch: [Op]
    /// The clock window of the checking replica: how late an edit of an instance that left the
    /// store may be (`ScopeDeparture.takes`).
    public let windowMillis: UInt64
    /// Set by a hub during its restore grace (SPEC section 7, "Log epochs"): the clock (ms) before
    /// which an op may have been acknowledged by the history the hub lost. An instance whose first
    /// op in the batch is stamped before it, and before every op the state holds of it, counts as
    /// new: those held ops came later causally (made after their authors saw it) and were pushed
    /// again first.
    public var restoredBeforeMillis: UInt64?
    private var held: [InstanceRef: InstanceHome?] = [:]
    private var staffStores: [String: String?] = [:]

    /// `state` nil checks only the rules that need no state (`WriteRule.needsState` false).
    public init(writer: Writer, state: WriteRightsState?, batch: [Op], windowMillis: UInt64 = HybridClock.defaultMaxDriftMillis) {
        self.writer = writer
        self.state = state
        self.batch = batch
        self.windowMillis = windowMillis
    }

    public func departure(of instance: InstanceRef, from store: String) throws -> ScopeDeparture? {
        try state?.departure(of: instance, from: store)
    }

    /// The instance's home before the batch, nil if the state holds no op of it (or, in a hub's
    /// restore grace, none stamped before the batch's first op of it: `restoredBeforeMillis`).
    public func heldHome(of instance: InstanceRef) throws -> InstanceHome? {
        if let known = held[instance] { return known }
        var home = try state?.heldHome(of: instance)
        if home != nil, let cutoff = restoredBeforeMillis,
           let first = batch.lazy.filter({ $0.instance == instance }).map(\.hlc).min(), first.millis < cutoff,
           let earliest = try state?.earliestHeldClock(of: instance), first < earliest {
            home = nil
        }
        held[instance] = .some(home)
        return home
    }

    public func isNew(_ instance: InstanceRef) throws -> Bool { try heldHome(of: instance) == nil }

    public func store(ofStaff userid: String) throws -> String? {
        if let known = staffStores[userid] { return known }
        let store = try state?.store(ofStaff: userid)
        staffStores[userid] = .some(store)
        return store
    }

    /// The home of `instance`: as held, or for a new one, as the batch's last write of its
    /// deciding field makes it (`.hq` when the batch writes none).
    public func home(of instance: InstanceRef) throws -> InstanceHome {
        if let home = try heldHome(of: instance) { return home }
        guard let field = InstanceHome.decidingFieldName(of: instance.kind.primaryEntity) else {
            return InstanceHome.of(instance.kind, decidedBy: nil)
        }
        var value: String?
        for op in batch {
            if case let .write(target, f, v, _) = op.body, f == field, target.entity == instance.kind.primaryEntity,
               target.id == instance.id {
                if case let .text(s) = v { value = s } else { value = nil }
            }
        }
        if instance.kind == .groupChat, let owner = value { value = try store(ofStaff: owner) }
        return InstanceHome.of(instance.kind, decidedBy: value)
    }
}

/// One rule of write rights: which ops it covers, who may make them, and how it is checked.
///
/// Guarantees: `breach` returns a message only for an op of a store node (HQ may write anything
/// the data rules allow); a rule with `needsState` reads `WriteCheck`'s state and is skipped
/// without one; a rule that `needsStore` is skipped for a store registered without a store.
public struct WriteRule: Sendable {
    /// The rule's name, used in tests and the documentation.
    public let name: String
    /// What the rule covers: entity, field, op kind (SPEC section 7, "Write rights").
    public let covers: String
    /// Who may make such ops.
    public let who: String
    /// Where it is checked: every receiver of an op, or only where an op is admitted (the hub at
    /// PUSH, a node at its own edit).
    public let everyReceiver: Bool
    public let needsState: Bool
    public let needsStore: Bool
    /// What to do about a breach.
    public let hint: String
    let test: @Sendable (Op, WriteCheck) throws -> String?

    /// What was wrong with `op` under this rule, or nil.
    public func breach(_ op: Op, _ check: WriteCheck) throws -> String? {
        guard check.writer.role == .store else { return nil }
        if needsState && check.state == nil { return nil }
        if needsStore && check.writer.store == nil { return nil }
        return try test(op, check)
    }
}

/// The write rights of store nodes, one table: the hub's PUSH check, a node's check of its own
/// edits and of relayed ops, and the table in SPEC section 7 ("Write rights"; a test compares
/// them) all read it. HQ may write anything the data rules allow.
public enum WriteRights {
    /// The most points a store may award in one op: 1,000,000 (a retail award is one point per
    /// yuan of a purchase; larger grants are HQ's).
    public static let storeMaxPointsAward: Int64 = 1_000_000

    /// The rules, in the order they are checked; the first breached one refuses the op.
    public static let rules: [WriteRule] = [
        WriteRule(name: "tag_library", covers: "write of `tag_group` or `tag`", who: "HQ only",
                  everyReceiver: true, needsState: false, needsStore: false, hint: "only HQ defines, edits and deletes tags") { op, _ in
            if case let .write(target, _, _, _) = op.body, target.entity.isTagLibrary { return "wrote the tag library (\(target))" }
            return nil
        },
        WriteRule(name: "tag_deletion", covers: "tag deletion (kind 11)", who: "HQ only",
                  everyReceiver: true, needsState: false, needsStore: false, hint: "only HQ deletes tags") { op, _ in
            if case let .tagDeletion(ref, _) = op.body { return "deleted \(ref)" }
            return nil
        },
        WriteRule(name: "redemption", covers: "points (kind 8) with a negative delta", who: "HQ only",
                  everyReceiver: true, needsState: false, needsStore: false, hint: "stores award points; HQ redeems them") { op, _ in
            if case let .points(_, delta) = op.body, delta < 0 { return "redeemed points" }
            return nil
        },
        WriteRule(name: "points_award_limit", covers: "points (kind 8) with a positive delta",
                  who: "HQ; a store at most 1,000,000 points per op",
                  everyReceiver: false, needsState: false, needsStore: false,
                  hint: "award at most \(storeMaxPointsAward) points in one op; larger grants are HQ's") { op, _ in
            if case let .points(_, delta) = op.body, delta > storeMaxPointsAward {
                return "awarded \(delta) points in one op, over a store's limit of \(storeMaxPointsAward)"
            }
            return nil
        },
        WriteRule(name: "store_rows", covers: "write of `store`", who: "HQ only",
                  everyReceiver: false, needsState: false, needsStore: false, hint: "HQ defines stores") { op, _ in
            if case let .write(target, _, _, _) = op.body, target.entity == .store { return "wrote \(target)" }
            return nil
        },
        WriteRule(name: "staff_store", covers: "write of `staff.store_id`", who: "HQ only",
                  everyReceiver: false, needsState: false, needsStore: false, hint: "HQ assigns staff to stores") { op, _ in
            if case let .write(target, "store_id", _, _) = op.body, target.entity == .staff { return "wrote the store of \(target)" }
            return nil
        },
        WriteRule(name: "customer_deletion", covers: "customer deletion (kind 9)", who: "HQ only",
                  everyReceiver: false, needsState: false, needsStore: false, hint: "ask HQ to delete the customer") { op, _ in
            if case let .deleteCustomer(id, _) = op.body { return "deleted customer \(IdentifierRule.printable(id, limit: 64))" }
            return nil
        },
        WriteRule(name: "customer_owner", covers: "write of `customer.owner_store` or `customer.owner_staff`",
                  who: "HQ; a store only while creating the customer, naming itself or its staff",
                  everyReceiver: false, needsState: true, needsStore: true,
                  hint: "moving a customer between stores or clerks is a transfer, made by HQ") { op, check in
            guard case let .write(target, field, value, _) = op.body, target.entity == .customer,
                  field == "owner_store" || field == "owner_staff" else { return nil }
            let own = check.writer.store
            guard try check.isNew(target.instance) else { return "wrote \(field) of \(target), which exists" }
            let named: String?
            if case let .text(s) = value { named = s } else { named = nil }
            if field == "owner_store", named != own {
                return "created \(target) with owner_store \(named.map { IdentifierRule.printable($0, limit: 64) } ?? "unset"), not its own store"
            }
            if field == "owner_staff", let staff = named, try check.store(ofStaff: staff) != own {
                return "created \(target) with owner_staff \(IdentifierRule.printable(staff, limit: 64)), who is not staff of its store"
            }
            return nil
        },
        WriteRule(name: "order_store", covers: "write of `order.store_id`",
                  who: "HQ; a store only while creating the order, naming itself",
                  everyReceiver: false, needsState: true, needsStore: true, hint: "an order's store is fixed once it exists; HQ may change it") { op, check in
            guard case let .write(target, "store_id", value, _) = op.body, target.entity == .order else { return nil }
            guard try check.isNew(target.instance) else { return "wrote the store of \(target), which exists" }
            if value != .text(check.writer.store ?? "") { return "created \(target) for another store" }
            return nil
        },
        WriteRule(name: "group_owner", covers: "write of `group_chat.owner`", who: "HQ; a store only naming its own staff",
                  everyReceiver: false, needsState: true, needsStore: true,
                  hint: "moving a group chat to another store's staff is a transfer, made by HQ") { op, check in
            guard case let .write(target, "owner", value, _) = op.body, target.entity == .groupChat else { return nil }
            guard case let .text(owner) = value, try check.store(ofStaff: owner) == check.writer.store else {
                return "made the owner of \(target) someone who is not staff of its store"
            }
            return nil
        },
        WriteRule(name: "author", covers: "every op: its `author`", who: "HQ: anyone; a store: empty (a system edit) or its own staff",
                  everyReceiver: false, needsState: true, needsStore: true,
                  hint: "an op names the clerk of this store who made it (staff.store_id); HQ assigns staff to stores") { op, check in
            guard !op.author.isEmpty, try check.store(ofStaff: op.author) != check.writer.store else { return nil }
            return "names author \(IdentifierRule.printable(op.author, limit: 64)), who is not staff of its store"
        },
        WriteRule(name: "scope", covers: "every op: its instance",
                  who: "HQ: any; a store: shared instances and its own store's (new ones by the home its PUSH gives them), and late edits of one that left it (section 7, \"Transfers\")",
                  everyReceiver: false, needsState: true, needsStore: true,
                  hint: "a store writes only its own customers, group chats, orders and staff; ask HQ to transfer the record") { op, check in
            let home = try check.home(of: op.instance)
            switch home {
            case .shared: return nil
            case let .store(s) where s == check.writer.store: return nil
            default:
                if let own = check.writer.store, let left = try check.departure(of: op.instance, from: own) {
                    if left.takes(op.hlc, windowMillis: check.windowMillis) { return nil }
                    return "wrote \(op.instance), which left its scope at log position \(left.position), after it learned of that"
                }
                return "wrote \(op.instance), which is outside its scope (\(home))"
            }
        },
    ]

    /// The first rule `op` breaks, with the message saying what was wrong, or nil.
    public static func breach(_ op: Op, _ check: WriteCheck, everyReceiverOnly: Bool = false) throws -> (rule: WriteRule, message: String)? {
        for rule in rules where !everyReceiverOnly || rule.everyReceiver {
            if let message = try rule.breach(op, check) { return (rule, message) }
        }
        return nil
    }

    /// The rule named `name` (for tests and tools).
    public static func rule(named name: String) -> WriteRule? { rules.first { $0.name == name } }

    /// The rules as the Markdown table of SPEC section 7, "Write rights".
    public static func markdownTable() -> String {
        var lines = ["| rule | covers | who may | checked by |", "|---|---|---|---|"]
        for rule in rules {
            let by = rule.everyReceiver ? "every receiver" : "the hub at PUSH; a node at its own edit"
            lines.append("| `\(rule.name)` | \(rule.covers) | \(rule.who) | \(by) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Op {
    /// The stateless rights rules every receiver checks (`WriteRights`, those of
    /// `everyReceiver`) that this op breaks, or nil: a store node may not write the tag library,
    /// redeem points or delete tags. Checked before the other data rules (`validate` throws it
    /// first), so an op that breaks both is refused for its rights (ERROR 8), with this message.
    public var permissionBreach: CoreError? {
        guard role != .hq else { return nil }
        let check = WriteCheck(writer: Writer(role: role), state: nil, batch: [])
        guard let (rule, message) = try? WriteRights.breach(self, check, everyReceiverOnly: true) else { return nil }
        return .invalidEdit(what: "node \(IdentifierRule.printable(origin, limit: 64)) (a store) \(message) (rule \(rule.name))", hint: rule.hint)
    }
}
