/// The bytes a connection has accepted for sending but the kernel has not taken yet: a queue of
/// chunks with a read position in the first. Small writes are appended to the last chunk (up to
/// `coalesceLimit`), so a burst of small frames goes out in few system calls. Not thread-safe.
struct OutboundBuffer {
    static let coalesceLimit = 64 * 1024

    private var chunks: [[UInt8]] = []
    private var head = 0
    private var offset = 0
    /// Bytes waiting.
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        count += bytes.count
        if chunks.count > head, let last = chunks.last, last.count + bytes.count <= OutboundBuffer.coalesceLimit {
            chunks[chunks.count - 1].append(contentsOf: bytes)
        } else {
            chunks.append(bytes)
        }
    }

    /// Calls `body` with the unsent bytes of the first chunk (never empty unless the buffer is).
    func withFirstChunk<R>(_ body: (UnsafeRawBufferPointer) throws(NetError) -> R) throws(NetError) -> R {
        guard head < chunks.count else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        let start = offset
        let result = chunks[head].withUnsafeBytes { raw -> Result<R, NetError> in
            do throws(NetError) { return .success(try body(UnsafeRawBufferPointer(rebasing: raw[start...]))) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Drops `n` sent bytes from the front (clamped to what is there).
    mutating func consume(_ n: Int) {
        var remaining = max(0, min(n, count))
        count -= remaining
        while remaining > 0, head < chunks.count {
            let left = chunks[head].count - offset
            if remaining < left {
                offset += remaining
                return
            }
            remaining -= left
            chunks[head] = []
            head += 1
            offset = 0
        }
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: chunks.count <= 64)
            head = 0
        } else if head >= 32 && head * 2 >= chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() {
        chunks.removeAll()
        head = 0
        offset = 0
        count = 0
    }
}
