// `siyu-bench`: measures the project's performance targets (listed in docs/BENCHMARKS.md), each
// figure next to its plain-SQLite anchor measured in the same run on the same data — local edits,
// bulk edits, merging remote ops, wire size, catch-up, bootstrap, bytes on disk, scaling — plus the
// Loro peer's figures when it is available; `--only hq-scale` (never part of a full run) builds HQ and a
// hub of millions of customers. `siyu-bench --help` lists the options;
// `--bootstrap-child` and `--bootstrap-plain-child` are the bootstrap's store and baseline processes,
// `--hub-child` the hub-load and attack sections' hub, `--attack-child` the attack section's attacker.

import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == BootstrapChild.flag {
    exit(BootstrapChild.main(Array(arguments.dropFirst())))
}
if arguments.first == HubChild.flag {
    exit(HubChild.main(Array(arguments.dropFirst())))
}
if arguments.first == AttackChild.flag {
    exit(AttackChild.main(Array(arguments.dropFirst())))
}
if arguments.first == BootstrapPlainChild.flag {
    exit(BootstrapPlainChild.main(Array(arguments.dropFirst())))
}

let options: BenchOptions
do {
    options = try BenchOptions(parsing: arguments)
} catch {
    let message = (error as? BenchOptions.UsageError)?.message ?? "\(error)"
    if message.isEmpty {   // --help
        print(BenchOptions.usage)
        exit(0)
    }
    FileHandle.standardError.write(Data("siyu-bench: \(message)\n\(BenchOptions.usage)\n".utf8))
    exit(2)
}

do {
    try Benchmark(options: options).run()
} catch {
    progress("failed: \(error)")
    exit(1)
}
