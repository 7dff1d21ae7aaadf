import Foundation
import SiyuCore
import SiyuNet
import SiyuWire

/// The rows of issue 18's "bad input at a running hub" (docs/RELIABILITY.md has the matrix):
/// each is an attack a `RawClient` puts to a real hub, as one round that a caller may repeat —
/// the integration tests (`HostileInputTests`) check each round's answers and log lines, and
/// `siyu-bench --only attack` repeats the rounds for seconds, in an attacker process of its own
/// (`AttackOrder`), while well-behaved nodes sync.
public enum HostileInput: String, CaseIterable, Sendable {
    case connectionFlood = "flood"
    case halfFrameBeforeAuth = "half_frame"
    case slowLorisAfterAuth = "slow_loris"
    case oversizeLength = "oversize"
    case badChecksum = "bad_crc"
    case unsupportedVersion = "version_3"
    case unknownType = "type_0x7f"
    case truncatedThenFIN = "truncated_fin"
    case wrongSecret = "wrong_secret"
    case unknownNode = "unknown_node"
    case replayedAuth = "replayed_auth"
    case injectedPush = "injected_push"
    case otherOrigin = "other_origin"
    case sameSeqOtherContent = "same_seq"
    case beyondWindow = "acked_65537"
    case pullPastHeadLoop = "pull_loop"
    case digestLoop = "digest_loop"
    case clockAhead = "clock_ahead"
    case schema2 = "schema_2"

    /// The row as docs/RELIABILITY.md names it.
    public var title: String {
        switch self {
        case .connectionFlood: return "connection flood"
        case .halfFrameBeforeAuth: return "half-frame before auth"
        case .slowLorisAfterAuth: return "slow-loris after auth"
        case .oversizeLength: return "oversize length"
        case .badChecksum: return "bad CRC"
        case .unsupportedVersion: return "frame version 3"
        case .unknownType: return "unknown type 0x7F"
        case .truncatedThenFIN: return "truncated frame then FIN"
        case .wrongSecret: return "wrong secret"
        case .unknownNode: return "unknown node"
        case .replayedAuth: return "replayed AUTH"
        case .injectedPush: return "relayed session, injected PUSH"
        case .otherOrigin: return "ops of another origin"
        case .sameSeqOtherContent: return "same seq, other content"
        case .beyondWindow: return "acked + 65,537"
        case .pullPastHeadLoop: return "PULL cursor 2^63-1 in a loop"
        case .digestLoop: return "DIGEST_REQUEST in a loop"
        case .clockAhead: return "clock 31 s ahead"
        case .schema2: return "schema 2"
        }
    }

    /// The words of the hub's one log line for one refusal of this row (every one is in that line).
    public var logLine: [String] {
        switch self {
        case .connectionFlood: return ["too many unauthenticated connections"]
        case .halfFrameBeforeAuth: return ["closing: sent ERROR frame_too_large", "before authentication a frame holds at most"]
        case .slowLorisAfterAuth: return ["node='mallory'", "closing: nothing heard for the idle timeout"]
        case .oversizeLength: return ["closing: sent ERROR frame_too_large", "exceeds the limit"]
        case .badChecksum: return ["closing: sent ERROR bad_checksum"]
        case .unsupportedVersion: return ["closing: sent ERROR unsupported_version"]
        case .unknownType: return ["closing: sent ERROR unknown_message_type"]
        case .truncatedThenFIN: return ["node='mallory'", "disconnected (closed by the peer)"]
        case .wrongSecret: return ["auth refused: the proof does not verify"]
        case .unknownNode: return ["auth refused: the node is not registered"]
        case .replayedAuth: return ["auth refused: the proof does not verify"]
        case .injectedPush: return ["closing: sent ERROR auth_failed", "does not verify"]
        case .otherOrigin: return ["closing: sent ERROR permission_denied", "a node pushes only its own ops"]
        case .sameSeqOtherContent: return ["refused with code 8", "this hub holds another op numbered"]
        case .beyondWindow: return ["error sent: busy (12)", "more than 65536 past the last op acknowledged"]
        case .pullPastHeadLoop: return ["sent ERROR busy (12)", "asked for too many snapshots"]
        case .digestLoop: return ["sent ERROR busy (12)", "asked for too many state digests"]
        case .clockAhead: return ["refused with code 9", "beyond the window of 30 s"]
        case .schema2: return ["sent ERROR schema_unsupported"]
        }
    }
}

/// Where the attacks go: the hub, and a registered store node whose secret the attacker holds
/// (a stolen store PC, say) — the rows after the handshake need one.
public struct AttackTarget: Equatable, Sendable {
    public var hub: SocketAddress
    public var node: NodeID
    public var secret: [UInt8]
    /// The node the "ops of another origin" row pushes ops of.
    public var otherNode: NodeID

    public init(hub: SocketAddress, node: NodeID, secret: [UInt8], otherNode: NodeID = "hq") {
        self.hub = hub
        self.node = node
        self.secret = secret
        self.otherNode = otherNode
    }
}

/// What one round of an attack saw, and how many refusals the hub should have logged for it.
public struct AttackOutcome: Equatable, Sendable {
    /// In order: `ERROR 3` (`ERROR 9 retryable` when retryable), `closed` (the hub closed the
    /// connection), `open` (it did not within the wait), or the message type the hub answered with
    /// (`PUSH_ACK`, `PONG`, `DIGEST`, `SNAPSHOT` for a whole snapshot).
    public var answers: [String] = []
    /// Refusals of this round, each worth one log line (`HostileInput.logLine`).
    public var refusals = 0

    public init(answers: [String] = [], refusals: Int = 0) {
        self.answers = answers
        self.refusals = refusals
    }
}

/// Runs the rounds of one row against one hub, keeping what a row needs between rounds (the
/// same-seq row's first op, a fresh source address per flood round).
public final class Attacker {
    public let input: HostileInput
    public let target: AttackTarget
    public private(set) var rounds = 0
    /// How long a round waits for an answer or for the hub to close, in seconds.
    public var wait: Double = 10
    /// Slow-loris: the seconds between two trickled bytes.
    public var trickleInterval: Double = 0.25
    private let started = UInt64(Date().timeIntervalSince1970 * 1000)

    public init(_ input: HostileInput, target: AttackTarget) {
        self.input = input
        self.target = target
    }

    /// One round of the attack. `until` bounds the rounds that last as long as the hub lets them
    /// (slow-loris); the others end when the hub answered.
    public func round(until deadline: Date = .distantFuture) throws -> AttackOutcome {
        defer { rounds += 1 }
        var o = AttackOutcome()
        switch input {
        case .connectionFlood:
            // A fresh source address each round (127.0.0.2, .3, …), so a round never meets the
            // pending connections of the last: 8 held, then a 9th, which the hub closes at once.
            let source = SocketAddress.Host.ipv4([127, 0, UInt8(rounds / 250 % 250), UInt8(2 + rounds % 250)])
            let held = try (0..<8).map { _ in try RawClient(hub: target.hub, source: source) }
            // The hub resets a refused connection (no TIME_WAIT kept for it): on loopback the reset
            // can come before the client's connect() returned, which then fails with ECONNRESET.
            do {
                let ninth = try RawClient(hub: target.hub, source: source)
                o.answers.append(ninth.closes(within: wait) ? "closed" : "open")
            } catch let error as NetError where error.errno == ECONNRESET {
                o.answers.append("closed")
            }
            o.refusals = 1
            for c in held { c.close() }
        case .halfFrameBeforeAuth:
            let c = try RawClient(hub: target.hub)
            c.send([0x53, 0x59, 1, 0x01, 0x00, 0x10, 0x00, 0x00] + [UInt8](repeating: 0x41, count: 100))   // declares 1 MiB
            answer(c, &o, close: true)
        case .slowLorisAfterAuth:
            let c = try ready()
            let push = c.bytes(c.frame(.push(ChangeSet(ops: [op(acked + 1)]))))
            var i = 0
            while Date() < deadline, i < push.count - 1 {
                c.send([push[i]])
                i += 1
                if c.closes(within: trickleInterval) { break }
            }
            o.answers.append(c.closedByPeer ? "closed" : "open")
            o.refusals = c.closedByPeer ? 1 : 0
        case .oversizeLength:
            let c = try ready()
            c.send([0x53, 0x59, 2, 0x10, 0x00, 0x20, 0x00, 0x00])   // 2 MiB
            answer(c, &o, close: true)
        case .badChecksum:
            let c = try ready()
            var bytes = c.bytes(c.frame(.ping(token: 7)))
            bytes[bytes.count - 1] ^= 0xff
            c.send(bytes)
            answer(c, &o, close: true)
        case .unsupportedVersion:
            let c = try ready()
            c.send(c.bytes(Frame(version: 3, type: MessageType.ping.rawValue, payload: [7])))
            answer(c, &o, close: true)
        case .unknownType:
            let c = try ready()
            c.send(c.bytes(Frame(version: 2, type: 0x7F, payload: [])))
            answer(c, &o, close: true)
        case .truncatedThenFIN:
            let c = try ready()
            let push = c.bytes(c.frame(.push(ChangeSet(ops: [op(acked + 1)]))))
            c.send(Array(push.prefix(push.count - 5)))
            c.finish()
            o.answers.append(c.closes(within: wait) ? "closed" : "open")
            o.refusals = 1
        case .wrongSecret:
            let c = try RawClient(hub: target.hub)
            record(c.handshake(node: target.node, secret: Array("not-the-secret".utf8)), c, &o, close: true)
        case .unknownNode:
            let c = try RawClient(hub: target.hub)
            record(c.handshake(node: "ghost-\(target.node)", secret: Array("x".utf8)), c, &o, close: true)
        case .replayedAuth:
            var recorded: [UInt8] = []
            let first = try RawClient(hub: target.hub)
            _ = first.handshake(node: target.node, secret: target.secret) { proof in recorded = proof }
            let replay = try RawClient(hub: target.hub)
            record(replay.handshake(node: target.node, secret: target.secret, proof: recorded), replay, &o, close: true)
            first.close()
        case .injectedPush:
            // The handshake went through as the node made it (relayed); the PUSH is the relay's
            // own, sealed with a key it made up: it cannot know the session's.
            let c = try ready()
            let forged = FrameAuthenticator(key: (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ rounds) })
            c.send(forged.seal(c.frame(.push(ChangeSet(ops: [op(acked + 1)]))), sequence: 0).encoded())
            answer(c, &o, close: true)
        case .otherOrigin:
            let c = try ready()
            c.send(.push(ChangeSet(ops: [op(1, origin: target.otherNode)])))
            answer(c, &o, close: true)
        case .sameSeqOtherContent:
            // Op 1 as first pushed (taken, or acknowledged again), then op 1 with other content.
            let c = try ready()
            c.send(.push(ChangeSet(ops: [op(1, millis: started, name: "first")])))
            do { let m = c.receive(timeout: wait); o.answers.append(describe(m, c)) }
            c.send(.push(ChangeSet(ops: [op(1, millis: started, name: "second")])))
            answer(c, &o, close: false)
            c.send(.ping(token: 9))
            do { let m = c.receive(timeout: wait); o.answers.append(describe(m, c)) }
        case .beyondWindow:
            let c = try ready()
            c.send(.push(ChangeSet(ops: [op(acked + 65_537)])))
            answer(c, &o, close: false)
            c.send(.ping(token: 9))
            do { let m = c.receive(timeout: wait); o.answers.append(describe(m, c)) }
        case .pullPastHeadLoop:
            // Five PULLs past the head, each on a connection of its own.
            for _ in 0..<5 {
                let c = try ready()
                c.send(.pull(cursor: UInt64(Int64.max), byteBudget: 0, ownOps: false))
                var first = c.receive(timeout: wait)
                if case .snapshotBegin? = first {
                    while let m = c.receive(timeout: wait) { if case .snapshotEnd = m { break } }
                    o.answers.append("SNAPSHOT")
                    first = nil
                    continue
                }
                let text = describe(first, c)
                o.answers.append(text)
                if text.hasPrefix("ERROR ") { o.refusals += 1 }
            }
        case .digestLoop:
            let c = try ready()
            for _ in 0..<5 {
                c.send(.digestRequest(cursor: 0))
                let m = c.receive(timeout: wait)
                let text = describe(m, c)
                o.answers.append(text)
                if text.hasPrefix("ERROR ") { o.refusals += 1; o.answers.append(c.closes(within: wait) ? "closed" : "open"); break }
            }
        case .clockAhead:
            let c = try ready()
            c.send(.push(ChangeSet(ops: [op(acked + 1, millis: UInt64(Date().timeIntervalSince1970 * 1000) + 33_000)])))
            answer(c, &o, close: false)
        case .schema2:
            let c = try RawClient(hub: target.hub)
            record(c.handshake(node: target.node, secret: target.secret, schema: 2), c, &o, close: true)
            let d = try ready()
            d.send(.push(ChangeSet(schemaVersion: 2, ops: [op(acked + 1)])))
            answer(d, &o, close: true)
        }
        return o
    }

    // MARK: Helpers

    /// The attacker's node's acknowledged op as its last WELCOME said.
    private var acked: UInt64 = 0

    /// A connection authenticated as the target node.
    private func ready() throws -> RawClient {
        let c = try RawClient(hub: target.hub)
        let answer = c.handshake(node: target.node, secret: target.secret)
        guard case let .welcome(ackedSeq, _, _, _)? = answer else {
            throw AttackError("\(input.title): \(target.node) was not welcomed (\(describe(answer)))")
        }
        acked = ackedSeq
        return c
    }

    /// Reads the hub's answer; an ERROR counts as a refusal; `close`: then whether it closed.
    private func answer(_ c: RawClient, _ o: inout AttackOutcome, close: Bool) {
        record(c.receive(timeout: wait), c, &o, close: close)
    }

    private func record(_ message: Message?, _ c: RawClient, _ o: inout AttackOutcome, close: Bool) {
        o.answers.append(describe(message, c))
        if message?.errorCode != nil { o.refusals += 1 }
        if close, message != nil { o.answers.append(c.closes(within: wait) ? "closed" : "open") }
    }

    /// An answer as `AttackOutcome.answers` writes it; no message: `closed`, or `nothing` when
    /// the wait ended first.
    private func describe(_ message: Message?, _ c: RawClient? = nil) -> String {
        guard let message else { return c?.closedByPeer == false ? "nothing" : "closed" }
        if case let .error(code, retryable, _) = message { return "ERROR \(code)" + (retryable ? " retryable" : "") }
        return message.type.specName
    }

    /// An op of the attacker's node (or `origin`) numbered `seq`, stamped now (or at `millis`).
    private func op(_ seq: UInt64, origin: NodeID? = nil, millis: UInt64? = nil, name: String = "x") -> Op {
        let at = millis ?? UInt64(Date().timeIntervalSince1970 * 1000)
        return Op(stamp: Stamp(hlc: HLC(millis: at, logical: 0), node: origin ?? target.node), seq: seq, role: .store, author: "chenjing",
                  body: .write(Target(.customer, "wm_m"), field: "name", value: .text(name), overwrites: []))
    }
}

/// An attack that could not be put (the target node was not welcomed, say).
public struct AttackError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An attacker's rounds on a thread of their own, while the caller watches something else (a
/// well-behaved node syncing): rounds go on until `stop()` once `minimumRounds` are done, or until
/// `deadline`, and never beyond `maximumRounds`. A round that throws ends the loop (`failure`).
public final class AttackLoop: @unchecked Sendable {
    private let attacker: Attacker
    private let minimumRounds: Int
    private let maximumRounds: Int
    private let deadline: Date
    private let pause: Double
    private let lock = NSLock()
    private var outcomes: [AttackOutcome] = []
    private var failure: String?
    private var stopping = false
    private var finished = false
    private let done = DispatchSemaphore(value: 0)

    /// `pause`: seconds between two rounds.
    public init(_ attacker: Attacker, minimumRounds: Int = 1, maximumRounds: Int = .max, until deadline: Date = .distantFuture, pause: Double = 0) {
        self.attacker = attacker
        self.minimumRounds = minimumRounds
        self.maximumRounds = maximumRounds
        self.deadline = deadline
        self.pause = pause
    }

    public func start() {
        Thread.detachNewThread { [self] in
            defer {
                lock.withLock { finished = true }
                done.signal()
            }
            while true {
                let (count, stop) = lock.withLock { (outcomes.count, stopping) }
                if count >= maximumRounds || (stop && count >= minimumRounds) || Date() >= deadline { return }
                do {
                    // A round that lasts as long as the hub lets it (slow-loris) ends by the deadline, or in 15 s.
                    let outcome = try attacker.round(until: min(deadline, Date().addingTimeInterval(15)))
                    lock.withLock { outcomes.append(outcome) }
                } catch {
                    lock.withLock { failure = "\(error)" }
                    return
                }
                if pause > 0 { Thread.sleep(forTimeInterval: pause) }
            }
        }
    }

    /// Asks the rounds to end (once `minimumRounds` are done), without waiting for them.
    public func requestStop() { lock.withLock { stopping = true } }

    /// Whether the rounds have ended.
    public var isFinished: Bool { lock.withLock { finished } }

    /// Every round's outcome so far, and what ended the rounds early (a round's error).
    public var results: (outcomes: [AttackOutcome], failure: String?) { lock.withLock { (outcomes, failure) } }

    /// Asks the rounds to end and waits for them, at most `timeout` seconds: every round's outcome,
    /// and what ended the rounds early (a round's error, or the wait running out).
    public func stop(timeout: Double = 120) -> (outcomes: [AttackOutcome], failure: String?) {
        requestStop()
        let ended = done.wait(timeout: .now() + timeout) == .success
        return lock.withLock { (outcomes, ended ? failure : failure ?? "the attack did not end within \(Int(timeout)) s") }
    }
}
