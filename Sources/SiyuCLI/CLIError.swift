import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine

/// The one error type of the CLI layer: a one-line message and a hint a person can act on.
///
/// Errors from below (`ReplicaError`, `CoreError`) are translated with what the command was doing
/// and which file it was using, so the message talks about the user's command ("acknowledging
/// conflict 52a786…") rather than the store's internals, and never quotes SQL. The text is kept
/// as is; the program escapes it when printing (`TerminalText.escaped`).
public struct CLIError: ActionableError, Equatable, CustomStringConvertible {
    public var message: String
    public var hint: String

    public init(_ message: String, hint: String) {
        self.message = message
        self.hint = hint
    }

    public var description: String { "\(message) (hint: \(hint))" }

    /// How many seconds a command waits for another writer's lock before giving up (SQLite's
    /// busy timeout in `SiyuSQLite.Database`).
    static let lockWaitSeconds = 5

    /// `error` as the CLI reports it. `doing` says what the command was doing; `path` is the
    /// replica file involved, if any.
    public static func from(_ error: Error, doing: String? = nil, path: String? = nil) -> CLIError {
        if let e = error as? CLIError { return e }
        let file = path ?? "the replica"
        let during = doing.map { " while \($0)" } ?? ""
        if let e = error as? ReplicaError {
            switch e {
            case let .notAReplica(p, reason):
                return CLIError("\(p) is not a Siyu replica (\(reason)); nothing was written",
                                hint: "pass the path of a replica file, or create one with: siyu init --db FILE --node NODE --role store")
            case let .newerSchema(p, found, supported):
                return CLIError("\(p) has file layout \(found), newer than this build reads (\(supported)); nothing was written",
                                hint: "use a newer build for this file")
            case let .identityMismatch(p, stored, requested):
                return CLIError("\(p) is the replica of node '\(stored)', not '\(requested)'",
                                hint: "use the node's own replica file")
            case let .rejected(core):
                return from(core, doing: doing, path: path)
            case let .refused(refusal):
                return CLIError("\(refusal.message) (op \(IdentifierRule.printable(refusal.origin))#\(refusal.seq), \(refusal.reason.rawValue)); nothing of its change set was applied", hint: refusal.hint)
            case let .unsupportedSchema(found, supported):
                return CLIError("a change set has data model \(found); this build supports up to \(supported); nothing was applied",
                                hint: "upgrade this node")
            case let .notFound(what, hint):
                return CLIError("\(what) not found", hint: hint)
            case let .storage(sqlite, _):
                if sqlite.isBusy {
                    return CLIError("\(file) is locked by another writer (waited \(lockWaitSeconds) s\(during)); nothing was written",
                                    hint: "another command or a running node is writing it; try again when it is done")
                }
                switch sqlite.code {
                case 8:  // SQLITE_READONLY
                    return CLIError("\(file) is read-only\(during); nothing was written",
                                    hint: "check the permissions of the file and its directory (SQLite writes FILE-wal and FILE-shm beside it)")
                case 14: // SQLITE_CANTOPEN
                    return CLIError("cannot open \(file)\(during)",
                                    hint: "check the path and the permissions of the file and its directory")
                case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
                    return CLIError("\(file) is damaged\(during) (\(sqlite.message))",
                                    hint: "restore it from a backup, or make a new replica (siyu init --db FILE --node NODE --role store) and let it sync")
                case 13: // SQLITE_FULL
                    return CLIError("the disk is full\(during); nothing was written", hint: "free some space and try again")
                default:
                    return CLIError("storage error\(during): \(sqlite.message)",
                                    hint: "check the file and the disk; to recompute the tables from the op log: siyu rebuild --db FILE")
                }
            }
        }
        if let e = error as? CoreError {
            switch e {
            case let .invalidEdit(what, hint):
                return CLIError(what, hint: hint)
            case .clockTooFarAhead, .malformed:
                let parts = e.description.components(separatedBy: " Hint: ")
                return CLIError(parts[0], hint: parts.count > 1 ? parts[1] : "check the sending node")
            }
        }
        if let e = error as? CocoaError {
            return CLIError("\(e.localizedDescription)\(during)", hint: "check the path and its permissions")
        }
        let text = String(describing: error)
        return CLIError("\(text)\(during)", hint: "if this keeps happening, report it with the command you ran")
    }
}
