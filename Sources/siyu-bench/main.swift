// `siyu-bench`: measures the design's performance targets (DESIGN.md "How good"), each figure next
// to its baseline measured in the same run on the same data — local edits, merging remote ops, wire
// size, catch-up, bootstrap, scaling — plus the Loro peer's figures when it is available.
// `siyu-bench --help` lists the options; `--bootstrap-child` is the bootstrap's store process.

import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == BootstrapChild.flag {
    exit(BootstrapChild.main(Array(arguments.dropFirst())))
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
