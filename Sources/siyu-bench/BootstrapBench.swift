import Foundation
import SiyuCore
import SiyuSQLite
import SiyuStore
import SiyuWire

/// Section 5 — bootstrapping a new store node from a snapshot of N customers × T tags.
///
/// The parent writes the snapshot as protocol frames to a file: SNAPSHOT_BEGIN, SNAPSHOT_CHUNKs
/// (each a change set in a frame under 1 MiB), SNAPSHOT_END. The ops are the tag library taken from
/// a real HQ replica, then, per customer, exactly what `Replica.createCustomer` (a name) and
/// `Replica.addTag` (T tags of a non-exclusive group) would write at HQ, synthesized because making
/// 1.1M ops through the API would take minutes. The store side runs in a child process
/// (`siyu-bench --bootstrap-child FRAMES REPLICA`) so its memory is its own: it streams the file
/// through a `FrameReader`, decodes and applies each chunk into a fresh replica, and reports its
/// elapsed time and peak RSS (VmHWM), then checks the result (customer and tag row counts, op count).
///
/// Anchor (target ≤ 2.5×): plain SQLite inserting the same rows — the `customers` and
/// `customer_tags` rows of the snapshot, with the replica's own DDL — in key order, in one
/// transaction, in a child process of the same kind (`siyu-bench --bootstrap-plain-child`), timed
/// from opening the new file to closing it as the store's child is. Memory: the store's peak must
/// stay under 64 MB whatever the chunk size. Disk: the replica's bytes per op held (≤ 120 B), next
/// to the plain database's bytes (the plain tables alone).
///
/// Chunks never split a customer. They are sized three ways, each a separate run: filling frames to
/// about 7/8 of the 1 MiB limit (the fewest transactions and the largest chunks), 1,000 customers
/// per chunk and 100 customers per chunk (small chunks, less memory held at once).
///
/// The SNAPSHOT_END digest is sent as zeros: the parent never builds the state (that would double the
/// run), and the protocol lets a receiver ignore it.
struct BootstrapBench {
    let customerCount: Int
    let tagsPerCustomer: Int
    let directory: TemporaryDirectory

    static let snapshotID: UInt64 = 1

    /// How the snapshot is cut into chunks.
    enum ChunkPolicy {
        /// As many whole customers as fill about 7/8 of a frame.
        case fillFrames
        /// This many customers per chunk.
        case customers(Int)

        var label: String {
            switch self {
            case .fillFrames: return "chunks filling 7/8 of a 1 MiB frame"
            case let .customers(n): return "chunks of \(grouped(n)) customers"
            }
        }

        var shortLabel: String {
            switch self {
            case .fillFrames: return "full frames"
            case let .customers(n): return "\(grouped(n))-customer chunks"
            }
        }
    }

    /// One run: the snapshot written with one chunk policy, and what the child measured.
    struct Run {
        var policy: ChunkPolicy
        var snapshot = SnapshotFile()
        var child = ChildFigures()
    }

    func run() throws -> SectionReport {
        let tags = (0..<tagsPerCustomer).map { "t\($0)" }
        let library = try tagLibrary(tags, at: directory.path("bootstrap-hq.db"))
        let customers = CustomerIDs.weCom(customerCount, seed: 5)
        var runs: [Run] = []
        for policy in [ChunkPolicy.fillFrames, .customers(1_000), .customers(100)] {
            runs.append(try measure(policy, library: library, customers: customers, tags: tags))
        }
        progress("bootstrap: plain SQLite inserts the same rows in key order, in a child process")
        let plain = try runPlainChild()
        return report(runs, plain: plain)
    }

    private func measure(_ policy: ChunkPolicy, library: ChangeSet, customers: [String], tags: [String]) throws -> Run {
        var run = Run(policy: policy)
        let framesPath = directory.path("bootstrap.frames"), replicaPath = directory.path("bootstrap-store.db")
        defer {
            for path in [framesPath, replicaPath, replicaPath + "-wal", replicaPath + "-shm"] { try? FileManager.default.removeItem(atPath: path) }
        }
        progress("bootstrap: writing a snapshot of \(grouped(customerCount)) customers × \(tagsPerCustomer) tags, \(policy.label)")
        run.snapshot = try writeSnapshot(to: framesPath, library: library, customers: customers, tags: tags, policy: policy)
        progress("bootstrap: \(grouped(run.snapshot.ops)) ops in \(run.snapshot.chunks) chunks, \(grouped(run.snapshot.bytes)) bytes; "
                 + "the store applies them in a child process")
        run.child = try runChild(frames: framesPath, replica: replicaPath)
        try check(run.child, against: run.snapshot)
        return run
    }

    // MARK: The hub's side: the snapshot as frames in a file

    struct SnapshotFile {
        var ops = 0, chunks = 0, bytes = 0
    }

    private func writeSnapshot(to path: String, library: ChangeSet, customers: [String], tags: [String],
                               policy: ChunkPolicy) throws -> SnapshotFile {
        guard FileManager.default.createFile(atPath: path, contents: nil), let out = FileHandle(forWritingAtPath: path) else {
            throw BenchError("cannot create \(path)")
        }
        defer { try? out.close() }
        var file = SnapshotFile()
        func write(_ bytes: [UInt8]) { out.write(Data(bytes)); file.bytes += bytes.count }

        let synthesizer = OpSynthesizer(continuing: library, origin: "hq", role: .hq, author: "zhaolei")
        let perChunk = customersPerChunk(policy, customers: customers, tags: tags, synthesizer: synthesizer)
        let total = library.ops.count + customers.count * (1 + tags.count)
        write(Message.snapshotBegin(id: BootstrapBench.snapshotID, cursor: UInt64(total), reason: .bootstrap).encoded())
        // A batch of whole customers is one chunk unless its frame would be too large (then halved).
        var chunker = FrameChunker(opsPerChunk: perChunk * (1 + tags.count))
        let chunk = { (index: Int, changeSet: ChangeSet, _: Bool) in
            Message.snapshotChunk(id: BootstrapBench.snapshotID, index: UInt64(index), changeSet)
        }
        for frame in try chunker.frames(for: library.ops, message: chunk) { write(frame) }
        file.ops += library.ops.count
        // HQ created the customers in the order of `customers` (their sequence numbers and clocks
        // follow that order); the snapshot lists them in id order, the order of an op log clustered
        // by instance (schema 3).
        let opsPerCustomer = 1 + tags.count
        let sendOrder = customers.indices.sorted { customers[$0].utf8.lexicographicallyPrecedes(customers[$1].utf8) }
        for start in stride(from: 0, to: sendOrder.count, by: perChunk) {
            var ops: [Op] = []
            ops.reserveCapacity(perChunk * opsPerCustomer)
            for k in sendOrder[start..<min(start + perChunk, sendOrder.count)] {
                var creator = synthesizer.skipping(k * opsPerCustomer)
                ops += customerOps(customers[k...k], tags: tags, using: &creator)
            }
            for frame in try chunker.frames(for: ops, message: chunk) { write(frame) }
            file.ops += ops.count
        }
        file.chunks = chunker.chunkCount
        write(Message.snapshotEnd(id: BootstrapBench.snapshotID, chunkCount: UInt64(file.chunks),
                                  digest: [UInt8](repeating: 0, count: Message.digestSize)).encoded())
        return file
    }

    /// Customers per chunk: given, or as many as fill 7/8 of a frame, judged from a trial encoding
    /// of the first 1,000 customers.
    private func customersPerChunk(_ policy: ChunkPolicy, customers: [String], tags: [String], synthesizer: OpSynthesizer) -> Int {
        switch policy {
        case let .customers(n):
            return n
        case .fillFrames:
            var trial = synthesizer
            let sample = customers.prefix(1_000)
            let ops = customerOps(sample, tags: tags, using: &trial)
            let bytes = Message.snapshotChunk(id: BootstrapBench.snapshotID, index: 0, ChangeSet(ops: ops)).encoded().count
            return max(1, sample.count * FrameChunker.targetPayload / bytes)
        }
    }

    // MARK: The child process

    /// What the child reports on its one line of stdout.
    struct ChildFigures {
        var seconds = 0.0, applySeconds = 0.0, peakKilobytes = 0, customers = 0, tagRows = 0, ops = 0, fileBytes = 0

        var line: String {
            "bootstrap-child seconds=\(seconds) apply_seconds=\(applySeconds) peak_kb=\(peakKilobytes) customers=\(customers) "
                + "tag_rows=\(tagRows) ops=\(ops) file_bytes=\(fileBytes)"
        }

        init() {}

        init?(line: String) {
            var fields: [String: String] = [:]
            for part in line.split(separator: " ").dropFirst() {
                let kv = part.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
            }
            guard line.hasPrefix("bootstrap-child "), let s = fields["seconds"].flatMap(Double.init),
                  let a = fields["apply_seconds"].flatMap(Double.init),
                  let peak = fields["peak_kb"].flatMap(Int.init), let c = fields["customers"].flatMap(Int.init),
                  let t = fields["tag_rows"].flatMap(Int.init), let o = fields["ops"].flatMap(Int.init),
                  let f = fields["file_bytes"].flatMap(Int.init) else { return nil }
            (seconds, applySeconds, peakKilobytes, customers, tagRows, ops, fileBytes) = (s, a, peak, c, t, o, f)
        }
    }

    /// The plain baseline's child: a template replica gives it the DDL; it makes the rows itself.
    private func runPlainChild() throws -> ChildFigures {
        let template = directory.path("bootstrap-template.db"), plainPath = directory.path("bootstrap-plain.db")
        defer {
            for path in [template, plainPath] {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            }
        }
        try Replica(path: template, options: ReplicaOptions(node: "xihu", role: .store)).close()
        let figures = try runChild([BootstrapPlainChild.flag, template, plainPath, String(customerCount), String(tagsPerCustomer)])
        let expectedTags = customerCount * tagsPerCustomer
        guard figures.customers == customerCount, figures.tagRows == expectedTags else {
            throw BenchError("bootstrap: the plain baseline holds \(figures.customers) customers and \(figures.tagRows) tag rows; "
                             + "expected \(customerCount) and \(expectedTags)")
        }
        return figures
    }

    private func runChild(frames: String, replica: String) throws -> ChildFigures {
        try runChild([BootstrapChild.flag, frames, replica])
    }

    private func runChild(_ arguments: [String]) throws -> ChildFigures {
        let process = Process()
        process.executableURL = BootstrapBench.executableURL()
        process.arguments = arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.standardError
        var output = Data()
        try Interruption.run(process) {
            output = stdout.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
        }
        let text = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0 else {
            throw BenchError("bootstrap child exited with status \(process.terminationStatus)")
        }
        guard let figures = ChildFigures(line: text.split(separator: "\n").last.map(String.init) ?? "") else {
            throw BenchError("bootstrap child printed an unreadable line: '\(text)'")
        }
        return figures
    }

    /// This executable: `CommandLine.arguments[0]` when it names a path, else where /proc/self/exe
    /// points (not the link itself: a child started behind `taskset` or `nice` would read it as theirs).
    static func executableURL() -> URL {
        let argument = CommandLine.arguments[0]
        if argument.contains("/") { return URL(fileURLWithPath: argument) }
        return URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "/proc/self/exe")
    }

    private func check(_ child: ChildFigures, against snapshot: SnapshotFile) throws {
        let expectedTags = customerCount * tagsPerCustomer
        guard child.customers == customerCount, child.tagRows == expectedTags, child.ops == snapshot.ops else {
            throw BenchError("bootstrap: the store holds \(child.customers) customers, \(child.tagRows) tag rows and \(child.ops) ops; "
                             + "expected \(customerCount), \(expectedTags) and \(snapshot.ops)")
        }
    }

    // MARK: Report

    static let targetRatio = 2.5
    static let targetPeakMB = 64.0

    private func report(_ runs: [Run], plain: ChildFigures) -> SectionReport {
        let ops = runs.first?.snapshot.ops ?? 0
        // The targets are for 100k customers: smaller runs (--quick) get no verdict.
        let atTargetSize = customerCount >= 100_000
        var r = SectionReport("bootstrap: a new store from a snapshot of \(grouped(customerCount)) customers × \(tagsPerCustomer) tags (\(grouped(ops)) ops)")
        r.line("store side in a child process: read → decode → apply each chunk; plain SQLite in a child process: the same rows in key order, one transaction")
        r.line("targets: ≤ \(BootstrapBench.targetRatio)× plain SQLite, peak < \(Int(BootstrapBench.targetPeakMB)) MB whatever the chunk size, ≤ \(Int(DiskFigures.targetBytesPerOp)) B on disk per op held")
        r.line("chunking                                chunks  snapshot bytes    B/op   seconds  (apply)      ops/s  peak MB  replica MB  × plain")
        for run in runs {
            let peakMB = Double(run.child.peakKilobytes) / 1024
            r.line(run.policy.label.padding(toLength: 38, withPad: " ", startingAt: 0)
                   + padLeft(String(run.snapshot.chunks), 8) + padLeft(grouped(run.snapshot.bytes), 16)
                   + String(format: " %7.2f %9.3f %8.3f", Double(run.snapshot.bytes) / Double(run.snapshot.ops),
                            run.child.seconds, run.child.applySeconds)
                   + padLeft(grouped(Int(Double(run.snapshot.ops) / run.child.seconds)), 11)
                   + String(format: " %8.1f %11.1f %8.2f×", peakMB, Double(run.child.fileBytes) / 1_048_576, run.child.seconds / plain.seconds))
        }
        r.line("plain SQLite, same rows in key order".padding(toLength: 38, withPad: " ", startingAt: 0)
               + padLeft("1", 8) + padLeft("—", 16) + padLeft("—", 8)
               + String(format: " %9.3f %8.3f", plain.seconds, plain.applySeconds)
               + padLeft(grouped(Int(Double(plain.customers + plain.tagRows) / plain.seconds)), 11)
               + String(format: " %8.1f %11.1f", Double(plain.peakKilobytes) / 1024, Double(plain.fileBytes) / 1_048_576)
               + "   (rows/s)")
        if let c = runs.first?.child {
            r.line("checked in each run: \(grouped(c.customers)) customers, \(grouped(c.tagRows)) tag rows, \(grouped(c.ops)) ops")
        }
        let disk = DiskFigures(replicaBytes: runs.first?.child.fileBytes ?? 0, plainBytes: plain.fileBytes, ops: runs.first?.child.ops ?? 0)
        r.line(disk.line(what: "the new store's replica").replacingOccurrences(of: "disk          ", with: "disk: "))

        r.figure("bootstrap_customers", customerCount)
        r.figure("bootstrap_ops", ops)
        r.figure("bootstrap_plain_seconds", plain.seconds, digits: 3)
        r.figure("bootstrap_plain_insert_seconds", plain.applySeconds, digits: 3)
        r.figure("bootstrap_plain_peak_mb", Double(plain.peakKilobytes) / 1024, digits: 1)
        r.figure("bootstrap_plain_mb", Double(plain.fileBytes) / 1_048_576, digits: 1)
        disk.figures(prefix: "bootstrap_disk", into: &r)
        var peakMax = 0.0
        for run in runs {
            let prefix: String
            switch run.policy {
            case .fillFrames: prefix = "bootstrap"
            case .customers(1_000): prefix = "bootstrap_small_chunks"
            case let .customers(n): prefix = "bootstrap_chunks_\(n)"
            }
            let peakMB = Double(run.child.peakKilobytes) / 1024
            peakMax = max(peakMax, peakMB)
            let ratio = run.child.seconds / plain.seconds
            r.figure(prefix + "_chunks", run.snapshot.chunks)
            r.figure(prefix + "_bytes", run.snapshot.bytes)
            r.figure(prefix + "_seconds", run.child.seconds, digits: 3)
            r.figure(prefix + "_apply_seconds", run.child.applySeconds, digits: 3)
            r.figure(prefix + "_ratio", ratio)
            r.figure(prefix + "_peak_mb", peakMB, digits: 1)
            r.figure(prefix + "_replica_mb", Double(run.child.fileBytes) / 1_048_576, digits: 1)

            let what = "bootstrap \(grouped(customerCount)) × \(tagsPerCustomer), \(run.policy.shortLabel)"
            r.summary.append(SummaryRow(what: what, siyu: "\(fixed(run.child.seconds, 2)) s", baseline: "\(fixed(plain.seconds, 2)) s",
                                        ratio: "\(fixed(ratio, 2))×", target: "≤ \(BootstrapBench.targetRatio)×",
                                        met: atTargetSize ? ratio <= BootstrapBench.targetRatio : nil,
                                        unjudged: "not judged at this size", key: prefix))
            r.summary.append(SummaryRow(what: what + ", peak", siyu: "\(fixed(peakMB, 1)) MB", baseline: "—", ratio: "",
                                        target: "< \(Int(BootstrapBench.targetPeakMB)) MB", met: atTargetSize ? peakMB < BootstrapBench.targetPeakMB : nil,
                                        unjudged: "not judged at this size", key: prefix + "_peak"))
        }
        r.figure("bootstrap_peak_mb_max", peakMax, digits: 1)
        r.summary.append(disk.summaryRow(what: "disk: new store after the bootstrap", key: "disk_bootstrap", judged: atTargetSize))
        return r
    }
}

/// The plain baseline of the bootstrap, run as
/// `siyu-bench --bootstrap-plain-child TEMPLATE DB CUSTOMERS TAGS`: the snapshot's `customers` and
/// `customer_tags` rows (the customers of `CustomerIDs.weCom(CUSTOMERS, seed: 5)`, each with a name
/// and TAGS tags, as HQ's ops make them) inserted in key order, one transaction, into a new plain
/// database made with the DDL of the replica TEMPLATE. Timed from opening the file to closing it.
enum BootstrapPlainChild {
    static let flag = "--bootstrap-plain-child"

    static func main(_ arguments: [String]) -> Int32 {
        guard arguments.count == 4, let count = Int(arguments[2]), let tagCount = Int(arguments[3]) else {
            FileHandle.standardError.write(Data("usage: siyu-bench \(flag) TEMPLATE DB CUSTOMERS TAGS\n".utf8))
            return 2
        }
        do {
            print(try run(template: arguments[0], path: arguments[1], customers: count, tags: tagCount).line)
            return 0
        } catch {
            FileHandle.standardError.write(Data("siyu-bench bootstrap plain child: \(error)\n".utf8))
            return 1
        }
    }

    static func run(template: String, path: String, customers customerCount: Int, tags tagCount: Int) throws -> BootstrapBench.ChildFigures {
        let ids = CustomerIDs.weCom(customerCount, seed: 5).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let tags = (0..<tagCount).map { "t\($0)" }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var figures = BootstrapBench.ChildFigures()
        var clock = Int64(Date().timeIntervalSince1970 * 1000) << 16
        figures.seconds = try seconds {
            let db = try PlainSQLite.open(path, tables: [.customers, .customerTags], likeReplicaAt: template)
            defer { db.close() }
            let customer = try db.cached("INSERT INTO customers VALUES (?, ?, NULL, NULL, NULL, NULL, NULL, 0)")
            let tag = try db.cached("INSERT INTO customer_tags VALUES (?, ?, ?, ?, ?)")
            figures.applySeconds = try seconds {
                try db.transaction {
                    for id in ids {
                        try customer.run([.text(id), .text("客户" + id.suffix(6))])
                        for t in tags {
                            clock += 1
                            try tag.run([.text(id), .text(t), .text("zhaolei"), .text("hq"), .integer(clock)])
                        }
                    }
                }
            }
        }
        figures.peakKilobytes = peakResidentKilobytes() ?? 0
        let db = try Database(path: path, mode: .readOnly)
        defer { db.close() }
        func count(_ sql: String) throws -> Int { Int(try db.prepare(sql).scalar()?.int64Value ?? -1) }
        figures.customers = try count("SELECT count(*) FROM customers")
        figures.tagRows = try count("SELECT count(*) FROM customer_tags")
        figures.ops = figures.customers + figures.tagRows
        figures.fileBytes = fileBytes(path)
        return figures
    }
}

/// The store's side of the bootstrap, run as `siyu-bench --bootstrap-child FRAMES REPLICA`.
enum BootstrapChild {
    static let flag = "--bootstrap-child"
    static let readSize = 1 << 20

    /// Runs the child and returns its exit status.
    static func main(_ arguments: [String]) -> Int32 {
        guard arguments.count == 2 else {
            FileHandle.standardError.write(Data("usage: siyu-bench \(flag) FRAMES REPLICA\n".utf8))
            return 2
        }
        do {
            print(try run(frames: arguments[0], replica: arguments[1]).line)
            return 0
        } catch {
            FileHandle.standardError.write(Data("siyu-bench bootstrap child: \(error)\n".utf8))
            return 1
        }
    }

    static func run(frames framesPath: String, replica replicaPath: String) throws -> BootstrapBench.ChildFigures {
        var figures = BootstrapBench.ChildFigures()
        figures.seconds = try seconds {
            let replica = try Replica(path: replicaPath, options: ReplicaOptions(node: "xihu", role: .store))
            defer { replica.close() }
            // A new node loads its snapshot as one transaction (all of it or nothing), deferring
            // what can be built after the load (`Replica.bulkLoad`).
            figures.applySeconds = try replica.bulkLoad { try receive(framesPath, into: replica) }
        }
        figures.peakKilobytes = peakResidentKilobytes() ?? 0
        // Counted with plain SQL on the file: reading the rows through the replica would cost memory.
        let db = try Database(path: replicaPath, mode: .readOnly)
        defer { db.close() }
        func count(_ sql: String) throws -> Int { Int(try db.prepare(sql).scalar()?.int64Value ?? -1) }
        figures.customers = try count("SELECT count(*) FROM customers")
        figures.tagRows = try count("SELECT count(*) FROM customer_tags")
        figures.ops = try count("SELECT count(*) FROM ops")
        figures.fileBytes = fileBytes(replicaPath)
        return figures
    }

    /// Streams the frames file through a `FrameReader` and applies every chunk, in order. Returns
    /// the seconds spent in `Replica.apply`.
    private static func receive(_ path: String, into replica: Replica) throws -> Double {
        guard let input = FileHandle(forReadingAtPath: path) else { throw BenchError("cannot read \(path)") }
        defer { try? input.close() }
        var reader = FrameReader()
        var snapshot: UInt64?, nextIndex: UInt64 = 0, ended = false, applySeconds = 0.0
        while !ended {
            let data = input.readData(ofLength: readSize)
            if data.isEmpty { break }
            reader.feed([UInt8](data))
            while let frame = try reader.next() {
                switch try Message(frame: frame) {
                case let .snapshotBegin(id, _, _):
                    snapshot = id
                case let .snapshotChunk(id, index, changeSet):
                    guard id == snapshot, index == nextIndex else { throw BenchError("snapshot chunk \(index) of \(id) out of order") }
                    applySeconds += try seconds { try replica.apply(changeSet) }
                    nextIndex += 1
                case let .snapshotEnd(id, chunkCount, _):
                    guard id == snapshot, chunkCount == nextIndex else { throw BenchError("snapshot ended after \(nextIndex) of \(chunkCount) chunks") }
                    ended = true
                default:
                    throw BenchError("unexpected message in a snapshot: \(frame.type)")
                }
            }
        }
        guard ended else { throw BenchError("the snapshot file ended before SNAPSHOT_END") }
        return applySeconds
    }
}
