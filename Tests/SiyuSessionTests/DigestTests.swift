import Testing
import SiyuCore
import SiyuSession
import SiyuWire

/// DIGEST_REQUEST and DIGEST (SPEC section 7, "Digests") between a node and a hub session over
/// MemoryTransport, on the harness's virtual clock.
@Suite struct DigestTests {
    /// The node's `.digest` reports, in order.
    static func digests(_ events: [SessionEvent]) -> [(position: UInt64, digest: [UInt8], cursor: UInt64)] {
        events.compactMap { if case let .digest(p, d, c) = $0 { return (p, d, c) }; return nil }
    }

    /// Pushed its three ops, pulled everything, then pulled once more: the node's cursor is the
    /// hub's log head (its own pushed ops included), as a verifying node's is before it asks.
    static func caughtUp(hubLog: Int) -> Harness {
        let h = Harness(hubLog: tagOps("jingan", seqs: 1...UInt64(hubLog)))
        h.start()
        h.run { $0.node.isCaughtUp }
        h.nodeDo { $0.pullNow(now: $1) }
        h.run { $0.node.isCaughtUp }
        return h
    }

    @Test func aNodeCaughtUpBeforeItsPushWasStoredIsBehindTheHubsPositionUntilItPullsAgain() {
        let h = Harness(hubLog: tagOps("jingan", seqs: 1...5))
        h.start()
        h.run { $0.node.isCaughtUp }
        // WELCOME sent the PULL before the PUSH: the node's own three ops got positions 6…8 after it.
        h.nodeDo { $0.requestDigest(now: $1) }
        h.run { !DigestTests.digests($0.nodeEvents).isEmpty }
        let answer = Self.digests(h.nodeEvents)
        #expect(answer.first?.position == 8 && answer.first?.cursor == 5, "not comparable yet")
    }

    @Test func aCaughtUpNodeGetsTheHubsDigestAtItsOwnCursor() {
        let h = Self.caughtUp(hubLog: 5)
        let cursor = h.node.cursor
        h.nodeDo { $0.requestDigest(now: $1) }
        #expect(h.nodeSent.last == .digestRequest(cursor: cursor))
        h.run { !DigestTests.digests($0.nodeEvents).isEmpty }
        let answer = Self.digests(h.nodeEvents)
        #expect(answer.count == 1)
        // The three own ops pushed and the five pulled: the hub's log holds 8, the node has pulled them all.
        #expect(answer.first?.position == 8 && answer.first?.cursor == 8)
        #expect(answer.first?.digest == FakeHubStore.digest(ofLogCount: 8))
        #expect(h.hubEvents.contains(.digest(position: 8, digest: FakeHubStore.digest(ofLogCount: 8), cursor: 8)))
        #expect(h.hubSent.last == .digest(position: 8, digest: FakeHubStore.digest(ofLogCount: 8)))
        #expect(h.nodeClosed == nil && h.hubClosed == nil && h.node.isCaughtUp)
    }

    @Test func aPullSentBeforeTheRequestIsAppliedBeforeTheDigestIsRead() {
        let h = Self.caughtUp(hubLog: 5)
        // Another node's op lands; the node pulls and asks for the digest at once, back to back.
        h.hubStore.log.append(LoggedOp(position: 9, op: tagOps("jingan", seqs: 6...6)[0]))
        h.nodeDo { $0.pullNow(now: $1) + $0.requestDigest(now: $1) }
        #expect(h.nodeSent.suffix(2).map(\.type) == [.pull, .digestRequest])
        h.run { !DigestTests.digests($0.nodeEvents).isEmpty }
        let answer = Self.digests(h.nodeEvents)
        #expect(answer.first?.position == 9 && answer.first?.cursor == 9, "the CHANGES came first and moved the cursor")
        #expect(h.nodeStore.applied.contains(tagOps("jingan", seqs: 6...6)[0]))
    }

    @Test func whenTheHubsLogMovesOnBeforeItAnswersTheNodeSeesItAndAPullCatchesUp() {
        let h = Self.caughtUp(hubLog: 5)
        // Before the hub answers the first request, another node's PUSH is stored.
        h.hubStore.beforeDigest = { store in
            if store.digestsServed == 1 { store.log.append(LoggedOp(position: UInt64(store.log.count + 1), op: tagOps("gulou", seqs: 1...1)[0])) }
        }
        h.nodeDo { $0.requestDigest(now: $1) }
        h.run { !DigestTests.digests($0.nodeEvents).isEmpty }
        let first = Self.digests(h.nodeEvents)[0]
        #expect(first.position == 9 && first.cursor == 8, "not comparable: the node lacks position 9")
        // Pull again, then ask again: now the two describe the same ops.
        h.nodeDo { $0.pullNow(now: $1) }
        h.run { $0.node.isCaughtUp }
        h.nodeDo { $0.requestDigest(now: $1) }
        h.run { DigestTests.digests($0.nodeEvents).count == 2 }
        let second = Self.digests(h.nodeEvents)[1]
        #expect(second.position == 9 && second.cursor == 9)
        #expect(second.digest == FakeHubStore.digest(ofLogCount: 9))
    }

    @Test func aSecondRequestWhileOneIsOutstandingSendsNothing() {
        let h = Self.caughtUp(hubLog: 2)
        var node = h.node
        let first = node.requestDigest(now: h.now)
        let second = node.requestDigest(now: h.now)
        #expect(first.compactMap(\.sentMessage).count == 1)
        #expect(second.isEmpty)
    }

    @Test func aNodeAsksNothingBeforeItIsReady() {
        var node = LegalMessageTests.node(in: .challenged)
        #expect(node.requestDigest(now: .zero).isEmpty)
        #expect(node.pullNow(now: .zero).isEmpty)
    }

    @Test func aHubThatPredatesDigestsAnswersCode11AndTheNodeReportsThatItCannotVerify() {
        var node = LegalMessageTests.node(in: .ready)
        // WELCOME's PULL is answered first (an old hub answers requests in order too).
        let changes = node.receive(LegalMessageTests.fromHub(.changes(nextCursor: 0, more: false, ChangeSet(ops: [])), 1), now: .zero)
        #expect(changes.compactMap(\.effect).count == 1)
        _ = node.complete(.done, now: .zero)
        let asked = node.requestDigest(now: .zero)
        #expect(asked.compactMap(\.sentMessage) == [.digestRequest(cursor: 0)])
        // What an older hub answers to type 0x14 (SPEC section 4): ERROR 11, then it closes.
        let reply = Message.error(code: ErrorCode.unknownMessageType.rawValue, retryable: false, message: "unknown message type 0x14")
        let actions = node.receive(LegalMessageTests.fromHub(reply, 2), now: .zero)
        let events = actions.compactMap { if case let .report(e) = $0 { return e }; return nil }
        #expect(events.contains(.digestUnsupported("unknown message type 0x14")))
        #expect(actions.compactMap(\.closeReason) == [.errorReceived(code: 11, retryable: false, message: "unknown message type 0x14")])
        #expect(actions.compactMap(\.sentMessage).isEmpty, "the node does not answer an ERROR")
        #expect(node.state == .closed)
    }

    @Test func code11WithoutADigestRequestOutstandingIsAnOrdinaryError() {
        var node = LegalMessageTests.node(in: .ready)
        let actions = node.receive(LegalMessageTests.fromHub(.error(code: 11, retryable: false, message: "unknown message type 0x12")), now: .zero)
        let events = actions.compactMap { if case let .report(e) = $0 { return e }; return nil }
        #expect(!events.contains { if case .digestUnsupported = $0 { return true }; return false })
        #expect(node.state == .closed)
    }

    @Test func aDigestNobodyAskedForIsUnexpectedMessage() {
        var node = LegalMessageTests.node(in: .ready)
        let actions = node.receive(LegalMessageTests.fromHub(.digest(position: 3, digest: Array(repeating: 1, count: 32))), now: .zero)
        #expect(LegalMessageTests.errorCode(actions) == 10)
        #expect(node.state == .closed)
    }

    @Test func theHubComputesTheDigestThroughAStoreEffectAndAnswersWithIt() {
        var hub = LegalMessageTests.hub(in: .ready)
        let asked = hub.receive(LegalMessageTests.fromNode(.digestRequest(cursor: 42)), now: .zero)
        #expect(asked.compactMap(\.effect) == [.readDigest(node: "xihu")])
        #expect(!hub.wantsInput, "no frame is read while the digest is computed")
        let digest = Array(repeating: UInt8(0x5c), count: 32)
        let answered = hub.complete(.digest(position: 50, digest: digest), now: .zero)
        #expect(answered.compactMap(\.sentMessage) == [.digest(position: 50, digest: digest)])
        let events = answered.compactMap { if case let .report(e) = $0 { return e }; return nil }
        #expect(events == [.digest(position: 50, digest: digest, cursor: 42)])
        #expect(hub.state == .ready && hub.wantsInput)
    }

    @Test func aStoreFailureWhileComputingTheDigestIsAnInternalErrorAndADigestOfTheWrongSizeToo() {
        var hub = LegalMessageTests.hub(in: .ready)
        _ = hub.receive(LegalMessageTests.fromNode(.digestRequest(cursor: 0)), now: .zero)
        let failed = hub.complete(.failed(.internalError, "disk"), now: .zero)
        #expect(LegalMessageTests.errorCode(failed) == 15 && hub.state == .closed)

        var other = LegalMessageTests.hub(in: .ready)
        _ = other.receive(LegalMessageTests.fromNode(.digestRequest(cursor: 0)), now: .zero)
        let short = other.complete(.digest(position: 1, digest: [1, 2, 3]), now: .zero)
        #expect(LegalMessageTests.errorCode(short) == 15 && other.state == .closed)
    }
}
