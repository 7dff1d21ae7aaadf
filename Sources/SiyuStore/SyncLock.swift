import Foundation

/// Says that one process is syncing a replica with its hub: `siyu-node run`, `siyu-node sync
/// --once`, `siyu sync --now` and `siyu verify` each hold it while they run, so a second one on
/// the same file is refused at once with a message that says who holds it, instead of two
/// sessions of one node racing over the file's cursor and the SQLite write lock.
///
/// It is an advisory lock (`flock`) on a file beside the replica, `FILE-sync-lock` (created with
/// mode 0600 when missing, never deleted: removing a lock file while another process may be
/// opening it would let two processes hold "the" lock). The operating system releases it when
/// the process ends, however it ends (SIGKILL included), so it never goes stale. Edits by `siyu`
/// do not take it: they never wait for a sync.
///
/// Guarantees: at most one holder per replica path on this machine at a time; `acquire` never
/// waits; `release` (or deinit) gives it up; the lock file holds the holder's description
/// (`siyu-node run, pid 4242`) for the message a refused process prints.
public final class SyncLock {
    /// The lock file of the replica at `path`.
    public static func lockPath(for path: String) -> String { path + "-sync-lock" }

    /// Why the lock could not be taken.
    public enum Failure: Error, Equatable, Sendable {
        /// Another process holds it; `holder` is what it wrote ("siyu-node run, pid 4242"), or
        /// empty if it wrote nothing readable.
        case held(path: String, holder: String)
        /// The lock file cannot be created or opened (`reason` from the system).
        case unavailable(path: String, reason: String)
    }

    public let path: String
    private var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock of the replica at `replicaPath` for `holder` (who is syncing, for the
    /// message another process gets), or throws `Failure` without waiting.
    public static func acquire(replicaPath: String, holder: String) throws -> SyncLock {
        let path = lockPath(for: replicaPath)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw Failure.unavailable(path: path, reason: String(cString: strerror(errno)))
        }
        var result: Int32
        repeat { result = flock(fd, LOCK_EX | LOCK_NB) } while result != 0 && errno == EINTR
        guard result == 0 else {
            let code = errno
            let who = readHolder(fd)
            close(fd)
            if code == EWOULDBLOCK { throw Failure.held(path: path, holder: who) }
            throw Failure.unavailable(path: path, reason: String(cString: strerror(code)))
        }
        let text = Array("\(holder), pid \(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 {
            _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
        return SyncLock(path: path, descriptor: fd)
    }

    /// Who holds the lock of the replica at `replicaPath` now ("siyu-node run, pid 4242"), or nil
    /// when nobody does. Never creates the lock file and never waits; a probe that cannot tell
    /// (the file unreadable) says nil. The probe takes a shared lock for an instant, so a syncer
    /// starting at that very instant may be refused once (it says so, and is run again).
    public static func holder(replicaPath: String) -> String? {
        let fd = open(lockPath(for: replicaPath), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: Int32
        repeat { result = flock(fd, LOCK_SH | LOCK_NB) } while result != 0 && errno == EINTR
        if result == 0 {
            _ = flock(fd, LOCK_UN)
            return nil
        }
        guard errno == EWOULDBLOCK else { return nil }
        let who = readHolder(fd)
        return who.isEmpty ? "a process that wrote no name" : who
    }

    /// Gives the lock up (the file stays). Idempotent.
    public func release() {
        guard descriptor >= 0 else { return }
        _ = ftruncate(descriptor, 0)
        close(descriptor)   // releases the flock
        descriptor = -1
    }

    deinit { release() }

    /// What the holder wrote, at most 200 bytes, printable.
    private static func readHolder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 200)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return "" }
        let text = String(decoding: buffer.prefix(Int(n)), as: UTF8.self)
        return String(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f }.map(Character.init))
            .trimmingCharacters(in: .whitespaces)
    }
}
