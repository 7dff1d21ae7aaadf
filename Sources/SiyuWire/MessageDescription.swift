import SiyuCore

/// A readable, deterministic rendering of messages and change sets: the "decoded meaning" written
/// beside each test vector's bytes, and what diagnostic tools print.
extension Message {
    /// The message's name as Protocol/SPEC.md writes it ("PUSH_ACK").
    public var name: String { type.specName }

    /// One line per field, then one line per op of any change set.
    public var describedLines: [String] {
        var lines = ["\(name) (type 0x\([type.rawValue].hexString))"]
        func field(_ k: String, _ v: String) { lines.append("  \(k): \(v)") }
        switch self {
        case let .hello(node, role, versions, schema, nonce):
            field("node", quote(node)); field("role", role.description)
            field("versions", versions.map { [$0].hexString }.joined(separator: ", ")); field("schema_version", "\(schema)")
            if !nonce.isEmpty { field("nonce", nonce.hexString) }
        case let .challenge(version, hub, nonce, salt, iterations):
            field("version", "\(version)"); field("hub", quote(hub)); field("nonce", nonce.hexString)
            if !salt.isEmpty || iterations != 0 { field("salt", salt.hexString); field("iterations", "\(iterations)") }
        case let .auth(mac):
            field("mac", mac.hexString)
        case let .welcome(acked, head, schema, epoch):
            field("acked_seq", "\(acked)"); field("log_head", "\(head)"); field("schema_version", "\(schema)")
            if !epoch.isEmpty { field("log_epoch", epoch.hexString) }
        case let .push(cs):
            lines += ChangeSetDescription.lines(cs)
        case let .pushAck(acked):
            field("acked_seq", "\(acked)")
        case let .pull(cursor, budget, own):
            field("cursor", "\(cursor)"); field("byte_budget", "\(budget)")
            if own { field("own_ops", "true") }
        case let .changes(next, more, cs):
            field("next_cursor", "\(next)"); field("more", "\(more)"); lines += ChangeSetDescription.lines(cs)
        case let .digestRequest(cursor):
            field("cursor", "\(cursor)")
        case let .digest(position, digest):
            field("position", "\(position)"); field("digest", digest.hexString)
        case let .snapshotBegin(id, cursor, reason):
            field("snapshot_id", "\(id)"); field("cursor", "\(cursor)"); field("reason", "\(reason)")
        case let .snapshotChunk(id, index, cs):
            field("snapshot_id", "\(id)"); field("index", "\(index)"); lines += ChangeSetDescription.lines(cs)
        case let .snapshotEnd(id, count, digest):
            field("snapshot_id", "\(id)"); field("chunk_count", "\(count)"); field("digest", digest.hexString)
        case let .ping(token), let .pong(token):
            field("token", "\(token)")
        case let .error(code, retryable, message):
            let name = ErrorCode(rawValue: code).map { " (\($0.specName))" } ?? ""
            field("code", "\(code)\(name)"); field("retryable", "\(retryable)"); field("message", quote(message))
        case let .bye(reason):
            field("reason", quote(reason))
        }
        return lines
    }
}

/// Readable lines for a change set.
public enum ChangeSetDescription {
    public static func lines(_ cs: ChangeSet) -> [String] {
        ["  change set: schema \(cs.schemaVersion), \(cs.ops.count) op\(cs.ops.count == 1 ? "" : "s")"]
            + cs.ops.map { "    " + describe($0) }
    }

    static func stamps(_ list: [Stamp]) -> String {
        "[" + list.map { "\($0.hlc.raw)@\(quote($0.node))" }.joined(separator: ", ") + "]"
    }

    public static func describe(_ op: Op) -> String {
        var s = "\(quote(op.origin))#\(op.seq) hlc \(op.hlc.raw) \(op.role) by \(quote(op.author)): "
        switch op.body {
        case let .write(t, field, value, overwrites):
            s += "write \(t.entity.name) \(quote(t.id))\(t.entity.hasSub ? "/" + quote(t.sub) : "") \(field) = \(valueText(value)) overwrites \(stamps(overwrites))"
        case let .add(t, removes):
            s += "add \(t.entity.name) \(quote(t.id))/\(quote(t.sub)) removes \(stamps(removes))"
        case let .remove(t, removes):
            s += "remove \(t.entity.name) \(quote(t.id))/\(quote(t.sub)) removes \(stamps(removes))"
        case let .status(id, from, to, seen):
            s += "status order \(quote(id)) \(from) -> \(to) seen \(stamps(seen))"
        case let .points(id, delta):
            s += "points customer \(quote(id)) \(delta > 0 ? "+" : "")\(delta)"
        case let .deleteCustomer(id, observed):
            s += "delete customer \(quote(id)) observed \(stamps(observed))"
        case let .acknowledge(ref, conflictID):
            s += "acknowledge \(ref.kind.name) \(quote(ref.id)) conflict \(quote(conflictID))"
        case let .tagDeletion(ref, seen):
            s += "tag_deletion \(ref.kind.name) \(quote(ref.id)) seen \(stamps(seen))"
        }
        return s
    }

    static func valueText(_ v: Value) -> String {
        switch v {
        case .null: return "null"
        case let .int(i): return "int \(i)"
        case let .text(t): return "text \(quote(t))"
        case let .bytes(b): return "bytes \(b.hexString)"
        case let .bool(b): return "bool \(b)"
        }
    }
}

func quote(_ s: String) -> String { "\"\(s)\"" }
