import Foundation
import Testing
import SiyuCore
import SiyuStore
import SiyuCommandLine
@testable import SiyuCLI
import SiyuTestSupport

/// The shape every command shares: help, usage errors, failures.
@Suite struct ProgramShapeTests {
    @Test func everyCommandPrintsItsHelpOnStandardOutputAndExitsZero() {
        for type in SiyuProgram.commands {
            let name = type.spec.name
            for flag in ["--help", "-h"] {
                let r = siyu([name, flag])
                #expect(r.code == 0, "\(name) \(flag)")
                #expect(r.out.hasPrefix("usage: siyu \(name)"), "\(name) \(flag)")
                #expect(r.err.isEmpty)
            }
            #expect(siyu(["help", name]).out == siyu([name, "--help"]).out)
        }
    }

    @Test func noCommandIsAUsageErrorAndHelpListsEveryCommand() {
        let none = siyu([])
        #expect(none.code == 2)
        #expect(none.out.isEmpty)
        #expect(none.err.contains("usage: siyu <command>"))
        let help = siyu(["--help"])
        #expect(help.code == 0)
        for type in SiyuProgram.commands { #expect(help.out.contains("  \(type.spec.name)")) }
    }

    @Test func anUnknownCommandIsRefusedWithASuggestion() {
        let r = siyu(["stauts", "--db", "x"])
        #expect(r.code == 2)
        #expect(r.err.contains("unknown command 'stauts'"))
        #expect(r.err.contains("did you mean 'status'?"))
    }

    @Test func wrongUsagePrintsTheMessageAHintAndTheUsageOnStandardError() {
        let r = siyu(["status", "--db", "x.db", "--jsn"])
        #expect(r.code == 2)
        #expect(r.out.isEmpty)
        #expect(r.err.hasPrefix("siyu status: unknown option '--jsn'\nhint: did you mean --json?"))
        #expect(r.err.contains("usage: siyu status --db FILE [--json]"))
    }

    @Test func aFailureIsOneLineAndAHintWithExitCodeOne() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = siyu(["status", "--db", dir.path("missing.db")])
        #expect(r.code == 1)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("siyu: replica file"))
        #expect(lines[1].hasPrefix("hint: "))
    }
}

/// `siyu init` and opening files that are not replicas.
@Suite struct InitAndOpenTests {
    @Test func initMakesAnEmptyReplicaThatStatusReads() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("xihu.db")
        let made = siyu(["init", "--db", path, "--node", "xihu", "--role", "store", "--store", "xihu"])
        #expect(made.code == 0, "\(made.err)")
        #expect(made.out == "created \(path): node xihu (store), store xihu, empty\n")
        let status = siyu(["status", "--db", path, "--json"])
        #expect(status.code == 0)
        let json = try #require(try parseJSON(status.out) as? [String: Any])
        #expect(json["node"] as? String == "xihu")
        #expect(json["role"] as? String == "store")
        #expect(json["store"] as? String == "xihu")
        #expect(json["ops"] as? Int == 0)
        #expect((json["conflicts"] as? [String: Any])?["open"] as? Int == 0)
    }

    @Test func initRefusesAnExistingFileEvenAnEmptyOne() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("x.db")
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        let r = siyu(["init", "--db", path, "--node", "x", "--role", "hq"])
        #expect(r.code == 1)
        #expect(r.err.contains("already exists"))
        #expect(FileManager.default.contents(atPath: path) == Data())
    }

    @Test func initChecksTheRoleAndTheNodeIdBeforeMakingAFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("x.db")
        #expect(siyu(["init", "--db", path, "--node", "x", "--role", "boss"]).code == 2)
        #expect(siyu(["init", "--db", path, "--node", "x", "--role", "hq", "--store", "s"]).code == 2)
        let bad = siyu(["init", "--db", path, "--node", "bad\nnode", "--role", "store"])
        #expect(bad.code == 1)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func readOnlyCommandsOnAnEmptyFileFailAndWriteNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path("empty.db")
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        for command in [["status"], ["show"], ["conflicts"], ["history", "customer", "x"], ["customers"], ["tags"], ["groups"], ["orders"]] {
            let r = siyu(command + ["--db", path])
            #expect(r.code == 1, "\(command)")
            #expect(r.err.contains("is not a Siyu replica (the file is empty)"), "\(command)")
        }
        #expect(FileManager.default.contents(atPath: path) == Data())
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
    }

    @Test func aDirectoryAMissingFileAndAForeignFileAreRefusedClearly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let text = dir.path("notes.db")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: text))
        let cases: [(String, String)] = [(dir.path, "it is a directory"), (text, "not an SQLite database"),
                                         (dir.path("missing.db"), "not found")]
        for (path, expected) in cases {
            for command in ["status", "ack", "rebuild"] {
                let r = siyu(command == "ack" ? [command, "--db", path, "abcd"] : [command, "--db", path])
                #expect(r.code == 1, "\(command) \(path)")
                #expect(r.err.contains(expected), "\(command) \(path): \(r.err)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path("missing.db")))
        #expect(FileManager.default.contents(atPath: text) == Data("hello".utf8))
    }
}

/// Inspecting: status, the queries, JSON.
@Suite struct InspectTests {
    @Test func statusJSONHasNumbersAsNumbersAndTheClock() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let r = siyu(["status", "--db", f.hq, "--json"])
        #expect(r.code == 0)
        let json = try #require(try parseJSON(r.out) as? [String: Any])
        #expect(json["file_layout"] as? Int == 9)
        #expect((json["ops"] as? Int ?? 0) > 10)
        #expect((json["clock"] as? [String: Any])?["millis"] is NSNumber)
        #expect((json["conflicts"] as? [String: Any])?["open"] as? Int == 3)
        #expect((json["digest"] as? String)?.count == 64)
    }

    @Test func customersFilterByNamePhoneTagAndStore() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        #expect(siyu(["customers", "--db", f.hq, "--name", "小文"]).out.contains("wm_lin"))
        #expect(siyu(["customers", "--db", f.hq, "--phone", "139"]).out.contains("wm_lin"))
        #expect(siyu(["customers", "--db", f.hq, "--tag", "金卡"]).out.contains("wm_lin"))
        #expect(siyu(["customers", "--db", f.hq, "--store", "jingan"]).out == "(no customers match)\n")
        let unknownTag = siyu(["customers", "--db", f.hq, "--tag", "铂金"])
        #expect(unknownTag.code == 1)
        let unknownID = siyu(["customers", "--db", f.hq, "--id", "wm_nobody"])
        #expect(unknownID.code == 1)
        #expect(unknownID.err.contains("customer 'wm_nobody' not found"))
        let one = siyu(["customers", "--db", f.hq, "--id", "wm_lin", "--json"])
        let list = try #require(try parseJSON(one.out) as? [[String: Any]])
        #expect(list.count == 1)
        #expect(list[0]["gender"] as? Int == 1)
        #expect((list[0]["tags"] as? [[String: Any]])?.first?["tag_id"] as? String == "et_gold")
    }

    @Test func tagsGroupsAndOrdersPrintTablesAndJSON() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let tags = siyu(["tags", "--db", f.hq])
        #expect(tags.out.contains("会员等级 (et_level)  exclusive"))
        let groups = try #require(try parseJSON(siyu(["groups", "--db", f.hq, "--json"]).out) as? [[String: Any]])
        #expect(groups.first?["capacity"] as? Int == 2)
        #expect(siyu(["groups", "--db", f.hq, "wr_1"]).out.contains("chenjing  staff"))
        #expect(siyu(["groups", "--db", f.hq, "wr_none"]).code == 1)
        let order = try #require(try parseJSON(siyu(["orders", "--db", f.hq, "o_1", "--json"]).out) as? [String: Any])
        #expect(order["total_cents"] as? Int == 2500)
        #expect(order["status"] as? String == "paid")
        #expect(siyu(["orders", "--db", f.hq]).out.contains("o_1  wm_lin    xihu   paid    1      ¥25.00"))
        #expect(siyu(["orders", "--db", f.hq, "o_404"]).code == 1)
    }

    @Test func conflictsJSONCarriesTimesTheCloserAndTypedValues() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let gender = try f.conflict("gender", in: f.hq)
        #expect(siyu(["ack", "--db", f.hq, String(gender.id.prefix(6)), "--by", "zhaolei"]).code == 0)
        let r = siyu(["conflicts", "--db", f.hq, "--json"])
        let list = try #require(try parseJSON(r.out) as? [[String: Any]])
        let entry = try #require(list.first { $0["id"] as? String == gender.id })
        #expect(entry["state"] as? String == "acknowledged")
        let kept = try #require(entry["kept"] as? [String: Any])
        #expect(kept["value"] as? Int == 1)
        #expect(((kept["writer"] as? [String: Any])?["clock"] as? [String: Any])?["time"] is String)
        #expect(((entry["discarded"] as? [String: Any])?["value"]) as? Int == 2)
        #expect((entry["closed_by"] as? [String: Any])?["staff"] as? String == "zhaolei")
        #expect(entry["current_value"] as? Int == 1)
    }

    @Test func dataIsEscapedInTextOutput() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try Replica(path: dir.path("hq.db"), options: ReplicaOptions(node: "hq", role: .hq))
        // (The store refuses control characters in a name; bidi and zero-width characters pass.)
        try r.createCustomer("wm_x", ["name": .text("evil\u{202E}eman\u{200B}")], by: "")
        r.close()
        let out = siyu(["customers", "--db", dir.path("hq.db")]).out
        #expect(!out.contains("\u{202E}"))
        #expect(out.contains("evil\\u{202E}eman\\u{200B}"))
        let json = siyu(["customers", "--db", dir.path("hq.db"), "--json"]).out
        #expect(!json.contains("\u{202E}"))
        let decoded = try #require(try parseJSON(json) as? [[String: Any]])
        #expect(decoded.first?["name"] as? String == "evil\u{202E}eman\u{200B}")
    }
}

/// `siyu history`.
@Suite struct HistoryTests {
    @Test func aFieldsHistoryShowsWhoWonWhoLostAndWhatEachOverwrote() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let r = siyu(["history", "--db", f.hq, "customer", "wm_lin", "phone"])
        #expect(r.code == 0)
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].contains("zhaolei@hq#") && lines[0].contains("overwritten later by"))
        #expect(lines[1].contains("chenjing@xihu#") && lines[1].contains("lost concurrently to zhaolei@hq#"))
        #expect(lines[2].hasPrefix("* ") && lines[2].contains("→ current"))
        let json = try #require(try parseJSON(siyu(["history", "--db", f.hq, "customer", "wm_lin", "phone", "--json"]).out) as? [String: Any])
        let entries = try #require(json["entries"] as? [[String: Any]])
        #expect(entries.map { $0["fate"] as? String } == ["overwritten", "lost", "current"])
        #expect(entries[1]["conflict_id"] as? String == (try f.conflict("phone", in: f.hq)).id)
    }

    @Test func theCurrentTagAddAndOrderStatusAreMarked() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let gold = siyu(["history", "--db", f.hq, "customer_tag", "wm_lin", "et_gold"])
        #expect(gold.out.hasPrefix("* "), "\(gold.out)")
        let silver = siyu(["history", "--db", f.hq, "customer_tag", "wm_lin", "et_silver"])
        #expect(silver.out.contains("lost: one tag per customer"))
        let status = siyu(["history", "--db", f.hq, "order", "o_1", "status"]).out.split(separator: "\n")
        #expect(status.last?.hasPrefix("* ") == true)
        #expect(status.last?.contains("placed → paid") == true)
    }

    @Test func unknownIdsAndFieldsAreErrors() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let unknown = siyu(["history", "--db", f.hq, "customer", "wm_nobody"])
        #expect(unknown.code == 1)
        #expect(unknown.out.isEmpty)
        #expect(unknown.err.contains("customer 'wm_nobody' not found"))
        #expect(siyu(["history", "--db", f.hq, "customer_tag", "wm_lin", "et_none"]).code == 1)
        #expect(siyu(["history", "--db", f.hq, "customer", "wm_lin", "colour"]).code == 2)
        #expect(siyu(["history", "--db", f.hq, "planet", "x"]).code == 2)
        #expect(siyu(["history", "--db", f.hq, "customer_tag", "wm_lin"]).code == 2)
    }
}

/// Acknowledging and overriding: resolve what was typed to one conflict before writing.
@Suite struct ResolveTests {
    @Test func ackWithAPrefixClosesTheConflictItNames() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let phone = try f.conflict("phone", in: f.store)
        let r = siyu(["ack", "--db", f.store, String(phone.id.prefix(6)), "--by", "chenjing"])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("[\(phone.id)] ACKNOWLEDGED"))
        #expect(try f.conflict("phone", in: f.store).state == .acknowledged)
        let again = siyu(["ack", "--db", f.store, phone.id])
        #expect(again.code == 1)
        #expect(again.err.contains("already acknowledged"))
    }

    @Test func anUnknownOrMalformedIdIsRefusedBeforeAnythingIsWritten() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let before = snapshot(f.store)
        let ids = Set(try Replica(existing: f.store).conflicts().map(\.id))
        let unused = try #require(["0000", "ffff", "1234", "abcd"].first { p in !ids.contains { $0.hasPrefix(p) } })
        let unknown = siyu(["ack", "--db", f.store, unused])
        #expect(unknown.code == 1)
        #expect(unknown.err.contains("no conflict with id \(unused)"))
        #expect(siyu(["ack", "--db", f.store, "52a"]).code == 2)
        #expect(siyu(["ack", "--db", f.store, "not-hex!"]).code == 2)
        #expect(snapshot(f.store) == before)
    }

    @Test func byIsAKnownStaffUseridWithoutControlCharacters() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let id = try f.conflict("phone", in: f.store).id
        let before = snapshot(f.store)
        for by in ["chenjing\nclosed by: zhaolei@hq", "\u{1b}[31mred", String(repeating: "长", count: 40_000), "nobody", "a b"] {
            let r = siyu(["ack", "--db", f.store, id, "--by", by])
            #expect(r.code == 1, "\(by.prefix(20))")
            #expect(!r.err.contains("\u{1b}"))
            #expect(r.err.split(separator: "\n").count == 2)
        }
        #expect(snapshot(f.store) == before)
    }

    @Test func overrideParsesTheValueByTheFieldsType() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let gender = try f.conflict("gender", in: f.hq)
        let before = snapshot(f.hq)
        let notInt = siyu(["override", "--db", f.hq, gender.id, "--value", "female"])
        #expect(notInt.code == 1)
        #expect(notInt.err.contains("customer.gender is an integer"))
        let outOfRange = siyu(["override", "--db", f.hq, gender.id, "--value", "7"])
        #expect(outOfRange.code == 1)
        #expect(snapshot(f.hq) == before)
        let r = siyu(["override", "--db", f.hq, gender.id, "--value", "2", "--by", "zhaolei"])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("now:       2"))
        let customer = try #require(try Replica(existing: f.hq).rows(of: .customers).first)
        #expect(customer["gender"] == .int(2))
    }

    @Test func overrideTakesEitherSide() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let phone = try f.conflict("phone", in: f.hq)
        let kept = siyu(["override", "--db", f.hq, phone.id, "--take", "kept"])
        #expect(kept.code == 0, "\(kept.err)")
        #expect(try f.conflict("phone", in: f.hq).state == .acknowledged)
        let level = try f.conflict(nil, in: f.hq)
        let discarded = siyu(["override", "--db", f.hq, level.id, "--take", "discarded"])
        #expect(discarded.code == 0, "\(discarded.err)")
        #expect(try f.conflict(nil, in: f.hq).state == .overridden)
        let tags = try Replica(existing: f.hq).rows(of: .customerTags)
        #expect(tags.map { $0["tag_id"] } == [.text("et_silver")])
        #expect(siyu(["override", "--db", f.hq, phone.id, "--take", "both"]).code == 2)
        #expect(siyu(["override", "--db", f.hq, phone.id, "--take", "kept", "--value", "1"]).code == 2)
    }

    @Test func overrideWithAValueOnAnExclusiveGroupConflictIsRefusedClearly() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let level = try f.conflict(nil, in: f.hq)
        let before = snapshot(f.hq)
        let r = siyu(["override", "--db", f.hq, level.id, "--value", "et_gold"])
        #expect(r.code == 1)
        #expect(r.err.contains("--value does not apply"))
        #expect(r.err.contains("--take discarded"))
        #expect(snapshot(f.hq) == before)
    }

    @Test func aLockedReplicaIsReportedAfterABoundedWait() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let id = try f.conflict("phone", in: f.hq).id
        let holder = try Replica(existing: f.hq)
        defer { holder.close() }
        let started = Date()
        let r = try holder.inOneTransaction { siyu(["ack", "--db", f.hq, id]) }
        #expect(r.code == 1)
        #expect(r.err.contains("is locked by ") && r.err.contains("(pid \(getpid()))"))
        #expect(!r.err.contains("SELECT") && !r.err.contains("editing"))
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(try f.conflict("phone", in: f.hq).state == .open)
    }

    @Test func aReadOnlyReplicaIsReportedBeforeWriting() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        let id = try f.conflict("phone", in: f.hq).id
        let before = FileManager.default.contents(atPath: f.hq)
        // Root writes any file whatever its mode bits, so as root (CI) the file is made immutable
        // instead (ext4's `chattr +i`), which root cannot write either.
        if getuid() == 0 {
            #expect(try ResolveTests.chattr("+i", f.hq) == 0, "chattr +i failed: the test needs ext4 and e2fsprogs")
        } else {
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: f.hq)
        }
        defer { if getuid() == 0 { _ = try? ResolveTests.chattr("-i", f.hq) } }
        let r = siyu(["ack", "--db", f.hq, id])
        #expect(r.code == 1)
        #expect(r.err.contains("is read-only"))
        #expect(FileManager.default.contents(atPath: f.hq) == before)
    }

    /// Runs `chattr FLAG PATH`; its exit status.
    static func chattr(_ flag: String, _ path: String) throws -> Int32 {
        try ChildProcess.run("/usr/bin/chattr", [flag, path], timeout: 60).termination.status
    }
}

/// `siyu demo`.
@Suite struct DemoTests {
    @Test func demoKeepRefusesToOverwriteReplicaFiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let existing = dir.path("xihu.db")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: existing))
        let r = siyu(["demo", "--keep", dir.path])
        #expect(r.code == 1)
        #expect(r.err.contains("the demo does not overwrite replica files"))
        #expect(FileManager.default.contents(atPath: existing) == Data("precious".utf8))
        #expect(!FileManager.default.fileExists(atPath: dir.path("hq.db")))
    }

    /// The main job: a real siyu-hub and three siyu-node processes on loopback (the binaries
    /// beside the tests), offline edits, nodes back one at a time, equal digests.
    @Test func theDemoConvergesAHubAndThreeNodeProcessesOnLoopback() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = siyu(["demo", "--keep", dir.path])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("all replicas converged: each equals the hub's digest of its scope"))
        #expect(r.out.contains("nodes and hub stopped"))
        for line in ["xihu   ⇄ hub: pushed 9 ops #1…#9", "jingan ⇄ hub: pushed 2 ops #1…#2"] { #expect(r.out.contains(line)) }
        let digests = r.out.split(separator: "\n").compactMap { line -> (String, Substring)? in
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 2, words[1].count == 64, words[1].allSatisfy(\.isHexDigit) else { return nil }
            return (String(words[0]), words[1])
        }
        #expect(digests.map(\.0) == ["hub", "hq", "xihu", "jingan"])
        // HQ holds everything; each store only its scope (so its digest is the hub's of that scope).
        #expect(digests.count == 4 && digests[0].1 == digests[1].1 && Set(digests.map(\.1)).count == 3)
        #expect(r.out.contains("林小文's phone → refused"))
        for name in ["hub", "hq", "xihu", "jingan"] {
            #expect(FileManager.default.fileExists(atPath: dir.path("\(name).db")))
            let log = (try? String(contentsOfFile: dir.path("\(name).log"), encoding: .utf8)) ?? ""
            #expect(log.contains("shutting down"), "\(name).log: \(log.suffix(400))")   // stopped with SIGTERM, cleanly
        }
        // The demo's files are refused as a target the second time.
        #expect(siyu(["demo", "--keep", dir.path]).code == 1)
    }
}

/// `siyu status` tells the truth about syncing: how far behind the node was when it last heard
/// the hub, whether a daemon holds the sync lock (and its pid), the quarantined ops and the scope.
@Suite struct StatusTruthTests {
    @Test func statusSaysHowFarBehindAtLastContactWhoHoldsTheSyncLockAndWhatIsQuarantined() throws {
        let f = try ConflictFixture()
        defer { f.remove() }
        do {
            let hq = try Replica(existing: f.hq), xihu = try Replica(existing: f.store)
            defer { hq.close(); xihu.close() }
            try xihu.recordSyncResult(ok: true, "caught up: nothing left to push or pull")
            try xihu.applyChanges(try hq.changeSet(since: try hq.versionVector()), nextCursor: 100)
            try xihu.recordHubHead(14_677)
            try xihu.quarantine(seq: 2, code: 8, message: "store xihu may not write customer wm_x")
        }
        let lock = try SyncLock.acquire(replicaPath: f.store, holder: "siyu-node run")
        let r = siyu(["status", "--db", f.store])
        #expect(r.code == 0)
        #expect(r.out.contains("hub log head 14677, this node now at position 100: behind by 14577 ops as of "), "\(r.out)")
        #expect(r.out.contains("sync daemon: siyu-node run, pid \(getpid()) holds \(f.store)-sync-lock"), "\(r.out)")
        #expect(r.out.contains("quarantined ops 1"))
        #expect(r.out.contains("#2 ") && r.out.contains("code 8: store xihu may not write customer wm_x"))
        #expect(r.out.contains("scope no store recorded: 1 customer, 1 group, 1 order in this file"))
        let json = try #require(try parseJSON(siyu(["status", "--db", f.store, "--json"]).out) as? [String: Any])
        let contact = try #require(json["last_contact"] as? [String: Any])
        #expect(contact["hub_head"] as? Int == 14_677)
        #expect(contact["position"] as? Int == 100)
        #expect(contact["behind"] as? Int == 14_577)
        let daemon = try #require(json["sync_daemon"] as? [String: Any])
        #expect(daemon["holder"] as? String == "siyu-node run")
        #expect(daemon["pid"] as? Int == Int(getpid()))
        #expect((json["quarantined"] as? [[String: Any]])?.first?["reason"] as? String == "store xihu may not write customer wm_x")
        lock.release()
        let after = siyu(["status", "--db", f.store])
        #expect(!after.out.contains("sync daemon: siyu-node run"))
        #expect(try parseJSON(siyu(["status", "--db", f.store, "--json"]).out) is [String: Any])
    }
}

/// Read-only inspection: a read-only replica file, or one in a read-only directory (a backup, a
/// copy on read-only media), can be inspected, and no `-wal`/`-shm` file appears beside it.
/// As root (CI) the file or directory is made immutable (`chattr +i`), which root cannot write either.
@Suite(.serialized) struct ReadOnlyInspectionTests {
    static func makeReadOnly(_ path: String) throws {
        if getuid() == 0 {
            #expect(try ResolveTests.chattr("+i", path) == 0, "chattr +i failed: the test needs ext4 and e2fsprogs")
        } else {
            try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: path)
        }
    }

    static func makeWritable(_ path: String) {
        if getuid() == 0 { _ = try? ResolveTests.chattr("-i", path) } else {
            try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        }
    }

    /// A closed replica with no write-ahead log left, in its own directory.
    static func replica() throws -> (TemporaryDirectory, String) {
        let f = try ConflictFixture()
        let dir = try TemporaryDirectory()
        let path = dir.path("copy.db")
        try FileManager.default.copyItem(atPath: f.hq, toPath: path)
        f.remove()
        return (dir, path)
    }

    @Test(arguments: ["file", "directory"])
    func readCommandsWorkOnAReadOnlyReplicaAndCreateNothingBesideIt(_ what: String) throws {
        let (dir, path) = try ReadOnlyInspectionTests.replica()
        defer { ReadOnlyInspectionTests.makeWritable(what == "file" ? path : dir.path); dir.remove() }
        let before = FileManager.default.contents(atPath: path)
        try ReadOnlyInspectionTests.makeReadOnly(what == "file" ? path : dir.path)
        for command in [["status"], ["show"], ["customers", "--id", "wm_lin"], ["conflicts"], ["tags"], ["check"], ["history", "customer", "wm_lin", "phone"]] {
            let r = siyu([command[0], "--db", path] + command.dropFirst())
            #expect(r.code == 0, "\(command): \(r.err)")
        }
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
        #expect(!FileManager.default.fileExists(atPath: path + "-shm"))
        #expect(FileManager.default.contents(atPath: path) == before)
        let edit = siyu(["customer", "set", "--db", path, "wm_lin", "--name", "x"])
        #expect(edit.code == 1)
        #expect(edit.err.contains("read-only"))
    }
}
