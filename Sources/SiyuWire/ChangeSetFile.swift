import SiyuCore

/// What a change-set file says about itself: who wrote it, when, what the writer held, and which
/// ops it leaves out.
public struct ChangeSetFileHeader: Equatable, Sendable {
    /// The node whose replica the file was exported from, and its role.
    public var node: NodeID
    public var role: Role
    /// Wall time of the export, milliseconds since the Unix epoch.
    public var createdMillis: UInt64
    /// The data model version of the ops (as in every change set).
    public var schemaVersion: Int
    /// Per origin, the sequence number up to which the writer held every op: a replica importing
    /// the file can export back exactly what the writer lacks (`siyu export-changes --for FILE`).
    public var held: VersionVector
    /// Per origin, the ops left out: those numbered at or below the entry (everything the reader
    /// was known to hold).
    public var since: VersionVector
    /// How many chunks and ops follow, so a file cut short is told from a whole one.
    public var chunkCount: Int
    public var opCount: Int

    public init(node: NodeID, role: Role, createdMillis: UInt64, schemaVersion: Int = currentSchemaVersion,
                held: VersionVector, since: VersionVector, chunkCount: Int, opCount: Int) {
        self.node = node
        self.role = role
        self.createdMillis = createdMillis
        self.schemaVersion = schemaVersion
        self.held = held
        self.since = since
        self.chunkCount = chunkCount
        self.opCount = opCount
    }
}

/// A change-set file: ops carried by hand (on a USB stick) between replicas that cannot reach each
/// other, in the protocol's own encoding.
///
///     offset  size  field
///     0       8     magic "SIYUCHG" then 0x0A
///     8       1     file format version (1)
///     9       v     header length H (varint), at most 1 MiB
///     9+v     H     header: node id (string), role (u8), created millis (varint), schema version
///                   (varint), chunk count (varint), op count (varint), held vector, since vector
///                   (each: entry count (varint), then per entry origin (string), seq (varint);
///                   origins in byte order)
///     …             chunk count PUSH frames (section 3), each carrying one stand-alone change set
///                   (string base 0), in origin then sequence order
///
/// Guarantees: `read` never traps and never reads past its buffer; a wrong magic, a newer format,
/// a damaged frame (CRC), a file cut short or with bytes after its last chunk is an error that
/// says which; every chunk decodes alone, so an importer can apply them one at a time.
public enum ChangeSetFile {
    public static let magic: [UInt8] = Array("SIYUCHG\n".utf8)
    public static let formatVersion: UInt8 = 1
    /// Ops per chunk: a chunk is one frame, at most 1 MiB; 10,000 tag ops take about 120 KB.
    public static let opsPerChunk = 10_000
    static let maxHeaderBytes = 1 << 20
    static let maxVectorEntries = 100_000

    /// The file's bytes: the header, then the ops in chunks of `opsPerChunk`.
    public static func encode(_ ops: [Op], node: NodeID, role: Role, createdMillis: UInt64,
                              held: VersionVector, since: VersionVector) -> [UInt8] {
        var chunks: [[Op]] = []
        var start = 0
        while start < ops.count {
            chunks.append(Array(ops[start..<min(start + opsPerChunk, ops.count)]))
            start += opsPerChunk
        }
        let header = ChangeSetFileHeader(node: node, role: role, createdMillis: createdMillis, held: held, since: since,
                                         chunkCount: chunks.count, opCount: ops.count)
        var out = magic + [formatVersion]
        let h = encodeHeader(header)
        var w = ByteWriter()
        w.varint(UInt64(h.count))
        out += w.bytes + h
        for chunk in chunks { out += Message.push(ChangeSet(ops: chunk)).encoded() }
        return out
    }

    static func encodeHeader(_ h: ChangeSetFileHeader) -> [UInt8] {
        var w = ByteWriter()
        w.string(h.node)
        w.byte(h.role.rawValue)
        w.varint(h.createdMillis)
        w.varint(UInt64(clamping: h.schemaVersion))
        w.varint(UInt64(clamping: h.chunkCount))
        w.varint(UInt64(clamping: h.opCount))
        for vector in [h.held, h.since] {
            let entries = vector.entries.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            w.varint(UInt64(entries.count))
            for (origin, seq) in entries { w.string(origin); w.varint(seq) }
        }
        return w.bytes
    }

    /// Reads a whole file: its header and its change sets, checking that every chunk and op the
    /// header announces is there and nothing else.
    public static func read(_ bytes: [UInt8]) throws -> (header: ChangeSetFileHeader, changeSets: [ChangeSet]) {
        var (header, offset) = try readHeader(bytes)
        var changeSets: [ChangeSet] = []
        var ops = 0
        while offset < bytes.count {
            guard changeSets.count < header.chunkCount else {
                throw WireError.invalidValue(field: "change-set file", detail: "bytes after its \(header.chunkCount) chunks")
            }
            switch try Frame.decode(bytes[offset...]) {
            case .needMoreBytes:
                throw WireError.truncated(field: "change-set file chunk \(changeSets.count + 1) of \(header.chunkCount)")
            case let .frame(frame, consumed):
                guard frame.type == MessageType.push.rawValue else {
                    throw WireError.invalidValue(field: "change-set file chunk \(changeSets.count + 1)",
                                                 detail: "a frame of type 0x\([frame.type].hexString), not push")
                }
                let cs = try ChangeSetCodec.decode(frame.payload)
                ops += cs.ops.count
                changeSets.append(cs)
                offset += consumed
            }
        }
        guard changeSets.count == header.chunkCount, ops == header.opCount else {
            throw WireError.truncated(field: "change-set file: \(changeSets.count) of \(header.chunkCount) chunks, \(ops) of \(header.opCount) ops")
        }
        header.chunkCount = changeSets.count
        return (header, changeSets)
    }

    /// The header, and where the first chunk starts.
    public static func readHeader(_ bytes: [UInt8]) throws -> (ChangeSetFileHeader, Int) {
        guard bytes.count >= magic.count + 1 else { throw WireError.truncated(field: "change-set file magic") }
        guard Array(bytes.prefix(magic.count)) == magic else {
            throw WireError.invalidValue(field: "change-set file", detail: "it does not start with SIYUCHG: not a change-set file")
        }
        let version = bytes[magic.count]
        guard version == formatVersion else {
            throw WireError.invalidValue(field: "change-set file format", detail: "version \(version); this build reads version \(formatVersion)")
        }
        var r = PayloadReader(bytes, from: magic.count + 1)
        let length = try r.varint("change-set file header length")
        guard length <= UInt64(maxHeaderBytes) else {
            throw WireError.invalidValue(field: "change-set file header length", detail: "\(length) bytes, over \(maxHeaderBytes)")
        }
        let start = r.offset
        guard Int(length) <= bytes.count - start else { throw WireError.truncated(field: "change-set file header") }
        let end = start + Int(length)
        var h = PayloadReader(bytes, from: start, to: end)
        let node = try h.string("exporting node id")
        let roleByte = try h.u8("exporting node role")
        guard let role = Role(rawValue: roleByte) else {
            throw WireError.invalidValue(field: "exporting node role", detail: "\(roleByte) (0 hq, 1 store)")
        }
        let created = try h.varint("export time")
        let schema = try h.varint("schema version")
        let chunks = try h.varint("chunk count"), ops = try h.varint("op count")
        func vector(_ what: String) throws -> VersionVector {
            let n = try h.count("\(what) entries", minItemBytes: 2)
            guard n <= maxVectorEntries else { throw WireError.invalidValue(field: what, detail: "\(n) entries, over \(maxVectorEntries)") }
            var v = VersionVector()
            for _ in 0..<n { v.entries[try h.string("\(what) origin")] = try h.varint("\(what) seq") }
            return v
        }
        let held = try vector("held vector"), since = try vector("since vector")
        guard h.isAtEnd else { throw WireError.invalidValue(field: "change-set file header", detail: "bytes after its last field") }
        guard schema <= UInt64(Int.max), chunks <= UInt64(Int.max), ops <= UInt64(Int.max) else {
            throw WireError.invalidValue(field: "change-set file header", detail: "a count over 2^63")
        }
        let header = ChangeSetFileHeader(node: node, role: role, createdMillis: created, schemaVersion: Int(schema),
                                         held: held, since: since, chunkCount: Int(chunks), opCount: Int(ops))
        return (header, end)
    }
}
