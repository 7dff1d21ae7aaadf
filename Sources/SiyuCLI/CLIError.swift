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

    /// A replica another process kept locked past the wait: which process (`LockHolder`, from
    /// `/proc/locks`), or that none could be found.
    static func locked(_ file: String, path: String?, during: String) -> CLIError {
        let waited = "waited \(lockWaitSeconds) s\(during); nothing was written"
        let finding = path.map { LockHolder.find(path: $0) } ?? .unavailable
        switch finding {
        case let .holders(holders) where holders.contains(where: \.writes):
            let pids = holders.map { String($0.pid) }.joined(separator: " ")
            return CLIError("\(file) is locked by \(LockHolder.describe(holders)) (\(waited))",
                            hint: "wait for it to finish and run the command again, or stop it first (kill \(pids))")
        case let .holders(holders):
            return CLIError("\(file) is locked; no process is writing it now, and \(LockHolder.describe(holders)) \(holders.count == 1 ? "has" : "have") it open (\(waited))",
                            hint: "wait for \(holders.count == 1 ? "it" : "them") to finish and run the command again, or stop \(holders.count == 1 ? "it" : "them") first (kill \(holders.map { String($0.pid) }.joined(separator: " ")))")
        case .noneListed:
            return CLIError("\(file) is locked by another process, which could not be identified: /proc/locks lists no lock on the file now (\(waited))",
                            hint: "it may have just finished; run the command again, and if it is still locked, look for a running siyu-node or another command that has the file open")
        case .unavailable:
            return CLIError("\(file) is locked by another process, which could not be identified (/proc/locks is not readable here) (\(waited))",
                            hint: "another command or a running node (siyu-node) is writing it; try again when it is done")
        }
    }

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
                if sqlite.isBusy { return locked(file, path: path, during: during) }
                if sqlite.message.contains("no such table") || sqlite.message.contains("no such index") || sqlite.message.contains("no such column") {
                    return CLIError("\(file) is damaged\(during) (\(sqlite.message)); nothing was written",
                                    hint: "see what is wrong with: siyu check --db \(path ?? "FILE"); repair it from its op log with: siyu rebuild --db \(path ?? "FILE")")
                }
                switch sqlite.code {
                case .readOnly:
                    return CLIError("\(file) is read-only\(during); nothing was written",
                                    hint: "check the permissions of the file and its directory (SQLite writes FILE-wal and FILE-shm beside it)")
                case .cantOpen:
                    return CLIError("cannot open \(file)\(during)",
                                    hint: "check the path and the permissions of the file and its directory")
                case .corrupt:
                    return CLIError("\(file) is damaged\(during) (\(sqlite.message))",
                                    hint: "see what is wrong with: siyu check --db \(path ?? "FILE"); to repair what the op log can give back: siyu rebuild --db \(path ?? "FILE")")
                case .notADatabase:
                    return CLIError("\(file) is damaged\(during) (\(sqlite.message))",
                                    hint: "restore it from a backup, or make a new replica (siyu init --db FILE --node NODE --role store) and let it sync")
                case .full:
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
