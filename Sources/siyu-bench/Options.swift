import SiyuProbe

/// The benchmark's command line and the sizes each section runs at (full or `--quick`).
/// Measures nothing by itself.
struct BenchOptions {
    static let usage = """
        usage: siyu-bench [--quick] [--json] [--peer | --no-peer] [--edits N] [--ops N] [--scaling N,N,…] [--hub-nodes N] [--hub-seconds S]
                          [--hub-gap A-B] [--hub-busy] [--attack-seconds S] [--attack-rows R,R,…] [--hq-customers N] [--only S,S,…]
          --quick      small sizes everywhere (seconds; what CI runs); skips the peer unless --peer
          --json       print one JSON object with every figure on stdout (progress stays on stderr)
          --peer       run the Loro peer (tools/loro-peer/run.sh) also in quick mode
          --no-peer    do not run the Loro peer
          --edits N    local edits per kind (default 2000, quick 200)
          --ops N      remote ops merged in one change set (default 100000, quick 5000)
          --scaling L  replica sizes in customers for the scaling table (default 10000,100000,1000000;
                       quick 1000,10000; an empty list skips it)
          --hub-nodes N        store nodes of the hub-load section (default 1000, quick 100; each with 250 customers, quick 25, and HQ's node besides)
          --hub-seconds S      seconds the nodes do rounds for (default 25, quick 6)
          --hub-gap A-B        seconds between one node's rounds, drawn from A to B (default 2-5)
          --hub-busy           a quarter into the rounds HQ moves a tag every customer holds (the hub re-merges them all)
                               and a new store bootstraps a 10,000-op snapshot: p99 push → ack from then on (hub_push_p99_ms_busy)
          --attack-seconds S   seconds of each window of the attack section: per attack, one with no attack, then the attack's (default 3, quick 0.5)
          --attack-rows R      only these attacks in the attack section (default all): \(HostileInput.allCases.map(\.rawValue).joined(separator: ","))
          --hq-customers N     customers of the hq-scale section's largest size (default 6500000, quick 20000); it also measures ÷65 and ÷6.5 of it
          --only S     run only these sections: local, bulk, history, merge, wire, catchup, bootstrap, scaling, wecom, mac, durability, compaction, cli, hub, attack, peer,
                       hq-scale (for working on one of them; the summary then lists only what ran). hq-scale runs only when named here:
                       its files take tens of GB and its build tens of minutes
        """

    var quick = false
    var json = false
    var runPeer: Bool? = nil
    /// The sections to run (nil: all of them).
    var only: Set<String>? = nil
    static let sectionNames = ["local", "bulk", "history", "merge", "wire", "catchup", "bootstrap", "scaling", "wecom", "mac", "durability", "compaction", "cli", "hub", "attack", "peer",
                               "hq-scale"]
    /// Sections that run only when `--only` names them (too big for a run of everything).
    static let onlyWhenNamed: Set<String> = ["hq-scale"]

    /// Whether the section named `name` (one of `sectionNames`) runs.
    func runs(_ name: String) -> Bool { only?.contains(name) ?? !BenchOptions.onlyWhenNamed.contains(name) }

    /// Local edits per kind (tag toggle, field edit).
    var localEdits = 2_000
    /// Customers the local edits go round.
    var localCustomers = 200
    /// Transactions of the bulk local edits (an HQ campaign), of `BulkEditBench.editsPerTransaction` edits each.
    var bulkTransactions = 10
    /// Remote ops merged in one change set.
    var mergeOps = 100_000
    /// Clerk edits in the wire-size batch, and the customers they go round.
    var wireEdits = 10_000
    var wireCustomers = 2_000
    /// Ops the store is behind in the catch-up, and the customers of its scope.
    var catchUpOps = 100_000
    var catchUpCustomers = 2_000
    /// Customers of the bootstrap snapshot, and tags on each.
    var bootstrapCustomers = 100_000
    var bootstrapTagsPerCustomer = 10
    /// Replica sizes of the scaling table, and the remote ops merged at each size.
    var scalingSizes = [10_000, 100_000, 1_000_000]
    var scalingMergeOps = 10_000
    /// The hq-scale section's largest size in customers (it also measures `HQScaleBench.sizes(upTo:)`).
    var hqCustomers = 6_500_000
    /// Customers of the WeCom batch import.
    var weComCustomers = 100_000
    /// Section cli: JSON lines imported, and customers of the replica the lookups run on.
    var cliJSONLines = 100_000
    var cliLookupCustomers = 1_000_000
    /// Nodes of the hub-load section, the seconds they do rounds for, and the seconds between a node's rounds.
    var hubNodes = 1_000
    var hubSeconds = 25.0
    var hubGap = 2.0 ... 5.0
    /// Customers of each store in the hub-load section (the brand's shape: ~250; quick 25).
    var hubCustomersPerStore = 250
    /// The hub-load section's busy case: a tag re-merge of every customer and a 10,000-op bootstrap during the rounds.
    var hubBusy = false
    /// Seconds of each window of the attack section (per attack: one with no attack, then the attack's).
    var attackSeconds = 3.0
    /// The attacks of the attack section, in `HostileInput`'s order.
    var attackRows = HostileInput.allCases

    /// Whether the Loro peer runs: by default in full mode only.
    var peerEnabled: Bool { runs("peer") && (runPeer ?? !quick) }

    struct UsageError: Error { let message: String }

    init(parsing arguments: [String]) throws {
        var explicitEdits: Int?, explicitOps: Int?, explicitHQCustomers: Int?, explicitScaling: [Int]?, explicitHubNodes: Int?, explicitHubSeconds: Double?, explicitAttackSeconds: Double?
        var it = arguments.makeIterator()
        func number(after flag: String) throws -> Int {
            guard let text = it.next(), let n = Int(text), n > 0 else { throw UsageError(message: "\(flag) needs a positive number") }
            return n
        }
        while let argument = it.next() {
            switch argument {
            case "--quick": quick = true
            case "--json": json = true
            case "--peer": runPeer = true
            case "--no-peer": runPeer = false
            case "--edits": explicitEdits = try number(after: argument)
            case "--ops": explicitOps = try number(after: argument)
            case "--hub-nodes": explicitHubNodes = try number(after: argument)
            case "--hub-busy": hubBusy = true
            case "--hq-customers": explicitHQCustomers = try number(after: argument)
            case "--hub-seconds": explicitHubSeconds = Double(try number(after: argument))
            case "--attack-seconds":
                guard let seconds = it.next().flatMap(Double.init), seconds > 0, seconds <= 600 else {
                    throw UsageError(message: "--attack-seconds needs seconds, more than 0 and at most 600 (decimals allowed)")
                }
                explicitAttackSeconds = seconds
            case "--attack-rows":
                guard let list = it.next() else { throw UsageError(message: "--attack-rows needs a list of attacks") }
                let names = Set(list.split(separator: ",").map(String.init))
                if let unknown = names.first(where: { HostileInput(rawValue: $0) == nil }) {
                    throw UsageError(message: "--attack-rows: unknown attack '\(unknown)' (attacks: \(HostileInput.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                guard !names.isEmpty else { throw UsageError(message: "--attack-rows needs at least one attack") }
                attackRows = HostileInput.allCases.filter { names.contains($0.rawValue) }
            case "--hub-gap":
                let parts = (it.next() ?? "").split(separator: "-").compactMap { Double($0) }
                guard parts.count == 2, parts[0] > 0, parts[1] >= parts[0] else { throw UsageError(message: "--hub-gap needs A-B, seconds, 0 < A ≤ B") }
                hubGap = parts[0] ... parts[1]
            case "--scaling":
                guard let list = it.next() else { throw UsageError(message: "--scaling needs a list of sizes") }
                let sizes = list.split(separator: ",").map { Int($0) }
                guard sizes.allSatisfy({ ($0 ?? 0) > 0 }) else { throw UsageError(message: "--scaling: '\(list)' is not a list of positive numbers") }
                explicitScaling = sizes.compactMap { $0 }
            case "--only":
                guard let list = it.next() else { throw UsageError(message: "--only needs a list of sections") }
                let names = list.split(separator: ",").map(String.init)
                if let unknown = names.first(where: { !BenchOptions.sectionNames.contains($0) }) {
                    throw UsageError(message: "--only: unknown section '\(unknown)' (sections: \(BenchOptions.sectionNames.joined(separator: ", ")))")
                }
                only = Set(names)
            case "-h", "--help": throw UsageError(message: "")
            default: throw UsageError(message: "unknown argument '\(argument)'")
            }
        }
        if quick { useQuickSizes() }
        if let explicitEdits { localEdits = explicitEdits }
        if let explicitOps { mergeOps = explicitOps }
        if let explicitScaling { scalingSizes = explicitScaling }
        if let explicitHubNodes { hubNodes = explicitHubNodes }
        if let explicitHQCustomers { hqCustomers = explicitHQCustomers }
        if let explicitHubSeconds { hubSeconds = explicitHubSeconds }
        if let explicitAttackSeconds { attackSeconds = explicitAttackSeconds }
    }

    private mutating func useQuickSizes() {
        localEdits = 200
        bulkTransactions = 2
        mergeOps = 5_000
        wireEdits = 2_000
        wireCustomers = 400
        catchUpOps = 5_000
        catchUpCustomers = 500
        bootstrapCustomers = 2_000
        scalingSizes = [1_000, 10_000]
        scalingMergeOps = 1_000
        weComCustomers = 10_000
        hqCustomers = 20_000
        cliJSONLines = 5_000
        cliLookupCustomers = 20_000
        hubNodes = 100
        hubSeconds = 6
        hubCustomersPerStore = 25
        attackSeconds = 0.5
    }
}
