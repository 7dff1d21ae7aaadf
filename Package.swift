// swift-tools-version:6.0
// Siyu — a local-first sync store for WeCom retail customer data.
// No third-party packages: Foundation, the Swift toolchain and the system SQLite library only.
import PackageDescription

let package = Package(
    name: "Siyu",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "siyu", targets: ["siyu"]),
        .executable(name: "siyu-bench", targets: ["siyu-bench"]),
        .executable(name: "siyu-hub", targets: ["siyu-hub"]),
        .executable(name: "siyu-node", targets: ["siyu-node"]),
    ],
    targets: [
        // The only C in the project: the system SQLite library (libsqlite3-dev).
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite",
                       providers: [.apt(["libsqlite3-dev"])]),
        // Pure, deterministic core: clocks, ids, ops, merge rules, hashing. No I/O.
        .target(name: "SiyuCore"),
        // Thin, safe wrapper over the SQLite C API. The only importer of CSQLite.
        .target(name: "SiyuSQLite", dependencies: ["CSQLite"]),
        // Frames and messages of the sync protocol, encode/decode. Pure, no I/O.
        .target(name: "SiyuWire", dependencies: ["SiyuCore"]),
        // Non-blocking sockets and the epoll event loop: the only module that makes syscalls. Linux.
        // It hosts sessions on TCP connections (TCPSessionHost), so it sees SiyuSession's types.
        // CSiyuNet: the headers of epoll, eventfd and accept4, which the Glibc module leaves out.
        .systemLibrary(name: "CSiyuNet", path: "Sources/CSiyuNet"),
        .target(name: "SiyuNet", dependencies: ["CSiyuNet", "SiyuCore", "SiyuWire", "SiyuSession"],
                swiftSettings: [.swiftLanguageMode(.v6)]),
        // The replica: schema, local edits, apply/merge, op log, conflicts, digests.
        .target(name: "SiyuStore", dependencies: ["SiyuCore", "SiyuSQLite"]),
        // The sync session with no I/O (SPEC §7): connection state machine, node and hub logic fed
        // bytes and time, returning messages and store effects; MemoryTransport for tests.
        .target(name: "SiyuSession", dependencies: ["SiyuCore", "SiyuWire"],
                swiftSettings: [.swiftLanguageMode(.v6)]),
        // Store effects of the hub's sessions carried out on its replica (never imports SiyuNode).
        // HubServer: the sessions on SiyuNet's event loop, the replica on its thread.
        .target(name: "SiyuHub", dependencies: ["SiyuCore", "SiyuWire", "SiyuStore", "SiyuSession", "SiyuNet"],
                swiftSettings: [.swiftLanguageMode(.v6)]),
        // Store effects of a node's session carried out on its replica (never imports SiyuHub).
        // NodeDaemon: the session over a reconnecting TCP connection.
        .target(name: "SiyuNode", dependencies: ["SiyuCore", "SiyuWire", "SiyuStore", "SiyuSession", "SiyuNet"],
                swiftSettings: [.swiftLanguageMode(.v6)]),
        // Hand-made frames to a running hub: the raw client and the hostile-input rows of issue 18
        // section 5, shared by the integration tests and siyu-bench's attack section. Never in a product's path.
        .target(name: "SiyuProbe", dependencies: ["SiyuCore", "SiyuWire", "SiyuNet"]),
        // The strict argument parser, command registry and safe text output shared by every
        // executable (siyu, siyu-node, siyu-hub). Pure: Foundation only.
        .target(name: "SiyuCommandLine"),
        // WeCom payloads (API responses, callbacks) decoded and mapped to intended edits. Pure.
        .target(name: "SiyuWeCom", dependencies: ["SiyuCore"]),
        // What the CLI does: one file per subcommand, the demo scenario, rendering of a replica.
        // `siyu sync` and `siyu verify` run the node's sync engine (SiyuNode) in-process.
        .target(name: "SiyuCLI", dependencies: ["SiyuCore", "SiyuStore", "SiyuWire", "SiyuCommandLine", "SiyuWeCom", "SiyuNode", "SiyuNet"]),
        // The CLI: argument handling and wiring only.
        .executableTarget(name: "siyu", dependencies: ["SiyuCLI", "SiyuCommandLine"]),
        // Measurements against plain SQLite in the same run (the start of the benchmark).
        // The hub-load section runs HubServer in a child process of itself and drives NodeSessions over SiyuNet.
        .executableTarget(name: "siyu-bench", dependencies: ["SiyuCore", "SiyuStore", "SiyuSQLite", "SiyuWire", "SiyuCLI", "SiyuCommandLine",
                                                             "SiyuHub", "SiyuNet", "SiyuSession", "SiyuProbe"]),
        // The hub server and the store node daemon: argument handling and wiring only.
        .executableTarget(name: "siyu-hub", dependencies: ["SiyuHub", "SiyuNet", "SiyuSession", "SiyuStore", "SiyuCore", "SiyuWire", "SiyuCommandLine", "SiyuCLI"]),
        .executableTarget(name: "siyu-node", dependencies: ["SiyuNode", "SiyuNet", "SiyuSession", "SiyuStore", "SiyuSQLite", "SiyuCore", "SiyuWire", "SiyuCommandLine", "SiyuCLI"]),

        // One copy of the helpers the test targets share (TemporaryDirectory, …): a library under
        // Tests/ that only test targets depend on, so no product ships it (tools/check-layering.sh).
        // CSiyuTestSupport: posix_spawn's close-from and pipe2, which the Glibc module leaves out.
        .systemLibrary(name: "CSiyuTestSupport", path: "Tests/CSiyuTestSupport"),
        .target(name: "SiyuTestSupport", dependencies: ["CSiyuTestSupport"], path: "Tests/SiyuTestSupport",
                swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(name: "SiyuTestSupportTests", dependencies: ["SiyuTestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(name: "SiyuCoreTests", dependencies: ["SiyuCore"]),
        .testTarget(name: "SiyuSQLiteTests", dependencies: ["SiyuSQLite", "SiyuTestSupport"]),
        .testTarget(name: "SiyuWireTests", dependencies: ["SiyuWire", "SiyuCore"]),
        .testTarget(name: "SiyuSessionTests", dependencies: ["SiyuSession", "SiyuWire", "SiyuCore"],
                    swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(name: "SiyuNetTests", dependencies: ["SiyuNet", "SiyuWire", "SiyuTestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v6)]),
        // The property test's random edits and merge invariants, shared by SiyuStoreTests and the simulator.
        .target(name: "SiyuPropertySupport", dependencies: ["SiyuStore", "SiyuCore"], path: "Tests/SiyuPropertySupport"),
        .testTarget(name: "SiyuStoreTests", dependencies: ["SiyuStore", "SiyuCore", "SiyuSQLite", "SiyuPropertySupport", "SiyuTestSupport"],
                    exclude: ["Golden"]),   // replica files of old layouts, read by path
        .testTarget(name: "SiyuHubTests", dependencies: ["SiyuHub", "SiyuNet", "SiyuSession", "SiyuStore", "SiyuWire", "SiyuCore", "SiyuProbe", "SiyuTestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v6)]),
        // Hub and node executors together over SiyuSession's MemoryTransport, with real replicas.
        .testTarget(name: "SiyuNodeTests", dependencies: ["SiyuNode", "SiyuHub", "SiyuSession", "SiyuStore", "SiyuWire", "SiyuCore", "SiyuTestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v6)]),
        // The deterministic simulator: hub and nodes over MemoryTransport with faults, crashes and a virtual clock.
        .testTarget(name: "SiyuSimulationTests", dependencies: ["SiyuNode", "SiyuHub", "SiyuSession", "SiyuStore", "SiyuSQLite", "SiyuWire", "SiyuCore", "SiyuPropertySupport", "SiyuTestSupport"]),
        // Commands in-process with injected streams, and through the built `siyu` binary.
        .testTarget(name: "SiyuCLITests", dependencies: ["SiyuCLI", "SiyuCommandLine", "SiyuStore", "SiyuCore", "SiyuWire", "SiyuWeCom", "SiyuTestSupport", "siyu"],
                    exclude: ["WeComSamples", "testdata"]),
        // Real siyu-hub, siyu-node and siyu processes on loopback (the binaries beside the tests).
        .testTarget(name: "IntegrationTests", dependencies: ["SiyuStore", "SiyuSQLite", "SiyuCore", "SiyuWire", "SiyuNet", "SiyuProbe", "SiyuTestSupport", "siyu-hub", "siyu-node", "siyu"]),
    ],
    swiftLanguageModes: [.v5]
)
