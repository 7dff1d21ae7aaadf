import SiyuCore
import SiyuWire

/// What the hub knows about a registered node, read when it says HELLO and again at AUTH.
public struct NodeRegistration: Sendable, Equatable {
    /// What verifies the node's AUTH and lets the hub prove itself (SPEC section 6); not enough
    /// to log in as the node.
    public var verifiers: Authentication.Verifiers
    /// The role the node was registered with; HELLO and every pushed op must say the same.
    public var role: Role
    /// The highest sequence number up to which the hub holds, or has settled as refused, every op
    /// of the node (SPEC section 7, "acked_seq").
    public var ackedSeq: UInt64
    /// The hub's current log position.
    public var logHead: UInt64
    /// The hub log's identity (32 bytes; SPEC section 7, "Log epochs"), sent in WELCOME.
    public var logEpoch: [UInt8]

    public init(verifiers: Authentication.Verifiers, role: Role, ackedSeq: UInt64, logHead: UInt64, logEpoch: [UInt8] = []) {
        self.verifiers = verifiers
        self.role = role
        self.ackedSeq = ackedSeq
        self.logHead = logHead
        self.logEpoch = logEpoch
    }
}

/// An op of the hub's log with its position.
public struct LoggedOp: Sendable, Equatable {
    public var position: UInt64
    public var op: Op

    public init(position: UInt64, op: Op) {
        self.position = position
        self.op = op
    }
}

/// Store work a hub session needs done, as values. The driver carries each out against the hub's
/// replica and feeds back exactly one `HubEffectResult` with `HubSession.complete`.
public enum HubEffect: Sendable, Equatable {
    /// Look the node up (at HELLO, for the salt of CHALLENGE, and again at AUTH). Answer
    /// `.registration(…)`, or `.registration(nil)` if it is unknown.
    case authorize(node: NodeID)
    /// Validate and store a PUSH of the authenticated node (whose origin and role the session has
    /// already checked) by the rules of SPEC section 7, "Upload": every op is checked before
    /// anything is stored; on success the new ops are durable and have log positions. Answer
    /// `.pushStored(ackedSeq:)`, or `.pushRefused` naming the first op refused (nothing stored but
    /// the refusal record), or `.failed`.
    case storePush(node: NodeID, ChangeSet)
    /// Read the ops in the node's scope after `cursor`, in log order, about `byteBudget` bytes
    /// worth (the session trims to the exact budget), none of a data model newer than
    /// `schemaVersion`. Answer `.changes`, `.startSnapshot` when the cursor cannot be served from
    /// the log (0 for a new node, compacted, past the head, scope changed), `.schemaTooNew`, or
    /// `.failed`. `ownOps`: the node's own ops are included in CHANGES (it is recovering them);
    /// otherwise they are left out. A snapshot always carries them (it replaces the node's state).
    case readChanges(node: NodeID, after: UInt64, byteBudget: Int, schemaVersion: UInt64, ownOps: Bool)
    /// Read part `part` (0, 1, …) of snapshot `id`: about 10,000 ops. Answer `.snapshotPart`.
    case readSnapshotPart(node: NodeID, snapshotID: UInt64, part: UInt64)
    /// Compute the SHA-256 state digest of the node's scope and the log position it holds at, in
    /// one read (SPEC section 7, "Digests"). Answer `.digest`, or `.failed`.
    case readDigest(node: NodeID)
}

/// What the hub's driver answers to a `HubEffect`.
public enum HubEffectResult: Sendable, Equatable {
    case registration(NodeRegistration?)
    case pushStored(ackedSeq: UInt64)
    /// Op `seq` of the PUSH is refused with `code` (8, 9 or 14); `message` says why, for people.
    case pushRefused(seq: UInt64, code: ErrorCode, message: String)
    /// The PUSH is over the hub's limits (`NodeRateLimits`); nothing was stored. Answered with
    /// ERROR 12 (`busy`, retryable), the connection left open.
    case pushBusy(String)
    /// `ops` in log order; `nextCursor` is where the node continues if all are sent; `more` whether
    /// further ops are pending beyond them; `schemaVersion` the data model of the batch.
    case changes([LoggedOp], nextCursor: UInt64, more: Bool, schemaVersion: Int)
    case startSnapshot(id: UInt64, cursor: UInt64, reason: SnapshotReason)
    case snapshotPart([Op], isLast: Bool, digest: [UInt8], schemaVersion: Int)
    /// The state digest (32 bytes) of the node's scope with the log at `position`.
    case digest(position: UInt64, digest: [UInt8])
    /// The next op in the node's scope needs a newer data model than the node's.
    case schemaTooNew(String)
    /// The hub failed (`internal_error`, retryable) or is overloaded (`busy`).
    case failed(ErrorCode, String)
}

/// The hub's side of one connection (SPEC section 7): handshake and HMAC authentication, PUSH
/// into the log, PULL out of it (CHANGES or a snapshot), keepalive — fed bytes, time and store
/// results, returning actions.
///
/// Guarantees:
/// - no I/O, no clock, no randomness: the nonce is given (32 fresh random bytes per connection);
/// - CHALLENGE carries the node's salt and iteration count, or for an unknown node a decoy salt
///   derived from `decoyKey` (the same for the same id), so no answer tells which ids exist;
/// - WELCOME and every later frame are sealed with the session's keys; a node frame after AUTH
///   whose MAC fails is refused with `auth_failed` and the connection closed;
/// - requests are answered one at a time, in the order they arrived; no frame is read while an
///   effect is pending;
/// - the node is refused (`auth_failed`, the same text whatever the cause) unless it is registered,
///   HELLO's role is its registered role, and its proof over this connection's transcript verifies
///   against the verifiers read at AUTH (a secret rotated or a node removed since HELLO fails);
/// - a PUSH holding an op whose origin is not the authenticated node or whose role is not its
///   registered role is refused (`permission_denied`) and the connection closed, before any store
///   work;
/// - CHANGES hold at least one op when any is pending, at most the byte budget otherwise, and
///   never more than the frame limit; snapshot parts are split over as many chunks as the frame
///   limit needs.
public struct HubSession: Sendable {
    public typealias Action = SessionAction<HubEffect>

    /// The hub's identity and limits.
    public struct Configuration: Sendable {
        public var hubID: String
        public var versions: [UInt8]
        /// The newest data model the hub accepts.
        public var schemaVersion: UInt64
        /// The CHANGES budget when a PULL says 0 (the hub's choice). A PULL's own budget is capped at the frame limit.
        public var defaultByteBudget: Int
        public var policy: KeepalivePolicy
        /// The key decoy salts for unknown node ids are derived from (random per hub process).
        public var decoyKey: [UInt8]

        public init(hubID: String, versions: [UInt8] = Frame.supportedVersions,
                    schemaVersion: UInt64 = UInt64(currentSchemaVersion), defaultByteBudget: Int = 256 * 1024,
                    policy: KeepalivePolicy = .standard, decoyKey: [UInt8] = []) {
            self.hubID = hubID
            self.decoyKey = decoyKey
            self.versions = versions
            self.schemaVersion = schemaVersion
            self.defaultByteBudget = defaultByteBudget
            self.policy = policy
        }
    }

    private enum Pending: Sendable, Equatable {
        case challenge(version: UInt8)
        case authorize(mac: [UInt8])
        case storePush(ops: Int)
        case readChanges(cursor: UInt64, budget: Int)
        case readSnapshotPart(id: UInt64, part: UInt64)
        case readDigest(cursor: UInt64)
    }

    public let configuration: Configuration
    public private(set) var connection: Connection
    /// The node as HELLO named it (authenticated once `state` is `ready`).
    public private(set) var node: NodeID?
    public private(set) var registration: NodeRegistration?
    private let nonce: [UInt8]
    private var helloRole: Role?
    private var helloSchema: UInt64 = 0
    private var challengeSalt: [UInt8] = []
    private var pending: Pending?
    private var snapshotChunks: UInt64 = 0

    /// A session for a connection a node opened. `nonce`: 32 fresh random bytes, never reused.
    public init(_ configuration: Configuration, nonce: [UInt8], now: SessionInstant) {
        self.configuration = configuration
        self.nonce = nonce
        connection = Connection(side: .hub, policy: configuration.policy,
                                acceptedSchemaVersion: configuration.schemaVersion, now: now)
    }

    public var state: ConnectionState { connection.state }
    /// False while a store effect is pending or the session is closed.
    public var wantsInput: Bool { !connection.isClosed && pending == nil }
    /// When the driver should call `tick` next.
    public var nextDeadline: SessionInstant? { connection.timerDeadline(busy: pending != nil) }

    /// Bytes from the node.
    public mutating func receive(_ bytes: [UInt8], now: SessionInstant) -> [Action] {
        if let error = connection.feed(bytes, now: now) { return connection.fail(error, now: now) }
        return drain(now: now)
    }

    /// Time passed: handshake and idle timeouts.
    public mutating func tick(now: SessionInstant) -> [Action] {
        connection.checkTimers(now: now, busy: pending != nil)
    }

    /// Ends the session politely (shutdown).
    public mutating func close(reason: String, now: SessionInstant) -> [Action] {
        connection.bye(reason, now: now)
    }

    /// The node's registration was removed or its secret rotated while this session is open:
    /// ERROR `auth_failed` and close (SPEC section 6, "Revocation").
    public mutating func revoke(now: SessionInstant) -> [Action] {
        let error = SessionError(.authFailed, "this node's registration was removed or its secret rotated at the hub; the session is closed")
        return [.report(.errorSent(error))] + connection.fail(error, now: now)
    }

    /// The transport closed under the session.
    public mutating func transportClosed() -> [Action] {
        connection.closeQuietly(.transportClosed)
    }

    /// The result of the pending effect.
    public mutating func complete(_ result: HubEffectResult, now: SessionInstant) -> [Action] {
        guard let done = pending, !connection.isClosed else { return [] }
        pending = nil
        connection.busyEnded(now: now)
        var actions: [Action]
        switch (done, result) {
        case let (.challenge(version), .registration(found)):
            actions = sendChallenge(version: version, found, now: now)
        case let (.authorize(mac), .registration(found)):
            actions = authenticate(mac: mac, found, now: now)
        case let (.storePush(count), .pushStored(acked)):
            registration?.ackedSeq = acked
            actions = [connection.send(.pushAck(ackedSeq: acked), now: now), .report(.pushAcknowledged(ackedSeq: acked))]
            _ = count   // kept for the log line a driver may add
        case let (.storePush, .pushRefused(seq, code, text)):
            let error = SessionError(code, OpRefusalText.message(seq: seq, text))
            actions = [connection.send(error.asMessage, now: now), .report(.opRefused(seq: seq, code: code.rawValue, message: error.message))]
        case let (.storePush, .pushBusy(text)):
            let error = SessionError(.busy, text)
            actions = [connection.send(error.asMessage, now: now), .report(.errorSent(error))]
        case let (.readChanges(cursor, budget), .changes(ops, next, more, schema)):
            actions = sendChanges(ops, nextCursor: max(next, cursor), more: more, schema: schema, budget: budget, now: now)
        case let (.readChanges, .startSnapshot(id, cursor, reason)):
            snapshotChunks = 0
            pending = .readSnapshotPart(id: id, part: 0)
            return [connection.send(.snapshotBegin(id: id, cursor: cursor, reason: reason), now: now),
                    .report(.snapshotStarted(id: id, cursor: cursor, reason: reason)),
                    .perform(.readSnapshotPart(node: node ?? "", snapshotID: id, part: 0))]
        case let (.readChanges, .schemaTooNew(text)):
            let error = SessionError(.schemaUnsupported, text)
            actions = [connection.send(error.asMessage, now: now), .report(.errorSent(error))]
        case let (.readSnapshotPart(id, part), .snapshotPart(ops, isLast, digest, schema)):
            actions = sendSnapshotPart(id: id, ops, schema: schema, now: now)
            if connection.isClosed { return actions }
            if isLast {
                actions.append(connection.send(.snapshotEnd(id: id, chunkCount: snapshotChunks, digest: digest), now: now))
            } else {
                pending = .readSnapshotPart(id: id, part: part + 1)
                return actions + [.perform(.readSnapshotPart(node: node ?? "", snapshotID: id, part: part + 1))]
            }
        case let (.readDigest(cursor), .digest(position, digest)) where digest.count == Message.digestSize:
            actions = [connection.send(.digest(position: position, digest: digest), now: now),
                       .report(.digest(position: position, digest: digest, cursor: cursor))]
        case let (_, .failed(code, text)):
            return connection.fail(SessionError(code, text), now: now)
        default:
            return connection.fail(SessionError(.internalError, "the driver answered \(done) with \(result)"), now: now)
        }
        return actions + drain(now: now)
    }

    // MARK: - Incoming

    private mutating func drain(now: SessionInstant) -> [Action] {
        var actions: [Action] = []
        while pending == nil, !connection.isClosed, let incoming = connection.next() {
            switch incoming {
            case let .failure(error): return actions + connection.fail(error, now: now)
            case let .skipped(type): actions.append(.report(.skippedFrame(type: type)))
            case let .message(message): actions += handle(message, now: now)
            }
        }
        return actions
    }

    private mutating func handle(_ message: Message, now: SessionInstant) -> [Action] {
        switch message {
        case .push, .pull, .digestRequest, .ping: connection.heardRequest(now: now)
        default: break
        }
        switch message {
        case let .hello(hello, role, versions, schema, helloNonce):
            guard let version = versions.filter(configuration.versions.contains).max() else {
                return connection.fail(SessionError(.unsupportedVersion,
                    "no common protocol version: the node offers \(versions.map(String.init)), this hub speaks \(configuration.versions.map(String.init))"), now: now)
            }
            guard schema <= configuration.schemaVersion else {
                return connection.fail(SessionError(.schemaUnsupported,
                    "the node's data model is version \(schema); this hub accepts up to \(configuration.schemaVersion): upgrade the hub"), now: now)
            }
            guard helloNonce.count == Message.nonceSize else {
                return connection.fail(SessionError(.malformedFrame,
                    "a version \(version) HELLO carries the node's 32-byte nonce after schema_version (SPEC section 5); this one has none"), now: now)
            }
            node = hello
            helloRole = role
            helloSchema = schema
            pending = .challenge(version: version)
            return [.perform(.authorize(node: hello))]

        case let .auth(mac):
            pending = .authorize(mac: mac)
            return [.perform(.authorize(node: node ?? ""))]

        case let .push(changeSet):
            guard let node, let registration else { return [] }
            if let forged = changeSet.ops.first(where: { $0.origin != node || $0.role != registration.role }) {
                return connection.fail(SessionError(.permissionDenied,
                    "the PUSH holds an op of \(IdentifierRule.printable(forged.origin)) (\(forged.role)); a node pushes only its own ops, as '\(node)' (\(registration.role)); nothing was stored"), now: now)
            }
            pending = .storePush(ops: changeSet.ops.count)
            return [.perform(.storePush(node: node, changeSet))]

        case let .pull(cursor, requested, ownOps):
            let budget = requested == 0 ? configuration.defaultByteBudget
                : Int(clamping: min(requested, UInt64(Frame.maxPayload)))
            pending = .readChanges(cursor: cursor, budget: budget)
            return [.perform(.readChanges(node: node ?? "", after: cursor, byteBudget: budget, schemaVersion: helloSchema, ownOps: ownOps))]

        case let .digestRequest(cursor):
            pending = .readDigest(cursor: cursor)
            return [.perform(.readDigest(node: node ?? ""))]

        case let .ping(token):
            return [connection.send(.pong(token: token), now: now)]
        case .pong:
            return []
        case let .bye(reason):
            return connection.closeQuietly(.byeReceived(reason))
        case let .error(code, retryable, text):
            return [.report(.errorReceived(code: code, retryable: retryable, message: text))]
                + connection.closeQuietly(.errorReceived(code: code, retryable: retryable, message: text))
        default:
            return connection.fail(SessionError(.unexpectedMessage, "\(message.type.specName) is not sent by a node"), now: now)
        }
    }

    /// CHALLENGE with the node's salt and iteration count, or a decoy's for an unknown id.
    private mutating func sendChallenge(version: UInt8, _ found: NodeRegistration?, now: SessionInstant) -> [Action] {
        let salt: [UInt8], iterations: Int
        if let found {
            (salt, iterations) = (found.verifiers.salt, found.verifiers.iterations)
        } else {
            salt = Array(HMACSHA256.authenticationCode(for: Array((node ?? "").utf8), key: configuration.decoyKey).prefix(Authentication.saltSize))
            iterations = Authentication.defaultIterations
        }
        challengeSalt = salt
        let sent: Action = connection.send(.challenge(version: version, hub: configuration.hubID, nonce: nonce,
                                                      salt: salt, iterations: UInt64(iterations)), now: now)
        connection.choose(version: version)
        connection.enter(.challenged)
        // A PUSH may carry no newer data model than the node announced.
        connection.acceptedSchemaVersion = min(helloSchema, configuration.schemaVersion)
        return [sent]
    }

    private mutating func authenticate(mac: [UInt8], _ found: NodeRegistration?, now: SessionInstant) -> [Action] {
        let name = node ?? ""
        let why: String?
        var clientKey: [UInt8]?
        if let found {
            if found.role != helloRole {
                why = "HELLO says role \(helloRole.map(String.init(describing:)) ?? "?"), registered as \(found.role)"
            } else if found.verifiers.salt != challengeSalt {
                why = "the node's secret was rotated between HELLO and AUTH"
            } else if let key = Authentication.clientKey(fromProof: mac, found.verifiers, transcript: connection.transcript) {
                clientKey = key
                why = nil
            } else {
                why = "the proof does not verify (wrong secret, or an AUTH recorded on another connection)"
            }
        } else {
            why = "the node is not registered"
        }
        if let why {
            // Same text on the wire whatever the cause (SPEC section 6); the log gets the cause.
            return [.report(.authenticationRefused(node: name, why: why))]
                + connection.fail(SessionError(.authFailed, "authentication failed: check the node id and its secret"), now: now)
        }
        registration = found
        connection.installKeys(Authentication.sessionKeys(clientKey: clientKey!, serverKey: found!.verifiers.serverKey,
                                                          transcript: connection.transcript))
        let welcome: Action = connection.send(.welcome(ackedSeq: found!.ackedSeq, logHead: found!.logHead,
                                                       schemaVersion: configuration.schemaVersion, logEpoch: found!.logEpoch), now: now)
        connection.enter(.ready)
        return [welcome, .report(.authenticated(node: name, hub: configuration.hubID, ackedSeq: found!.ackedSeq, logHead: found!.logHead))]
    }

    /// CHANGES with the longest prefix of `ops` within the budget (at least one op) and the frame.
    private mutating func sendChanges(_ ops: [LoggedOp], nextCursor: UInt64, more: Bool, schema: Int, budget: Int, now: SessionInstant) -> [Action] {
        func message(_ n: Int) -> Message {
            let all = n == ops.count
            return .changes(nextCursor: all ? nextCursor : ops[n - 1].position, more: all ? more : true,
                            ChangeSet(schemaVersion: schema, ops: ops.prefix(n).map(\.op)))
        }
        let prepared: Connection.PreparedMessage
        let n: Int
        if ops.isEmpty {
            (n, prepared) = (0, connection.prepare(message(0)))
        } else {
            let fitting = FrameFitting.longestPrepared(count: ops.count) { [connection] k in
                guard FrameFitting.newStringBytesUpperBound(ops.prefix(k).map(\.op)) <= ChangeSetCodec.maxStringBytes else { return nil }
                let prepared = connection.prepare(message(k))
                let size = prepared.payloadSize
                return size <= Frame.maxPayload && (k == 1 || size <= budget) ? prepared : nil
            }
            guard let fitting else { return connection.fail(SessionError(.internalError, "op at position \(ops[0].position) does not fit one frame"), now: now) }
            (n, prepared) = fitting
        }
        guard case let .changes(next, more, _) = prepared.message else { return [] }
        return [connection.send(prepared, now: now), .report(.pulled(ops: n, cursor: next, more: more))]
    }

    /// The ops of one snapshot part, in as many SNAPSHOT_CHUNK frames as the frame limit needs.
    private mutating func sendSnapshotPart(id: UInt64, _ ops: [Op], schema: Int, now: SessionInstant) -> [Action] {
        var actions: [Action] = []
        var rest = ops[...]
        while !rest.isEmpty {
            let index = snapshotChunks
            let fitting = FrameFitting.longestPrepared(count: rest.count) { [connection] k in
                let batch = Array(rest.prefix(k))
                guard FrameFitting.newStringBytesUpperBound(batch) <= ChangeSetCodec.maxStringBytes else { return nil }
                let prepared = connection.prepare(.snapshotChunk(id: id, index: index, ChangeSet(schemaVersion: schema, ops: batch)))
                return prepared.payloadSize <= Frame.maxPayload ? prepared : nil
            }
            guard let (n, chunk) = fitting else { return actions + connection.fail(SessionError(.internalError, "a snapshot op does not fit one frame"), now: now) }
            actions.append(connection.send(chunk, now: now))
            snapshotChunks += 1
            rest = rest.dropFirst(n)
        }
        return actions
    }
}
