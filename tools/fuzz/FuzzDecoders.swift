// libFuzzer target for every decoder that takes bytes from outside: frames, the streaming frame
// reader, message payloads, change sets (SiyuWire) and the op-log encoding (SiyuCore).
//
// Build and run with tools/fuzz/run.sh (see there and tools/fuzz/README.md). Not part of the
// Swift package: run.sh compiles SiyuCore and SiyuWire from Sources/ as two modules, then this
// file against them, all with -sanitize=fuzzer,address.
//
// Decoding errors are expected and ignored. A finding is a trap (array bounds, overflow, force
// unwrap, `precondition`), a crash, or a sanitizer report. Besides "never traps", each step checks
// the decoders' documented guarantees and fails a `precondition` when one does not hold:
//   - a decoded frame re-encodes to exactly the bytes it was decoded from;
//   - the FrameReader yields the same frames and the same error however the stream is chunked;
//   - every error thrown is the layer's own error type (WireError / CoreError);
//   - a decoded message, change set or op re-encodes to bytes that decode to an equal value, and
//     re-encoding that value gives the same bytes again (encoding is deterministic);
//   - for change sets, "equal" also holds byte for byte: every string of every op keeps its exact
//     UTF-8 bytes (Swift's `==` on strings is canonical equivalence, so `==` alone would not see a
//     string replaced by a differently-normalized one).
// The failing check prints what differed to stderr before the precondition traps, because
// `precondition` messages are not printed in -O builds.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SiyuCore
import SiyuWire

/// Called by libFuzzer once, before it installs its signal handlers. Swift's crash backtracer (on
/// by default on Linux) does not get along with ASan: it reads poisoned memory, which adds a bogus
/// ASan report after the real failure, and it can hang. So unless SWIFT_BACKTRACE is set, re-run
/// this same process with it turned off; libFuzzer then prints the stack trace itself (Swift names
/// mangled: pipe through `swift demangle --simplified`). Set SWIFT_BACKTRACE to keep the backtracer.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>,
                           _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> CInt {
    if getenv("SWIFT_BACKTRACE") == nil {
        setenv("SWIFT_BACKTRACE", "enable=no", 1)
        execv("/proc/self/exe", argv.pointee)   // returns only on failure: then go on as we are
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))

    // (1) Frame.decode on the whole input.
    fuzzFrameDecode(bytes)

    // (2) A FrameReader fed the input in chunks; every frame it yields goes to Message(frame:), and
    //     the frames together go through one connection's string dictionary.
    fuzzFrameReader(bytes)

    // (3) Payload decoders without a valid CRC: type = first byte, payload = the rest.
    if let type = bytes.first {
        fuzzMessage(Frame(type: type, payload: Array(bytes.dropFirst())), context: "direct frame")
    }

    // (4) ChangeSetCodec.decode of the input.
    do {
        let cs = try ChangeSetCodec.decode(bytes)
        checkChangeSetRoundTrip(cs, context: "ChangeSetCodec.decode(input)")
    } catch {
        expectWireError(error, "ChangeSetCodec.decode")
    }

    // (5) OpCoding.decode of the input, whole (version 1) and against op-log keys (version 2).
    do {
        let op = try OpCoding.decode(bytes)
        checkOpRoundTrip(op)
    } catch {
        check(error is CoreError, "OpCoding.decode threw a non-CoreError: \(error)")
    }
    do {
        let keys = OpKeys(origin: "xihu", seq: 7, hlc: HLC(millis: 1_764_000_000_000, logical: 1), instanceID: "wm_林")
        let op = try OpCoding.decode(bytes, keys: keys)
        let keyed = OpCoding.encode(op, keyedBy: OpKeys(of: op))
        check((try? OpCoding.decode(keyed, keys: OpKeys(of: op))) == op, "keyed op round trip failed: \(op)\n  encoding: \(hex(keyed))")
    } catch {
        check(error is CoreError, "OpCoding.decode(_:keys:) threw a non-CoreError: \(error)")
    }
    return 0
}

// MARK: - Steps

private func fuzzFrameDecode(_ bytes: [UInt8]) {
    do {
        switch try Frame.decode(bytes) {
        case let .frame(frame, consumed):
            check(consumed >= Frame.headerSize + Frame.trailerSize && consumed <= bytes.count,
                  "Frame.decode consumed \(consumed) of \(bytes.count) bytes")
            check(frame.encoded() == Array(bytes.prefix(consumed)),
                  "a decoded frame does not re-encode to its bytes: \(hex(bytes.prefix(consumed))) -> \(hex(frame.encoded()))")
            fuzzMessage(frame, context: "Frame.decode(input)")
        case let .needMoreBytes(n):
            check(n > 0, "Frame.decode asked for \(n) more bytes")
        }
    } catch {
        expectWireError(error, "Frame.decode")
    }
}

/// Everything a FrameReader produced from a stream: the frames, then the error that ended it (if any).
private struct ReaderOutcome: Equatable {
    var frames: [Frame] = []
    var error: WireError?
}

/// Drains `reader` after each chunk. Stops at the first error (the stream is unusable after one).
private func readAll(_ bytes: [UInt8], nextChunkSize: () -> Int) -> ReaderOutcome {
    var reader = FrameReader()
    var outcome = ReaderOutcome()
    var offset = 0
    while offset < bytes.count {
        let n = min(max(nextChunkSize(), 1), bytes.count - offset)
        reader.feed(Array(bytes[offset ..< offset + n]))
        offset += n
        do {
            while let frame = try reader.next() {
                outcome.frames.append(frame)
            }
        } catch {
            expectWireError(error, "FrameReader.next")
            outcome.error = error as? WireError
            return outcome
        }
    }
    return outcome
}

/// Chunk sizes derived from the first input byte. The low three bits pick the largest chunk
/// (0 → byte by byte); a small xorshift generator seeded from the byte and the input length picks
/// each size up to it. Mixing in the length lets the fuzzer vary the split of a valid stream (which
/// always starts with 0x53, 'S') by growing or shrinking the input.
private struct ChunkSchedule {
    static let limits = [1, 2, 3, 5, 7, 16, 61, 4096]
    var state: UInt64
    let limit: Int

    init(firstByte: UInt8, length: Int) {
        let mode = Int((firstByte ^ UInt8(truncatingIfNeeded: length)) & 7)
        limit = ChunkSchedule.limits[mode]
        state = (UInt64(firstByte) << 32 | UInt64(truncatingIfNeeded: length)) &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    mutating func next() -> Int {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return 1 + Int(state % UInt64(limit))
    }
}

private func fuzzFrameReader(_ bytes: [UInt8]) {
    guard let first = bytes.first else { return }
    var schedule = ChunkSchedule(firstByte: first, length: bytes.count)
    let chunked = readAll(bytes) { schedule.next() }
    let unchunked = readAll(bytes) { bytes.count }
    check(chunked == unchunked, """
        FrameReader gave different results for chunk limit \(schedule.limit) and for the whole input: \
        \(chunked.frames.count) frames, error \(String(describing: chunked.error)) vs \
        \(unchunked.frames.count) frames, error \(String(describing: unchunked.error))
        """)
    for frame in chunked.frames {
        fuzzMessage(frame, context: "FrameReader")
    }
    fuzzSession(chunked.frames)
}

/// The frames as one direction of one connection: one string dictionary carried from frame to
/// frame (a real receiver closes the connection at the first error, so this stops there). Every
/// message decoded is re-sent on a second connection and must arrive equal, with both ends of that
/// connection holding the same dictionary afterwards.
private func fuzzSession(_ frames: [Frame]) {
    var incoming = StringDictionary(), resent = StringDictionary(), received = StringDictionary()
    for frame in frames {
        let message: Message
        do {
            message = try Message(frame: frame, dictionary: &incoming)
        } catch {
            expectWireError(error, "Message(frame:dictionary:) [session]")
            return
        }
        let frameAgain = message.frame(dictionary: &resent)
        let again: Message
        do {
            again = try Message(frame: frameAgain, dictionary: &received)
        } catch {
            fail("a message re-sent on a connection does not decode: \(error)\n  message: \(message)\n  payload: \(hex(frameAgain.payload))")
        }
        check(again == message, "a message re-sent on a connection changed (\(differingFields(message, again))):\n  before: \(message)\n  after:  \(again)")
        check(received == resent, "the two ends of a connection disagree on the string dictionary after \(message)")
    }
}

private func fuzzMessage(_ frame: Frame, context: String) {
    let message: Message
    do {
        message = try Message(frame: frame)
    } catch {
        expectWireError(error, "Message(frame:) [\(context)]")
        return
    }
    checkMessageRoundTrip(message, context: context)
}

// MARK: - Round trips

private func checkMessageRoundTrip(_ message: Message, context: String) {
    let frame = message.frame()
    check(frame.messageType == message.type, "frame type \(frame.type) != message type \(message.type)")
    let again: Message
    do {
        again = try Message(frame: frame)
    } catch {
        fail("a re-encoded message does not decode [\(context)]: \(error)\n  message: \(message)\n  payload: \(hex(frame.payload))")
    }
    check(again == message, """
        message round trip changed the value (\(differingFields(message, again))) [\(context)]:
          before: \(message)
          after:  \(again)
          payload: \(hex(frame.payload))
        """)
    check(again.frame() == frame, "message encoding is not deterministic [\(context)]: \(hex(frame.payload)) vs \(hex(again.frame().payload))")

    // The whole wire form: the encoded frame decodes back to the same frame.
    let wire = message.encoded()
    do {
        guard case let .frame(decoded, consumed) = try Frame.decode(wire) else {
            fail("an encoded message is not a whole frame: \(hex(wire))")
        }
        check(decoded == frame && consumed == wire.count, "encoded message frame does not decode to itself: \(hex(wire))")
    } catch {
        fail("an encoded message frame does not decode: \(error): \(hex(wire))")
    }

    switch message {
    case let .push(cs), let .changes(_, _, cs), let .snapshotChunk(_, _, cs):
        checkChangeSetRoundTrip(cs, context: "\(context), message \(message.type)")
    default:
        break
    }
}

private func checkChangeSetRoundTrip(_ cs: ChangeSet, context: String) {
    let encoded = ChangeSetCodec.encode(cs)
    let again: ChangeSet
    do {
        again = try ChangeSetCodec.decode(encoded)
    } catch {
        fail("a re-encoded change set does not decode [\(context)]: \(error)\n  change set: \(cs)\n  encoding: \(hex(encoded))")
    }
    check(again == cs, """
        change set round trip changed the value (\(differingFields(cs, again))) [\(context)]:
        \(diff(cs, again))
          encoding: \(hex(encoded))
        """)
    // Byte-exact: OpCoding writes every string's exact UTF-8 bytes, so this also catches a string
    // replaced by a canonically-equivalent one, which `==` above accepts.
    let before = cs.ops.map(OpCoding.encode), after = again.ops.map(OpCoding.encode)
    check(before == after, "change set round trip changed string bytes [\(context)]:\n\(byteDiff(cs, again))\n  encoding: \(hex(encoded))")
    check(ChangeSetCodec.encode(again) == encoded, "change set encoding is not deterministic [\(context)]: \(hex(encoded)) vs \(hex(ChangeSetCodec.encode(again)))")
}

private func checkOpRoundTrip(_ op: Op) {
    let encoded = OpCoding.encode(op)
    let again: Op
    do {
        again = try OpCoding.decode(encoded)
    } catch {
        fail("a re-encoded op does not decode: \(error)\n  op: \(op)\n  encoding: \(hex(encoded))")
    }
    check(again == op, "op round trip changed the value:\n  before: \(op)\n  after:  \(again)\n  encoding: \(hex(encoded))")
    check(OpCoding.encode(again) == encoded, "op encoding is not deterministic: \(hex(encoded)) vs \(hex(OpCoding.encode(again)))")
}

// MARK: - Helpers

private func expectWireError(_ error: Error, _ what: String) {
    check(error is WireError, "\(what) threw a non-WireError: \(type(of: error)): \(error)")
}

/// Fails a `precondition` after printing `message` (which -O builds would not print).
private func check(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fail(message(), line: line) }
}

private func fail(_ message: String, line: UInt = #line) -> Never {
    fputs("FuzzDecoders.swift:\(line): check failed: \(message)\n", stderr)
    fflush(stderr)
    precondition(false, message)
    fatalError(message)   // not reached: precondition(false) traps in every build configuration but -Ounchecked
}

private func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits = Array("0123456789abcdef")
    var s = ""
    var n = 0
    for b in bytes {
        if n == 256 { s += "…"; break }
        s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]); s.append(" ")
        n += 1
    }
    return s
}

/// Which parts differ, e.g. "op role" or "op seq, op author": the first line of a failure names
/// them, so that run.sh's triage can group findings by what went wrong.
private func differingFields(_ a: ChangeSet, _ b: ChangeSet) -> String {
    if a.schemaVersion != b.schemaVersion { return "schema version" }
    if a.ops.count != b.ops.count { return "op count" }
    guard let (x, y) = zip(a.ops, b.ops).first(where: { $0 != $1 }) else { return "nothing" }
    var fields: [String] = []
    if x.stamp.hlc != y.stamp.hlc { fields.append("op clock") }
    if x.stamp.node != y.stamp.node { fields.append("op origin") }
    if x.seq != y.seq { fields.append("op seq") }
    if x.role != y.role { fields.append("op role") }
    if x.author != y.author { fields.append("op author") }
    if x.body != y.body { fields.append("op body (\(x.body.kindName))") }
    return fields.joined(separator: ", ")
}

private func differingFields(_ a: Message, _ b: Message) -> String {
    switch (a, b) {
    case let (.push(x), .push(y)) where x != y,
         let (.changes(_, _, x), .changes(_, _, y)) where x != y,
         let (.snapshotChunk(_, _, x), .snapshotChunk(_, _, y)) where x != y:
        return "in the change set, " + differingFields(x, y)
    default:
        return "message fields"
    }
}

/// The first differing op of two change sets, for the failure message.
private func diff(_ a: ChangeSet, _ b: ChangeSet) -> String {
    if a.schemaVersion != b.schemaVersion { return "  schema \(a.schemaVersion) vs \(b.schemaVersion)" }
    if a.ops.count != b.ops.count { return "  \(a.ops.count) ops vs \(b.ops.count) ops" }
    for (i, (x, y)) in zip(a.ops, b.ops).enumerated() where x != y {
        return "  op \(i) of \(a.ops.count):\n    before: \(x)  [role \(x.role), seq \(x.seq), author \(x.author.debugDescription)]\n    after:  \(y)  [role \(y.role), seq \(y.seq), author \(y.author.debugDescription)]"
    }
    return "  (no op differs)"
}

private func byteDiff(_ a: ChangeSet, _ b: ChangeSet) -> String {
    for (i, (x, y)) in zip(a.ops, b.ops).enumerated() where OpCoding.encode(x) != OpCoding.encode(y) {
        return "  op \(i): OpCoding bytes\n    before: \(hex(OpCoding.encode(x)))\n    after:  \(hex(OpCoding.encode(y)))"
    }
    return "  (no op differs)"
}
