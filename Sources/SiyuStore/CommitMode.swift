import SiyuCore

/// How `Replica.commit` stores and merges a batch of ops. The caller names it; nothing in the
/// commit is read from the replica's transaction state.
enum CommitMode {
    /// One local edit: ops this node has just numbered, all of one instance, whose merged state
    /// the caller hands over. The ops are added to that state without reading the instance's ops
    /// back, and only the rows that changed are written. A duplicate op is an error.
    case localEdit(InstanceState)
    /// Staged customer imports: ops this node has just numbered, of many customers. A duplicate op
    /// is an error; the ops of customers new to the replica are stored several rows per statement
    /// and merged on a second thread.
    case importBatch
    /// Ops from a peer (an applied change set, a PUSH at the hub): duplicates are skipped and
    /// every instance they touch is re-merged from the op log.
    case remoteApply
    /// Ops from a peer into a replica that held none when the load began (`bulkLoad`, a snapshot
    /// load): as `remoteApply`, but the ops of new instances go in several rows per statement and
    /// merge on a second thread, and the version vector, the tag index of shown tags and
    /// `ops_by_origin` are built once at the end (`finishBulkLoad`).
    case bulkLoad

    /// The mode without its payload, to compare.
    enum Kind { case localEdit, importBatch, remoteApply, bulkLoad }

    var kind: Kind {
        switch self {
        case .localEdit: .localEdit
        case .importBatch: .importBatch
        case .remoteApply: .remoteApply
        case .bulkLoad: .bulkLoad
        }
    }
}
