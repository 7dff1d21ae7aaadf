import SiyuCore
import SiyuSQLite

/// A node's sync state in its replica file (the `cursors` and `quarantine` tables): per hub, the
/// log position applied up to and the acked_seq; the own ops a hub refused for good. Every
/// statement on those tables is here; `Replica` decides when they run (inside its transactions).
///
/// Guarantees: values are stored as given (the caller range-checks numbers from the wire with
/// `Replica.storable`); a quarantined number is recorded once (the first record stays); writes
/// touch one hub's row. Not thread-safe, as `Database` is not.
struct NodeSyncState {
    let db: Database

    /// The node's position and acked_seq at `hub` (0 and 0 before the first sync).
    func state(at hub: String) throws -> HubSyncState {
        let row = try db.cached("SELECT position, acked FROM cursors WHERE peer = ?").rows([.text(hub)]).first
        return HubSyncState(position: UInt64(clamping: row?[0].int64Value ?? 0), ackedSeq: UInt64(clamping: row?[1].int64Value ?? 0))
    }

    /// Every hub's row, by name.
    func all() throws -> [(peer: String, position: Int64, acked: Int64)] {
        var out: [(peer: String, position: Int64, acked: Int64)] = []
        try db.cached("SELECT peer, position, acked FROM cursors ORDER BY peer").query { row in
            out.append((row.text(0) ?? "", row.int64(1), row.int64(2)))
        }
        return out
    }

    /// Stores the position at `hub`, keeping its acked_seq.
    func setPosition(_ position: Int64, at hub: String) throws {
        try db.cached("INSERT INTO cursors(peer, position, acked) VALUES (?, ?, 0) ON CONFLICT(peer) DO UPDATE SET position = excluded.position")
            .run([.text(hub), .integer(position)])
    }

    /// Stores the acked_seq at `hub`, keeping its position.
    func setAcked(_ acked: Int64, at hub: String) throws {
        try db.cached("INSERT INTO cursors(peer, position, acked) VALUES (?, 0, ?) ON CONFLICT(peer) DO UPDATE SET acked = excluded.acked")
            .run([.text(hub), .integer(acked)])
    }

    /// A new log epoch at `hub`: its position goes back to 0, and the quarantined numbers above
    /// `ackedSeq` leave the quarantine (the hub may have lost the record of their refusal).
    func restart(at hub: String, keepingQuarantineThrough ackedSeq: Int64) throws {
        try db.cached("UPDATE cursors SET position = 0 WHERE peer = ?").run([.text(hub)])
        try db.cached("DELETE FROM quarantine WHERE seq > ?").run([.integer(ackedSeq)])
    }

    /// Records own op `seq` as refused for good, unless it is recorded already.
    func quarantine(_ seq: Int64, code: UInt64, message: String, at millis: UInt64) throws {
        try db.cached("INSERT OR IGNORE INTO quarantine(seq, code, message, at) VALUES (?, ?, ?, ?)")
            .run([.integer(seq), .integer(Int64(clamping: code)), .text(String(message.prefix(2_000))), .integer(Int64(clamping: millis))])
    }

    /// The own ops refused for good, by number.
    func quarantined() throws -> [QuarantinedOp] {
        var out: [QuarantinedOp] = []
        try db.cached("SELECT seq, code, message, at FROM quarantine ORDER BY seq").query { row in
            out.append(QuarantinedOp(seq: UInt64(clamping: row.int64(0)), code: UInt64(clamping: row.int64(1)),
                                     message: row.text(2) ?? "", at: UInt64(clamping: row.int64(3))))
        }
        return out
    }
}
