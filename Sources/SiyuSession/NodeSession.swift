import Foundation
import SiyuCore
import SiyuWire

/// Store work a node session needs done, as values. The driver carries each out against the
/// node's replica and feeds back exactly one `NodeEffectResult` with `NodeSession.complete`.
public enum NodeEffect: Sendable, Equatable {
    /// The hub holds every op of this node up to `after` (the driver MAY record it, for status).
    /// Read this node's own ops numbered above `after`, ascending, leaving out quarantined ones,
    /// at most `maxOps`. Answer `.outbox(ops)` (empty: nothing to push).
    case readOutbox(after: UInt64, maxOps: Int)
    /// The hub refused op `seq` for good (`code` 8 or 14). Record durably that it is quarantined —
    /// kept out of the outbox and shown to people with `message` — then answer `.done`.
    case quarantine(seq: UInt64, code: UInt64, message: String)
    /// Apply these ops and store `nextCursor` as the hub cursor, in one transaction. Answer
    /// `.done`, or `.failed` if the replica refuses them (nothing applied). `more`: the CHANGES said
    /// more ops are pending (the node has not caught up, and its state may be partial).
    /// `ackedSeq`: the hub's acked_seq as the session knows it, stored with the cursor (every own
    /// op the hub logged before the cursor is acknowledged by then).
    case applyChanges(ChangeSet, nextCursor: UInt64, more: Bool, ackedSeq: UInt64)
    /// A snapshot starts: drop anything staged from an earlier one. Answer `.done`. (The driver
    /// must not hold the replica's write lock while chunks arrive: local edits go on meanwhile.)
    case beginSnapshot(id: UInt64, cursor: UInt64, reason: SnapshotReason)
    /// Keep this chunk aside for the snapshot (applied only at its end). Answer `.done` or `.failed`.
    case applySnapshotChunk(id: UInt64, index: UInt64, ChangeSet)
    /// The snapshot is complete: apply its chunks and store `cursor` as the hub cursor, in one
    /// transaction. `digest` is the hub's state digest of the scope (the driver MAY compare).
    /// `replacingAbove` (the hub's acked_seq as the session knows it): the chunks replace what the
    /// replica holds, but for its own ops the hub may lack or did not send
    /// (`Replica.beginSnapshotLoad(replacingAbove:)`); nil: they are added to it. Answer `.done` or `.failed`.
    case finishSnapshot(id: UInt64, cursor: UInt64, digest: [UInt8], replacingAbove: UInt64?)
    /// The connection ended inside a snapshot: drop what was kept of it. No answer expected.
    case abandonSnapshot(id: UInt64)
    /// After WELCOME, before anything else (SPEC section 7, "Log epochs", "Identity"):
    /// `adoptLogEpoch` — the hub's log has a new identity: record it, move the hub cursor back
    /// to 0 and put back in the outbox every quarantined own op numbered above `ackedSeq`
    /// (WELCOME's: the hub may no longer record their refusals, so they are pushed again and
    /// judged again), in one transaction; `recoverOwnOpsThrough` — the hub holds this node's ops
    /// up to it that the replica may lack: take own ops numbered up to it from the pulls that
    /// follow (`Replica.beginOwnOpsRecovery`). Answer `.done`.
    case prepareSync(adoptLogEpoch: [UInt8]?, ackedSeq: UInt64, recoverOwnOpsThrough: UInt64?)
    /// The recovery pull is caught up: number every later own op past `through` and record it as
    /// the hub's acknowledgement (`Replica.finishOwnOpsRecovery`). Answer `.done`.
    case finishOwnOpsRecovery(through: UInt64)
}

/// What the driver answers to a `NodeEffect`.
public enum NodeEffectResult: Sendable, Equatable {
    case outbox([Op])
    case done
    /// The replica refused the hub's ops (`invalid_op`, 14) or failed (`internal_error`, 15).
    case failed(ErrorCode, String)
    /// The hub sent this node's own op with other content than the replica's under a number the
    /// hub had acknowledged: another node uses this id. The session stops (BYE).
    case identityConflict(String)
}

/// The node's side of one connection (SPEC section 7): handshake, pushing the outbox, pulling
/// changes and snapshots, keepalive — fed bytes, time and store results, returning actions.
///
/// Guarantees:
/// - no I/O and no clock: the same inputs give the same actions;
/// - at most one PUSH and one PULL outstanding, answered in the order sent; at most one effect
///   pending, and no frame is read while it is;
/// - a PUSH or PULL left unanswered for the policy's `requestTimeoutMillis` (not counting the
///   node's own store work) ends the connection (`CloseReason.requestTimeout`, retryable): a hub
///   that answers PINGs but never a request cannot hold the node;
/// - a PUSH never exceeds the frame limit or 1 MiB of new strings, and always carries at least
///   one op when the outbox is not empty;
/// - it pushes its own ops from the hub's `acked_seq` on; an op the hub refuses for good (8 or 14,
///   named by the ERROR) is quarantined through the store and syncing goes on without it;
/// - after WELCOME it adopts a new hub log epoch (cursor back to 0) and, when the hub holds more
///   of its own ops than its replica knows of, recovers them (pulls with `own_ops`) before it
///   pushes anything; it stops (BYE) on a real identity conflict (the hub holds another op under a
///   number it had acknowledged as this node's);
/// - CHANGES and snapshots are applied through effects, the cursor stored with them; a change set
///   of a newer data model than the node's is refused before it is decoded.
public struct NodeSession: Sendable {
    public typealias Action = SessionAction<NodeEffect>

    /// Who the node is and how it syncs.
    public struct Configuration: Sendable {
        public var node: NodeID
        public var role: Role
        public var secret: [UInt8]
        public var schemaVersion: UInt64
        public var versions: [UInt8]
        /// The most payload bytes asked for per CHANGES (0: the hub's choice).
        public var byteBudget: UInt64
        /// The most ops read from the outbox for one PUSH.
        public var maxOpsPerPush: Int
        public var policy: KeepalivePolicy
        /// The node's keys for one salt and iteration count, computed ahead (a node that remembers
        /// them from an earlier handshake, or a bench starting thousands of nodes): used when the
        /// CHALLENGE names that salt and count, so the handshake runs no PBKDF2; otherwise ignored.
        public var saltedKeys: SaltedKeys?

        public init(node: NodeID, role: Role, secret: [UInt8], schemaVersion: UInt64 = UInt64(currentSchemaVersion),
                    versions: [UInt8] = Frame.supportedVersions, byteBudget: UInt64 = 256 * 1024,
                    maxOpsPerPush: Int = 10_000, policy: KeepalivePolicy = .standard) {
            self.node = node
            self.role = role
            self.secret = secret
            self.schemaVersion = schemaVersion
            self.versions = versions
            self.byteBudget = byteBudget
            self.maxOpsPerPush = maxOpsPerPush
            self.policy = policy
        }
    }

    /// A node's keys (SPEC section 6) derived from its secret with `salt` and `iterations`.
    public struct SaltedKeys: Sendable {
        public var salt: [UInt8]
        public var iterations: Int
        public var keys: Authentication.NodeKeys

        /// Runs PBKDF2 once: the keys `secret` gives with this salt and iteration count.
        public init(secret: [UInt8], salt: [UInt8], iterations: Int) {
            self.salt = salt
            self.iterations = iterations
            keys = Authentication.nodeKeys(secret: secret, salt: salt, iterations: iterations)
        }
    }

    private enum Request: Sendable, Equatable {
        case push(first: UInt64, last: UInt64)
        case pull
        case digest
    }

    private struct Snapshot: Sendable {
        var id: UInt64
        var cursor: UInt64
        var nextIndex: UInt64
    }

    private enum Pending: Sendable, Equatable {
        case readOutbox, quarantine, applyChanges(next: UInt64, more: Bool, ops: Int), snapshotStep, finishSnapshot
        case prepareSync, finishRecovery
    }

    public let configuration: Configuration
    public private(set) var connection: Connection
    /// The hub's acked_seq as last heard (WELCOME, then PUSH_ACK).
    public private(set) var ackedSeq: UInt64 = 0
    /// The log position after which the node next pulls.
    public private(set) var cursor: UInt64
    /// The hub's id, from CHALLENGE.
    public private(set) var hubID: String?
    private let lastOwnSeq: UInt64
    private let nonce: [UInt8]
    /// The hub log epoch the stored cursor refers to (nil: the driver keeps none; empty: none yet).
    private let knownLogEpoch: [UInt8]?
    /// The acked_seq the replica recorded (nil: the driver keeps none).
    private let recordedAckedSeq: UInt64?
    /// While the node recovers its own ops from the hub: the hub's acked_seq it recovers up to.
    /// Nothing is pushed until the recovery pull is caught up.
    public private(set) var recoveringOwnOpsThrough: UInt64?
    private var outstanding: [Request] = []
    private var pending: Pending?
    private var snapshot: Snapshot?
    private var pushWanted = false
    private var pushRetryAt: SessionInstant?
    private var pullAt: SessionInstant?
    private var pullEnabled = true
    private var caughtUpOnPull = false
    private var nextPingToken: UInt64 = 1
    /// Since when the oldest outstanding request has waited for (more of) its answer; nil when
    /// nothing is outstanding.
    private var requestWaitSince: SessionInstant?

    /// A session for a new connection. `cursor` is the hub cursor stored in the replica and
    /// `lastOwnSeq` the highest sequence number the node has given its own ops; `logEpoch` the hub
    /// log epoch the cursor refers to (empty if none is recorded) and `recordedAckedSeq` the
    /// acked_seq the replica recorded — nil for a driver that keeps neither (then neither is checked).
    /// `nonce`: 32 fresh random bytes, never reused (the default draws them from the system's CSPRNG).
    public init(_ configuration: Configuration, cursor: UInt64, lastOwnSeq: UInt64, logEpoch: [UInt8]? = nil,
                recordedAckedSeq: UInt64? = nil, now: SessionInstant, nonce: [UInt8] = NodeSession.freshNonce()) {
        self.configuration = configuration
        self.nonce = nonce
        self.cursor = cursor
        self.lastOwnSeq = lastOwnSeq
        knownLogEpoch = logEpoch
        self.recordedAckedSeq = recordedAckedSeq
        connection = Connection(side: .node, policy: configuration.policy,
                                acceptedSchemaVersion: configuration.schemaVersion, now: now)
    }

    public var state: ConnectionState { connection.state }
    /// False while a store effect is pending or the session is closed: the driver should stop
    /// reading the socket until it is true again.
    public var wantsInput: Bool { !connection.isClosed && pending == nil }
    /// Ready, with nothing to push (as far as the session knows), nothing outstanding and the last
    /// PULL answered with `more = false`: what `siyu-node sync --once` waits for.
    public var isCaughtUp: Bool {
        state == .ready && outstanding.isEmpty && pending == nil && !pushWanted && pushRetryAt == nil
            && snapshot == nil && (caughtUpOnPull || !pullEnabled)
    }

    /// Opens the handshake: HELLO.
    public mutating func start(now: SessionInstant) -> [Action] {
        guard state == .hello, !connection.isClosed else { return [] }
        return [connection.send(.hello(node: configuration.node, role: configuration.role, versions: configuration.versions,
                                       schemaVersion: configuration.schemaVersion, nonce: nonce), now: now)]
    }

    /// Bytes from the hub.
    public mutating func receive(_ bytes: [UInt8], now: SessionInstant) -> [Action] {
        if let error = connection.feed(bytes, now: now) { return connection.fail(error, now: now) }
        return drain(now: now)
    }

    /// The result of the pending effect.
    public mutating func complete(_ result: NodeEffectResult, now: SessionInstant) -> [Action] {
        guard let done = pending, !connection.isClosed else { return [] }
        pending = nil
        connection.busyEnded(now: now)
        if requestWaitSince != nil { requestWaitSince = now }   // the node's own store work is not the hub's silence
        var actions: [Action] = []
        switch (done, result) {
        case let (.readOutbox, .outbox(ops)):
            actions += push(ops, now: now)
        case (.quarantine, .done):
            pushWanted = true
        case let (.applyChanges(next, more, count), .done):
            cursor = next
            actions.append(.report(.pulled(ops: count, cursor: next, more: more)))
            if more { actions += sendPull(now: now) } else {
                caughtUpOnPull = true
                pullAt = now.adding(milliseconds: configuration.policy.pollIntervalMillis)
                if let through = recoveringOwnOpsThrough {
                    pending = .finishRecovery
                    return actions + [.perform(.finishOwnOpsRecovery(through: through))]
                }
            }
        case (.snapshotStep, .done):
            break
        case (.prepareSync, .done):
            pushWanted = recoveringOwnOpsThrough == nil
            actions += sendPull(now: now)
        case (.finishRecovery, .done):
            recoveringOwnOpsThrough = nil
            pushWanted = true
        case let (_, .identityConflict(why)):
            return actions + abandon() + [.report(.identityConflict(why))]
                + connection.bye("identity conflict: the hub holds other ops under this node's id", now: now)
        case (.finishSnapshot, .done):
            if let s = snapshot {
                cursor = s.cursor
                actions.append(.report(.snapshotFinished(id: s.id, chunks: s.nextIndex, cursor: s.cursor)))
            }
            snapshot = nil
            actions += sendPull(now: now)
        case let (_, .failed(code, message)):
            return actions + abandon() + connection.fail(SessionError(code, message), now: now)
        default:
            return abandon() + connection.fail(SessionError(.internalError, "the driver answered \(done) with \(result)"), now: now)
        }
        return actions + pump(now: now) + drain(now: now)
    }

    /// The node's outbox grew (a local edit): push when possible.
    public mutating func outboxGrew(now: SessionInstant) -> [Action] {
        guard !connection.isClosed else { return [] }
        pushWanted = true
        return pump(now: now)
    }

    /// When the driver should call `tick` next (nil: only when something arrives).
    public var nextDeadline: SessionInstant? {
        guard !connection.isClosed else { return nil }
        var all = [connection.timerDeadline(busy: pending != nil)].compactMap { $0 }
        if state == .ready {
            all.append(connection.pingDeadline)
            if pending == nil, let since = requestWaitSince { all.append(since.adding(milliseconds: configuration.policy.requestTimeoutMillis)) }
            if let p = pushRetryAt { all.append(p) }
            if let p = pullAt, pullEnabled { all.append(p) }
        }
        return all.min()
    }

    /// Time passed: timeouts, PING, a scheduled PULL or push retry.
    public mutating func tick(now: SessionInstant) -> [Action] {
        let closing: [Action] = connection.checkTimers(now: now, busy: pending != nil)
        if !closing.isEmpty { return abandon() + closing }
        if state == .ready, pending == nil, let since = requestWaitSince,
           now >= since.adding(milliseconds: configuration.policy.requestTimeoutMillis) {
            let what = outstanding.first.map { r -> String in
                switch r { case .push: return "PUSH"; case .pull: return "PULL"; case .digest: return "DIGEST_REQUEST" }
            } ?? "request"
            return abandon() + connection.bye("no answer to this node's \(what) for \(configuration.policy.requestTimeoutMillis / 1000) s",
                                              closing: .requestTimeout, now: now)
        }
        var actions: [Action] = []
        if state == .ready, now >= connection.pingDeadline {
            actions.append(connection.send(.ping(token: nextPingToken), now: now))
            nextPingToken &+= 1
        }
        if let p = pushRetryAt, now >= p { pushRetryAt = nil; pushWanted = true }
        return actions + pump(now: now)
    }

    /// Asks the hub for its state digest of this node's scope (DIGEST_REQUEST, SPEC section 7,
    /// "Digests"), at most one at a time, in `ready`. The answer is reported as `.digest` with the
    /// cursor the node's replica holds at that moment; a hub that predates digests answers
    /// ERROR 11, reported as `.digestUnsupported` (the connection then closes).
    public mutating func requestDigest(now: SessionInstant) -> [Action] {
        guard state == .ready, !outstanding.contains(.digest) else { return [] }
        outstanding.append(.digest)
        if requestWaitSince == nil { requestWaitSince = now }
        return [connection.send(.digestRequest(cursor: cursor), now: now)]
    }

    /// Pulls as soon as possible instead of waiting for the poll interval (a driver that learned
    /// the hub's log moved on, say from a DIGEST's position).
    public mutating func pullNow(now: SessionInstant) -> [Action] {
        guard state == .ready else { return [] }
        pullAt = now
        return pump(now: now)
    }

    /// Ends the session politely (shutdown).
    public mutating func close(reason: String, now: SessionInstant) -> [Action] {
        abandon() + connection.bye(reason, now: now)
    }

    /// The transport closed under the session.
    public mutating func transportClosed() -> [Action] {
        abandon() + connection.closeQuietly(.transportClosed)
    }

    // MARK: - Incoming

    private mutating func drain(now: SessionInstant) -> [Action] {
        var actions: [Action] = []
        while pending == nil, !connection.isClosed, let incoming = connection.next() {
            switch incoming {
            case let .failure(error): return actions + abandon() + connection.fail(error, now: now)
            case let .skipped(type): actions.append(.report(.skippedFrame(type: type)))
            case let .message(message):
                actions += handle(message, now: now)
                if message.answersARequest { requestWaitSince = outstanding.isEmpty ? nil : now }
            }
        }
        return actions
    }

    private mutating func handle(_ message: Message, now: SessionInstant) -> [Action] {
        switch message {
        case let .challenge(version, hub, _, salt, iterations):
            guard configuration.versions.contains(version) else {
                return connection.fail(SessionError(.unsupportedVersion, "the hub chose version \(version), which this node did not offer"), now: now)
            }
            guard salt.count >= 8, salt.count <= 64, iterations >= 1, iterations <= UInt64(Authentication.maxIterations) else {
                return connection.fail(SessionError(.malformedFrame,
                    "a CHALLENGE with a salt of \(salt.count) bytes and \(iterations) iterations; SPEC section 6 allows 8–64 bytes and 1–\(Authentication.maxIterations) iterations"), now: now)
            }
            connection.choose(version: version)
            connection.enter(.challenged)
            hubID = hub
            let keys: Authentication.NodeKeys
            if let known = configuration.saltedKeys, known.salt == salt, known.iterations == Int(iterations) {
                keys = known.keys
            } else {
                keys = NodeKeyCache.shared.keys(secret: configuration.secret, salt: salt, iterations: Int(iterations))
            }
            let transcript = connection.transcript
            let sent: Action = connection.send(.auth(mac: Authentication.proof(keys, transcript: transcript)), now: now)
            // WELCOME must come sealed with these keys: only a hub holding this node's verifiers can.
            connection.installKeys(Authentication.sessionKeys(clientKey: keys.clientKey, serverKey: keys.serverKey, transcript: transcript))
            return [sent]

        case let .welcome(acked, head, _, epoch):
            connection.enter(.ready)
            ackedSeq = acked
            var actions: [Action] = [.report(.authenticated(node: configuration.node, hub: hubID ?? "", ackedSeq: acked, logHead: head))]
            // A new log epoch: the hub's history changed (restored, or it lost its last commits);
            // positions after its rollback point may hold other ops, so pull from the start.
            var adopt: [UInt8]?
            if let known = knownLogEpoch, !epoch.isEmpty, epoch != known {
                adopt = epoch
                if !known.isEmpty || cursor > 0 {
                    actions.append(.report(.logEpochChanged(cursor: cursor)))
                }
                cursor = 0
            }
            // The hub holds own ops this replica may lack (its file lost its last commits, or
            // was restored): recover them before pushing (SPEC section 7, "Identity").
            if acked > lastOwnSeq || recordedAckedSeq.map({ acked > $0 }) == true {
                recoveringOwnOpsThrough = acked
                actions.append(.report(.recoveringOwnOps(through: acked, lastOwnSeq: lastOwnSeq)))
            }
            if adopt != nil || recoveringOwnOpsThrough != nil {
                pending = .prepareSync
                return actions + [.perform(.prepareSync(adoptLogEpoch: adopt, ackedSeq: acked, recoverOwnOpsThrough: recoveringOwnOpsThrough))]
            }
            pushWanted = true
            actions += sendPull(now: now)
            return actions + pump(now: now)

        case let .pushAck(acked):
            guard case let .push(_, last)? = outstanding.first else { return unexpected(message, now: now) }
            outstanding.removeFirst()
            ackedSeq = acked
            var actions: [Action] = [.report(.pushAcknowledged(ackedSeq: acked))]
            if acked >= last { pushWanted = true } else {
                // The hub did not take the whole batch without saying why: try again later, not in a loop.
                pushRetryAt = now.adding(milliseconds: configuration.policy.pushRetryMillis)
            }
            actions += pump(now: now)
            return actions

        case let .changes(next, more, changeSet):
            guard outstanding.first == .pull, snapshot == nil else { return unexpected(message, now: now) }
            outstanding.removeFirst()
            pending = .applyChanges(next: next, more: more, ops: changeSet.ops.count)
            return [.perform(.applyChanges(changeSet, nextCursor: next, more: more, ackedSeq: ackedSeq))]

        case let .snapshotBegin(id, snapshotCursor, reason):
            guard outstanding.first == .pull, snapshot == nil else { return unexpected(message, now: now) }
            snapshot = Snapshot(id: id, cursor: snapshotCursor, nextIndex: 0)
            pending = .snapshotStep
            return [.report(.snapshotStarted(id: id, cursor: snapshotCursor, reason: reason)),
                    .perform(.beginSnapshot(id: id, cursor: snapshotCursor, reason: reason))]

        case let .snapshotChunk(id, index, changeSet):
            guard var s = snapshot, s.id == id, s.nextIndex == index else { return unexpected(message, now: now) }
            s.nextIndex += 1
            snapshot = s
            pending = .snapshotStep
            return [.perform(.applySnapshotChunk(id: id, index: index, changeSet))]

        case let .snapshotEnd(id, count, digest):
            guard let s = snapshot, s.id == id else { return unexpected(message, now: now) }
            guard s.nextIndex == count else {
                return abandon() + connection.fail(SessionError(.malformedFrame, "SNAPSHOT_END says \(count) chunks, but \(s.nextIndex) arrived"), now: now)
            }
            outstanding.removeFirst()   // the PULL is answered
            pending = .finishSnapshot
            // A snapshot replaces what the node holds (SPEC section 7, "Snapshots"), keeping the own
            // ops the hub may lack (numbered above its acked_seq) and those of instances it did not bring.
            return [.perform(.finishSnapshot(id: id, cursor: s.cursor, digest: digest, replacingAbove: ackedSeq))]

        case let .digest(position, digest):
            guard outstanding.first == .digest else { return unexpected(message, now: now) }
            outstanding.removeFirst()
            return [.report(.digest(position: position, digest: digest, cursor: cursor))]

        case let .ping(token):
            return [connection.send(.pong(token: token), now: now)]
        case .pong:
            return []
        case let .bye(reason):
            return abandon() + connection.closeQuietly(.byeReceived(reason))
        case let .error(code, retryable, text):
            return handleError(code: code, retryable: retryable, text: text, now: now)
        default:
            return unexpected(message, now: now)
        }
    }

    private mutating func handleError(code: UInt64, retryable: Bool, text: String, now: SessionInstant) -> [Action] {
        let received: Action = .report(.errorReceived(code: code, retryable: retryable, message: text))
        let head = outstanding.first
        switch (ErrorCode(rawValue: code), head) {
        case (.permissionDenied?, .push(let first, let last)?), (.invalidOp?, .push(let first, let last)?):
            outstanding.removeFirst()
            guard let seq = OpRefusalText.seq(in: text) else {
                return [received] + abandon() + connection.bye("the hub refused a PUSH without naming the op (SPEC section 8); this node cannot go on", now: now)
            }
            if seq <= ackedSeq {
                let why = "the hub holds another op numbered #\(seq) for this node id: it was restored from a backup or another node uses its id; rejoin under a new node id"
                return [received, .report(.identityConflict(why))] + abandon() + connection.bye("identity conflict", now: now)
            }
            guard seq >= first, seq <= last else {
                return [received] + abandon() + connection.bye("the hub refused op #\(seq), which the PUSH did not hold", now: now)
            }
            pending = .quarantine
            return [received, .report(.opQuarantined(seq: seq, code: code, message: text)),
                    .perform(.quarantine(seq: seq, code: code, message: text))]
        case (.clockSkew?, .push?), (.busy?, .push?):
            outstanding.removeFirst()
            let policy = configuration.policy
            pushRetryAt = now.adding(milliseconds: code == ErrorCode.busy.rawValue
                                     ? policy.busyRetryDelay(node: configuration.node, now: now) : policy.pushRetryMillis)
            return [received] + pump(now: now)
        case (.schemaUnsupported?, .pull?) where snapshot == nil:
            outstanding.removeFirst()
            pullEnabled = false
            return [received, .report(.upgradeNeeded(text))] + pump(now: now)
        case (.unknownMessageType?, .digest?):
            // A hub that predates DIGEST_REQUEST (SPEC section 4); it closes the connection.
            outstanding.removeFirst()
            return [received, .report(.digestUnsupported(text))] + abandon()
                + connection.closeQuietly(.errorReceived(code: code, retryable: retryable, message: text))
        case (.cursorTooOld?, _):
            return [received]   // informational (SPEC section 8): a snapshot follows
        default:
            return [received] + abandon() + connection.closeQuietly(.errorReceived(code: code, retryable: retryable, message: text))
        }
    }

    private mutating func unexpected(_ message: Message, now: SessionInstant) -> [Action] {
        abandon() + connection.fail(SessionError(.unexpectedMessage, "\(message.type.specName) does not answer anything this node asked"), now: now)
    }

    /// An effect that rolls back a snapshot the connection is leaving unfinished.
    private mutating func abandon() -> [Action] {
        guard let s = snapshot, !connection.isClosed else { return [] }
        snapshot = nil
        return [.perform(.abandonSnapshot(id: s.id))]
    }

    // MARK: - Outgoing

    /// Starts whatever is due and possible: reading the outbox for a PUSH, a scheduled PULL.
    private mutating func pump(now: SessionInstant) -> [Action] {
        guard state == .ready, !connection.isClosed, pending == nil else { return [] }
        var actions: [Action] = []
        if let p = pullAt, pullEnabled, now >= p, !outstanding.contains(.pull), snapshot == nil {
            actions += sendPull(now: now)
        }
        if pushWanted, pushRetryAt == nil, recoveringOwnOpsThrough == nil, !outstanding.contains(where: { if case .push = $0 { return true }; return false }) {
            pushWanted = false
            pending = .readOutbox
            actions.append(.perform(.readOutbox(after: ackedSeq, maxOps: max(1, configuration.maxOpsPerPush))))
        }
        return actions
    }

    private mutating func sendPull(now: SessionInstant) -> [Action] {
        guard pullEnabled, !outstanding.contains(.pull) else { return [] }
        pullAt = nil
        caughtUpOnPull = false
        outstanding.append(.pull)
        if requestWaitSince == nil { requestWaitSince = now }
        return [connection.send(.pull(cursor: cursor, byteBudget: configuration.byteBudget, ownOps: recoveringOwnOpsThrough != nil), now: now)]
    }

    /// Sends the longest prefix of `ops` that fits one frame.
    private mutating func push(_ ops: [Op], now: SessionInstant) -> [Action] {
        guard !ops.isEmpty else { return [] }
        let schema = Int(clamping: configuration.schemaVersion)
        let fitting = FrameFitting.longestPrepared(count: ops.count) { [connection] n in
            let batch = Array(ops.prefix(n))
            guard FrameFitting.newStringBytesUpperBound(batch) <= ChangeSetCodec.maxStringBytes else { return nil }
            let prepared = connection.prepare(.push(ChangeSet(schemaVersion: schema, ops: batch)))
            return prepared.payloadSize <= Frame.maxPayload ? prepared : nil
        }
        guard let (count, prepared) = fitting else {
            return connection.fail(SessionError(.internalError, "own op #\(ops[0].seq) does not fit one frame"), now: now)
        }
        let batch = ops.prefix(count)
        outstanding.append(.push(first: batch.first!.seq, last: batch.last!.seq))
        if requestWaitSince == nil { requestWaitSince = now }
        if count < ops.count { pushWanted = true }
        return [connection.send(prepared, now: now),
                .report(.pushed(ops: batch.count, firstSeq: batch.first!.seq, lastSeq: batch.last!.seq))]
    }
}

extension Message {
    /// Whether this hub message is (part of) the answer to a request (PUSH, PULL, DIGEST_REQUEST).
    var answersARequest: Bool {
        switch self {
        case .pushAck, .changes, .snapshotBegin, .snapshotChunk, .snapshotEnd, .digest, .error: return true
        default: return false
        }
    }
}

/// Fitting batches into frames.
enum FrameFitting {
    /// The largest n in 1...count for which `fits(n)` holds (fits is monotone), 0 if none.
    static func longestPrefix(count: Int, fits: (Int) -> Bool) -> Int {
        guard count > 0 else { return 0 }
        if fits(count) { return count }
        var low = 0, high = count   // fits(low) (or low == 0), !fits(high)
        while high - low > 1 {
            let mid = low + (high - low) / 2
            if fits(mid) { low = mid } else { high = mid }
        }
        return low
    }

    /// The longest prefix of `count` items whose message fits, with that message as encoded to
    /// measure it, so it is sent without a second encoding; nil if not even one item fits.
    /// `measure(n)` encodes the message of the first n items, or gives nil where they do not fit
    /// (monotone: a prefix of a fitting one fits).
    static func longestPrepared(count: Int, _ measure: (Int) -> Connection.PreparedMessage?) -> (count: Int, message: Connection.PreparedMessage)? {
        var best: (count: Int, message: Connection.PreparedMessage)?
        _ = longestPrefix(count: count) { n in
            guard let message = measure(n) else { return false }
            if n > (best?.count ?? 0) { best = (n, message) }
            return true
        }
        return best
    }

    /// An upper bound of the bytes of new strings a change set of these ops can hold: the bytes
    /// of every string it names, and when that passes `ChangeSetCodec.maxStringBytes`, of every
    /// distinct string counted once (the first needs no set of strings: a hub's snapshot chunks,
    /// encoded on its loop thread, are far below the limit).
    static func newStringBytesUpperBound(_ ops: [Op]) -> Int {
        var all = 0
        forEachString(of: ops) { all += $0.utf8.count }
        guard all > ChangeSetCodec.maxStringBytes else { return all }
        var seen = Set<[UInt8]>()
        var total = 0
        forEachString(of: ops) { s in let b = Array(s.utf8); if seen.insert(b).inserted { total += b.count } }
        return total
    }

    /// Calls `add` with every string `ops` name (as a change set's string table collects them).
    private static func forEachString(of ops: [Op], _ add: (String) -> Void) {
        for op in ops {
            add(op.origin); add(op.author)
            switch op.body {
            case let .write(t, field, value, list):
                add(t.id); add(t.sub); add(field)
                if case let .text(s) = value { add(s) }
                list.forEach { add($0.node) }
            case let .add(t, list), let .remove(t, list):
                add(t.id); add(t.sub); list.forEach { add($0.node) }
            case let .status(id, _, _, list): add(id); list.forEach { add($0.node) }
            case let .points(id, _): add(id)
            case let .deleteCustomer(id, list): add(id); list.forEach { add($0.node) }
            case let .acknowledge(ref, conflict): add(ref.id); add(conflict)
            case let .tagDeletion(ref, list): add(ref.id); list.forEach { add($0.node) }
            }
        }
    }
}

extension NodeSession {
    /// 32 bytes from the system's cryptographically secure generator (getrandom on Linux).
    public static func freshNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return freshNonce(using: &generator)
    }

    /// `Message.nonceSize` bytes from `generator`, 8 bytes a draw: 4 draws (each a system call for
    /// `SystemRandomNumberGenerator`), where a byte a draw took 32 — on a hub, 32 getrandom calls
    /// per accepted connection were most of what a connection flood cost it.
    public static func freshNonce<G: RandomNumberGenerator>(using generator: inout G) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Message.nonceSize)
        while bytes.count < Message.nonceSize {
            let draw = generator.next()
            for shift in stride(from: 0, to: 64, by: 8) where bytes.count < Message.nonceSize {
                bytes.append(UInt8(truncatingIfNeeded: draw >> UInt64(shift)))
            }
        }
        return bytes
    }
}

/// The node's keys per (secret, salt, iterations), kept in memory so that a reconnecting node
/// runs PBKDF2 once per registration rather than once per connection (as SCRAM clients do).
/// Bounded: cleared when it holds 64 entries.
final class NodeKeyCache: @unchecked Sendable {
    static let shared = NodeKeyCache()
    private let lock = NSLock()
    private var entries: [[UInt8]: Authentication.NodeKeys] = [:]

    func keys(secret: [UInt8], salt: [UInt8], iterations: Int) -> Authentication.NodeKeys {
        let id = SHA256.hash(Array("\(secret.count) \(salt.count) \(iterations) ".utf8) + secret + salt)
        lock.lock()
        if let found = entries[id] { lock.unlock(); return found }
        lock.unlock()
        let keys = Authentication.nodeKeys(secret: secret, salt: salt, iterations: iterations)
        lock.lock()
        if entries.count >= 64 { entries.removeAll() }
        entries[id] = keys
        lock.unlock()
        return keys
    }
}
