import Foundation

/// A process holding an SQLite lock on a replica file, as Linux lists it in `/proc/locks`.
///
/// SQLite locks a database with POSIX record locks (`fcntl`): in WAL mode the writer holds a
/// write lock on byte 120 of `FILE-shm`; with a rollback journal, on the lock bytes of the file
/// itself (1073741824 and up). `/proc/locks` lists each lock with its owner's process id and the
/// locked file as device major:minor:inode, so the process keeping a command waiting can be named.
///
/// Guarantees: reads only `/proc` (or the `procRoot` given), never writes or signals anything;
/// every read is bounded (`maxLocksBytes`, `maxCommandBytes`); text from `/proc` is kept to a few
/// short words, and printed through `CLIError`, which escapes it. When nothing can be found the
/// result is empty, never a guess.
struct LockHolder: Equatable {
    /// The process id as `/proc/locks` gives it (in this process's pid namespace).
    var pid: Int
    /// What it runs, from `/proc/PID/cmdline`: the program's file name and the words after it up
    /// to the first option (`siyu-node run`); nil when that cannot be read.
    var command: String?
    /// It holds a write lock (it is writing); otherwise it holds the file open for reading.
    var writes: Bool

    static let maxLocksBytes = 4 << 20
    static let maxCommandBytes = 4_096
    /// Words of a command line kept after the program's name, and characters kept of each word.
    static let commandWords = 2
    static let wordCharacters = 40

    /// A file as `/proc/locks` names it.
    struct FileKey: Hashable {
        var major: UInt64
        var minor: UInt64
        var inode: UInt64
    }

    /// One line of `/proc/locks`: a POSIX lock held (not waited for).
    struct Lock: Equatable {
        var pid: Int
        var writes: Bool
        var file: FileKey
    }

    /// What is known of the holders of `path`'s locks: the processes, or why none were found.
    enum Finding: Equatable {
        case holders([LockHolder])
        /// `/proc/locks` could not be read (not Linux, or not mounted).
        case unavailable
        /// `/proc/locks` lists no lock on the file (the holder may have just let go of it).
        case noneListed
    }

    /// Who holds locks on the SQLite database at `path` (and its `-shm` file). Writers come
    /// first: a write lock is what keeps a writing command waiting; only when there is none are
    /// the processes reading the database file named (with a rollback journal, a reader keeps a
    /// commit waiting). `ownPID`'s read locks are left out (the waiting command's own connection
    /// holds some); its write locks are kept, since another connection of this same process may
    /// be the writer.
    static func find(path: String, ownPID: Int = Int(ProcessInfo.processInfo.processIdentifier),
                     procRoot: String = "/proc") -> Finding {
        guard let text = read(procRoot + "/locks", limit: maxLocksBytes) else { return .unavailable }
        guard let database = fileKey(of: path) else { return .noneListed }
        let files = Set([database] + [fileKey(of: path + "-shm")].compactMap { $0 })
        let locks = parse(String(decoding: text, as: UTF8.self)).filter { files.contains($0.file) }
        var writers: [Int] = [], readers: [Int] = []
        for lock in locks where lock.pid > 0 {
            if lock.writes {
                if !writers.contains(lock.pid) { writers.append(lock.pid) }
            } else if lock.file == database && lock.pid != ownPID && !readers.contains(lock.pid) {
                // A read lock on the database file itself (every open connection also holds one
                // on byte 128 of FILE-shm: that says nothing).
                readers.append(lock.pid)
            }
        }
        // A writer other than this process is the one to name; this process only when alone.
        if writers.count > 1 { writers.removeAll { $0 == ownPID } }
        let pids = writers.isEmpty ? readers : writers
        guard !pids.isEmpty else { return .noneListed }
        return .holders(pids.prefix(3).map {
            LockHolder(pid: $0, command: command(of: $0, procRoot: procRoot), writes: !writers.isEmpty)
        })
    }

    /// The POSIX locks held in a `/proc/locks` text (lines such as
    /// `1: POSIX  ADVISORY  WRITE 4312 fe:00:16310510 120 120`). Waiters (`->`), `flock` and
    /// OFD locks, and lines that do not parse, are skipped.
    static func parse(_ text: String) -> [Lock] {
        var out: [Lock] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 6, fields[1] != "->", fields[1] == "POSIX" else { continue }
            let mode = fields[3]
            guard mode == "READ" || mode == "WRITE", let pid = Int(fields[4]) else { continue }
            let parts = fields[5].split(separator: ":")
            guard parts.count == 3, let major = UInt64(parts[0], radix: 16), let minor = UInt64(parts[1], radix: 16),
                  let inode = UInt64(parts[2]) else { continue }
            out.append(Lock(pid: pid, writes: mode == "WRITE", file: FileKey(major: major, minor: minor, inode: inode)))
        }
        return out
    }

    /// The device and inode of `path` as `/proc/locks` writes them; nil if it cannot be looked at.
    static func fileKey(of path: String) -> FileKey? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let device = (attributes[.systemNumber] as? NSNumber)?.uint64Value,
              let inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value else { return nil }
        return FileKey(major: major(device), minor: minor(device), inode: inode)
    }

    /// The major and minor numbers of a Linux `dev_t` (glibc's encoding: 12 + 20 bits of major,
    /// 20 + 12 bits of minor, interleaved).
    static func major(_ device: UInt64) -> UInt64 { ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff) }
    static func minor(_ device: UInt64) -> UInt64 { (device & 0xff) | ((device >> 12) & ~0xff) }

    /// `pid`'s program name and first words (`siyu-node run`), from `/proc/PID/cmdline`, or from
    /// `/proc/PID/comm` when the command line is empty; nil when neither can be read.
    static func command(of pid: Int, procRoot: String = "/proc") -> String? {
        if let raw = read("\(procRoot)/\(pid)/cmdline", limit: maxCommandBytes) {
            let words = raw.split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
            if let program = words.first {
                var kept = [shortened((program as NSString).lastPathComponent)]
                for word in words.dropFirst().prefix(commandWords) {
                    if word.hasPrefix("-") { break }
                    kept.append(shortened(word))
                }
                return kept.joined(separator: " ")
            }
        }
        if let raw = read("\(procRoot)/\(pid)/comm", limit: 64) {
            let name = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !name.isEmpty { return shortened(name) }
        }
        return nil
    }

    private static func shortened(_ word: String) -> String {
        word.count <= wordCharacters ? word : word.prefix(wordCharacters - 1) + "…"
    }

    /// Up to `limit` bytes of a file (files in /proc report size 0, so it is read to its end).
    private static func read(_ path: String, limit: Int) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var data = Data()
        while data.count < limit {
            guard let chunk = try? handle.read(upToCount: min(65_536, limit - data.count)), !chunk.isEmpty else { break }
            data += chunk
        }
        return data
    }

    /// How a message names the holders: `siyu-node run (pid 4312)`, joined with "and".
    static func describe(_ holders: [LockHolder]) -> String {
        let names = holders.map { h in h.command.map { "\($0) (pid \(h.pid))" } ?? "process \(h.pid)" }
        switch names.count {
        case 0: return "another process"
        case 1: return names[0]
        default: return names.dropLast().joined(separator: ", ") + " and " + names.last!
        }
    }
}
