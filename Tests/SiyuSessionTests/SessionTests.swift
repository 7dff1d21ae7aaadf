import Testing
import SiyuCore
import SiyuSession
import SiyuWire

@Suite struct HandshakeTests {
    @Test func aNodeAndAHubShakeHandsPushAndPullOverMemoryTransport() {
        let h = Harness(hubLog: tagOps("jingan", seqs: 1...5))
        h.start()
        h.run { $0.node.isCaughtUp }
        #expect(h.node.state == .ready && h.hub.state == .ready)
        #expect(h.nodeSent.map(\.type).prefix(2) == [.hello, .auth])
        #expect(h.hubSent.map(\.type).prefix(2) == [.challenge, .welcome])
        #expect(h.nodeEvents.contains(.authenticated(node: "xihu", hub: "hub-hz", ackedSeq: 0, logHead: 5)))
        #expect(h.hubEvents.contains(.authenticated(node: "xihu", hub: "hub-hz", ackedSeq: 0, logHead: 5)))
        // The node's three ops are durable at the hub and acknowledged; the hub's five are applied.
        #expect(h.hubStore.acked("xihu") == 3 && h.node.ackedSeq == 3)
        #expect(h.nodeStore.applied.filter { $0.origin == "jingan" }.count == 5)
        #expect(h.node.cursor == h.nodeStore.cursor && h.nodeStore.cursor >= 5)
        #expect(h.nodeClosed == nil && h.hubClosed == nil)
    }

    @Test func aWrongSecretIsRefusedWithAuthFailedAndTheConnectionCloses() {
        let h = Harness(nodeSecret: Array("not-the-secret".utf8))
        h.start()
        h.run()
        #expect(h.hubSent.last?.type == .error)
        guard case let .errorSent(e)? = h.hubClosed else { Issue.record("hub did not refuse: \(String(describing: h.hubClosed))"); return }
        #expect(e.code == .authFailed && !e.retryable)
        #expect(h.nodeClosed == .errorReceived(code: 5, retryable: false, message: e.message))
        #expect(h.hubEvents.contains { if case .authenticationRefused(node: "xihu", _) = $0 { return true }; return false })
        #expect(h.hubStore.held.isEmpty)
    }

    @Test func aNodeGivenItsSaltedKeysUsesThemForThatSaltAndOtherwiseDerivesItsOwn() {
        func handshake(_ keys: NodeSession.SaltedKeys) -> Harness {
            let h = Harness(saltedKeys: keys)
            h.start()
            h.run { $0.node.isCaughtUp }
            return h
        }
        // Keys of another secret under the registered salt are used: the proof does not verify.
        let wrong = handshake(.init(secret: Array("nope".utf8), salt: Harness.salt, iterations: Harness.iterations))
        guard case let .errorSent(e)? = wrong.hubClosed else { Issue.record("the hub took keys of another secret"); return }
        #expect(e.code == .authFailed)
        // The node's own keys: the handshake succeeds.
        let right = handshake(.init(secret: Harness.secret, salt: Harness.salt, iterations: Harness.iterations))
        #expect(right.node.state == .ready && right.hubClosed == nil)
        // Keys for another salt (the secret was rotated since) are ignored: the node derives its own.
        let stale = handshake(.init(secret: Array("nope".utf8), salt: Array(0..<16), iterations: Harness.iterations))
        #expect(stale.node.state == .ready && stale.hubClosed == nil)
    }

    @Test func anUnknownNodeGetsTheSameRefusalAsAWrongSecret() {
        let wrong = Harness(nodeSecret: Array("nope".utf8))
        let unknown = Harness()
        unknown.hubStore.registrations = [:]
        wrong.start(); wrong.run()
        unknown.start(); unknown.run()
        #expect(wrong.hubSent.last == unknown.hubSent.last)
    }

    @Test func anAuthRecordedOnOneConnectionIsRefusedOnAnother() {
        // Connection 1: record what the node sends.
        let first = Harness()
        first.start()
        first.run { $0.node.state == .ready }
        let recorded = first.nodeSent[0].encoded() + first.nodeSent[1].encoded(version: 2)
        // Connection 2: a fresh nonce; the recorded HELLO and AUTH are replayed.
        var hub = HubSession(.init(hubID: "hub-hz"), nonce: Array(repeating: 0x5a, count: 32), now: .zero)
        var store = FakeHubStore()
        store.registrations["xihu"] = (Harness.verifiers(Harness.secret), .store)
        var actions = hub.receive(recorded, now: .zero)
        var sent: [Message] = []
        while let i = actions.firstIndex(where: { $0.effect != nil }) {
            let effect = actions[i].effect!
            sent += actions[..<i].compactMap(\.sentMessage)
            actions = hub.complete(store.execute(effect), now: .zero) + actions[(i + 1)...]
        }
        sent += actions.compactMap(\.sentMessage)
        #expect(sent.map(\.type) == [.challenge, .error])
        #expect(actions.last?.closeReason.map { if case let .errorSent(e) = $0 { return e.code == .authFailed }; return false } == true)
        #expect(hub.state == .closed)
    }

    @Test func theNodeRefusesAHubThatCannotProveItHoldsTheNodesVerifiers() {
        // A hub that verifies the proof (it has StoredKey) but not ServerKey: WELCOME's MAC fails.
        let h = Harness()
        var forged = Harness.verifiers(Harness.secret)
        forged.serverKey = Array(repeating: 0x42, count: 32)
        h.hubStore.registrations["xihu"] = (forged, .store)
        h.start()
        h.run()
        guard case let .errorSent(e)? = h.nodeClosed else { Issue.record("node did not refuse: \(String(describing: h.nodeClosed))"); return }
        #expect(e.code == .authFailed && e.message.contains("could not prove"))
        #expect(!h.nodeSent.contains { $0.type == .push || $0.type == .pull }, "nothing is sent to a hub that did not prove itself")
    }

    @Test func aHelloOfVersion2WithoutTheNodesNonceIsMalformed() {
        var hub = HubSession(.init(hubID: "hub-hz"), nonce: Harness.nonce, now: .zero)
        let actions = hub.receive(Message.hello(node: "xihu", role: .store, versions: [2], schemaVersion: 1).encoded(), now: .zero)
        #expect(LegalMessageTests.errorCode(actions) == 1 && hub.state == .closed)
    }

    @Test func aVersion1NodeIsToldThereIsNoCommonVersion() {
        var hub = HubSession(.init(hubID: "hub-hz"), nonce: Harness.nonce, now: .zero)
        let actions = hub.receive(Message.hello(node: "xihu", role: .store, versions: [1], schemaVersion: 1).encoded(), now: .zero)
        #expect(LegalMessageTests.errorCode(actions) == 4 && hub.state == .closed)
    }

    @Test func anUnknownNodeGetsADecoySaltThatIsTheSameOnEveryConnection() {
        func challengeSalt() -> [UInt8]? {
            var hub = HubSession(.init(hubID: "hub-hz", decoyKey: Array("decoy".utf8)), nonce: Harness.nonce, now: .zero)
            _ = hub.receive(LegalMessageTests.hello.encoded(), now: .zero)
            for case let .challenge(_, _, _, salt, _)? in hub.complete(.registration(nil), now: .zero).map(\.sentMessage) { return salt }
            return nil
        }
        let salt = challengeSalt()
        #expect(salt?.count == Authentication.saltSize && salt == challengeSalt())
    }

    @Test func aNodeWhoseFileLostAcknowledgedOpsTakesThemBackFromTheHubBeforePushing() {
        // The node's file went back to an earlier commit: it numbered ops up to 2, the hub holds 1…3.
        let h = Harness(own: tagOps("xihu", seqs: 1...2), lastOwnSeq: 2)
        for (i, op) in tagOps("xihu", seqs: 1...3).enumerated() {
            h.hubStore.held["xihu", default: [:]][op.seq] = op
            h.hubStore.log.append(LoggedOp(position: UInt64(i + 1), op: op))
        }
        h.start()
        h.run(until: { $0.node.isCaughtUp && $0.node.recoveringOwnOpsThrough == nil })
        #expect(!h.nodeEvents.contains { if case .identityConflict = $0 { return true }; return false })
        #expect(h.nodeEvents.contains { if case .recoveringOwnOps(3, 2) = $0 { return true }; return false })
        #expect(h.hubStore.pullsOwnOps.first == true)
        #expect(h.nodeStore.own.map(\.seq) == [1, 2, 3] && h.nodeStore.recordedAck == 3)
        #expect(!h.nodeSent.contains { $0.type == .push })   // nothing to push: the hub holds it all
    }

    @Test func aNodeThatGetsAnotherOpUnderANumberTheHubAcknowledgedStopsAsAnIdentityConflict() {
        // Another node used the id: the hub holds a different op #2.
        let h = Harness(own: tagOps("xihu", seqs: 1...2), lastOwnSeq: 2, recordedAckedSeq: 1)
        let other = tagOps("xihu", seqs: 1...3, customerPrefix: "other_")
        for (i, op) in ([tagOps("xihu", seqs: 1...1)[0]] + other.dropFirst()).enumerated() {
            h.hubStore.held["xihu", default: [:]][op.seq] = op
            h.hubStore.log.append(LoggedOp(position: UInt64(i + 1), op: op))
        }
        h.start()
        h.run()
        #expect(h.nodeEvents.contains { if case .identityConflict = $0 { return true }; return false })
        #expect(h.nodeSent.last?.type == .bye && !h.nodeSent.contains { $0.type == .push })
    }

    @Test func aNodeSeeingANewLogEpochPullsFromTheStartAndPushesAfterTheHubsAckedSeq() {
        // The hub was restored from a backup: it holds the node's ops up to 1 of 3, and its log has 1 position.
        let h = Harness(own: tagOps("xihu", seqs: 1...3), cursor: 40, logEpoch: Array(repeating: 1, count: 32), recordedAckedSeq: 3)
        let first = tagOps("xihu", seqs: 1...1)[0]
        h.hubStore.held["xihu", default: [:]][1] = first
        h.hubStore.log.append(LoggedOp(position: 1, op: first))
        h.hubStore.logEpoch = Array(repeating: 2, count: 32)
        h.start()
        h.run(until: { $0.node.isCaughtUp })
        #expect(h.nodeEvents.contains { if case .logEpochChanged(40) = $0 { return true }; return false })
        #expect(h.nodeStore.logEpoch == Array(repeating: 2, count: 32))
        let cursors: [UInt64] = h.nodeSent.compactMap { if case let .pull(c, _, _) = $0 { return c }; return nil }
        #expect(cursors.first == 0)
        #expect(h.hubStore.acked("xihu") == 3)   // #2 and #3 pushed again
    }

    @Test func theHubRefusesAHelloWithoutACommonVersion() {
        var hub = HubSession(.init(hubID: "hub-hz"), nonce: Harness.nonce, now: .zero)
        let actions = hub.receive(Message.hello(node: "xihu", role: .store, versions: [7, 9], schemaVersion: 1).encoded(), now: .zero)
        #expect(actions.compactMap(\.sentMessage).map(\.type) == [.error])
        if case let .error(code, _, _)? = actions.compactMap(\.sentMessage).first { #expect(code == 4) }
        #expect(hub.state == .closed)
    }

    /// A hub draws a fresh nonce for every connection it accepts: 32 bytes in 4 draws of 8 (each a
    /// getrandom call for the system generator), not 32 draws of which 7 bytes in 8 were thrown away.
    @Test func aFreshNonceIs32BytesFromFourDrawsOfTheGenerator() {
        struct Counting: RandomNumberGenerator {
            var draws = 0
            mutating func next() -> UInt64 { draws += 1; return 0x0807_0605_0403_0201 &* UInt64(draws) }
        }
        var generator = Counting()
        let nonce = NodeSession.freshNonce(using: &generator)
        #expect(generator.draws == 4)
        #expect(nonce.count == Message.nonceSize && nonce.prefix(8) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(NodeSession.freshNonce() != NodeSession.freshNonce())
    }
}

@Suite struct LegalMessageTests {
    /// One message of every type (change sets empty).
    static let samples: [Message] = [
        .hello(node: "xihu", role: .store, versions: [2], schemaVersion: 1, nonce: Harness.nodeNonce),
        .challenge(version: 2, hub: "hub-hz", nonce: Harness.nonce, salt: Harness.salt, iterations: UInt64(Harness.iterations)),
        .auth(mac: Array(repeating: 1, count: 32)), .welcome(ackedSeq: 0, logHead: 0, schemaVersion: 1, logEpoch: []),
        .push(ChangeSet(ops: [])), .pushAck(ackedSeq: 0), .pull(cursor: 0, byteBudget: 0, ownOps: false),
        .changes(nextCursor: 0, more: false, ChangeSet(ops: [])),
        .digestRequest(cursor: 0), .digest(position: 0, digest: Array(repeating: 0, count: 32)), .snapshotBegin(id: 1, cursor: 1, reason: .bootstrap),
        .snapshotChunk(id: 1, index: 0, ChangeSet(ops: [])), .snapshotEnd(id: 1, chunkCount: 0, digest: Array(repeating: 0, count: 32)),
        .ping(token: 1), .pong(token: 1), .error(code: 15, retryable: true, message: "x"), .bye(reason: "x"),
    ]

    static let hello = Message.hello(node: "xihu", role: .store, versions: [2], schemaVersion: 1, nonce: Harness.nodeNonce)
    static let challenge = Message.challenge(version: 2, hub: "hub-hz", nonce: Harness.nonce, salt: Harness.salt,
                                             iterations: UInt64(Harness.iterations))
    static let transcript = Authentication.transcript(hello: hello.frame().payload, challenge: challenge.frame().payload)
    static let nodeKeys = Authentication.nodeKeys(secret: Harness.secret, salt: Harness.salt, iterations: Harness.iterations)
    static let sessionKeys = Authentication.sessionKeys(clientKey: nodeKeys.clientKey, serverKey: nodeKeys.serverKey, transcript: transcript)

    /// The bytes of `message` as the node's `sequence`-th sealed frame (0: the first after AUTH).
    static func fromNode(_ message: Message, _ sequence: UInt64 = 0) -> [UInt8] { sealed(message.frame(version: 2), sessionKeys.nodeToHub, sequence) }
    /// The bytes of `message` as the hub's `sequence`-th sealed frame (0: WELCOME).
    static func fromHub(_ message: Message, _ sequence: UInt64 = 1) -> [UInt8] { sealed(message.frame(version: 2), sessionKeys.hubToNode, sequence) }
    static func sealed(_ frame: Frame, _ key: [UInt8], _ sequence: UInt64) -> [UInt8] {
        FrameAuthenticator(key: key).seal(frame, sequence: sequence).encoded()
    }

    /// A hub session brought to `state` by a well-behaved node.
    static func hub(in state: ConnectionState) -> HubSession {
        var hub = HubSession(.init(hubID: "hub-hz"), nonce: Harness.nonce, now: .zero)
        if state == .hello { return hub }
        _ = hub.receive(hello.encoded(), now: .zero)
        _ = hub.complete(.registration(Harness.registration), now: .zero)
        if state == .challenged { return hub }
        _ = hub.receive(Message.auth(mac: Authentication.proof(nodeKeys, transcript: transcript)).encoded(version: 2), now: .zero)
        _ = hub.complete(.registration(Harness.registration), now: .zero)
        return hub
    }

    static func node(in state: ConnectionState) -> NodeSession {
        var node = NodeSession(.init(node: "xihu", role: .store, secret: Harness.secret), cursor: 0, lastOwnSeq: 0, now: .zero,
                               nonce: Harness.nodeNonce)
        _ = node.start(now: .zero)
        if state == .hello { return node }
        _ = node.receive(challenge.encoded(), now: .zero)
        if state == .challenged { return node }
        let actions = node.receive(fromHub(.welcome(ackedSeq: 0, logHead: 0, schemaVersion: 1, logEpoch: []), 0), now: .zero)
        if actions.contains(where: { $0.effect != nil }) { _ = node.complete(.outbox([]), now: .zero) }
        return node
    }

    /// `message` as the hub in `state` receives it from the node: sealed once AUTH is past.
    static func toHub(_ message: Message, in state: ConnectionState) -> [UInt8] {
        state == .ready ? fromNode(message) : message.encoded(version: state == .hello ? 1 : 2)
    }

    /// `message` as the node in `state` receives it from the hub: sealed from WELCOME on.
    static func toNode(_ message: Message, in state: ConnectionState) -> [UInt8] {
        state == .ready || message.type == .welcome && state == .challenged ? fromHub(message, state == .ready ? 1 : 0)
            : message.encoded(version: state == .hello ? 1 : 2)
    }

    static func errorCode(_ actions: [SessionAction<some Sendable>]) -> UInt64? {
        for case let .error(code, _, _)? in actions.map(\.sentMessage) { return code }
        return nil
    }

    @Test(arguments: [ConnectionState.hello, .challenged, .ready])
    func theHubAnswersEveryMessageTheTableRefusesWithUnexpectedMessageAndCloses(_ state: ConnectionState) {
        for message in Self.samples where !LegalMessages.mayReceive(message.type, as: .hub, in: state) {
            var hub = Self.hub(in: state)
            #expect(hub.state == state)
            let actions = hub.receive(Self.toHub(message, in: state), now: .zero)
            #expect(Self.errorCode(actions) == 10, "\(message.type) in \(state)")
            #expect(hub.state == .closed, "\(message.type) in \(state)")
        }
    }

    @Test(arguments: [ConnectionState.hello, .challenged, .ready])
    func theNodeAnswersEveryMessageTheTableRefusesWithUnexpectedMessageAndCloses(_ state: ConnectionState) {
        for message in Self.samples where !LegalMessages.mayReceive(message.type, as: .node, in: state) {
            var node = Self.node(in: state)
            #expect(node.state == state)
            let actions = node.receive(Self.toNode(message, in: state), now: .zero)
            #expect(Self.errorCode(actions) == 10, "\(message.type) in \(state)")
            #expect(node.state == .closed, "\(message.type) in \(state)")
        }
    }

    @Test func anUnknownTypeIsCode11AndAnIgnorableTypeIsSkippedInEveryState() {
        for state in [ConnectionState.hello, .challenged, .ready] {
            var hub = Self.hub(in: state)
            let version: UInt8 = state == .hello ? 1 : 2
            let ignorable = Frame(version: version, type: 0x80, payload: [1, 2, 3]), unknown = Frame(version: version, type: 0x7a, payload: [])
            let skipped = hub.receive(state == .ready ? Self.sealed(ignorable, Self.sessionKeys.nodeToHub, 0) : ignorable.encoded(), now: .zero)
            #expect(skipped.compactMap(\.sentMessage).isEmpty && hub.state == state)
            let actions = hub.receive(state == .ready ? Self.sealed(unknown, Self.sessionKeys.nodeToHub, 1) : unknown.encoded(), now: .zero)
            #expect(Self.errorCode(actions) == 11 && hub.state == .closed)
        }
    }

    @Test func aChangeSetOfANewerDataModelIsRefusedBeforeItIsDecoded() {
        var node = Self.node(in: .ready)
        // CHANGES whose change set says schema 2 and then holds bytes schema 1 cannot decode.
        let payload: [UInt8] = [0x05, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff]
        let actions = node.receive(Self.sealed(Frame(version: 2, type: .changes, payload: payload), Self.sessionKeys.hubToNode, 1), now: .zero)
        #expect(Self.errorCode(actions) == 7 && node.state == .closed)
    }

    @Test func aPushOfAnotherNodesOpsIsRefusedWithPermissionDeniedBeforeAnyStoreWork() {
        var hub = Self.hub(in: .ready)
        let forged = tagOps("jingan", seqs: 1...1)
        let actions = hub.receive(Self.fromNode(.push(ChangeSet(ops: forged))), now: .zero)
        #expect(Self.errorCode(actions) == 8 && hub.state == .closed)
        #expect(!actions.contains { $0.effect != nil })
    }
}

/// Every frame after AUTH carries a MAC under the session's keys with an implicit sequence number
/// (SPEC section 3, "Sealed frames"): a frame injected, altered, replayed or reordered is refused.
@Suite struct SealedFrameTests {
    static func refused(_ actions: [HubSession.Action], _ hub: HubSession) -> Bool {
        LegalMessageTests.errorCode(actions) == 5 && hub.state == .closed && !actions.contains { $0.effect != nil }
    }

    @Test func aPushInjectedWithoutTheSessionKeyIsRefusedBeforeAnyStoreWork() {
        var hub = LegalMessageTests.hub(in: .ready)
        let push = Message.push(ChangeSet(ops: tagOps("xihu", seqs: 1...1))).frame(version: 2)
        let forged = FrameAuthenticator(key: Array(repeating: 1, count: 32)).seal(push, sequence: 0).encoded()
        #expect(Self.refused(hub.receive(forged, now: .zero), hub))
    }

    @Test func anAlteredSealedFrameIsRefused() {
        var hub = LegalMessageTests.hub(in: .ready)
        var frame = FrameAuthenticator(key: LegalMessageTests.sessionKeys.nodeToHub).seal(Message.pull(cursor: 0, byteBudget: 0, ownOps: false).frame(version: 2), sequence: 0)
        frame.payload[0] = 9   // cursor 9; the CRC is recomputed, the MAC is not
        #expect(Self.refused(hub.receive(frame.encoded(), now: .zero), hub))
    }

    @Test func aReplayedSealedFrameIsRefused() {
        var hub = LegalMessageTests.hub(in: .ready)
        let ping = LegalMessageTests.fromNode(.ping(token: 1), 0)
        #expect(hub.receive(ping, now: .zero).compactMap(\.sentMessage) == [.pong(token: 1)])
        #expect(Self.refused(hub.receive(ping, now: .zero), hub))
    }

    @Test func aFrameOfTheOtherDirectionIsRefused() {
        var hub = LegalMessageTests.hub(in: .ready)
        #expect(Self.refused(hub.receive(LegalMessageTests.fromHub(.ping(token: 1), 0), now: .zero), hub))
    }

    @Test func theNodeRefusesUnsealedFramesAfterWelcome() {
        // Read as sealed, an unsealed frame takes the next bytes as its MAC: its CRC fails.
        var node = LegalMessageTests.node(in: .ready)
        let pong = Message.pong(token: 1).encoded(version: 2)
        let actions = node.receive(pong + pong + pong, now: .zero)
        #expect(LegalMessageTests.errorCode(actions) == 2 && node.state == .closed)
        // And one whose CRC is made to match fails its MAC.
        var other = LegalMessageTests.node(in: .ready)
        let forged = Frame(version: 2, type: MessageType.pong.rawValue, payload: [1], tag: Array(repeating: 0, count: 16)).encoded()
        #expect(LegalMessageTests.errorCode(other.receive(forged, now: .zero)) == 5 && other.state == .closed)
    }
}

@Suite struct PushAndPullTests {
    @Test func theNodePushesFromTheHubsAckedSeqAndDrainsItsOutbox() {
        let h = Harness(own: tagOps("xihu", seqs: 1...6))
        for op in tagOps("xihu", seqs: 1...3) { h.hubStore.held["xihu", default: [:]][op.seq] = op }
        h.start()
        h.run { $0.node.isCaughtUp }
        let pushes = h.nodeSent.compactMap { if case let .push(cs) = $0 { return cs.ops.map(\.seq) }; return nil }
        #expect(pushes == [[4, 5, 6]])
        #expect(h.hubSent.contains(.pushAck(ackedSeq: 6)) && h.node.ackedSeq == 6)
    }

    @Test func acksAreContiguousSoAGapHoldsTheAckBack() {
        // The hub holds 1, 2 and 4 (4 came first from a retried connection): WELCOME says 2.
        let h = Harness(own: tagOps("xihu", seqs: 1...4))
        for op in tagOps("xihu", seqs: 1...4) where op.seq != 3 { h.hubStore.held["xihu", default: [:]][op.seq] = op }
        h.start()
        h.run { $0.node.isCaughtUp }
        #expect(h.nodeEvents.contains(.authenticated(node: "xihu", hub: "hub-hz", ackedSeq: 2, logHead: 0)))
        #expect(h.nodeSent.contains(.push(ChangeSet(ops: tagOps("xihu", seqs: 3...4)))))
        #expect(h.hubSent.contains(.pushAck(ackedSeq: 4)))
    }

    @Test func anOpTheHubRefusesIsQuarantinedAndTheRestStillSyncs() {
        let h = Harness(own: tagOps("xihu", seqs: 1...6))
        h.hubStore.refuse = { op in op.seq == 4 ? (.invalidOp, "customer_tag is not a field") : nil }
        h.start()
        h.run { $0.node.isCaughtUp }
        #expect(h.hubSent.contains(.error(code: 14, retryable: false, message: "op 4: customer_tag is not a field")))
        #expect(h.nodeStore.quarantined.keys.sorted() == [4])
        #expect(h.nodeEvents.contains(.opQuarantined(seq: 4, code: 14, message: "op 4: customer_tag is not a field")))
        // 1–3 and 5–6 are at the hub; the refusal was settled when the node skipped it.
        #expect(h.hubStore.held["xihu"]!.keys.sorted() == [1, 2, 3, 5, 6])
        #expect(h.node.ackedSeq == 6 && h.hubStore.acked("xihu") == 6)
        #expect(h.nodeClosed == nil && h.hubClosed == nil)
    }

    @Test func aClockSkewRefusalIsRetriedLaterAndNotQuarantined() {
        let h = Harness(own: tagOps("xihu", seqs: 1...2))
        let start = h.now
        h.hubStore.refuse = { _ in (.clockSkew, "5 minutes ahead") }
        h.start()
        h.run(forMillis: 10_000)
        #expect(h.nodeStore.quarantined.isEmpty && h.node.ackedSeq == 0)
        h.hubStore.refuse = { _ in nil }
        h.run { $0.node.isCaughtUp }
        #expect(h.node.ackedSeq == 2 && h.now.milliseconds(since: start) >= 30_000)
    }

    @Test func pullRepeatsWhileTheHubSaysMore() {
        let h = Harness(own: [], hubLog: tagOps("jingan", seqs: 1...50), byteBudget: 200)
        h.start()
        h.run { $0.node.isCaughtUp }
        let pulls = h.nodeSent.filter { $0.type == .pull }.count
        let changes = h.hubSent.compactMap { if case let .changes(next, more, cs) = $0 { return (next, more, cs.ops.count) }; return nil }
        #expect(pulls >= 3 && changes.count == pulls, "\(pulls) pulls: \(changes)")
        #expect(changes.dropLast().allSatisfy { $0.1 } && changes.last?.1 == false)
        #expect(changes.allSatisfy { $0.2 >= 1 })
        #expect(h.nodeStore.applied.count == 50 && h.nodeStore.cursor == 50)
    }

    @Test func aNewNodeGetsASnapshotInChunksAndContinuesFromItsCursor() {
        let h = Harness(own: [], hubLog: tagOps("jingan", seqs: 1...25))
        h.hubStore.snapshotPartSize = 10
        h.start()
        h.run { $0.node.isCaughtUp }
        let types = h.hubSent.map(\.type)
        #expect(types.filter { $0 == .snapshotChunk }.count == 3 && types.contains(.snapshotEnd))
        #expect(h.nodeStore.applied.count == 25 && h.nodeStore.cursor == 25)
        #expect(h.nodeEvents.contains(.snapshotFinished(id: 1, chunks: 3, cursor: 25)))
    }

    @Test func aNodeTooOldForWhatItWouldPullKeepsPushingOnAnOpenConnection() {
        let h = Harness(own: tagOps("xihu", seqs: 1...3), hubLog: tagOps("jingan", seqs: 1...2))
        h.hubStore.schemaTooNew = true
        h.start()
        h.run { $0.node.isCaughtUp }
        #expect(h.hubSent.contains { if case .error(7, false, _) = $0 { return true }; return false })
        #expect(h.nodeEvents.contains(.upgradeNeeded("the next op needs data model 2")))
        #expect(h.node.ackedSeq == 3 && h.nodeClosed == nil && h.hubClosed == nil)
        #expect(h.nodeSent.filter { $0.type == .pull }.count == 1)
    }

    @Test func cursorTooOldIsInformationalAndLeavesTheConnectionOpen() {
        var node = LegalMessageTests.node(in: .ready)
        let actions = node.receive(LegalMessageTests.fromHub(.error(code: 13, retryable: true, message: "snapshot follows")), now: .zero)
        #expect(actions.compactMap(\.sentMessage).isEmpty && node.state == .ready)
    }

    @Test func aNodeThatCannotApplyChangesSaysSoAndCloses() {
        let h = Harness(own: [], hubLog: tagOps("jingan", seqs: 1...2))
        h.nodeStore.refuseOrigin = "jingan"
        h.start()
        h.run()
        #expect(h.nodeSent.last?.type == .error)
        #expect(h.hubClosed == .errorReceived(code: 14, retryable: false, message: "refused an op of jingan"))
    }

    @Test func theSessionFedByteByByteDoesWhatItDoesWhole() {
        let whole = Harness(own: tagOps("xihu", seqs: 1...5), hubLog: tagOps("jingan", seqs: 1...7))
        whole.start()
        whole.run { $0.node.isCaughtUp }
        let bytewise = Harness(own: tagOps("xihu", seqs: 1...5), hubLog: tagOps("jingan", seqs: 1...7),
                               faults: { _, _, _ in .split(maxBytes: 1) })
        bytewise.start()
        bytewise.run { $0.node.isCaughtUp }
        #expect(bytewise.node.isCaughtUp)
        #expect(bytewise.nodeSent == whole.nodeSent && bytewise.hubSent == whole.hubSent)
        #expect(bytewise.nodeStore.applied == whole.nodeStore.applied && bytewise.hubStore.log == whole.hubStore.log)
    }

    @Test func aDuplicatedFrameIsAProtocolErrorNotSilentCorruption() {
        // Duplicating a PUSH frame re-sends a change set the hub's dictionary already took: it
        // decodes against the wrong dictionary, or is a second PUSH; either way nothing breaks.
        let h = Harness(own: tagOps("xihu", seqs: 1...3), faults: { side, index, _ in side == .node && index == 2 ? .duplicate : .deliver })
        h.start()
        h.run()
        #expect(h.hubStore.acked("xihu") == 3 || h.hubClosed != nil)
    }
}

@Suite struct KeepaliveTests {
    @Test func pingsKeepAQuietConnectionOpen() {
        let h = Harness(own: [], policy: KeepalivePolicy(pollIntervalMillis: 3_600_000))
        h.start()
        h.run { $0.node.isCaughtUp }
        let start = h.now
        h.run(forMillis: 300_000)
        #expect(h.nodeClosed == nil && h.hubClosed == nil)
        #expect(h.nodeSent.filter { $0.type == .ping }.count >= 10)
        #expect(h.hubSent.filter { $0.type == .pong }.count >= 10)
        #expect(h.now.milliseconds(since: start) >= 300_000)
    }

    @Test func bothSidesCloseAfterSixtySecondsOfSilence() {
        let h = Harness(own: [], policy: KeepalivePolicy(pollIntervalMillis: 3_600_000))
        h.start()
        h.run { $0.node.isCaughtUp }
        let cut = h.now
        h.transport.setPartitioned(true)
        h.run(forMillis: 120_000) { $0.nodeClosed != nil && $0.hubClosed != nil }
        #expect(h.nodeClosed == .idleTimeout && h.hubClosed == .idleTimeout)
        #expect(h.now.milliseconds(since: cut) >= 60_000 && h.now.milliseconds(since: cut) < 62_000)
    }

    @Test func aHandshakeThatStallsIsClosedAfterTenSeconds() {
        var hub = HubSession(.init(hubID: "hub-hz"), nonce: Harness.nonce, now: .zero)
        _ = hub.receive(LegalMessageTests.hello.encoded(), now: .zero)
        _ = hub.complete(.registration(Harness.registration), now: .zero)
        #expect(hub.nextDeadline == SessionInstant(milliseconds: 10_000))
        #expect(hub.tick(now: SessionInstant(milliseconds: 9_999)).isEmpty)
        let actions = hub.tick(now: SessionInstant(milliseconds: 10_000))
        #expect(actions.last?.closeReason == .handshakeTimeout && hub.state == .closed)
    }

    @Test func aHubCountsWholeRequestsNotTrickledBytesForItsIdleTimer() {
        // Slow-loris after authentication: one byte of a PUSH every 10 s never completes a request.
        let h = Harness()
        h.start()
        h.run(until: { $0.hub.state == .ready })
        let ready = h.now
        let push = Message.push(ChangeSet(ops: tagOps("xihu", seqs: 1...1))).encoded()
        var closed: CloseReason?
        var hub = h.hub
        for i in 1...10 where closed == nil {
            let t = ready.adding(milliseconds: UInt64(i) * 10_000)
            closed = (hub.receive([push[i - 1]], now: t) + hub.tick(now: t)).compactMap(\.closeReason).first
        }
        #expect(closed == .idleTimeout && hub.state == .closed)
    }

    @Test func aHubRefusesALargeFrameBeforeAuthenticationWithoutWaitingForIt() {
        var hub = HubSession(.init(hubID: "hub-hz"), nonce: Harness.nonce, now: .zero)
        // A HELLO header declaring 1 MiB: refused on its 8 header bytes (SPEC section 10).
        let actions = hub.receive([0x53, 0x59, 1, 0x01, 0x00, 0x10, 0x00, 0x00], now: .zero)
        #expect(actions.compactMap(\.sentMessage).first.map { if case .error(3, _, _) = $0 { return true }; return false } == true)
        #expect(hub.state == .closed)
    }

    @Test func opRefusalTextNamesTheOpAndParsesBack() {
        #expect(OpRefusalText.seq(in: OpRefusalText.message(seq: 17, "x")) == 17)
        #expect(OpRefusalText.seq(in: "op 017: x") == nil && OpRefusalText.seq(in: "op 0: x") == nil)
        #expect(OpRefusalText.seq(in: "op 99999999999999999999999: x") == nil && OpRefusalText.seq(in: "node 'x' …") == nil)
    }
}
