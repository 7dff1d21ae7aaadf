// libFuzzer target for `Replica.apply`, the path a hub takes with a peer's change set, and for what
// a replica does afterwards: local edits, closing and reopening the file, rebuilding the tables.
//
// Build and run with `tools/fuzz/run.sh apply` (see there and tools/fuzz/README.md). Not part of
// the Swift package: run.sh compiles SiyuCore, SiyuWire, SiyuSQLite and SiyuStore from Sources/
// as four modules, then this file and ApplySeeds.swift against them, all with
// -sanitize=fuzzer,address (the system SQLite library is linked as it is, uninstrumented).
//
// One input:
//   1. is decoded with `ChangeSetCodec.decode` (what a hub does with a PUSH's change set); an
//      input that does not decode is read as a *program* (`ProgramReader` below) that builds one or
//      more change sets from the bytes, so that mutated bytes still reach the merge;
//   2. every change set is applied to the process's replica with `Replica.apply`;
//   3. then a few local edits, picked from a hash of the input, touch the instances the input named
//      (and fixed ones: customer c1, order o1, tag t1 …);
//   4. every `reopenEvery` inputs the replica is closed and reopened (the trap: a replica
//      must always reopen, whatever it was sent), then edited once more;
//   5. every `resetEvery` inputs the replica's tables are rebuilt from its op log and compared with
//      what incremental merging produced, then the file is deleted and a new replica is created.
//
// Anything thrown by apply or an edit is fine if it is a `ReplicaError`. A finding is a trap, a
// crash, a sanitizer report, a timeout (per input, libFuzzer's -timeout), or a failed `check`:
//   - every error the replica throws is a `ReplicaError`;
//   - a refused change set stores nothing (the op count is unchanged);
//   - an applied change set accounts for every op (applied + duplicates + refused alone = ops);
//   - the replica reopens, with its node id and role;
//   - `rebuild()` gives the digest that incremental merging gave.
//
// State and reproduction. The replica lives in a temporary directory created once per process
// ($SIYU_FUZZ_APPLY_DIR, or a new directory under $TMPDIR) and is recreated every `resetEvery`
// inputs, so a finding may depend on up to `resetEvery - 1` earlier inputs. Everything is a
// function of the inputs since the last reset: wall time is injected (base + 1 s per input), and
// the replica's node and role come from the first input after a reset. The inputs since the last
// reset are written to <dir>/session/NNN.bin, so a finding that needs its history is reproduced by
// running those files in order, in one fresh process:  fuzz-apply <dir>/session/*.bin
//
// `fuzz-apply --write-seeds DIR` writes the seed corpus instead of fuzzing (ApplySeeds.swift).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SiyuCore
import SiyuWire
import SiyuStore

/// Inputs between two recreations of the replica ($SIYU_FUZZ_APPLY_RESET overrides; 1 makes every
/// input start from a fresh replica).
let resetEvery = max(1, Int(ProcessInfo.processInfo.environment["SIYU_FUZZ_APPLY_RESET"] ?? "") ?? 64)
/// Inputs between two reopenings of the replica.
let reopenEvery = 8
/// Wall time of the first input after a reset: 2025-11-24 16:00 UTC, as in the tests.
let baseMillis: UInt64 = 1_764_000_000_000

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>,
                           _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> CInt {
    let args = (0..<Int(argc.pointee)).map { String(cString: argv.pointee[$0]!) }
    if args.count >= 3 && args[1] == "--write-seeds" {
        do {
            try ApplySeeds.write(to: args[2])
            exit(0)
        } catch {
            fputs("error: \(error)\n", stderr)
            exit(2)
        }
    }
    // As in FuzzDecoders.swift: Swift's crash backtracer clashes with ASan; re-run with it off.
    if getenv("SWIFT_BACKTRACE") == nil {
        setenv("SWIFT_BACKTRACE", "enable=no", 1)
        execv("/proc/self/exe", argv.pointee)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    Harness.shared.run(bytes)
    return 0
}

// MARK: - The harness

final class Harness {
    static let shared = Harness()

    let dir: String
    var replica: Replica?
    /// Inputs since the replica was created.
    var index = 0
    var resets = 0
    var now: UInt64 = baseMillis
    var node: NodeID = "hq"
    var role: Role = .hq
    /// Stamps of ops the replica holds (a sample), for programs to name.
    var known: [Stamp] = []

    var path: String { dir + "/replica.db" }
    var sessionDir: String { dir + "/session" }

    init() {
        if let d = ProcessInfo.processInfo.environment["SIYU_FUZZ_APPLY_DIR"], !d.isEmpty {
            dir = d
        } else {
            var template = Array((NSTemporaryDirectory() + "/siyu-fuzz-apply-XXXXXX").utf8CString)
            guard let made = mkdtemp(&template) else { fatalError("mkdtemp failed") }
            dir = String(cString: made)
        }
        try? FileManager.default.createDirectory(atPath: sessionDir, withIntermediateDirectories: true)
        fputs("fuzz-apply: replica and session inputs in \(dir) (recreated every \(resetEvery) inputs)\n", stderr)
    }

    func options(creating: Bool) -> ReplicaOptions {
        ReplicaOptions(node: creating ? node : nil, role: role, wallClock: { [unowned self] in self.now })
    }

    /// Deletes the replica and its session log, and creates a new one whose node and role come from
    /// `first` (the input about to run).
    func reset(first: [UInt8]) {
        replica?.close()
        replica = nil
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
        if let names = try? FileManager.default.contentsOfDirectory(atPath: sessionDir) {
            for n in names { unlink(sessionDir + "/" + n) }
        }
        (node, role) = (first.count + Int(first.first ?? 0)) & 1 == 0 ? ("hq", .hq) : ("xihu", .store)
        index = 0
        now = baseMillis
        known = []
        resets += 1
        do {
            replica = try Replica(path: path, options: options(creating: true))
        } catch {
            fail("a new replica could not be created at \(path): \(error)")
        }
    }

    func run(_ bytes: [UInt8]) {
        if replica == nil || index >= resetEvery { reset(first: bytes) }
        let logPath = sessionDir + "/" + String(index).leftPadded(to: 3) + ".bin"
        _ = FileManager.default.createFile(atPath: logPath, contents: Data(bytes))
        index += 1
        now = baseMillis + UInt64(index) * 1000
        let r = replica!

        // (1)+(2) Decode and apply.
        let sets: [ChangeSet]
        if let cs = try? ChangeSetCodec.decode(bytes) {
            sets = [cs]
        } else {
            var program = ProgramReader(bytes, receiver: node, now: now, known: known)
            sets = program.changeSets()
        }
        var touched: [InstanceRef] = []
        for cs in sets {
            apply(cs, to: r)
            for op in cs.ops.prefix(64) where !touched.contains(op.instance) { touched.append(op.instance) }
        }

        // (3) Local edits.
        var h = fnv(bytes)
        for _ in 0..<3 {
            localEdit(r, pick: h, touched: touched)
            h = h &* 0x100_0000_01B3 ^ 0x9E37_79B9
        }

        // (4) Reopen.
        if index % reopenEvery == 0 { reopen() }

        // (5) Before the reset: the tables must be what a rebuild from the op log makes.
        if index >= resetEvery { checkRebuild() }
    }

    func apply(_ cs: ChangeSet, to r: Replica) {
        let before = counted(r)
        do {
            let report = try r.apply(cs)
            check(report.applied + report.duplicates + report.refused.count == cs.ops.count,
                  "apply reported \(report.applied) applied + \(report.duplicates) duplicates + \(report.refused.count) refused of \(cs.ops.count) ops")
            // Remember a few stamps the replica now holds, for later programs to name.
            for op in cs.ops.prefix(8) {
                if known.count >= 32 { known.removeFirst() }
                known.append(op.stamp)
            }
        } catch let e as ReplicaError {
            let after = counted(r)
            check(after == before, "a refused change set changed the op count from \(before) to \(after): \(String(describing: e).prefix(300))")
        } catch {
            fail("apply threw a non-ReplicaError: \(type(of: error)): \(error)")
        }
    }

    func counted(_ r: Replica) -> Int {
        do { return try r.opCounts().total } catch { fail("counting ops failed: \(error)") }
    }

    /// One local edit, picked by `pick`, of an instance the input touched or of a fixed one.
    func localEdit(_ r: Replica, pick: UInt64, touched: [InstanceRef]) {
        func id(_ kind: InstanceKind, _ fallback: String) -> String {
            let ids = touched.filter { $0.kind == kind }.map(\.id)
            return ids.isEmpty || pick & 0x100 != 0 ? fallback : ids[Int((pick >> 9) % UInt64(ids.count))]
        }
        let customer = id(.customer, "c1"), order = id(.order, "o1"), chat = id(.groupChat, "g1")
        let tag = id(.tag, "t1"), group = id(.tagGroup, "tg1")
        let staff = "fz\(pick & 3)"
        let n = Int64(truncatingIfNeeded: pick >> 16) & 0xFFFF
        do {
            switch pick % 23 {
            case 0: try r.createCustomer(customer, ["name": .text("客户\(n)"), "gender": .int(n % 3)], by: staff)
            case 1: try r.editCustomer(customer, ["name": .text("n\(n)")], by: staff)
            case 2: try r.editCustomer(customer, ["phone": .text("1380000\(n)"), "owner_store": .text(node)], by: staff)
            case 3: try r.setFollowRelation(customer: customer, userid: staff, ["remark": .text("r\(n)")], by: staff)
            case 4: try r.deleteCustomer(customer, by: staff)
            case 5: try r.awardPoints(1 + n, to: customer, by: staff)
            case 6: try r.redeemPoints(1 + n % 7, from: customer, by: staff)
            case 7: try r.addTag(tag, to: customer, by: staff)
            case 8: try r.removeTag(tag, from: customer, by: staff)
            case 9: try r.defineTagGroup(group, name: "组\(n)", exclusive: n & 1 == 0, by: staff)
            case 10: try r.defineTag(tag, group: group, name: "标签\(n)", by: staff)
            case 11: try r.deleteTag(tag, by: staff)
            case 12: try r.deleteTagGroup(group, by: staff)
            case 13: try r.createOrder(order, ["customer_id": .text(customer)], by: staff)
            case 14: try r.setOrderLine("l\(n % 3)", of: order, ["sku": .text("sku\(n)"), "qty": .int(1 + n % 5)], by: staff)
            case 15: try r.removeOrderLine("l\(n % 3)", of: order, by: staff)
            case 16: try r.moveOrder(order, to: OrderStatus.allCases[Int(n) % OrderStatus.allCases.count], by: staff)
            case 17: try r.createGroupChat(chat, ["name": .text("群\(n)")], by: staff)
            case 18: try r.addMember("m\(n % 4)", to: chat, ["member_type": .int(1 + n % 2)], by: staff)
            case 19: try r.removeMember("m\(n % 4)", from: chat, by: staff)
            case 20, 21:
                // Close an open conflict, if there is one: acknowledge, or override with a value.
                let open = try r.conflicts(state: .open)
                guard !open.isEmpty else { try r.editCustomer(customer, ["gender": .int(n % 3)], by: staff); return }
                let c = open[Int(n) % open.count]
                if pick % 23 == 20 { try r.acknowledgeConflict(c.id, by: staff) }
                else { try r.overrideConflict(c.id, by: staff) }
            default: try r.defineStore("s\(n % 3)", name: "店\(n)", by: staff)
            }
        } catch is ReplicaError {
        } catch {
            fail("a local edit threw a non-ReplicaError: \(type(of: error)): \(error)")
        }
    }

    func reopen() {
        replica?.close()
        replica = nil
        do {
            let r = try Replica(path: path, options: options(creating: false))
            check(r.node == node && r.role == role, "the replica reopened as \(r.node) (\(r.role)), not \(node) (\(role))")
            replica = r
        } catch {
            fail("the replica does not reopen after input \(index) since the reset: \(error)")
        }
        do { try replica!.awardPoints(1, to: "c1", by: "fz") } catch is ReplicaError {} catch {
            fail("an edit after reopening threw a non-ReplicaError: \(error)")
        }
    }

    func checkRebuild() {
        guard let r = replica else { return }
        do {
            let incremental = try r.digest()
            try r.rebuild()
            let rebuilt = try r.digest()
            check(incremental == rebuilt, "rebuild() changed the digest: the tables incremental merging wrote differ from a rebuild from the op log (\(index) inputs since the reset; run \(sessionDir)/*.bin in order)")
        } catch {
            fail("digest or rebuild failed: \(error)")
        }
    }
}

// MARK: - Programs: change sets built from bytes

/// Reads an input that is not an encoded change set as instructions that build ops. Each op takes
/// a few bytes, so a mutation changes one op, not the whole set. The reader returns 0 past the end.
///
///   instruction byte i:
///     i % 16 <  10  an op (kind = i % 16, below); the next bytes pick its origin, role, sequence
///                   number, clock, author, target and the kind's fields;
///     i % 16 == 10  end the current change set (the next ops go into a new one);
///     i % 16 == 11  repeat the last op k times (k from the next byte: 1…4,096) with origins
///                   n0, n1, … and their own sequence numbers, one clock (the "many origins" shape);
///     i % 16 == 12  move the program's clock: next byte picks a step from `clockSteps`;
///     i % 16 == 13  a change set with schema version from the next byte;
///     otherwise     duplicate the last op (same stamp) into the set.
///   op kinds: 0 write, 1 add, 2 remove, 3 status, 4 points, 5 delete, 6 acknowledge,
///             7 tag deletion, 8 tag-library write, 9 write of an existing head's field.
///
/// Pools are small (4 customers, 3 tags …) so that ops of one input and of inputs before meet on
/// the same instances; they include the receiver's own node, hostile ids (NFD, bidi, control, 300
/// bytes) and edge integers (seq 0, 2^63 - 1, 2^63, 2^64 - 1; deltas Int64.min/max, ±10^12 ± 1).
/// At most 4,096 ops and 40,000 stamps per input, so that one input stays within the time limit.
struct ProgramReader {
    var bytes: [UInt8]
    var at = 0
    let receiver: NodeID
    var now: UInt64
    let known: [Stamp]
    var seqs: [NodeID: UInt64] = [:]
    var ops: [Op] = []         // the current change set
    var sets: [ChangeSet] = []
    var emitted: [Stamp] = []  // stamps of this program's ops
    var totalOps = 0, totalStamps = 0
    var schema = currentSchemaVersion
    static let maxOps = 4096, maxStamps = 40_000

    init(_ bytes: [UInt8], receiver: NodeID, now: UInt64, known: [Stamp]) {
        self.bytes = bytes
        self.receiver = receiver
        self.now = now
        self.known = known
    }

    mutating func byte() -> UInt8 {
        guard at < bytes.count else { return 0 }
        defer { at += 1 }
        return bytes[at]
    }

    mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }

    static let nodes: [NodeID] = [
        "hq", "xihu", "jingan", "binjiang", "n1", "n2", "hq2", "store-3",
        "\u{00E9}", "e\u{0301}", "wm\u{202E}gnp", " ", "", String(repeating: "长", count: 100), "x" + String(repeating: "\u{0301}", count: 300), "a\u{0085}b",
    ]
    static let customers = ["c1", "c2", "c3", "c\u{00E9}", "ce\u{0301}", "wm\u{200B}x", String(repeating: "c", count: 257), "\u{FEFF}c"]
    static let subs = ["t1", "t2", "t3", "l1", "l2", "m1", "fz0", "s\u{202E}"]
    static let authors = ["", "chenjing", "zhaolei", "fz0", "\u{1B}[2J\u{1B}[H", String(repeating: "a", count: 300), "陈静", "x\u{0301}"]
    static let clockSteps: [Int64] = [0, 1, -1, 1000, -1000, -60_000, -86_400_000, 299_000, 299_900, 300_001, 3_600_000, -1_764_000_000_000]
    static let specialSeqs: [UInt64] = [0, 1, 2, UInt64(Int64.max), UInt64(Int64.max) + 1, .max, 1 << 32, 1000]
    static let deltas: [Int64] = [1, -1, 100, -100, .min, .max, Op.maxPointsDelta, -Op.maxPointsDelta, Op.maxPointsDelta + 1, 0, 1 << 40, -(1 << 40)]

    mutating func changeSets() -> [ChangeSet] {
        while at < bytes.count && totalOps < ProgramReader.maxOps {
            let i = byte()
            switch i % 16 {
            case 0..<10:
                if let op = makeOp(kind: Int(i % 16), flags: i >> 4) { push(op) }
            case 10:
                endSet()
            case 11:
                guard let last = ops.last else { continue }
                let k = 1 + Int(u16()) % 4096
                for j in 0..<k where totalOps < ProgramReader.maxOps {
                    var op = last
                    let origin = "n\(j)"
                    op.stamp = Stamp(hlc: last.hlc, node: origin)
                    op.seq = nextSeq(origin)
                    op.role = .store
                    push(op)
                }
            case 12:
                let step = ProgramReader.clockSteps[Int(byte()) % ProgramReader.clockSteps.count]
                now = UInt64(clamping: max(0, Int64(clamping: now) &+ step))
            case 13:
                endSet()
                schema = Int(Int8(bitPattern: byte()))
            default:
                if let last = ops.last { push(last) }
            }
        }
        endSet()
        return sets
    }

    mutating func push(_ op: Op) {
        ops.append(op)
        emitted.append(op.stamp)
        totalOps += 1
    }

    mutating func endSet() {
        if !ops.isEmpty { sets.append(ChangeSet(schemaVersion: schema, ops: ops)) }
        ops = []
    }

    mutating func nextSeq(_ origin: NodeID) -> UInt64 {
        let s = (seqs[origin] ?? 0) + 1
        seqs[origin] = s
        return s
    }

    mutating func pick<T>(_ pool: [T]) -> T { pool[Int(byte()) % pool.count] }

    /// A small pool index most of the time; a hostile entry when the byte's top bit is set.
    mutating func pickMostlyPlain(_ pool: [String], plain: Int) -> String {
        let b = byte()
        return b & 0x80 == 0 ? pool[Int(b) % plain] : pool[Int(b) % pool.count]
    }

    mutating func makeOp(kind: Int, flags: UInt8) -> Op? {
        // Origin: the receiver itself, a pool node, or a hostile one.
        let o = byte()
        let origin: NodeID = o == 0xFF ? receiver : (o & 0x80 == 0 ? ProgramReader.nodes[Int(o) % 8] : ProgramReader.nodes[Int(o) % 16])
        let role: Role = (origin.hasPrefix("hq")) != (flags & 1 != 0) ? .hq : .store
        let s = byte()
        let seq = s >= 0xF8 ? ProgramReader.specialSeqs[Int(s) - 0xF8] : nextSeq(origin)
        let c = byte()
        let millis = c & 0x80 == 0 ? now &- UInt64(c) * 7 : UInt64(clamping: max(0, Int64(clamping: now) &+ ProgramReader.clockSteps[Int(c) % ProgramReader.clockSteps.count]))
        let logical = flags & 2 != 0 ? UInt16(byte()) : 0
        let hlc = c == 0xFF ? HLC(raw: .max) : (c == 0xFE ? .zero : HLC(millis: millis & ((1 << 48) - 1), logical: logical))
        let author = flags & 4 != 0 ? pick(ProgramReader.authors) : "chenjing"
        let customer = pickMostlyPlain(ProgramReader.customers, plain: 4)
        let sub = pickMostlyPlain(ProgramReader.subs, plain: 6)
        let body: OpBody
        switch kind {
        case 0, 9:
            let entity = pick([Entity.customer, .followRelation, .customer, .order, .orderLine, .groupChat, .groupMember, .store, .staff, .customerTag, .points])
            let fields = entity.fields.map(\.name)
            let field = fields.isEmpty || byte() == 0xFF ? "nofield" : fields[Int(byte()) % fields.count]
            let target = Target(entity, customer, entity.hasSub ? sub : "")
            body = .write(target, field: field, value: value(), overwrites: kind == 9 ? heads() : stamps(named: true))
        case 1:
            body = .add(Target(pick([Entity.customerTag, .groupMember, .orderLine, .customer]), customer, sub), removes: stamps(named: true))
        case 2:
            body = .remove(Target(pick([Entity.customerTag, .groupMember, .orderLine]), customer, sub), removes: stamps(named: true))
        case 3:
            let b = byte()
            body = .status(orderID: customer, from: OrderStatus(rawValue: b % 7)!, to: OrderStatus(rawValue: (b >> 3) % 7)!, seen: stamps(named: false))
        case 4:
            body = .points(customerID: customer, delta: pick(ProgramReader.deltas))
        case 5:
            body = .deleteCustomer(customerID: customer, observed: stamps(named: false))
        case 6:
            let kinds = InstanceKind.allCases
            let ref = InstanceRef(kinds[Int(byte()) % kinds.count], customer)
            let id = byte() & 1 == 0 ? "\(pick(ProgramReader.subs))" : String(repeating: "f", count: 64)
            body = .acknowledge(ref, conflictID: id)
        case 7:
            body = .tagDeletion(InstanceRef(pick([InstanceKind.tag, .tagGroup, .customer]), sub), seen: stamps(named: false))
        default:
            let isTag = byte() & 1 == 0
            let target = Target(isTag ? .tag : .tagGroup, isTag ? pick(["t1", "t2", "t3"]) : pick(["tg1", "tg2"]))
            let field = pick(target.entity.fields.map(\.name))
            let v: Value
            switch field {
            case "group_id": v = .text(pick(["tg1", "tg2", "tg3"]))
            case "exclusive", "deleted": v = .bool(byte() & 1 == 1)
            case "sort_order": v = .int(Int64(byte()))
            default: v = value()
            }
            body = .write(target, field: field, value: v, overwrites: stamps(named: true))
        }
        return Op(stamp: Stamp(hlc: hlc, node: origin), seq: seq, role: role, author: author, body: body)
    }

    /// A stamp list: up to 7 stamps this program or the replica made, or a large list (same clock,
    /// distinct nodes; or one stamp twice) at the caps' edges.
    mutating func stamps(named: Bool) -> [Stamp] {
        let b = byte()
        let pool = emitted + known
        if b < 0xF0 {
            let n = Int(b & 7)
            guard n > 0, !pool.isEmpty else { return [] }
            var out: [Stamp] = []
            for _ in 0..<n {
                let s = pool[Int(byte()) % pool.count]
                if !out.contains(s) || b & 8 != 0 { out.append(s) }
            }
            return out
        }
        let sizes = [Op.maxNamedStamps, Op.maxNamedStamps + 1, Op.maxObservedStamps, Op.maxObservedStamps + 1, 2, 17, 4096, 100]
        let n = min(sizes[Int(b - 0xF0) % sizes.count], ProgramReader.maxStamps - totalStamps)
        guard n > 0 else { return [] }
        totalStamps += n
        let hlc = HLC(millis: now &- 1000, logical: 0)
        if b >= 0xF8 { return (0..<n).map { _ in Stamp(hlc: hlc, node: "dup") } }   // one stamp n times
        return (0..<n).map { Stamp(hlc: hlc, node: "n\($0)") }
    }

    /// The stamps of this program's writes (as heads a resolving write names).
    mutating func heads() -> [Stamp] {
        let n = Int(byte() % 5)
        return Array(emitted.suffix(n))
    }

    mutating func value() -> Value {
        let b = byte()
        switch b % 16 {
        case 0: return .null
        case 1: return .int(Int64(byte()))
        case 2: return .int(.min)
        case 3: return .int(.max)
        case 4: return .bool(b & 0x10 != 0)
        case 5: return .bytes(Array(repeating: byte(), count: Int(byte())))
        case 6: return .text("x" + String(repeating: "\u{0301}", count: Int(u16())))
        case 7: return .text(String(repeating: "长", count: Int(byte())))
        case 8: return .text("a\u{0000}b")
        case 9: return .text("line\nbreak\u{007F}\u{0085}")
        case 10: return .text("e\u{0301}")
        case 11: return .text(String(repeating: "😀", count: Int(byte()) % 40))
        case 12: return .int(Int64(byte()) - 128)
        default: return .text("v\(byte())")
        }
    }
}

// MARK: - Helpers

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

func fnv(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

func check(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fail(message(), line: line) }
}

func fail(_ message: String, line: UInt = #line) -> Never {
    fputs("FuzzApply.swift:\(line): check failed: \(message)\n", stderr)
    fflush(stderr)
    precondition(false, message)
    fatalError(message)
}
