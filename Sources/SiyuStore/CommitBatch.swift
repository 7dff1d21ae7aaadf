import SiyuCore
import SiyuSQLite

extension Replica {
    /// The instances one commit touches, each given a slot the first time it is seen (so a run of
    /// ops on one instance costs one comparison each, not a hash of its id), with whether it had
    /// ops before the commit, the ops the commit inserted for it, and — in a bulk load — how many
    /// of those are in the op log yet and whether its rows are written.
    struct CommitBatch {
        private(set) var refs: [InstanceRef] = []
        /// Whether the instance had ops before this commit (else it is merged from the new ops alone).
        private(set) var existed: [Bool] = []
        /// The ops this commit took for the instance (stored, or waiting in memory to be stored).
        var inserted: [[Op]] = []
        /// How many of `inserted[slot]` are in the op log already.
        var stored: [Int] = []
        /// Slots whose ops wait to be stored, several rows per statement (bulk load).
        private(set) var awaitingInsert: [Int] = []
        /// Whether the instance's rows are written already (merged aside in a bulk load).
        var written: [Bool] = []
        /// In a bulk load, per slot: the tags of a customer's new ops, recorded after its merge.
        var tagsToRecord: [Int: Set<String>] = [:]
        private var slots: [InstanceRef: Int] = [:]
        private var last = -1
        /// The instance a local edit changes, and whether it had ops (known without a probe).
        private let known: (instance: InstanceRef, hasOps: Bool)?
        private let probe: Statement

        init(known: (instance: InstanceRef, hasOps: Bool)?, probe: Statement) {
            self.known = known
            self.probe = probe
        }

        /// Whether this commit already inserted an op with `op`'s origin and sequence number for
        /// the instance in `slot`.
        func holds(_ op: Op, in slot: Int) -> Bool {
            inserted[slot].contains { $0.seq == op.seq && $0.origin == op.origin }
        }

        /// Whether the instance in `slot` is part of the tag library (a tag or a tag group).
        func isLibrary(_ slot: Int) -> Bool { refs[slot].kind == .tag || refs[slot].kind == .tagGroup }

        /// The slot of `ref`, given on first sight (when it is also probed for ops held before).
        mutating func slot(of ref: InstanceRef) throws -> Int {
            if last >= 0 && refs[last] == ref { return last }
            if let slot = slots[ref] { last = slot; return slot }
            let had: Bool
            if let known, known.instance == ref {
                had = known.hasOps
            } else {
                had = try probe.scalar([.text(ref.kind.name), .text(ref.id)]) != nil
            }
            refs.append(ref)
            existed.append(had)
            inserted.append([])
            stored.append(0)
            written.append(false)
            last = refs.count - 1
            slots[ref] = last
            return last
        }

        /// Notes that the next op taken for `slot` waits in memory to be stored.
        mutating func awaitInsert(_ slot: Int) {
            if stored[slot] == inserted[slot].count { awaitingInsert.append(slot) }
        }

        /// The slots waiting to be stored, and none any more.
        mutating func takeAwaiting() -> [Int] {
            defer { awaitingInsert = [] }
            return awaitingInsert
        }
    }

    /// Stores the ops of the given slots that are not in the op log yet, several rows per statement.
    func insertOps(ofSlots slots: [Int], of batch: inout CommitBatch) throws {
        var values: [SQLiteValue] = [], rows = 0
        func flush() throws {
            guard rows > 0 else { return }
            try multiRowInsert(OpLog.insertRows[rows - 1], key: rows - 1).run(values)
            values.removeAll(keepingCapacity: true)
            rows = 0
        }
        for slot in slots where batch.stored[slot] < batch.inserted[slot].count {
            for op in batch.inserted[slot][batch.stored[slot]...] {
                values += OpLog.row(op)
                rows += 1
                if rows == Replica.rowsPerInsert { try flush() }
            }
            batch.stored[slot] = batch.inserted[slot].count
        }
        try flush()
    }

    /// Stores every op waiting in memory.
    func insertAwaitedOps(of batch: inout CommitBatch) throws {
        try insertOps(ofSlots: batch.takeAwaiting(), of: &batch)
    }
}
