import Foundation
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuStore
import SiyuWire

/// The simulator's own statement of what the hub does with each op of a store's PUSH (SPEC
/// section 7, "Write rights", the rules that read state, and "Transfers", *Late edits*), made from
/// the SPEC's words and what the simulator saw — the hub's tables before the PUSH, the log's
/// owner_store writes, the PULLs the hub served and their times — never from the hub's own
/// records (`hub_scope_exits`) or `WriteRights`:
///
/// - `author`, `customer_owner`, `order_store` and `group_owner` by the hub's staff, customers and
///   orders before the PUSH (a hub whose file went back may lack what the store saw: refused);
/// - an op on an instance whose home, by the hub's state before the PUSH, is the store (or, for an
///   instance the hub holds no op of, the home the PUSH's own deciding write gives it) is taken;
/// - otherwise let P be the log position of the op that moved the customer out of the store's
///   scope (none: it never was in it, refused) and T the hub's wall time at the store's first PULL
///   whose cursor is P or later: the op is taken when there is no such PULL yet or its clock is
///   before T + the clock window (30 s, SPEC section 10), else refused with 8 (rule `scope`).
///
/// The hub's record of T can be lost (a fault inside the PULL's transaction, a power loss of the
/// hub's file), and SPEC gives the move the position of its PUSH's last op on the instance. So T
/// is bounded: from below by the first PULL seen at all whose cursor passes the owner_store
/// write, from above by the first PULL the hub surely recorded (ran to its end, in its current
/// history) whose cursor passes the mover's last op on the customer. Between the two bounds
/// either answer is right.
extension Simulation {
    static let clockWindowMillis: UInt64 = 30_000
    /// The hub's restore grace here (SPEC section 7, "Log epochs"; the reference hub's is an hour):
    /// five minutes, so that an op a write right truly refuses is judged within the healing bound.
    static let restoreGraceMillis: UInt64 = 300_000

    func expectations(of effect: HubEffect, hub: Replica) -> [(seq: UInt64, verdict: LateEditVerdict)]? {
        guard case let .storePush(name, changeSet) = effect,
              let n = nodes.first(where: { $0.name == name }), let store = n.store else { return nil }
        do {
            return try expectations(n, store: store, ops: changeSet.ops, hub: hub)
        } catch {
            problems.append("reading the hub's state to judge a PUSH of \(name): \(error)")
            return nil
        }
    }

    private func expectations(_ n: SimNode, store: String, ops: [Op], hub: Replica) throws -> [(seq: UInt64, verdict: LateEditVerdict)] {
        let acked = try hub.registeredNode(n.name)?.ackedSeq ?? 0
        var out: [(UInt64, LateEditVerdict)] = []
        var moves: [String: (lo: UInt64, hi: UInt64, origin: String)?] = [:]
        var staffStores: [String: String?] = [:]
        func storeOf(staff userid: String) throws -> String? {
            if let known = staffStores[userid] { return known }
            let found = try hub.rows(of: .staff, where: "userid", equals: userid).first?["store_id"]?.textValue
            staffStores[userid] = .some(found)
            return found
        }
        /// The home the PUSH's own last write of the deciding field gives a new instance.
        func pushHome(_ instance: InstanceRef) throws -> String? {
            guard let field = InstanceHome.decidingFieldName(of: instance.kind.primaryEntity) else { return nil }
            let last = ops.last {
                if case let .write(t, f, _, _) = $0.body { return f == field && t.entity == instance.kind.primaryEntity && t.id == instance.id }
                return false
            }
            guard case let .write(_, _, .text(value), _)? = last?.body else { return nil }
            return instance.kind == .groupChat ? try storeOf(staff: value) : value
        }
        /// The home the hub's tables give a held instance.
        func heldHome(_ instance: InstanceRef) throws -> String? {
            let id = instance.id
            switch instance.kind {
            case .customer: return try hub.rows(of: .customers, where: "customer_id", equals: id).first?["owner_store"]?.textValue
            case .order: return try hub.rows(of: .orders, where: "order_id", equals: id).first?["store_id"]?.textValue
            case .staff: return try storeOf(staff: id)
            case .groupChat:
                return try hub.rows(of: .groupChats, where: "chat_id", equals: id).first?["owner"]?.textValue.flatMap { try storeOf(staff: $0) }
            case .tagGroup, .tag, .store: return store
            }
        }
        // SPEC section 7, "Log epochs": in the hub's restore grace, an instance whose first op in
        // the PUSH is stamped before the epoch started and before every op the hub holds of it is new.
        let restoredBefore = hub.restoreGrace.flatMap {
            hub.wallTime < $0.endMillis(of: n.name, now: hub.wallTime) ? $0.epochStartedMillis + Simulation.clockWindowMillis : nil
        }
        // SPEC section 7, "Refused ops": a number refused before and not settled is refused again.
        let refusedBefore = Set(try hub.refusals(of: n.name).filter { !$0.settled }.map(\.seq))
        for op in ops where op.seq > acked {
            if refusedBefore.contains(op.seq) { out.append((op.seq, .refuse)); continue }
            let history = try hub.instanceOps(op.instance)
            if history.contains(where: { $0.origin == op.origin && $0.seq == op.seq }) { continue }   // held: not judged again
            var held = !history.isEmpty
            if held, let restoredBefore, let first = ops.filter({ $0.instance == op.instance }).map(\.hlc).min(),
               first.millis < restoredBefore, let earliest = try hub.earliestHeldClock(of: op.instance), first < earliest {
                held = false
            }
            // The rules of "Write rights" that read state, by the hub's state before the PUSH.
            var verdict = LateEditVerdict.take
            if !op.author.isEmpty, try storeOf(staff: op.author) != store { verdict = .refuse }                     // author
            if case let .write(t, field, value, _) = op.body {
                if t.entity == .customer, field == "owner_store" || field == "owner_staff", held { verdict = .refuse }  // customer_owner
                if t.entity == .customer, field == "owner_store", value != .text(store) { verdict = .refuse }
                if t.entity == .order, field == "store_id", held || value != .text(store) { verdict = .refuse }         // order_store
                if t.entity == .groupChat, field == "owner" {                                                           // group_owner
                    guard case let .text(owner) = value, try storeOf(staff: owner) == store else { verdict = .refuse; out.append((op.seq, verdict)); continue }
                }
            }
            guard verdict == .take else { out.append((op.seq, verdict)); continue }
            // Rule `scope`: a new instance by the home its PUSH gives it; a held one by its home now,
            // or, having left the store, by the late-edit rule.
            let home = held ? try heldHome(op.instance) : try pushHome(op.instance)
            if home == store { out.append((op.seq, .take)); continue }
            guard held, op.instance.kind == .customer else { out.append((op.seq, .refuse)); continue }
            let id = op.instance.id
            if moves[id] == nil { moves[id] = .some(try lastMove(of: id, outOf: store, hub: hub)) }
            guard let move = moves[id] ?? nil else { out.append((op.seq, .refuse)); continue }
            let first = n.pulls.filter { $0.after >= move.lo }.map(\.wall).min()
            let sure = n.pulls.filter { $0.sure && $0.epoch == hubEpoch && $0.after >= move.hi }.map(\.wall).min()
            let clock = op.stamp.hlc.millis
            // The move ends at its PUSH's last op on the customer; compaction may have dropped that
            // op from the log this judge reads (not from the hub's own record of the move), so
            // where the mover's ops were dropped its end is known only from below.
            let endKnown = !(try hub.droppedNumbers().contains { $0.hasPrefix("\(move.origin)#") })
            if first == nil || clock < first! + Simulation.clockWindowMillis { verdict = .take }
            else if let sure, clock >= sure + Simulation.clockWindowMillis, endKnown { verdict = .refuse }
            else { verdict = .either }
            stats.lateEditsJudged += 1
            note("\(n.name)'s op #\(op.seq) on \(id) (left it at \(move.lo)…\(move.hi), first pull past it at \(first.map(String.init) ?? "none"), clock \(clock)): \(verdict.rawValue)")
            out.append((op.seq, verdict))
        }
        return out
    }

    /// The log positions of the last move of customer `id` out of `store`: the owner_store write
    /// after which the merged owner (the write with the highest stamp) stopped being the store,
    /// and the last op on the customer of that write's origin (the end of its PUSH, or later).
    private func lastMove(of id: String, outOf store: String, hub: Replica) throws -> (lo: UInt64, hi: UInt64, origin: String)? {
        var positioned: [PositionedOp] = []
        var cursor: UInt64 = 0
        for _ in 0..<10_000 {
            let read = try hub.changes(after: cursor, byteBudget: 1 << 24)
            positioned += read.ops.filter { $0.op.instance == InstanceRef(.customer, id) }
            cursor = read.nextCursor
            if !read.more { break }
        }
        var winner: (Stamp, Value)?
        var move: (lo: UInt64, origin: String)?
        for p in positioned {
            guard case let .write(_, "owner_store", value, _) = p.op.body, p.op.body.target.entity == .customer else { continue }
            let was = winner?.1 == .text(store)
            if winner == nil || p.op.stamp > winner!.0 { winner = (p.op.stamp, value) }
            if was && winner?.1 != .text(store) { move = (p.position, p.op.origin) }
            // The store's own write arriving after later ones (pushed again after the hub's file went
            // back, taken as a new instance in the restore grace): the customer was the store's for
            // that PUSH and left it there.
            else if !was && value == .text(store) && winner?.1 != .text(store) && p.op.origin == store { move = (p.position, p.op.origin) }
        }
        guard let move else { return nil }
        let hi = positioned.filter { $0.op.origin == move.origin && $0.position >= move.lo }.map(\.position).max() ?? move.lo
        return (move.lo, hi, move.origin)
    }

    /// Records the PULLs the hub served and checks the hub's answer to a store's PUSH against
    /// `expected`.
    func observe(_ effect: HubEffect, _ result: HubEffectResult, fired: Bool, wall: UInt64, expected: [(seq: UInt64, verdict: LateEditVerdict)]?) {
        switch effect {
        case let .readChanges(name, after, _, _, _):
            guard let n = nodes.first(where: { $0.name == name }), n.store != nil else { return }
            // The hub records the PULL when it reads the store's changes or starts a snapshot of reason 1.
            var reached = false
            if case .changes = result { reached = true }
            if case .startSnapshot(_, _, .scopeChange) = result { reached = true }
            n.pulls.append(PullSeen(after: after, wall: wall, sure: reached && !fired, epoch: hubEpoch))
        case let .storePush(name, _):
            guard !fired, let expected, let n = nodes.first(where: { $0.name == name }) else { return }
            switch result {
            case let .pushStored(acked):
                n.hubAcked = max(n.hubAcked, acked)
                for (seq, verdict) in expected where verdict == .refuse {
                    problems.append("the hub took op #\(seq) of \(name), a late edit SPEC section 7 (\"Transfers\") refuses")
                }
            case let .pushRefused(seq, code, message):
                for (s, verdict) in expected {
                    if s == seq { break }
                    if verdict == .refuse { problems.append("the hub refused op #\(seq) of \(name), but op #\(s) before it in the PUSH is refused by SPEC") }
                }
                if code == .clockSkew { return }
                let verdict = expected.first { $0.seq == seq }?.verdict
                if seq <= n.hubAcked && !n.justified.contains(seq) {
                    // SPEC section 7, "Log epochs": an acknowledged op is lost only if both the hub's
                    // file and the node's lost it; here only the hub's went back. (An acked_seq also
                    // passes numbers refused for good and settled: such an op, pushed again after
                    // the hub's file went back, is judged again like any other.)
                    problems.append("the hub refused op #\(seq) of \(name), which it had acknowledged before its file went back: \(message)")
                } else if code == .permissionDenied, let verdict, verdict != .take {
                    n.justified.insert(seq)
                    if message.contains("(rule scope)") { stats.lateEditsRefused += 1 }
                    note("hub refuses \(name)'s op #\(seq), as SPEC allows (\(verdict.rawValue))")
                } else {
                    problems.append("the hub refused op #\(seq) of \(name) with \(code.specName): \(message); SPEC's rules say \(verdict?.rawValue ?? "it is held")")
                }
            default:
                return
            }
        default:
            return
        }
    }
}
