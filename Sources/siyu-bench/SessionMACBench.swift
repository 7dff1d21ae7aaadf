import Foundation
import SiyuCore
import SiyuWire

/// What authenticating every frame costs (issue 18, section 2): the 16 bytes each sealed frame
/// carries, and the hub's CPU per frame — one HMAC-SHA256 to verify a frame it receives and one to
/// seal a frame it sends (`FrameAuthenticator`, the code `Connection` runs) — for the frames of a
/// sync: a PULL, a PUSH_ACK, a 64 KiB CHANGES and a frame of the 1 MiB limit. Beside them, the
/// handshake: the hub's check of AUTH's proof and its key derivation (per connection), and the
/// node's PBKDF2 of 4,096 iterations (per registration: the node keeps the result in memory).
struct SessionMACBench {
    let rounds: Int

    func run() throws -> SectionReport {
        var r = SectionReport("session MACs: every frame after the handshake authenticated")
        let keys = Authentication.nodeKeys(secret: Array(repeating: 0x61, count: 64), salt: Array(0..<16), iterations: 1)
        let transcript = Authentication.transcript(hello: Array(repeating: 1, count: 41), challenge: Array(repeating: 2, count: 59))
        let session = Authentication.sessionKeys(clientKey: keys.clientKey, serverKey: keys.serverKey, transcript: transcript)
        let hub = FrameAuthenticator(key: session.hubToNode), node = FrameAuthenticator(key: session.nodeToHub)
        let frames: [(String, String, Frame)] = [
            ("pull", "PULL", Message.pull(cursor: 123_456, byteBudget: 262_144, ownOps: false).frame(version: 2)),
            ("push_ack", "PUSH_ACK", Message.pushAck(ackedSeq: 4_321).frame(version: 2)),
            ("changes_64k", "CHANGES of 64 KiB", Frame(version: 2, type: MessageType.changes.rawValue, payload: Array(repeating: 7, count: 65_536))),
            ("frame_1m", "a 1 MiB frame", Frame(version: 2, type: MessageType.changes.rawValue, payload: Array(repeating: 7, count: Frame.maxPayload))),
        ]
        r.line("bytes per frame: +\(Authentication.tagSize) (the MAC); CPU on the hub: one HMAC-SHA256 per frame received, one per frame sent")
        for (key, name, frame) in frames {
            let n = frame.payload.count > 100_000 ? max(4, rounds / 1_000) : frame.payload.count > 10_000 ? max(20, rounds / 50) : rounds
            let sealed = node.seal(frame, sequence: 0)
            var ok = true
            let verify = seconds { for _ in 0..<n { ok = node.verify(sealed, sequence: 0) && ok } }
            let seal = seconds { for i in 0..<n { _ = hub.seal(frame, sequence: UInt64(i)) } }
            guard ok else { throw BenchError("a sealed frame did not verify") }
            let wire = frame.encoded().count
            let verifyMicros = verify * 1e6 / Double(n), sealMicros = seal * 1e6 / Double(n)
            r.line("\(name): \(grouped(wire)) → \(grouped(wire + Authentication.tagSize)) bytes (+\(fixed(Double(Authentication.tagSize) * 100 / Double(wire), 1))%); hub verifies in \(fixed(verifyMicros, 2)) µs, seals in \(fixed(sealMicros, 2)) µs")
            r.figure("mac_\(key)_bytes", wire + Authentication.tagSize)
            r.figure("mac_\(key)_verify_us", verifyMicros, digits: 2)
            r.figure("mac_\(key)_seal_us", sealMicros, digits: 2)
        }
        let verifiers = Authentication.verifiers(secret: Array(repeating: 0x61, count: 64), salt: Array(0..<16), iterations: 4_096)
        let nodeKeys = Authentication.nodeKeys(secret: Array(repeating: 0x61, count: 64), salt: Array(0..<16), iterations: 4_096)
        let proof = Authentication.proof(nodeKeys, transcript: transcript)
        let checks = max(10, rounds / 10)
        var accepted = true
        let handshake = seconds {
            for _ in 0..<checks {
                guard let clientKey = Authentication.clientKey(fromProof: proof, verifiers, transcript: transcript) else { accepted = false; continue }
                _ = Authentication.sessionKeys(clientKey: clientKey, serverKey: verifiers.serverKey, transcript: transcript)
            }
        }
        guard accepted else { throw BenchError("the proof did not verify") }
        let pbkdf2 = seconds { _ = Authentication.nodeKeys(secret: Array(repeating: 0x61, count: 64), salt: Array(16..<32), iterations: 4_096) }
        r.line("handshake on the hub: proof check and session keys in \(fixed(handshake * 1e6 / Double(checks), 1)) µs per connection")
        r.line("node: PBKDF2-HMAC-SHA256 of 4,096 iterations in \(fixed(pbkdf2 * 1e3, 1)) ms, once per registration (kept in memory)")
        r.figure("mac_handshake_hub_us", handshake * 1e6 / Double(checks), digits: 1)
        r.figure("mac_pbkdf2_4096_ms", pbkdf2 * 1e3, digits: 1)
        return r
    }
}
