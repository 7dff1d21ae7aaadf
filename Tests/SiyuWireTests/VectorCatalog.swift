import SiyuCore
import SiyuWire

/// The protocol test vectors: each is either a sequence of messages (encoded back to back) or raw
/// bytes that must be refused with a given error. `Protocol/vectors/<name>.vec` holds their bytes
/// and readable meaning; the tests check the files against these values in both directions.
enum VectorCatalog {
    struct Vector {
        let name: String
        let summary: String
        var messages: [Message] = []
        /// Bytes that decode to `messages` but are not their canonical encoding (skipped frames, future fields).
        var wireBytes: [UInt8]? = nil
        var malformed: [UInt8]? = nil
        var expectedError: WireError? = nil
        /// "hub to node" or "node to hub": the frames are sealed (version 2) under that key of the
        /// session the hello, challenge and auth vectors make, sequence numbers from 0.
        var sealed: String? = nil
    }

    static let t0: UInt64 = HLC(millis: 1_764_000_000_000, logical: 0).raw
    static func hlc(_ ms: UInt64, _ logical: UInt16 = 0) -> HLC { HLC(millis: 1_764_000_000_000 + ms, logical: logical) }
    static func stamp(_ ms: UInt64, _ node: String, _ logical: UInt16 = 0) -> Stamp { Stamp(hlc: hlc(ms, logical), node: node) }

    static let tagOps: [Op] = [
        Op(stamp: stamp(0, "xihu"), seq: 41, role: .store, author: "chenjing", body: .add(Target(.customerTag, "wm_lin", "et_tea"), removes: [])),
        Op(stamp: stamp(0, "xihu", 1), seq: 42, role: .store, author: "chenjing", body: .add(Target(.customerTag, "wm_zhou", "et_tea"), removes: [])),
        Op(stamp: stamp(1, "xihu"), seq: 43, role: .store, author: "chenjing",
           body: .add(Target(.customerTag, "wm_zhou", "et_gold"), removes: [stamp(0, "jingan", 7)])),
        Op(stamp: stamp(1, "xihu", 1), seq: 44, role: .store, author: "chenjing",
           body: .remove(Target(.customerTag, "wm_lin", "et_tea"), removes: [stamp(0, "xihu")])),
    ]

    /// One valid HQ push holding all twelve op kinds and every value type a schema-1 field holds.
    static let everyKind: [Op] = [
        Op(stamp: stamp(5, "总部", 3), seq: 1, role: .hq, author: "赵磊",
           body: .write(Target(.tagGroup, "et_level"), field: "name", value: .text("会员等级"), overwrites: [])),
        Op(stamp: stamp(5, "总部", 4), seq: 2, role: .hq, author: "赵磊",
           body: .write(Target(.tagGroup, "et_level"), field: "exclusive", value: .bool(true), overwrites: [])),
        Op(stamp: stamp(5, "总部", 5), seq: 3, role: .hq, author: "赵磊",
           body: .write(Target(.tagGroup, "et_level"), field: "deleted", value: .bool(false), overwrites: [])),
        Op(stamp: stamp(6, "总部"), seq: 4, role: .hq, author: "",
           body: .write(Target(.followRelation, "wm_lin", "chenjing"), field: "add_way", value: .int(201), overwrites: [stamp(2, "xihu"), stamp(4, "总部")])),
        Op(stamp: stamp(6, "总部", 1), seq: 5, role: .hq, author: "",
           body: .write(Target(.customer, "wm_lin"), field: "phone", value: .null, overwrites: [])),
        Op(stamp: stamp(6, "总部", 2), seq: 6, role: .hq, author: "赵磊",
           body: .add(Target(.customerTag, "wm_lin", "et_gold"), removes: [stamp(3, "xihu", 1)])),
        Op(stamp: stamp(6, "总部", 3), seq: 7, role: .hq, author: "赵磊",
           body: .remove(Target(.customerTag, "wm_lin", "et_tea"), removes: [stamp(1, "xihu")])),
        Op(stamp: stamp(7, "总部"), seq: 8, role: .hq, author: "赵磊", body: .add(Target(.groupMember, "wr_tuan", "wm_ma"), removes: [])),
        Op(stamp: stamp(7, "总部", 1), seq: 9, role: .hq, author: "赵磊", body: .remove(Target(.groupMember, "wr_tuan", "wm_ma"), removes: [stamp(7, "总部")])),
        Op(stamp: stamp(8, "总部"), seq: 10, role: .hq, author: "赵磊", body: .add(Target(.orderLine, "o_1001", "1"), removes: [])),
        Op(stamp: stamp(8, "总部", 1), seq: 11, role: .hq, author: "赵磊", body: .remove(Target(.orderLine, "o_1001", "1"), removes: [stamp(8, "总部")])),
        Op(stamp: stamp(9, "总部"), seq: 12, role: .hq, author: "赵磊",
           body: .status(orderID: "o_1001", from: .placed, to: .paid, seen: [stamp(3, "xihu"), stamp(8, "总部", 1)])),
        Op(stamp: stamp(10, "总部"), seq: 13, role: .hq, author: "赵磊", body: .points(customerID: "wm_lin", delta: -120)),
        Op(stamp: stamp(11, "总部"), seq: 14, role: .hq, author: "赵磊", body: .deleteCustomer(customerID: "wm_ma", observed: [stamp(1, "jingan")])),
        Op(stamp: stamp(12, "总部"), seq: 15, role: .hq, author: "赵磊", body: .acknowledge(InstanceRef(.order, "o_1002"), conflictID: "7d46c107f946")),
        Op(stamp: stamp(13, "总部"), seq: 16, role: .hq, author: "赵磊", body: .tagDeletion(InstanceRef(.tag, "et_1111"), seen: [stamp(12, "总部"), stamp(3, "xihu", 2)])),
    ]

    /// What a hub relays to an HQ node: ops of several origins in log order. The bytes value is a
    /// codec-level example (no schema-1 field holds bytes; a replica would refuse the op).
    static let mixedOrigins: [Op] = [
        Op(stamp: stamp(2, "xihu"), seq: 7, role: .store, author: "陈静", body: .points(customerID: "wm_lin", delta: 300)),
        Op(stamp: stamp(2, "xihu", 1), seq: 8, role: .store, author: "陈静", body: .add(Target(.customerTag, "wm_lin", "et_tea"), removes: [])),
        Op(stamp: stamp(1, "jingan"), seq: 3, role: .store, author: "王芳",
           body: .write(Target(.customer, "wm_ma"), field: "avatar", value: .bytes([0x00, 0xff, 0x10]), overwrites: [])),
        Op(stamp: stamp(9, "总部"), seq: 12, role: .hq, author: "赵磊",
           body: .status(orderID: "o_1001", from: .placed, to: .paid, seen: [stamp(2, "xihu", 1)])),
    ]

    /// HQ moves customer wm_lin from store xihu to store jingan (SPEC section 7, "Transfers"): the
    /// op as the old store receives it, which tells it to drop the customer.
    static let transferOps: [Op] = [
        Op(stamp: stamp(70_000, "总部"), seq: 20, role: .hq, author: "赵磊",
           body: .write(Target(.customer, "wm_lin"), field: "owner_store", value: .text("jingan"), overwrites: [stamp(0, "总部")])),
    ]

    /// What the new store's snapshot of reason 1 holds of the customer: every origin's ops.
    static let transferredHistory: [Op] = [
        Op(stamp: stamp(0, "总部"), seq: 3, role: .hq, author: "赵磊",
           body: .write(Target(.customer, "wm_lin"), field: "owner_store", value: .text("xihu"), overwrites: [])),
        Op(stamp: stamp(2, "xihu"), seq: 7, role: .store, author: "陈静", body: .points(customerID: "wm_lin", delta: 300)),
        Op(stamp: stamp(70_000, "总部"), seq: 20, role: .hq, author: "赵磊",
           body: .write(Target(.customer, "wm_lin"), field: "owner_store", value: .text("jingan"), overwrites: [stamp(0, "总部")])),
    ]

    /// A clerk's next batch on the same connection as `tagOps`: every string but one ("wm_wu") was
    /// defined by the earlier batch, so it is named by its place in the connection's dictionary.
    static let laterTagOps: [Op] = [
        Op(stamp: stamp(60_000, "xihu"), seq: 45, role: .store, author: "chenjing", body: .add(Target(.customerTag, "wm_wu", "et_tea"), removes: [])),
        Op(stamp: stamp(61_500, "xihu"), seq: 46, role: .store, author: "chenjing",
           body: .remove(Target(.customerTag, "wm_zhou", "et_gold"), removes: [stamp(1, "xihu")])),
    ]

    /// The two ops `noncanonical-forms` decodes to.
    static let noncanonicalOps: [Op] = [
        Op(stamp: stamp(0, "xihu"), seq: 41, role: .store, author: "chenjing", body: .add(Target(.customerTag, "wm_lin", "et_tea"), removes: [])),
        Op(stamp: stamp(1, "xihu"), seq: 42, role: .store, author: "chenjing",
           body: .remove(Target(.customerTag, "wm_lin", "et_tea"), removes: [stamp(0, "xihu")])),
    ]

    /// A PUSH payload written by hand with every freedom SPEC section 9 ("Valid and canonical
    /// encodings") gives an encoder, which a decoder must accept.
    static let noncanonicalPayload: [UInt8] = [
        0x81, 0x00,                                   // schema_version 1, zero-padded to two bytes
        0x00,                                         // string_base 0
        0x06,                                         // six new strings:
        0x00, 0x09] + Array("zz_unused".utf8) + [     //   0 "zz_unused", never used
        0x00, 0x04] + Array("xihu".utf8) + [          //   1 "xihu"
        0x00, 0x08] + Array("chenjing".utf8) + [      //   2 "chenjing"
        0x00, 0x06] + Array("wm_lin".utf8) + [        //   3 "wm_lin"
        0x00, 0x06] + Array("et_tea".utf8) + [        //   4 "et_tea"
        0x00, 0x04] + Array("xihu".utf8) + [          //   5 "xihu" again: a further place
        0x80, 0x80, 0xec, 0xbf, 0xfe, 0xd2, 0xad, 0xcd, 0x01,   // base_clock t0 - 5 ms, not the first op's clock
        0x02,                                         // two ops
        0x01, 0x01, 0x01, 0xa9, 0x00, 0x14, 0x02, 0x03, 0x04,   // add tag; origin 1 store; seq 41 padded; Δ +5 ms; author 2; wm_lin, et_tea
        0x12, 0x05, 0x01, 0x2a, 0x04, 0x02, 0x03, 0x04,         // remove tag + list, no same-origin/next-seq/same-author flags; origin 5 (the repeat)
        0x10, 0x01,                                   // inline stamp Δ -1 ms, own-origin bit clear, node string 1 (a back-reference was possible)
    ]

    /// Messages encoded back to back on one connection: their change sets share one dictionary.
    static func session(_ messages: [Message]) -> [UInt8] {
        var dictionary = StringDictionary()
        return messages.flatMap { $0.encoded(dictionary: &dictionary) }
    }

    static let nonce: [UInt8] = Array(0..<32)
    static let nodeNonce: [UInt8] = Array(0x20..<0x40)
    static let salt: [UInt8] = Array(0x40..<0x50)
    static let secret: [UInt8] = Array("xihu-node-secret".utf8)
    static let hello = Message.hello(node: "xihu", role: .store, versions: [2], schemaVersion: 1, nonce: nodeNonce)
    static let challenge = Message.challenge(version: 2, hub: "hub-hz", nonce: nonce, salt: salt, iterations: 4096)
    static let transcript = Authentication.transcript(hello: hello.frame().payload, challenge: challenge.frame().payload)
    static let keys = Authentication.nodeKeys(secret: secret, salt: salt, iterations: 4096)
    static let sessionKeys = Authentication.sessionKeys(clientKey: keys.clientKey, serverKey: keys.serverKey, transcript: transcript)

    /// The key of a sealed vector's direction.
    static func key(_ direction: String) -> [UInt8] { direction == "hub to node" ? sessionKeys.hubToNode : sessionKeys.nodeToHub }

    /// A sealed vector's bytes: version 2 frames, each with its MAC, sequence numbers from 0.
    static func sealedSession(_ messages: [Message], direction: String) -> [UInt8] {
        var dictionary = StringDictionary()
        let authenticator = FrameAuthenticator(key: key(direction))
        return messages.enumerated().flatMap { i, m in
            authenticator.seal(m.frame(version: 2, dictionary: &dictionary), sequence: UInt64(i)).encoded()
        }
    }

    static let all: [Vector] = [
        Vector(name: "hello", summary: "a store node offering version 2 introduces itself with its nonce (bytes 0x20…0x3f)", messages: [hello]),
        Vector(name: "hello-chinese-hq", summary: "an HQ node with a non-ASCII id offering versions 1 and 2",
               messages: [.hello(node: "总部-杭州", role: .hq, versions: [1, 2], schemaVersion: 1, nonce: nodeNonce)]),
        Vector(name: "challenge", summary: "the hub picks version 2 and sends its nonce (0x00…0x1f), the node's salt (0x40…0x4f) and 4096 iterations",
               messages: [challenge]),
        Vector(name: "auth", summary: "the proof of secret \"xihu-node-secret\" over the hello and challenge vectors' payloads (SPEC section 11, worked example)",
               messages: [.auth(mac: Authentication.proof(keys, transcript: transcript))]),
        Vector(name: "sealed-hub-to-node", summary: "WELCOME, PUSH_ACK and CHANGES sealed under hub_to_node of the auth vector's session, sequence 0, 1, 2",
               messages: [.welcome(ackedSeq: 40, logHead: 123_456, schemaVersion: 1, logEpoch: Array(0xa0...0xbf)), .pushAck(ackedSeq: 41),
                          .changes(nextCursor: 123_457, more: false, ChangeSet(ops: Array(tagOps.prefix(1))))],
               sealed: "hub to node"),
        Vector(name: "sealed-node-to-hub", summary: "PUSH, PULL and PING sealed under node_to_hub of the auth vector's session, sequence 0, 1, 2",
               messages: [.push(ChangeSet(ops: Array(tagOps.prefix(2)))), .pull(cursor: 123_456, byteBudget: 0, ownOps: false), .ping(token: 7)],
               sealed: "node to hub"),
        Vector(name: "welcome", summary: "the hub accepts the node", messages: [.welcome(ackedSeq: 40, logHead: 123_456, schemaVersion: 1, logEpoch: Array(0xa0...0xbf))]),
        Vector(name: "push-empty", summary: "a push with an empty change set", messages: [.push(ChangeSet(ops: []))]),
        Vector(name: "push-tag-ops", summary: "a clerk's batch of tag adds and removes", messages: [.push(ChangeSet(ops: tagOps))]),
        Vector(name: "push-every-op-kind", summary: "a valid HQ push: all twelve op kinds, every value type a schema-1 field holds, Chinese text, a first op with a logical counter",
               messages: [.push(ChangeSet(ops: everyKind))]),
        Vector(name: "changes-mixed-origins", summary: "a hub relaying ops of three origins, with a codec-level bytes value",
               messages: [.changes(nextCursor: 2048, more: false, ChangeSet(ops: mixedOrigins))]),
        Vector(name: "push-ack", summary: "the hub has made seq 44 durable", messages: [.pushAck(ackedSeq: 44)]),
        Vector(name: "pull", summary: "give me what follows cursor 1000, up to 64 KiB", messages: [.pull(cursor: 1000, byteBudget: 65536, ownOps: false)]),
        Vector(name: "pull-own-ops", summary: "a node recovering its own ops: what follows cursor 1000, its own ops included",
               messages: [.pull(cursor: 1000, byteBudget: 65536, ownOps: true)]),
        Vector(name: "changes", summary: "ops after the cursor, more to come", messages: [.changes(nextCursor: 1004, more: true, ChangeSet(ops: tagOps))]),
        Vector(name: "digest-request", summary: "a node that has pulled up to position 123456 asks for the hub's state digest of its scope",
               messages: [.digestRequest(cursor: 123_456)]),
        Vector(name: "digest", summary: "the hub's SHA-256 state digest of the node's scope with its log at position 123456",
               messages: [.digest(position: 123_456, digest: Array(0xa0...0xbf))]),
        Vector(name: "snapshot-multiframe", summary: "a bootstrap snapshot in four frames",
               messages: [.snapshotBegin(id: 7, cursor: 123_456, reason: .bootstrap),
                          .snapshotChunk(id: 7, index: 0, ChangeSet(ops: Array(tagOps.prefix(2)))),
                          .snapshotChunk(id: 7, index: 1, ChangeSet(ops: Array(tagOps.suffix(2)))),
                          .snapshotEnd(id: 7, chunkCount: 2, digest: Array(repeating: 0xab, count: 32))]),
        Vector(name: "changes-transfer", summary: "the CHANGES that tells store xihu its customer wm_lin moved to jingan: HQ's write of owner_store (the node drops the customer)",
               messages: [.changes(nextCursor: 4096, more: false, ChangeSet(ops: transferOps))]),
        Vector(name: "snapshot-scope-change", summary: "the snapshot of reason 1 (scope change) that brings store jingan the transferred customer's history of every origin",
               messages: [.snapshotBegin(id: 8, cursor: 4096, reason: .scopeChange),
                          .snapshotChunk(id: 8, index: 0, ChangeSet(ops: transferredHistory)),
                          .snapshotEnd(id: 8, chunkCount: 1, digest: Array(repeating: 0xcd, count: 32))]),
        Vector(name: "push-dictionary", summary: "two pushes on one connection: the second names strings the first defined",
               messages: [.push(ChangeSet(ops: tagOps)), .push(ChangeSet(ops: laterTagOps))]),
        Vector(name: "push-dictionary-restart", summary: "three pushes; the second starts the dictionary afresh (string_base 0) and the third builds on it",
               messages: [.push(ChangeSet(ops: tagOps)), .push(ChangeSet(ops: Array(laterTagOps.prefix(1)))), .push(ChangeSet(ops: Array(laterTagOps.suffix(1))))],
               wireBytes: Message.push(ChangeSet(ops: tagOps)).encoded() + session([.push(ChangeSet(ops: Array(laterTagOps.prefix(1)))), .push(ChangeSet(ops: Array(laterTagOps.suffix(1))))])),
        Vector(name: "ping-pong", summary: "a keepalive and its answer", messages: [.ping(token: 99), .pong(token: 99)]),
        Vector(name: "error", summary: "a PUSH refused because its op 43 is a store's write to the tag library (the message names the op)",
               messages: [.error(code: ErrorCode.permissionDenied.rawValue, retryable: false,
                                 message: "op 43: node 'xihu' is a store and cannot write tag 'et_gold'")]),
        Vector(name: "bye", summary: "a clean goodbye", messages: [.bye(reason: "shutting down")]),
        Vector(name: "max-varints", summary: "the largest value (2^64 - 1) in the varint fields of PULL, PUSH_ACK, PING and WELCOME",
               messages: [.pull(cursor: .max, byteBudget: .max, ownOps: false), .pushAck(ackedSeq: .max), .ping(token: .max),
                          .welcome(ackedSeq: .max, logHead: .max, schemaVersion: .max, logEpoch: [])]),
        Vector(name: "ignorable-type", summary: "a frame of type 0x80 between a PING and a PONG: skipped, not an error",
               messages: [.ping(token: 5), .pong(token: 5)],
               wireBytes: Message.ping(token: 5).encoded() + Frame(type: 0x80, payload: [0x01, 0x02, 0x03]).encoded() + Message.pong(token: 5).encoded()),
        Vector(name: "future-field", summary: "a HELLO carrying three bytes of a field from a later version after its nonce: they are ignored",
               messages: [hello],
               wireBytes: Frame(type: .hello, payload: hello.frame().payload + [0x07, 0x01, 0x02]).encoded()),
        Vector(name: "noncanonical-forms", summary: "a PUSH using every freedom a decoder must accept: padded varints, unused and repeated strings, a base_clock that is not the first op's, flags left clear, an inline stamp with its node written out where a back-reference would do",
               messages: [.push(ChangeSet(ops: noncanonicalOps))],
               wireBytes: Frame(type: .push, payload: noncanonicalPayload).encoded()),

        // Malformed input: refused with a typed error, never a frame.
        Vector(name: "bad-magic", summary: "not a Siyu stream", malformed: Array("GET / HTTP/1.1\r\n".utf8),
               expectedError: .badMagic(found: [0x47])),
        Vector(name: "bad-checksum", summary: "a ping whose last byte was corrupted",
               malformed: corruptLast(Message.ping(token: 1).encoded()), expectedError: .badChecksum(expected: checksumOf(Message.ping(token: 1).encoded(), corrupted: true), computed: checksumOf(Message.ping(token: 1).encoded(), corrupted: false))),
        Vector(name: "frame-too-large", summary: "a header declaring a payload of 1 MiB + 1 (refused before the payload arrives)",
               malformed: [0x53, 0x59, 0x01, 0x10, 0x00, 0x10, 0x00, 0x01], expectedError: .frameTooLarge(length: (1 << 20) + 1, limit: 1 << 20)),
        Vector(name: "unsupported-version", summary: "protocol version 9", malformed: withVersion(9), expectedError: .unsupportedVersion(9)),
        Vector(name: "unknown-type", summary: "type 0x7a is not defined and not ignorable",
               malformed: Frame(type: 0x7a, payload: []).encoded(), expectedError: .unknownMessageType(0x7a)),
        Vector(name: "truncated-field", summary: "a HELLO whose payload ends inside the node id",
               malformed: Frame(type: .hello, payload: [0x04, 0x78, 0x69]).encoded(), expectedError: .truncated(field: "hello node id")),
        Vector(name: "varint-too-long", summary: "a PULL cursor of eleven varint bytes",
               malformed: Frame(type: .pull, payload: Array(repeating: 0xff, count: 10) + [0x01, 0x00]).encoded(),
               expectedError: .varintTooLong(field: "pull cursor")),
        Vector(name: "string-index-out-of-range", summary: "a PUSH whose op names string 5 of a 1-string table",
               malformed: Frame(type: .push, payload: [0x01, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00, 0x01, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x05, 0x02]).encoded(),
               expectedError: .stringIndexOutOfRange(index: 5, count: 1)),
        Vector(name: "string-base-mismatch", summary: "the first PUSH of a connection builds on 3 dictionary strings the receiver never got",
               malformed: Frame(type: .push, payload: [0x01, 0x03, 0x00, 0x00, 0x00]).encoded(),
               expectedError: .stringBaseMismatch(base: 3, held: 0)),
        Vector(name: "invalid-value", summary: "a HELLO whose role byte is 2 (roles are 0 hq and 1 store)",
               malformed: Frame(type: .hello, payload: [0x04] + Array("xihu".utf8) + [0x02, 0x01, 0x01, 0x01]).encoded(),
               expectedError: .invalidValue(field: "hello role", detail: "2")),
        Vector(name: "reserved-op-kind", summary: "a PUSH whose op has kind 12, reserved",
               malformed: Frame(type: .push, payload: [0x01, 0x00, 0x00, 0x00, 0x01, 0x0c, 0x00, 0x01]).encoded(),
               expectedError: .invalidValue(field: "op kind", detail: "12")),
        Vector(name: "invalid-utf8", summary: "a BYE whose reason is not UTF-8",
               malformed: Frame(type: .bye, payload: [0x02, 0xc3, 0x28]).encoded(), expectedError: .invalidUTF8(field: "bye reason")),
    ]

    static func corruptLast(_ b: [UInt8]) -> [UInt8] { var c = b; c[c.count - 1] ^= 0x01; return c }
    static func checksumOf(_ b: [UInt8], corrupted: Bool) -> UInt32 {
        let bytes = corrupted ? corruptLast(b) : b
        return bytes.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }
    /// A ping frame of another protocol version, with a correct checksum for its own bytes.
    static func withVersion(_ v: UInt8) -> [UInt8] {
        var b = Array(Message.ping(token: 1).encoded().dropLast(4))
        b[2] = v
        return b + [UInt8(truncatingIfNeeded: CRC32C.checksum(b) >> 24), UInt8(truncatingIfNeeded: CRC32C.checksum(b) >> 16),
                    UInt8(truncatingIfNeeded: CRC32C.checksum(b) >> 8), UInt8(truncatingIfNeeded: CRC32C.checksum(b))]
    }
}
