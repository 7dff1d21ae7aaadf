import Foundation
import SiyuCore
import SiyuStore
import SiyuWire
import SiyuCommandLine

/// `siyu export-changes --db FILE --out OUT [--for PEER-FILE | --since VECTOR]`: ops of a replica as
/// a change-set file, to carry by hand to a replica that cannot be reached over the network.
struct ExportChangesCommand: Command {
    static let spec = CommandSpec(
        name: "export-changes",
        summary: "write the ops a peer lacks to a change-set file (carried by hand when the network is down)",
        options: [ReplicaAccess.dbOption,
                  .value("out", "OUT", required: true, "the change-set file to write (never overwritten)"),
                  .value("for", "PEER-FILE", "a change-set file the peer wrote: export exactly what the peer lacked then"),
                  .value("since", "VECTOR", "leave out what the peer holds: ORIGIN=SEQ[,ORIGIN=SEQ…] (default: nothing, so every op)")],
        discussion: """
        The file holds the ops in the sync protocol's own encoding, with a header saying what this
        replica held. Import it with: siyu import-changes --db PEER.db OUT. The peer's next export
        for this replica can then use --for with the file you sent it. Ops are identified by origin
        and sequence number, so importing the same ops twice, or syncing them again later, changes
        nothing.
        """)

    var path: String
    var out: String
    var peerFile: String?
    var since: VersionVector?

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        out = try arguments.required("out")
        peerFile = arguments.value("for")
        if let text = arguments.value("since") { since = try ExportChangesCommand.vector(text) }
        if peerFile != nil && since != nil {
            throw CommandLineError.usage("give --for or --since, not both", hint: "--for reads the peer's vector from its file")
        }
    }

    /// Parses `ORIGIN=SEQ[,ORIGIN=SEQ…]`.
    static func vector(_ text: String) throws -> VersionVector {
        var v = VersionVector()
        for part in text.split(separator: ",", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1)
            guard pieces.count == 2, !pieces[0].isEmpty, let seq = UInt64(pieces[1]) else {
                throw CommandLineError.usage("--since: '\(part)' is not ORIGIN=SEQ", hint: "for example --since hq=120,xihu=42")
            }
            v.entries[String(pieces[0])] = seq
        }
        return v
    }

    func run(in context: CLIContext) throws -> ExitCode {
        if FileManager.default.fileExists(atPath: out) {
            throw CLIError("\(out) exists; nothing was written", hint: "choose a new file name; an export never overwrites a file")
        }
        var peer = since ?? VersionVector()
        if let peerFile {
            let bytes = try ChangeSetFiles.load(peerFile)
            do {
                peer = try ChangeSetFile.readHeader(bytes).0.held
            } catch {
                throw CLIError("\(peerFile) is not a readable change-set file: \(error)", hint: "give --for a file written by siyu export-changes")
            }
        }
        let replica = try ReplicaAccess.openForReading(path, context: context)
        defer { replica.close() }
        let (ops, held) = try ReplicaAccess.perform("reading the ops to export", path: path) {
            (try replica.changeSet(since: peer).ops, try replica.versionVector())
        }
        let bytes = ChangeSetFile.encode(ops, node: replica.node, role: replica.role, createdMillis: context.wallClock(),
                                         held: held, since: peer)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: out), options: .withoutOverwriting)
        } catch {
            throw CLIError("cannot write \(out): \(error.localizedDescription)", hint: "check the directory exists and is writable")
        }
        context.io.output.line("wrote \(Render.count(ops.count, "op")) of \(replica.node) to \(out) (\(bytes.count) bytes)")
        return .success
    }
}

/// `siyu import-changes --db FILE IN…`: apply change-set files.
struct ImportChangesCommand: Command {
    static let spec = CommandSpec(
        name: "import-changes",
        summary: "apply change-set files written by siyu export-changes (all of them, or nothing)",
        options: [ReplicaAccess.dbOption],
        arguments: [ArgumentSpec("IN", variadic: true, "change-set files")],
        discussion: """
        Every file is read and checked whole (frames, checksums, every op's rules) before anything
        is applied; then all of them are applied in one transaction. Ops already held are skipped,
        so a file imported twice, or whose ops also arrive by sync later, changes nothing.
        """)

    var path: String
    var files: [String]

    init(parsing arguments: ParsedArguments) throws {
        path = try arguments.required("db")
        files = arguments.positionals
        if files.isEmpty { throw CommandLineError.usage("give at least one change-set file", hint: "siyu import-changes --db FILE IN…") }
    }

    func run(in context: CLIContext) throws -> ExitCode {
        var batches: [(file: String, header: ChangeSetFileHeader, changeSets: [ChangeSet])] = []
        for file in files {
            let bytes = try ChangeSetFiles.load(file)
            do {
                let (header, changeSets) = try ChangeSetFile.read(bytes)
                for cs in changeSets { for op in cs.ops { try op.validate() } }
                batches.append((file, header, changeSets))
            } catch let e as WireError {
                throw CLIError("\(file) is not a valid change-set file: \(e); nothing was applied",
                               hint: "export it again with: siyu export-changes --db FILE --out OUT")
            } catch {
                throw CLIError("\(file) holds an op this replica refuses: \(CLIError.from(error).message); nothing was applied",
                               hint: "the exporting replica is faulty or of a newer build")
            }
        }
        let replica = try ReplicaAccess.openForWriting(path, context: context)
        defer { replica.close() }
        let reports = try ReplicaAccess.perform("importing change-set files", path: path) {
            try replica.inOneTransaction { try batches.map { batch in try batch.changeSets.map { try replica.apply($0) } } }
        }
        for (batch, report) in zip(batches, reports) {
            let applied = report.map(\.applied).reduce(0, +), duplicates = report.map(\.duplicates).reduce(0, +)
            context.io.output.line("\(batch.file): \(Render.count(applied, "new op")) from \(batch.header.node), \(duplicates) already held")
        }
        return .success
    }
}

/// `siyu merge A B`: two replica files exchange what the other lacks, directly.
struct MergeCommand: Command {
    static let spec = CommandSpec(
        name: "merge",
        summary: "merge two replica files directly: each receives the ops it lacks from the other",
        arguments: [ArgumentSpec("A", "a replica file"), ArgumentSpec("B", "another replica file")],
        discussion: "Both files then hold the same ops and show the same digest.")

    var a: String
    var b: String

    init(parsing arguments: ParsedArguments) throws {
        guard let a = arguments.positional(0), let b = arguments.positional(1) else {
            throw CommandLineError.usage("give two replica files", hint: "siyu merge A.db B.db")
        }
        self.a = a
        self.b = b
    }

    func run(in context: CLIContext) throws -> ExitCode {
        let ra = try ReplicaAccess.openForWriting(a, context: context)
        defer { ra.close() }
        let rb = try ReplicaAccess.openForWriting(b, context: context)
        defer { rb.close() }
        guard ra.node != rb.node else {
            throw CLIError("\(a) and \(b) are replicas of the same node '\(ra.node)'; nothing was written",
                           hint: "merge replicas of two different nodes")
        }
        let intoB = try ReplicaAccess.perform("applying \(a)'s ops to \(b)", path: b) {
            try rb.apply(try ra.changeSet(since: try rb.versionVector()))
        }
        let intoA = try ReplicaAccess.perform("applying \(b)'s ops to \(a)", path: a) {
            try ra.apply(try rb.changeSet(since: try ra.versionVector()))
        }
        context.io.output.line("\(b): \(Render.count(intoB.applied, "new op")) from \(a)")
        context.io.output.line("\(a): \(Render.count(intoA.applied, "new op")) from \(b)")
        let (da, db) = (try ra.digest().hexString, try rb.digest().hexString)
        context.io.output.line(da == db ? "digests equal: \(da)" : "digests differ: \(a) \(da), \(b) \(db)")
        return .success
    }
}

/// Reading change-set files from disk.
enum ChangeSetFiles {
    /// The largest change-set file read: 1 GiB (about 80 million tag ops).
    static let maxBytes = 1 << 30

    static func load(_ file: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw CLIError("\(file) is not a file", hint: "give the path of a change-set file written by siyu export-changes")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        guard size <= maxBytes else {
            throw CLIError("\(file) is \(size) bytes, over the \(maxBytes)-byte limit", hint: "export in smaller files with --since")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CLIError("cannot read \(file)", hint: "check its permissions")
        }
        return [UInt8](data)
    }
}
