import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuCommandLine
@testable import SiyuCLI
import SiyuTestSupport

/// A command kept waiting by another process's lock names that process: the lookup in
/// `/proc/locks` on its own (a made-up /proc), and a real lock held by this test process while
/// `siyu` runs in-process and as the real binary.
@Suite struct LockHolderTests {
    /// A directory standing in for /proc: `locks` and, per process, `cmdline` / `comm`.
    struct FakeProc {
        let directory: TemporaryDirectory
        var root: String { directory.path }

        init(locks: String?) throws {
            directory = try TemporaryDirectory()
            if let locks { try Data(locks.utf8).write(to: URL(fileURLWithPath: directory.path("locks"))) }
        }

        func process(_ pid: Int, cmdline: [String]? = nil, comm: String? = nil) throws {
            let dir = directory.path(String(pid))
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            if let cmdline {
                var bytes = Data()
                for word in cmdline { bytes += Data(word.utf8); bytes.append(0) }
                try bytes.write(to: URL(fileURLWithPath: dir + "/cmdline"))
            }
            if let comm { try Data((comm + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/comm")) }
        }

        func remove() { directory.remove() }
    }

    /// A replica file (and its -shm) and how /proc/locks names each.
    static func files(in dir: TemporaryDirectory) throws -> (path: String, db: String, shm: String) {
        let path = dir.path("xihu.db")
        try Replica(path: path, options: ReplicaOptions(node: "xihu", role: .store)).close()
        try Data().write(to: URL(fileURLWithPath: path + "-shm"))
        func name(_ p: String) throws -> String {
            let key = try #require(LockHolder.fileKey(of: p))
            return String(format: "%02x:%02x:", key.major, key.minor) + String(key.inode)
        }
        return (path, try name(path), try name(path + "-shm"))
    }

    @Test func theDeviceNumbersAreSplitAsLinuxDoes() {
        // glibc's makedev: makedev(254, 0) = 0xfe00.
        #expect(LockHolder.major(0xfe00) == 254 && LockHolder.minor(0xfe00) == 0)
        let major: UInt64 = 259, minor: UInt64 = 65_537
        let device = (major & 0xfff) << 8 | (major & ~0xfff) << 32 | (minor & 0xff) | (minor & ~0xff) << 12
        #expect(LockHolder.major(device) == 259 && LockHolder.minor(device) == 65_537)
    }

    @Test func parsingKeepsHeldPosixLocksOnly() {
        let text = """
            1: POSIX  ADVISORY  WRITE 4312 fe:00:16310510 120 120
            2: POSIX  ADVISORY  READ 4312 fe:00:16310510 128 128
            2: -> POSIX  ADVISORY  WRITE 77 fe:00:16310510 120 120
            3: FLOCK  ADVISORY  WRITE 6493 fe:00:16223737 0 EOF
            4: OFDLCK ADVISORY  READ  -1 00:06:9 0 EOF
            5: POSIX  ADVISORY  READ 9 103:1a:42 1073741826 1073742335
            garbage
            6: POSIX  ADVISORY  WRITE notapid fe:00:1 0 0
            """
        let locks = LockHolder.parse(text)
        #expect(locks == [
            .init(pid: 4312, writes: true, file: .init(major: 0xfe, minor: 0, inode: 16_310_510)),
            .init(pid: 4312, writes: false, file: .init(major: 0xfe, minor: 0, inode: 16_310_510)),
            .init(pid: 9, writes: false, file: .init(major: 0x103, minor: 0x1a, inode: 42)),
        ])
    }

    @Test func theWriterIsNamedByItsCommandLineAndReadersAndOtherFilesAreLeftOut() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, db, shm) = try Self.files(in: dir)
        let proc = try FakeProc(locks: """
            1: POSIX  ADVISORY  READ 500 \(shm) 128 128
            2: POSIX  ADVISORY  WRITE 4312 \(shm) 120 120
            3: POSIX  ADVISORY  READ 4312 \(shm) 128 128
            4: POSIX  ADVISORY  READ 4312 \(db) 1073741826 1073742335
            5: POSIX  ADVISORY  WRITE 600 fe:00:1 120 120
            6: POSIX  ADVISORY  READ 700 \(db) 1073741826 1073742335
            """)
        defer { proc.remove() }
        try proc.process(4312, cmdline: ["/opt/siyu/bin/siyu-node", "run", "--db", "xihu.db", "--hub", "127.0.0.1:7070"])
        let finding = LockHolder.find(path: path, ownPID: 500, procRoot: proc.root)
        #expect(finding == .holders([LockHolder(pid: 4312, command: "siyu-node run", writes: true)]))
        #expect(LockHolder.describe([LockHolder(pid: 4312, command: "siyu-node run", writes: true)]) == "siyu-node run (pid 4312)")
    }

    @Test func readersAreNamedWhenNoProcessWritesButNeverTheWaitingProcessItself() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, db, shm) = try Self.files(in: dir)
        let proc = try FakeProc(locks: """
            1: POSIX  ADVISORY  READ 500 \(shm) 128 128
            2: POSIX  ADVISORY  READ 700 \(db) 1073741826 1073742335
            """)
        defer { proc.remove() }
        try proc.process(700, comm: "siyu")
        #expect(LockHolder.find(path: path, ownPID: 500, procRoot: proc.root)
                == .holders([LockHolder(pid: 700, command: "siyu", writes: false)]))
        // Only the waiting process's own read locks: nobody to name, and it says so.
        #expect(LockHolder.find(path: path, ownPID: 700, procRoot: proc.root) == .noneListed)
    }

    @Test func whatCannotBeReadIsReportedAsUnknownNotGuessed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, _, shm) = try Self.files(in: dir)
        let none = try FakeProc(locks: nil)
        defer { none.remove() }
        #expect(LockHolder.find(path: path, ownPID: 1, procRoot: none.root) == .unavailable)
        let proc = try FakeProc(locks: "1: POSIX  ADVISORY  WRITE 4312 \(shm) 120 120\n")
        defer { proc.remove() }
        #expect(LockHolder.find(path: path, ownPID: 1, procRoot: proc.root)
                == .holders([LockHolder(pid: 4312, command: nil, writes: true)]))
        #expect(LockHolder.describe([LockHolder(pid: 4312, command: nil, writes: true)]) == "process 4312")
        #expect(LockHolder.find(path: dir.path("missing.db"), ownPID: 1, procRoot: proc.root) == .noneListed)
    }

    @Test func aHostileCommandLineIsCutShort() throws {
        let proc = try FakeProc(locks: "")
        defer { proc.remove() }
        let long = String(repeating: "x", count: 1_000)
        try proc.process(9, cmdline: ["/bin/" + long, "a\u{1b}[31m", "b", "c"])
        let command = try #require(LockHolder.command(of: 9, procRoot: proc.root))
        #expect(command.count <= 3 * LockHolder.wordCharacters + 2)
        #expect(command.hasSuffix(" a\u{1b}[31m b"))   // escaped when printed (CLIError → TerminalText)
    }

    // MARK: A real lock

    /// This process's command as `LockHolder` renders it, read from the real /proc.
    static var ownCommand: String? { LockHolder.command(of: Int(getpid())) }

    /// The file's bytes are compared with the holder closed: reading a file and closing it drops
    /// every POSIX lock this process holds on it, so a snapshot taken while the holder is open
    /// would take its lock away.
    @Test func aCommandKeptWaitingNamesTheProcessHoldingTheLockAndWritesNothing() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let id = try f.conflict("phone", in: f.hq).id
        let before = snapshot(f.hq)
        let started = Date()
        let r: RunResult
        do {
            let holder = try Replica(existing: f.hq)
            defer { holder.close() }
            // POSIX locks belong to processes: the holder here is this test process itself.
            r = try holder.inOneTransaction { siyu(["ack", "--db", f.hq, id]) }
        }
        #expect(snapshot(f.hq) == before)
        #expect(r.code == 1)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 2)
        let command = try #require(Self.ownCommand)
        #expect(lines.first?.hasPrefix("siyu: \(f.hq) is locked by \(TerminalText.escaped(command)) (pid \(getpid())) (waited 5 s") == true,
                "\(r.err)")
        #expect(lines.first?.hasSuffix("nothing was written)") == true)
        #expect(lines.last?.hasPrefix("hint: wait for it to finish") == true)
        #expect(lines.last?.contains("kill \(getpid())") == true)
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(try f.conflict("phone", in: f.hq).state == .open)
    }

    @Test func theRealBinaryNamesTheProcessHoldingTheLock() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("hq.db")
        do {
            let replica = try Replica(path: path, options: ReplicaOptions(node: "hq", role: .hq))
            defer { replica.close() }
            try replica.defineStaff("zhaolei", name: "赵磊", storeID: nil)
        }
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("WeComSamples/get_corp_tag_list.json").path
        let before = snapshot(path)
        let r: BinaryTests.Output
        do {
            let holder = try Replica(existing: path)
            defer { holder.close() }
            r = try holder.inOneTransaction { try BinaryTests.run(["wecom", "import", "--db", path, sample]) }
        }
        #expect(snapshot(path) == before)
        #expect(r.code == 1)
        let command = try #require(Self.ownCommand)
        #expect(r.err.hasPrefix("siyu: \(path) is locked by \(TerminalText.escaped(command)) (pid \(getpid()))"), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 2)
    }
}
