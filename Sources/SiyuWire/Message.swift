import SiyuCore

/// Why a snapshot is being sent.
public enum SnapshotReason: UInt8, Sendable, CaseIterable {
    case bootstrap = 0, scopeChange = 1, cursorTooOld = 2
}

/// Error codes carried by an `error` message. See Protocol/SPEC.md for when each is sent and
/// whether retrying makes sense.
public enum ErrorCode: UInt64, Sendable, CaseIterable {
    case malformedFrame = 1, badChecksum = 2, frameTooLarge = 3, unsupportedVersion = 4
    case authFailed = 5, unknownNode = 6, schemaUnsupported = 7, permissionDenied = 8
    case clockSkew = 9, unexpectedMessage = 10, unknownMessageType = 11, busy = 12
    case cursorTooOld = 13, invalidOp = 14, internalError = 15

    /// The code's name as Protocol/SPEC.md writes it.
    public var specName: String {
        switch self {
        case .malformedFrame: return "malformed_frame"
        case .badChecksum: return "bad_checksum"
        case .frameTooLarge: return "frame_too_large"
        case .unsupportedVersion: return "unsupported_version"
        case .authFailed: return "auth_failed"
        case .unknownNode: return "unknown_node"
        case .schemaUnsupported: return "schema_unsupported"
        case .permissionDenied: return "permission_denied"
        case .clockSkew: return "clock_skew"
        case .unexpectedMessage: return "unexpected_message"
        case .unknownMessageType: return "unknown_message_type"
        case .busy: return "busy"
        case .cursorTooOld: return "cursor_too_old"
        case .invalidOp: return "invalid_op"
        case .internalError: return "internal_error"
        }
    }
}

/// Every message of the sync protocol. Each maps to one frame type (`type`, a `MessageType`).
public enum Message: Hashable, Sendable {
    /// `nonce`: the node's 32 fresh random bytes (version 2; empty in a version 1 HELLO).
    case hello(node: NodeID, role: Role, versions: [UInt8], schemaVersion: UInt64, nonce: [UInt8] = [])
    /// `salt` and `iterations`: the node's registration's (SPEC section 6; empty and 0 in a
    /// version 1 CHALLENGE).
    case challenge(version: UInt8, hub: String, nonce: [UInt8], salt: [UInt8] = [], iterations: UInt64 = 0)
    /// `mac`: in version 2 the proof `client_key ⊕ HMAC(stored_key, transcript)` (SPEC section 6).
    case auth(mac: [UInt8])
    /// `logEpoch`: the hub log's identity (32 bytes; SPEC section 7, "Log epochs"), empty when
    /// the hub predates it (the field is absent).
    case welcome(ackedSeq: UInt64, logHead: UInt64, schemaVersion: UInt64, logEpoch: [UInt8])
    case push(ChangeSet)
    case pushAck(ackedSeq: UInt64)
    /// `ownOps`: the node asks for its own ops too (recovering them, SPEC section 7, "Identity");
    /// written only when true.
    case pull(cursor: UInt64, byteBudget: UInt64, ownOps: Bool)
    case changes(nextCursor: UInt64, more: Bool, ChangeSet)
    /// The node asks for the hub's state digest of its scope; `cursor` is the log position the
    /// node has pulled up to (SPEC section 7, "Digests").
    case digestRequest(cursor: UInt64)
    /// The hub's answer: its log position and the SHA-256 state digest of the node's scope there.
    case digest(position: UInt64, digest: [UInt8])
    case snapshotBegin(id: UInt64, cursor: UInt64, reason: SnapshotReason)
    case snapshotChunk(id: UInt64, index: UInt64, ChangeSet)
    case snapshotEnd(id: UInt64, chunkCount: UInt64, digest: [UInt8])
    case ping(token: UInt64)
    case pong(token: UInt64)
    case error(code: UInt64, retryable: Bool, message: String)
    case bye(reason: String)

    /// The message's type.
    public var type: MessageType {
        switch self {
        case .hello: return .hello
        case .challenge: return .challenge
        case .auth: return .auth
        case .welcome: return .welcome
        case .push: return .push
        case .pushAck: return .pushAck
        case .pull: return .pull
        case .changes: return .changes
        case .digestRequest: return .digestRequest
        case .digest: return .digest
        case .snapshotBegin: return .snapshotBegin
        case .snapshotChunk: return .snapshotChunk
        case .snapshotEnd: return .snapshotEnd
        case .ping: return .ping
        case .pong: return .pong
        case .error: return .error
        case .bye: return .bye
        }
    }

    /// The frame type byte (`type.rawValue`).
    public var typeCode: UInt8 { type.rawValue }

    public static let nonceSize = 32
    public static let macSize = 32
    public static let digestSize = 32
    public static let logEpochSize = 32

    /// Encodes the message as a frame of protocol `version`, a change set in it on its own.
    public func frame(version: UInt8 = 1) -> Frame {
        var fresh = StringDictionary()
        return frame(version: version, dictionary: &fresh)
    }

    /// Encodes the message as a frame of protocol `version` for a connection whose outgoing
    /// change sets have built `dictionary` so far (updated for the change set this one carries).
    public func frame(version: UInt8 = 1, dictionary: inout StringDictionary) -> Frame {
        var w = ByteWriter(capacity: 64)
        switch self {
        case let .hello(node, role, versions, schema, nonce):
            w.string(node); w.byte(role.rawValue); w.data(versions); w.varint(schema)
            if !nonce.isEmpty { fixed(nonce, Message.nonceSize, &w) }
        case let .challenge(version, hub, nonce, salt, iterations):
            w.byte(version); w.string(hub); fixed(nonce, Message.nonceSize, &w)
            if !salt.isEmpty || iterations != 0 { w.data(salt); w.varint(iterations) }
        case let .auth(mac):
            fixed(mac, Message.macSize, &w)
        case let .welcome(acked, head, schema, epoch):
            w.varint(acked); w.varint(head); w.varint(schema)
            if !epoch.isEmpty { fixed(epoch, Message.logEpochSize, &w) }
        case let .push(cs):
            append(ChangeSetCodec.encode(cs, dictionary: &dictionary), &w)
        case let .pushAck(acked):
            w.varint(acked)
        case let .pull(cursor, budget, own):
            w.varint(cursor); w.varint(budget)
            if own { w.byte(1) }
        case let .changes(next, more, cs):
            w.varint(next); w.byte(more ? 1 : 0); append(ChangeSetCodec.encode(cs, dictionary: &dictionary), &w)
        case let .digestRequest(cursor):
            w.varint(cursor)
        case let .digest(position, digest):
            w.varint(position); fixed(digest, Message.digestSize, &w)
        case let .snapshotBegin(id, cursor, reason):
            w.varint(id); w.varint(cursor); w.byte(reason.rawValue)
        case let .snapshotChunk(id, index, cs):
            w.varint(id); w.varint(index); append(ChangeSetCodec.encode(cs, dictionary: &dictionary), &w)
        case let .snapshotEnd(id, count, digest):
            w.varint(id); w.varint(count); fixed(digest, Message.digestSize, &w)
        case let .ping(token), let .pong(token):
            w.varint(token)
        case let .error(code, retryable, message):
            w.varint(code); w.byte(retryable ? 1 : 0); w.string(message)
        case let .bye(reason):
            w.string(reason)
        }
        return Frame(version: version, type: type, payload: w.bytes)
    }

    /// The message's bytes on the wire, a change set in it on its own.
    public func encoded(version: UInt8 = 1) -> [UInt8] { frame(version: version).encoded() }

    /// The message's bytes on the wire, on a connection whose outgoing dictionary is `dictionary`.
    public func encoded(version: UInt8 = 1, dictionary: inout StringDictionary) -> [UInt8] {
        frame(version: version, dictionary: &dictionary).encoded()
    }

    /// Whether a frame type is one a receiver may skip when it does not know it (0x80–0xFF).
    public static func isIgnorable(type: UInt8) -> Bool { MessageType.isIgnorable(type) }

    /// Decodes a frame, or returns nil for an ignorable type (0x80–0xFF) this version does not know.
    public static func decodeIfKnown(_ frame: Frame) throws -> Message? {
        var fresh = StringDictionary()
        return try decodeIfKnown(frame, dictionary: &fresh)
    }

    /// Decodes a frame of a connection whose incoming dictionary is `dictionary`, or returns nil
    /// for an ignorable type this version does not know.
    public static func decodeIfKnown(_ frame: Frame, dictionary: inout StringDictionary) throws -> Message? {
        do {
            return try Message(frame: frame, dictionary: &dictionary)
        } catch WireError.unknownMessageType(let t) where isIgnorable(type: t) {
            return nil
        }
    }

    /// Decodes a frame's payload, a change set in it on its own. Bytes after the fields this
    /// version knows are ignored (they are fields added by later versions). An unknown type in
    /// 0x00–0x7F is an error.
    public init(frame: Frame) throws {
        var fresh = StringDictionary()
        try self.init(frame: frame, dictionary: &fresh)
    }

    /// Decodes a frame of a connection whose incoming change sets have built `dictionary` so far;
    /// the dictionary changes only if the frame decodes.
    public init(frame: Frame, dictionary: inout StringDictionary) throws {
        var r = PayloadReader(frame.payload)
        guard let type = frame.messageType else { throw WireError.unknownMessageType(frame.type) }
        switch type {
        case .hello:
            let node = try r.string("hello node id")
            let roleByte = try r.u8("hello role")
            guard let role = Role(rawValue: roleByte) else { throw WireError.invalidValue(field: "hello role", detail: "\(roleByte)") }
            let versions = try r.data("hello versions"), schema = try r.varint("hello schema version")
            let nonce = r.isAtEnd ? [] : try r.raw(Message.nonceSize, "hello nonce")
            self = .hello(node: node, role: role, versions: versions, schemaVersion: schema, nonce: nonce)
        case .challenge:
            let version = try r.u8("challenge version"), hub = try r.string("challenge hub id")
            let nonce = try r.raw(Message.nonceSize, "challenge nonce")
            if r.isAtEnd {
                self = .challenge(version: version, hub: hub, nonce: nonce)
            } else {
                let salt = try r.data("challenge salt")
                self = .challenge(version: version, hub: hub, nonce: nonce, salt: salt, iterations: try r.varint("challenge iterations"))
            }
        case .auth:
            self = .auth(mac: try r.raw(Message.macSize, "auth mac"))
        case .welcome:
            let acked = try r.varint("welcome acked seq"), head = try r.varint("welcome log head")
            let schema = try r.varint("welcome schema version")
            self = .welcome(ackedSeq: acked, logHead: head, schemaVersion: schema,
                            logEpoch: r.isAtEnd ? [] : try r.raw(Message.logEpochSize, "welcome log epoch"))
        case .push:
            self = .push(try ChangeSetCodec.decode(from: &r, dictionary: &dictionary))
        case .pushAck:
            self = .pushAck(ackedSeq: try r.varint("push-ack seq"))
        case .pull:
            let cursor = try r.varint("pull cursor"), budget = try r.varint("pull byte budget")
            self = .pull(cursor: cursor, byteBudget: budget, ownOps: r.isAtEnd ? false : try r.bool("pull own ops"))
        case .changes:
            let next = try r.varint("changes next cursor")
            let more = try r.bool("changes more")
            self = .changes(nextCursor: next, more: more, try ChangeSetCodec.decode(from: &r, dictionary: &dictionary))
        case .digestRequest:
            self = .digestRequest(cursor: try r.varint("digest request cursor"))
        case .digest:
            self = .digest(position: try r.varint("digest position"), digest: try r.raw(Message.digestSize, "digest"))
        case .snapshotBegin:
            let id = try r.varint("snapshot id"), cursor = try r.varint("snapshot cursor")
            let reasonByte = try r.u8("snapshot reason")
            guard let reason = SnapshotReason(rawValue: reasonByte) else {
                throw WireError.invalidValue(field: "snapshot reason", detail: "\(reasonByte)")
            }
            self = .snapshotBegin(id: id, cursor: cursor, reason: reason)
        case .snapshotChunk:
            let id = try r.varint("snapshot id"), index = try r.varint("snapshot chunk index")
            self = .snapshotChunk(id: id, index: index, try ChangeSetCodec.decode(from: &r, dictionary: &dictionary))
        case .snapshotEnd:
            self = .snapshotEnd(id: try r.varint("snapshot id"), chunkCount: try r.varint("snapshot chunk count"),
                                digest: try r.raw(Message.digestSize, "snapshot digest"))
        case .ping:
            self = .ping(token: try r.varint("ping token"))
        case .pong:
            self = .pong(token: try r.varint("pong token"))
        case .error:
            self = .error(code: try r.varint("error code"), retryable: try r.bool("error retryable"), message: try r.string("error message"))
        case .bye:
            self = .bye(reason: try r.string("bye reason"))
        }
    }
}

private func fixed(_ bytes: [UInt8], _ size: Int, _ w: inout ByteWriter) {
    for i in 0..<size { w.byte(i < bytes.count ? bytes[i] : 0) }
}

private func append(_ bytes: [UInt8], _ w: inout ByteWriter) {
    for b in bytes { w.byte(b) }
}
