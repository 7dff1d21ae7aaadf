import Foundation
import SiyuSQLite

/// Runs every section in order and reports: each section's text as soon as it is done, then a
/// summary table of the design's targets (with the peer's column when it ran); or, with `--json`,
/// one JSON object holding every figure and nothing else on stdout.
struct Benchmark {
    let options: BenchOptions

    func run() throws {
        let directory = try TemporaryDirectory(prefix: "siyu-bench")
        defer { directory.remove() }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var sections: [SectionReport] = []
        func add(_ section: SectionReport) {
            sections.append(section)
            guard !options.json else { return }
            print(section.text + "\n")
            fflush(stdout)
        }

        let cpu = cpuModel(), load = loadAverages()
        let loadText = load.map { $0.map { fixed($0, 2) }.joined(separator: " ") } ?? "unknown"
        if !options.json {
            print("siyu-bench — SQLite \(Database.libraryVersion), \(cores) cores, CPU \(cpu), load average at start \(loadText)"
                  + (options.quick ? ", quick mode (small sizes)" : "") + "\n")
        }
        if options.runs("local") {
            add(try LocalEditBench(edits: options.localEdits, customerCount: options.localCustomers, directory: directory).run())
        }
        if options.runs("bulk") {
            add(try BulkEditBench(transactions: options.bulkTransactions, editsPerTransaction: BulkEditBench.editsPerTransaction,
                                  directory: directory).run())
        }
        if options.runs("history") {
            add(try HistoryBench(short: 1_000, long: options.quick ? 10_000 : 100_000, edits: options.quick ? 100 : 500,
                                 directory: directory).run())
        }
        if options.runs("merge") || options.runs("wire") {
            // The wire section measures the merge section's mixed change set.
            let (merge, mix) = try MergeBench(targetOps: options.mergeOps, directory: directory).run()
            if options.runs("merge") { add(merge) }
            if options.runs("wire") {
                add(try WireSizeBench(edits: options.wireEdits, customerCount: options.wireCustomers, mix: mix, directory: directory).run())
            }
        }
        if options.runs("catchup") {
            add(try CatchUpBench(targetOps: options.catchUpOps, customerCount: options.catchUpCustomers, directory: directory).run())
        }
        if options.runs("bootstrap") {
            add(try BootstrapBench(customerCount: options.bootstrapCustomers, tagsPerCustomer: options.bootstrapTagsPerCustomer,
                                   directory: directory).run())
        }
        if options.runs("scaling") {
            if options.scalingSizes.isEmpty {
                progress("scaling: skipped (empty --scaling list)")
            } else {
                add(try ScalingBench(sizes: options.scalingSizes, mergeOps: options.scalingMergeOps, directory: directory).run())
            }
        }
        if options.runs("hq-scale") {
            add(try HQScaleBench(sizes: HQScaleBench.sizes(upTo: options.hqCustomers), mergeOps: options.scalingMergeOps, directory: directory).run())
        }

        if options.runs("wecom") {
            add(try WeComImportBench(customers: options.weComCustomers, directory: directory).run())
        }
        if options.runs("mac") {
            add(try SessionMACBench(rounds: options.quick ? 2_000 : 20_000).run())
        }
        if options.runs("durability") {
            add(try DurabilityBench(pushes: options.quick ? 100 : 1_000, opsPerPush: 10, directory: directory).run())
        }
        if options.runs("compaction") {
            add(try CompactionBench(stores: options.quick ? 2 : 10, days: options.quick ? 3 : 30, opsPerDay: options.quick ? 200 : 1_000,
                                    customersPerStore: 250, directory: directory).run())
        }
        if options.runs("cli") {
            add(try CLIBench(jsonLines: options.cliJSONLines, lookupCustomers: options.cliLookupCustomers, directory: directory).run())
        }
        if options.runs("hub") {
            let seed = UInt64(Date().timeIntervalSince1970 * 1000)
            var bench = HubLoadBench(nodes: options.hubNodes, customersPerStore: options.hubCustomersPerStore, windowSeconds: options.hubSeconds, gap: options.hubGap, loops: 2,
                                     seed: seed, directory: directory)
            bench.busy = options.hubBusy
            add(try bench.run())
        }
        if options.runs("attack") {
            add(try AttackBench(windowSeconds: options.attackSeconds, nodes: 8, gap: 0.02 ... 0.06, rows: options.attackRows, directory: directory).run())
        }

        let peer = options.peerEnabled
            ? LoroPeer.run(quick: options.quick)
            : .unavailable(!options.runs("peer") ? "skipped (not in --only)"
                           : options.quick ? "skipped in quick mode; --peer runs it" : "skipped (--no-peer)")
        let siyuFigures = Dictionary(sections.flatMap(\.figures), uniquingKeysWith: { a, _ in a })
        add(LoroPeer.section(peer, siyu: siyuFigures))

        if options.json {
            let header: [(String, JSONValue)] = [("sqlite_version", .string(Database.libraryVersion)), ("cores", .int(cores)),
                                                 ("cpu_model", .string(cpu)),
                                                 ("load_average", load.map { .array($0.map { JSONValue.rounded($0, 2) }) } ?? .null),
                                                 ("quick", .bool(options.quick))]
            print(JSONValue.object(header + sections.flatMap(\.figures)
                                   + [("targets", targetsJSON(sections.flatMap(\.summary)))]).serialized())
        } else {
            print("summary (the targets of docs/BENCHMARKS.md; every ratio is Siyu ÷ its plain-SQLite anchor measured in this run)")
            for line in summaryTable(sections.flatMap(\.summary), peer: peer) { print("  " + line) }
        }
    }
}
