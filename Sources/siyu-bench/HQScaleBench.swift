import Foundation
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuStore
import SiyuWire

/// Section `hq-scale` — a brand of millions of customers (issue 20: 6.5 million) at HQ and at its
/// hub. At each size, ascending, it builds two files from the same synthesized HQ ops:
/// - an HQ replica (device "hq-2", role HQ), as `scaling` builds its replicas but loaded in bulk;
/// - a hub file, as `hub` builds its own (`Replica.bulkLoad`, then `logUnpositionedOps`), with one
///   store node registered ("n0001" of store "s0001").
/// The brand's shape: `customersPerStore` customers per store (4,000 stores at 6.5M), given to
/// stores round-robin (a store's customers lie scattered through the file, as WeCom's ids do), HQ's
/// tag library of 20 tags shared, each customer a name, its owner store and 3 tags (5 ops).
/// Measured at each size:
/// - build seconds and bytes on disk of both files (per customer, per op);
/// - a local tag edit at HQ (`addTag`/`removeTag`, one transaction each): median and p99;
/// - merging `mergeOps` remote ops at HQ (tag adds and phone writes, each by the store owning the
///   customer) as one change set;
/// - one store's bootstrap snapshot from the hub, read by `HubReader` (the reads a serving hub runs):
///   its PULL from cursor 0, then every part; its ops are checked to be exactly the tag library
///   and the store's customers;
/// - that store's empty PULL (cursor at the log head): median and p99, checked to return nothing;
///   and its PULL from `catchUpPositions` positions back (others' ops in between, a few of its own).
/// After the sizes, a linear extrapolation from the two largest, up to where this machine's disk
/// runs out. A size whose files would not fit the free disk is skipped, and said so.
struct HQScaleBench {
    let sizes: [Int]
    let mergeOps: Int
    let directory: TemporaryDirectory

    static let customersPerStore = 1_625
    static let tagCount = 20
    static let tagsPerCustomer = 3
    static let opsPerCustomer = 2 + tagsPerCustomer
    static let customersPerChunk = 10_000
    static let localEdits = 300
    static let pulls = 300
    static let catchUpPositions: UInt64 = 100_000
    static let store = "s0001", storeNode = "n0001"
    /// The sizes measured for a largest size of `customers`: ÷65, ÷6.5 (100k and 1M for 6.5M) and
    /// itself, leaving out those under 1,000 customers.
    static func sizes(upTo customers: Int) -> [Int] {
        Array(Set([customers / 65, customers * 2 / 13, customers].filter { $0 >= 1_000 })).sorted()
    }
    /// The brand the extrapolation is for (瑞幸: about 20 million customers).
    static let brandCustomers = 20_000_000

    struct Row {
        var customers = 0, stores = 0, ops = 0
        var hqBuildSeconds = 0.0, hubBuildSeconds = 0.0, hubLogSeconds = 0.0
        var hqBytes = 0, hubBytes = 0
        var editMedianMicros = 0.0, editP99Micros = 0.0
        var mergeSeconds = 0.0
        var snapshotSeconds = 0.0, snapshotOps = 0, snapshotBytes = 0, snapshotParts = 0, storeCustomers = 0
        var emptyPullMedianMicros = 0.0, emptyPullP99Micros = 0.0
        var catchUpMicros = 0.0, catchUpOps = 0
        var peakResidentMB = 0.0
        /// CPU seconds of this process (every thread) for HQ's build, the hub's (with logging) and
        /// HQ's merge: on a shared machine the wall times above include waiting for a core.
        var hqBuildCPU = 0.0, hubBuildCPU = 0.0, mergeCPU = 0.0
        var load: [Double]?
    }

    func run() throws -> SectionReport {
        var rows: [Row] = []
        var skipped: [String] = []
        for size in sizes.sorted() {
            // Both files, plus room for the bulk load's sorts: 2.5 × the last size's bytes per customer.
            if let last = rows.last {
                let need = Double(last.hqBytes + last.hubBytes) / Double(last.customers) * Double(size) * 1.25
                let free = freeDiskBytes(directory.path(""))
                if need > free {
                    skipped.append("\(grouped(size)) customers: needs about \(gigabytes(need)) GB of disk, \(gigabytes(free)) GB free")
                    continue
                }
            }
            let row = try measure(customers: size)
            rows.append(row)
            // Each size's rows and the extrapolation so far, as soon as measured: on a shared
            // machine the largest size may not finish, and what was measured must not be lost.
            for text in rowLines(row) + (rows.count >= 2 ? extrapolation(rows) : []) { progress("hq-scale: " + text) }
        }
        return report(rows, skipped: skipped)
    }

    /// The customer ids, and the store of customer `i`.
    static func customerID(_ i: Int) -> String { "wm" + String(format: "%08d", i) }
    static func storeID(_ index: Int) -> String { String(format: "s%04d", index + 1) }
    static func storeCount(customers: Int) -> Int { max(1, (customers + customersPerStore - 1) / customersPerStore) }

    /// HQ's ops creating customers `range`: a name, the owner store (round-robin) and 3 of the tags.
    static func customerOps(_ range: Range<Int>, stores: Int, tags: [String], using hq: inout OpSynthesizer) -> [Op] {
        var ops: [Op] = []
        ops.reserveCapacity(range.count * opsPerCustomer)
        for i in range {
            let id = customerID(i)
            ops += hq.createCustomer(id, ["name": .text("客户" + String(i)), "owner_store": .text(storeID(i % stores))])
            let k = i % tags.count
            for t in [k, (k + 5) % tags.count, (k + 11) % tags.count] { ops.append(hq.addTag(tags[t], to: id)) }
        }
        return ops
    }

    /// Loads the library and every customer's ops into the empty `replica`, in one bulk load.
    static func load(_ replica: Replica, library: ChangeSet, customers: Int, stores: Int, tags: [String]) throws {
        let begun = Date()
        try replica.bulkLoad {
            try replica.apply(library)
            var hq = OpSynthesizer(continuing: library, origin: "hq", role: .hq, author: "zhaolei")
            for start in stride(from: 0, to: customers, by: customersPerChunk) {
                if start > 0 && start % 1_000_000 == 0 {
                    progress("hq-scale: \(grouped(start)) customers loaded in \(fixed(Date().timeIntervalSince(begun), 0)) s (load average \(loadAverages().map { fixed($0[0], 2) } ?? "unknown"))")
                }
                try replica.apply(ChangeSet(ops: customerOps(start..<min(start + customersPerChunk, customers), stores: stores, tags: tags, using: &hq)))
            }
        }
    }

    private func measure(customers count: Int) throws -> Row {
        var row = Row(customers: count, stores: HQScaleBench.storeCount(customers: count))
        row.load = loadAverages()
        let tags = (0..<HQScaleBench.tagCount).map { String(format: "t%02d", $0) }
        let hqPath = directory.path("hq-scale-\(count).db"), hubPath = directory.path("hq-scale-\(count)-hub.db")
        let libraryPath = directory.path("hq-scale-library.db")
        defer {
            for path in [hqPath, hubPath, libraryPath] {
                for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            }
        }
        let library = try tagLibrary(tags, at: libraryPath)
        row.ops = library.ops.count + count * HQScaleBench.opsPerCustomer

        // HQ's replica.
        progress("hq-scale: \(grouped(count)) customers of \(grouped(row.stores)) stores (\(grouped(row.ops)) ops): building HQ's replica")
        do {
            let hq = try Replica(path: hqPath, options: ReplicaOptions(node: "hq-2", role: .hq))
            defer { hq.close() }
            row.hqBuildCPU = -ownCPUSeconds()
            row.hqBuildSeconds = try seconds { try HQScaleBench.load(hq, library: library, customers: count, stores: row.stores, tags: tags) }
            row.hqBuildCPU += ownCPUSeconds()
            progress("hq-scale: HQ built in \(fixed(row.hqBuildSeconds, 1)) s; local edits and a merge")
            (row.editMedianMicros, row.editP99Micros) = try localEditMicros(hq, customers: count)
            row.mergeCPU = -ownCPUSeconds()
            row.mergeSeconds = try mergeSeconds(hq, customers: count, stores: row.stores)
            row.mergeCPU += ownCPUSeconds()
        }
        row.hqBytes = try restingFileBytes(hqPath)
        try? FileManager.default.removeItem(atPath: hqPath)   // room for the hub's file

        // The hub's file, as the hub-load section builds its own.
        progress("hq-scale: building the hub's file")
        do {
            let hub = try Replica.create(at: hubPath, node: "hub", role: .hq)
            defer { hub.close() }
            row.hubBuildCPU = -ownCPUSeconds()
            row.hubBuildSeconds = try seconds { try HQScaleBench.load(hub, library: library, customers: count, stores: row.stores, tags: tags) }
            row.hubLogSeconds = try seconds { try hub.logUnpositionedOps() }
            row.hubBuildCPU += ownCPUSeconds()
            try hub.registerNode(HQScaleBench.storeNode, role: .store, store: HQScaleBench.store, secret: Array("hq-scale-store-secret".utf8))
            progress("hq-scale: hub built in \(fixed(row.hubBuildSeconds + row.hubLogSeconds, 1)) s; one store's snapshot and PULLs")
            // A serving hub's options, but a snapshot at any size (the smallest sizes' logs are under its 10,000 ops).
            let reader = HubReader(replica: hub, options: HubStoreExecutor.Options(bootstrapSnapshotOps: 1), logEpoch: Array(repeating: 1, count: 16))
            let mine = Set(stride(from: 0, to: count, by: row.stores).map(HQScaleBench.customerID))
            row.storeCustomers = mine.count
            try snapshot(reader, storeCustomers: mine, libraryOps: library.ops.count, into: &row)
            try pulls(reader, head: try hub.logHead(), storeCustomers: mine, into: &row)
        }
        row.hubBytes = try restingFileBytes(hubPath)
        row.peakResidentMB = Double(peakResidentKilobytes() ?? 0) / 1024
        return row
    }

    /// Toggles a tag outside each customer's three on random customers, timing each edit; a warm-up first.
    private func localEditMicros(_ hq: Replica, customers count: Int) throws -> (median: Double, p99: Double) {
        var rng = SeededRandom(seed: UInt64(count))
        var present = Set<String>()
        func toggle(_ id: String) throws {
            if present.remove(id) != nil { try hq.removeTag("t19", from: id, by: "zhaolei") }
            else { try hq.addTag("t19", to: id, by: "zhaolei"); present.insert(id) }
        }
        // t19 is one of a customer's three when i % 20 is 8, 14 or 19: those are passed over.
        func pick() -> String {
            while true {
                let i = Int(rng.next() % UInt64(count))
                if ![8, 14, 19].contains(i % HQScaleBench.tagCount) { return HQScaleBench.customerID(i) }
            }
        }
        for _ in 0..<20 { try toggle(pick()) }
        var times: [Double] = []
        for _ in 0..<HQScaleBench.localEdits {
            let id = pick()
            times.append(try seconds { try toggle(id) } * 1e6)
        }
        times.sort()
        return (percentile(times, 0.5), percentile(times, 0.99))
    }

    /// M ops from the stores — tag adds and phone writes on random customers, each by its owner store — in one change set.
    private func mergeSeconds(_ hq: Replica, customers count: Int, stores: Int) throws -> Double {
        var rng = SeededRandom(seed: UInt64(count) &+ 1)
        var synthesizers: [Int: OpSynthesizer] = [:]
        let ops = (0..<mergeOps).map { n -> Op in
            let i = Int(rng.next() % UInt64(count))
            let store = i % stores
            var s = synthesizers[store] ?? OpSynthesizer(origin: String(format: "n%04d", store + 1), role: .store, author: "clerk-\(store + 1)")
            defer { synthesizers[store] = s }
            return n % 2 == 0 ? s.addTag("t19", to: HQScaleBench.customerID(i))
                              : s.write("phone", .text("139\(String(format: "%08d", n))"), of: HQScaleBench.customerID(i))
        }
        let before = try hq.opCounts().total
        let elapsed = try seconds { try hq.apply(ChangeSet(ops: ops)) }
        let after = try hq.opCounts().total
        guard after - before == mergeOps else { throw BenchError("hq-scale: merging \(mergeOps) ops stored \(after - before)") }
        return elapsed
    }

    /// The store node's PULL from cursor 0 and every part of the snapshot it starts, as `HubServer`
    /// has its reader answer them; checks the ops are exactly the library's and the store's customers'.
    private func snapshot(_ reader: HubReader, storeCustomers mine: Set<String>, libraryOps: Int, into row: inout Row) throws {
        var ops = 0, bytes = 0, parts = 0
        var outside: String?
        row.snapshotSeconds = try seconds {
            let id: UInt64
            switch reader.read(.readChanges(node: HQScaleBench.storeNode, after: 0, byteBudget: 1 << 20, schemaVersion: UInt64(currentSchemaVersion), ownOps: false)) {
            case let .answered(.startSnapshot(snapshot, _, _), _): id = snapshot
            case let other: throw BenchError("hq-scale: a PULL from cursor 0 was answered \(other), not with a snapshot")
            }
            var last = false
            while !last {
                guard case let .answered(.snapshotPart(part, isLast, _, _), _) = reader.read(.readSnapshotPart(node: HQScaleBench.storeNode, snapshotID: id, part: UInt64(parts))) else {
                    throw BenchError("hq-scale: snapshot part \(parts) was not answered")
                }
                for op in part where outside == nil {
                    let instance = op.instance
                    if !(instance.kind.isSharedKind || (instance.kind == .customer && mine.contains(instance.id))) {
                        outside = "\(instance)"
                    }
                }
                ops += part.count
                bytes += Message.snapshotChunk(id: id, index: UInt64(parts), ChangeSet(ops: part)).encoded().count
                parts += 1
                last = isLast
            }
        }
        if let outside { throw BenchError("hq-scale: store \(HQScaleBench.store)'s snapshot holds \(outside), outside its scope") }
        let expected = libraryOps + mine.count * HQScaleBench.opsPerCustomer
        guard ops == expected else { throw BenchError("hq-scale: store \(HQScaleBench.store)'s snapshot holds \(ops) ops, its scope \(expected)") }
        (row.snapshotOps, row.snapshotBytes, row.snapshotParts) = (ops, bytes, parts)
    }

    /// The store node's PULL with its cursor at the head (nothing new: no op, the cursor stays), and
    /// from `catchUpPositions` back (only the store's own customers' ops come back).
    private func pulls(_ reader: HubReader, head: UInt64, storeCustomers mine: Set<String>, into row: inout Row) throws {
        func pull(after cursor: UInt64) throws -> (ops: [LoggedOp], next: UInt64, more: Bool) {
            guard case let .answered(.changes(ops, next, more, _), _) = reader.read(.readChanges(node: HQScaleBench.storeNode, after: cursor, byteBudget: 1 << 20,
                                                                                                  schemaVersion: UInt64(currentSchemaVersion), ownOps: false)) else {
                throw BenchError("hq-scale: a PULL after \(cursor) was not answered with CHANGES")
            }
            return (ops, next, more)
        }
        var times: [Double] = []
        for _ in 0..<(HQScaleBench.pulls + 20) {
            var read: (ops: [LoggedOp], next: UInt64, more: Bool) = ([], 0, false)
            times.append(try seconds { read = try pull(after: head) } * 1e6)
            guard read.ops.isEmpty, read.next == head, !read.more else {
                throw BenchError("hq-scale: an empty PULL at the head returned \(read.ops.count) ops, cursor \(read.next), more \(read.more)")
            }
        }
        times = Array(times.dropFirst(20)).sorted()
        (row.emptyPullMedianMicros, row.emptyPullP99Micros) = (percentile(times, 0.5), percentile(times, 0.99))
        // Cursor 0 would be a bootstrap: at least position 1.
        let from = head > HQScaleBench.catchUpPositions ? head - HQScaleBench.catchUpPositions : 1
        var read: (ops: [LoggedOp], next: UInt64, more: Bool) = ([], 0, false)
        row.catchUpMicros = try seconds { read = try pull(after: from) } * 1e6
        if let stray = read.ops.first(where: { !($0.op.instance.kind == .customer && mine.contains($0.op.instance.id)) && !$0.op.instance.kind.isSharedKind }) {
            throw BenchError("hq-scale: store \(HQScaleBench.store)'s PULL returned \(stray.op.instance), outside its scope")
        }
        row.catchUpOps = read.ops.count
    }

    // MARK: Report

    /// One size's line of each of the report's two tables.
    private func rowLines(_ row: Row) -> [String] {
        let c = Double(row.customers), o = Double(row.ops)
        return [
            padLeft(grouped(row.customers), 9) + padLeft(grouped(row.stores), 8) + padLeft(grouped(row.ops), 11)
                + String(format: " %11.1f %6.0f %7.0f %5.0f %12.1f (%5.1f) %7.0f %7.0f %5.0f  ", row.hqBuildSeconds, Double(row.hqBytes) / 1_048_576,
                         Double(row.hqBytes) / c, Double(row.hqBytes) / o, row.hubBuildSeconds + row.hubLogSeconds, row.hubLogSeconds,
                         Double(row.hubBytes) / 1_048_576, Double(row.hubBytes) / c, Double(row.hubBytes) / o)
                + (row.load.map { $0.map { fixed($0, 2) }.joined(separator: " ") } ?? "unknown"),
            padLeft(grouped(row.customers), 9)
                + String(format: " %14.0f / %-7.0f %19.3f %11.3f ", row.editMedianMicros, row.editP99Micros, row.mergeSeconds, row.snapshotSeconds)
                + "(\(grouped(row.snapshotOps)), \(row.snapshotParts), \(fixed(Double(row.snapshotBytes) / 1024, 0)))"
                + String(format: " %12.0f / %-6.0f %12.0f (%d) %10.0f", row.emptyPullMedianMicros, row.emptyPullP99Micros, row.catchUpMicros, row.catchUpOps, row.peakResidentMB),
            padLeft(grouped(row.customers), 9) + "  CPU s of this process: HQ build \(fixed(row.hqBuildCPU, 1)), hub build \(fixed(row.hubBuildCPU, 1)), HQ merge \(fixed(row.mergeCPU, 2))",
        ]
    }

    private func report(_ rows: [Row], skipped: [String]) -> SectionReport {
        var r = SectionReport("hq-scale: a brand of \(grouped(rows.last?.customers ?? 0)) customers at HQ and at its hub "
                              + "(\(grouped(HQScaleBench.customersPerStore)) customers per store, \(HQScaleBench.tagsPerCustomer) of \(HQScaleBench.tagCount) tags each: \(HQScaleBench.opsPerCustomer) ops per customer)")
        r.line("customers  stores        ops  HQ build s  HQ MB  B/cust  B/op  hub build s (log s)  hub MB  B/cust  B/op  load at start")
        for row in rows { r.line(rowLines(row)[0]) }
        r.line("customers  HQ local edit µs p50/p99  HQ merge \(grouped(mergeOps)) ops s  store snapshot s (ops, parts, wire KB)  empty PULL µs p50/p99  PULL \(grouped(Int(HQScaleBench.catchUpPositions))) back µs (ops)  peak RSS MB")
        for row in rows { r.line(rowLines(row)[1]) }
        r.line("CPU seconds (the wall times above include waiting for a core on a shared machine):")
        for row in rows { r.line(rowLines(row)[2]) }
        r.line("checked       each snapshot held exactly the tag library and the store's \(grouped(rows.last?.storeCustomers ?? 0)) customers; each empty PULL returned no op; "
               + "the PULL from \(grouped(Int(HQScaleBench.catchUpPositions))) positions back only the store's customers' ops")
        for s in skipped { r.line("skipped       " + s) }
        for text in extrapolation(rows) { r.line(text) }

        r.figure("hq_scale", .array(rows.map { row in
            .object([("customers", .int(row.customers)), ("stores", .int(row.stores)), ("ops", .int(row.ops)),
                     ("hq_build_seconds", .rounded(row.hqBuildSeconds, 1)), ("hq_bytes", .int(row.hqBytes)),
                     ("hub_build_seconds", .rounded(row.hubBuildSeconds + row.hubLogSeconds, 1)), ("hub_bytes", .int(row.hubBytes)),
                     ("hq_local_edit_p50_us", .rounded(row.editMedianMicros, 1)), ("hq_local_edit_p99_us", .rounded(row.editP99Micros, 1)),
                     ("hq_merge_seconds", .rounded(row.mergeSeconds, 3)),
                     ("store_snapshot_seconds", .rounded(row.snapshotSeconds, 3)), ("store_snapshot_ops", .int(row.snapshotOps)),
                     ("store_snapshot_bytes", .int(row.snapshotBytes)),
                     ("empty_pull_p50_us", .rounded(row.emptyPullMedianMicros, 1)), ("empty_pull_p99_us", .rounded(row.emptyPullP99Micros, 1)),
                     ("peak_rss_mb", .rounded(row.peakResidentMB, 0)),
                     ("hq_build_cpu_seconds", .rounded(row.hqBuildCPU, 1)), ("hub_build_cpu_seconds", .rounded(row.hubBuildCPU, 1)),
                     ("hq_merge_cpu_seconds", .rounded(row.mergeCPU, 2)),
                     ("load_average", row.load.map { .array($0.map { JSONValue.rounded($0, 2) }) } ?? .null)])
        }))
        r.figure("hq_scale_merge_ops", mergeOps)
        return r
    }

    /// Linear in customers from the two largest sizes (per-customer slope): the brand's size, and
    /// the size where this machine's free disk would no longer hold both files.
    private func extrapolation(_ rows: [Row]) -> [String] {
        guard rows.count >= 2 else { return ["extrapolation needs two sizes or more"] }
        let (a, b) = (rows[rows.count - 2], rows[rows.count - 1])
        let dc = Double(b.customers - a.customers)
        func at(_ n: Int, _ f: (Row) -> Double) -> Double { f(b) + (f(b) - f(a)) / dc * Double(n - b.customers) }
        let n = HQScaleBench.brandCustomers
        let hq = at(n) { Double($0.hqBytes) }, hub = at(n) { Double($0.hubBytes) }
        let perCustomer = (Double(b.hqBytes + b.hubBytes) - Double(a.hqBytes + a.hubBytes)) / dc
        let free = freeDiskBytes(directory.path(""))
        let diskLimit = perCustomer > 0 ? Int(free / (perCustomer * 1.25)) : 0
        let first = rows[0]
        func growth(_ f: (Row) -> Double) -> String { fixed(f(b) / max(f(first), 1e-9), 1) + "×" }
        let lines = [
            "extrapolated  linearly in customers from \(grouped(a.customers)) and \(grouped(b.customers)) to \(grouped(n)) (瑞幸's size): HQ file \(gigabytes(hq)) GB, hub file \(gigabytes(hub)) GB; "
                + "builds \(fixed(at(n) { $0.hqBuildSeconds } / 60, 0)) min (HQ) and \(fixed(at(n) { $0.hubBuildSeconds + $0.hubLogSeconds } / 60, 0)) min (hub) at this run's rate",
            "              the per-op costs are not linear in customers: from \(grouped(first.customers)) to \(grouped(b.customers)) customers (\(growth { Double($0.customers) })) "
                + "HQ's local edit p50 grew \(growth { $0.editMedianMicros }), HQ's merge \(growth { $0.mergeSeconds }), a store's snapshot \(growth { $0.snapshotSeconds }), "
                + "its empty PULL p50 \(growth { $0.emptyPullMedianMicros }) (B-tree depth, and the page cache once the files outgrow it)",
            "breaks        disk: this machine's free \(gigabytes(free)) GB holds both files (with 25% for the load's sorts) up to about \(grouped(diskLimit)) customers; "
                + "memory: peak resident \(fixed(b.peakResidentMB, 0)) MB at \(grouped(b.customers)) (the files live in the page cache, not the process); "
                + "time: one bulk load of \(grouped(b.ops)) ops took \(fixed(b.hqBuildSeconds / 60, 1)) min at HQ (\(fixed(Double(b.ops) / max(b.hqBuildSeconds, 1e-9) / 1000, 0))k ops/s)",
        ]
        return lines
    }
}

extension InstanceKind {
    /// The kinds every store's scope holds whole: the tag library (this section makes no stores' records).
    fileprivate var isSharedKind: Bool { self == .tag || self == .tagGroup }
}

/// Free bytes of the file system holding `path`.
func freeDiskBytes(_ path: String) -> Double {
    guard let attributes = try? FileManager.default.attributesOfFileSystem(forPath: path),
          let free = attributes[.systemFreeSize] as? NSNumber else { return 0 }
    return free.doubleValue
}

private func megabytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 0) }
private func gigabytes(_ bytes: Double) -> String { fixed(bytes / 1_073_741_824, 1) }
