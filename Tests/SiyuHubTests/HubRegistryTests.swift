import Foundation
import Testing
import SiyuCore
import SiyuHub
import SiyuSession
import SiyuSQLite
import SiyuStore
import SiyuWire
import SiyuTestSupport

/// The hub's registry keeps verifiers, never a secret or anything that logs in (SPEC section 6).
@Suite struct HubRegistryTests {
    /// Every byte of the file and its -wal and -shm.
    static func fileBytes(_ path: String) -> Data {
        var all = Data()
        for file in [path, path + "-wal", path + "-shm"] { all += FileManager.default.contents(atPath: file) ?? Data() }
        return all
    }

    static func contains(_ haystack: Data, _ needle: [UInt8]) -> Bool { haystack.range(of: Data(needle)) != nil }

    /// What the node sends for `secret` against `record`'s verifiers verifies; the same computed
    /// from anything the hub holds does not.
    static func proofVerifies(secret: [UInt8], _ verifiers: Authentication.Verifiers) -> Bool {
        let transcript = Authentication.transcript(hello: Array("hello".utf8), challenge: Array("challenge".utf8))
        let keys = Authentication.nodeKeys(secret: secret, salt: verifiers.salt, iterations: verifiers.iterations)
        return Authentication.clientKey(fromProof: Authentication.proof(keys, transcript: transcript), verifiers, transcript: transcript) != nil
    }

    @Test func theHubFileHoldsNeitherTheSecretNorItsHMACKeyAndWhatItHoldsDoesNotLogIn() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("hub.db")
        let short = Array("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".utf8)   // 64 bytes: its HMAC key is itself
        let long = Array(String(repeating: "k", count: 100).utf8)
        let hub = try Replica.create(at: path, node: "hub-hz", role: .hq)
        try hub.registerNode("xihu", role: .store, secret: short)
        try hub.registerNode("hq", role: .hq, secret: long)
        let records = try hub.registeredNodes()
        hub.close()
        let bytes = Self.fileBytes(path)
        for needle in [short, long, SHA256.hash(long), Array(short.prefix(16)), Array(SHA256.hash(long).prefix(16))] {
            #expect(!Self.contains(bytes, needle), "the hub file holds a secret or its HMAC key")
        }
        for (record, secret) in zip(records.sorted { $0.node < $1.node }, [long, short]) {
            let v = record.verifiers
            #expect(v.salt.count == 16 && v.iterations == 4096 && v.storedKey.count == 32 && v.serverKey.count == 32)
            #expect(Self.proofVerifies(secret: secret, v))
            // Neither verifier, used as a secret, logs in.
            #expect(!Self.proofVerifies(secret: v.storedKey, v) && !Self.proofVerifies(secret: v.serverKey, v))
        }
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "a replica file is created owner-only")
    }

    @Test func aStoreTheHubDoesNotKnowIsRefusedUnlessDeclaredNew() throws {
        let dir = try TemporaryDirectory()
        let hub = try Replica.create(at: dir.path("hub.db"), node: "hub-hz", role: .hq)
        defer { hub.close() }
        #expect(throws: ReplicaError.self) { try hub.registerNode("xihu", role: .store, store: "nosuchstore", newStore: false, secret: [1]) }
        #expect(try hub.registeredNode("xihu") == nil)
        try hub.defineStore("xihu", name: "西湖店")
        try hub.registerNode("xihu", role: .store, store: "xihu", newStore: false, secret: [1], iterations: 8)
        try hub.registerNode("binjiang", role: .store, store: "binjiang", newStore: true, secret: [2], iterations: 8)
        #expect(try hub.registeredNodes().map(\.store) == ["binjiang", "xihu"])
    }

    @Test func rotatingASecretReplacesTheVerifiersAndTheOldSecretNoLongerVerifies() throws {
        let dir = try TemporaryDirectory()
        let hub = try Replica.create(at: dir.path("hub.db"), node: "hub-hz", role: .hq)
        defer { hub.close() }
        try hub.registerNode("xihu", role: .store, secret: Array("old".utf8), iterations: 8)
        try hub.rotateSecret(of: "xihu", secret: Array("new".utf8), iterations: 8)
        let v = try #require(try hub.registeredNode("xihu")).verifiers
        #expect(Self.proofVerifies(secret: Array("new".utf8), v) && !Self.proofVerifies(secret: Array("old".utf8), v))
        #expect(throws: ReplicaError.self) { try hub.rotateSecret(of: "nobody", secret: [1]) }
    }

    @Test func aRemovedNodeIsUnknownAndItsIdIsNotGivenOutAgain() throws {
        let dir = try TemporaryDirectory()
        let hub = try Replica.create(at: dir.path("hub.db"), node: "hub-hz", role: .hq)
        defer { hub.close() }
        let executor = try HubStoreExecutor(replica: hub, options: .init(bootstrapSnapshotOps: nil))
        try hub.registerNode("xihu", role: .store, secret: [1], iterations: 8)
        let op = Op(stamp: Stamp(hlc: HLC(millis: 1_764_000_000_000, logical: 0), node: "xihu"), seq: 1, role: .store, author: "chenjing",
                    body: .add(Target(.customerTag, "wm_1", "et_tea"), removes: []))
        #expect(executor.execute(.storePush(node: "xihu", ChangeSet(ops: [op]))) == .pushStored(ackedSeq: 1))
        try hub.removeNode("xihu")
        #expect(executor.execute(.authorize(node: "xihu")) == .registration(nil))
        #expect(try hub.logHead() == 1, "its ops stay in the log")
        #expect(throws: ReplicaError.self) { try hub.registerNode("xihu", role: .store, secret: [1]) }
        #expect(try executor.storedKeys()["xihu"] == nil)
    }

    /// A hub file of layout 6 (its `hub_nodes` as layouts 4 to 6 froze it, with `mac_key`)
    /// migrates: every node keeps its secret, and no key stays in the file.
    @Test func aLayout6HubMigratesItsHMACKeysToVerifiersAndKeepsNoCopy() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("hub.db")
        let short = Array("xihu-secret-of-64-bytes-or-less".utf8)
        let long = Array(String(repeating: "h", count: 90).utf8)
        try Replica.create(at: path, node: "hub-hz", role: .hq).close()
        // Back to layout 6: the one table layout 7 changed, as layout 4 created it, with rows
        // (and without layout 8's indexes and layout 9's table).
        let db = try Database(path: path, mode: .readWrite)
        try db.execute("""
            DROP INDEX customers_by_owner_store; DROP INDEX staff_by_store; DROP INDEX orders_by_store; DROP INDEX group_chats_by_owner;
            DROP TABLE hub_dropped; DROP TABLE hub_first_clocks; DROP TABLE own_set_aside;
            DROP TABLE hub_nodes;
            CREATE TABLE hub_nodes(
                node_id TEXT PRIMARY KEY, role TEXT NOT NULL, store_id TEXT, mac_key BLOB NOT NULL,
                acked_seq INTEGER NOT NULL DEFAULT 0, cursor INTEGER NOT NULL DEFAULT 0,
                registered_at INTEGER NOT NULL) WITHOUT ROWID;
            UPDATE siyu_meta SET value = 6 WHERE key = 'schema_version';
            PRAGMA user_version = 6;
            """)
        try db.prepare("INSERT INTO hub_nodes(node_id, role, store_id, mac_key, acked_seq, cursor, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?)")
            .run([.text("xihu"), .text("store"), .text("xihu"), .blob(short), .integer(7), .integer(12), .integer(1),
                  .text("hq"), .text("hq"), .null, .blob(SHA256.hash(long)), .integer(3), .integer(4), .integer(2)])
        db.close()
        #expect(try Replica.inspect(path: path).fileLayout == 6)

        let hub = try Replica(existing: path)
        let records = try hub.registeredNodes()
        hub.close()
        #expect(try Replica.inspect(path: path).fileLayout == (ReplicaSchema.migrations.last?.version ?? 0))
        #expect(records.map(\.node) == ["hq", "xihu"] && records.map(\.ackedSeq) == [3, 7] && records.map(\.cursor) == [4, 12])
        #expect(records.map(\.store) == [nil, "xihu"] && records.map(\.role) == [.hq, .store])
        #expect(Self.proofVerifies(secret: long, records[0].verifiers) && Self.proofVerifies(secret: short, records[1].verifiers))
        let bytes = Self.fileBytes(path)
        for needle in [short, long, SHA256.hash(long)] {
            #expect(!Self.contains(bytes, needle), "a migrated hub file still holds an HMAC key")
        }
    }
}
