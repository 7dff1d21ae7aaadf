import SiyuCore
import SiyuSQLite

/// The single error type of the replica layer. Each case says what was wrong and how to act on it;
/// whenever one is thrown, the replica file holds nothing of the failed call.
public enum ReplicaError: Error, CustomStringConvertible {
    /// The file exists but is not a Siyu replica (another SQLite database, or not SQLite at all).
    case notAReplica(path: String, reason: String)
    /// The replica was written by a newer Siyu.
    case newerSchema(path: String, found: Int, supported: Int)
    /// The replica belongs to another node than the one asked for.
    case identityMismatch(path: String, stored: String, requested: String)
    /// A local edit or an incoming change set breaks a rule of the data model.
    case rejected(CoreError)
    /// A peer's op this replica refuses (a data rule, a permission, or — when every op of the
    /// change set must be taken, as by a hub — the clock window): nothing of its change set was
    /// stored. Carries the SPEC section 8 code a session reports it with.
    case refused(OpRefusal)
    /// A change set from a peer on a schema this build cannot read.
    case unsupportedSchema(found: Int, supported: Int)
    /// Something named does not exist (a customer, a tag, a conflict…).
    case notFound(what: String, hint: String)
    /// The database said no.
    case storage(SQLiteError, context: String)

    public var description: String {
        switch self {
        case let .notAReplica(path, reason):
            return "\(path) is not a Siyu replica (\(reason)); it was left untouched. Hint: pass the path of a replica file, or a new path to create one."
        case let .newerSchema(path, found, supported):
            return "\(path) has replica schema version \(found), newer than this build supports (\(supported)); it was left untouched. Hint: upgrade Siyu."
        case let .identityMismatch(path, stored, requested):
            return "\(path) is the replica of node '\(stored)', not '\(requested)'. Hint: use --node \(stored), or another file."
        case let .rejected(error):
            return "rejected: \(error.description)"
        case let .refused(refusal):
            return "\(refusal.description) Nothing of its change set was applied."
        case let .unsupportedSchema(found, supported):
            return "change set has schema version \(found); this replica supports up to \(supported); nothing was applied. Hint: upgrade this node."
        case let .notFound(what, hint):
            return "\(what) not found. Hint: \(hint)"
        case let .storage(error, context):
            return "storage error while \(context): \(error.description)"
        }
    }
}

extension ReplicaError {
    /// Runs `body`, turning lower-layer errors into `ReplicaError` with context.
    static func wrap<T>(_ context: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as ReplicaError {
            throw e
        } catch let e as CoreError {
            throw ReplicaError.rejected(e)
        } catch let e as SQLiteError {
            throw ReplicaError.storage(e, context: context)
        }
    }

    static func invalid(_ what: String, _ hint: String) -> ReplicaError {
        .rejected(.invalidEdit(what: what, hint: hint))
    }
}
