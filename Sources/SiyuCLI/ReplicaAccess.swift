import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine

/// How commands open a replica file.
///
/// Guarantees: a path that is missing, a directory, an empty file or not a Siyu replica is refused
/// before anything is written to it (read-only commands never create or initialise a file); a
/// command that writes is refused up front when the file or its directory is not writable.
enum ReplicaAccess {
    /// The `--db FILE` option every replica command declares.
    static let dbOption = OptionSpec.value("db", "FILE", required: true, "the replica file")
    /// The `--json` flag.
    static let jsonOption = OptionSpec.flag("json", "print JSON instead of text (field names in docs/CLI.md)")

    /// Opens an existing replica to read it.
    /// A file the process can write (in a directory it can write) is opened as usual; a read-only
    /// one, or one in a read-only directory (a backup, a copy on read-only media), is opened to
    /// read only, with no `-wal`/`-shm` files made beside it.
    static func openForReading(_ path: String, context: CLIContext) throws -> Replica {
        let fm = FileManager.default
        let directory = (path as NSString).deletingLastPathComponent
        if fm.isWritableFile(atPath: path) && fm.isWritableFile(atPath: directory.isEmpty ? "." : directory) {
            return try open(path, context: context)
        }
        _ = try inspect(path)
        do {
            var options = ReplicaOptions(wallClock: context.wallClock)
            options.readOnly = true
            return try Replica(path: path, options: options)
        } catch {
            throw CLIError.from(error, doing: "opening \(path) to read", path: path)
        }
    }

    /// Opens an existing replica to write to it (acknowledge, override, rebuild).
    static func openForWriting(_ path: String, context: CLIContext) throws -> Replica {
        try openForWriting(path, context: context, opening: true)!
    }

    /// The checks of `openForWriting`; the replica is opened only when `opening` (a repair checks
    /// first and opens the file its own way).
    static func openForWriting(_ path: String, context: CLIContext, opening: Bool) throws -> Replica? {
        _ = try inspect(path)
        let fm = FileManager.default
        let directory = (path as NSString).deletingLastPathComponent
        let sidecarsExist = fm.fileExists(atPath: path + "-wal") && fm.fileExists(atPath: path + "-shm")
        if !fm.isWritableFile(atPath: path)
            || (!sidecarsExist && !fm.isWritableFile(atPath: directory.isEmpty ? "." : directory)) {
            throw CLIError("\(path) is read-only; nothing was written",
                           hint: "check the permissions of the file and its directory (SQLite writes FILE-wal and FILE-shm beside it)")
        }
        return opening ? try open(path, context: context) : nil
    }

    /// The file's identity, read without writing.
    static func inspect(_ path: String) throws -> ReplicaFileInfo {
        do {
            return try Replica.inspect(path: path)
        } catch {
            throw CLIError.from(error, doing: "opening \(path)", path: path)
        }
    }

    private static func open(_ path: String, context: CLIContext) throws -> Replica {
        _ = try inspect(path)
        do {
            return try Replica(path: path, options: ReplicaOptions(wallClock: context.wallClock))
        } catch {
            throw CLIError.from(error, doing: "opening \(path)", path: path)
        }
    }

    /// Runs `body`, reporting any failure as what the command was doing with `path`.
    static func perform<T>(_ doing: String, path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw CLIError.from(error, doing: doing, path: path)
        }
    }

    /// Checks `--by STAFF` before anything is written: a WeCom userid (at most 64 characters, NFC,
    /// no control, format or line-break characters) that this replica knows as a staff member.
    static func checkStaff(_ staff: String, in replica: Replica) throws {
        if staff.unicodeScalars.contains(where: TerminalText.needsEscape) || staff.contains(" ") {
            throw CLIError("--by must be a staff userid without spaces, control, escape or line-break characters",
                           hint: "give the WeCom userid of the staff member, such as --by zhaolei")
        }
        if staff.count > IdentifierRule.maxLength {
            throw CLIError("--by is \(staff.count) characters long (limit \(IdentifierRule.maxLength))",
                           hint: "give the WeCom userid of the staff member")
        }
        do {
            try IdentifierRule.validate(staff, as: "--by")
        } catch {
            throw CLIError.from(error)
        }
        let known = try perform("reading staff", path: replica.path) { try replica.rows(of: .staff) }
        if !known.contains(where: { $0["userid"]?.textValue.map { $0.utf8.elementsEqual(staff.utf8) } == true }) {
            let names = known.prefix(8).compactMap { $0["userid"]?.textValue }
            throw CLIError("staff '\(staff)' is not known to this replica",
                           hint: names.isEmpty ? "this replica knows no staff yet (HQ defines them and they sync); leave out --by"
                                               : "known staff: \(names.joined(separator: ", "))\(known.count > 8 ? ", …" : "")")
        }
    }
}
