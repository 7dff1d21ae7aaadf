import Foundation
import SiyuCore
import SiyuNet

/// One row's attack for a process of its own (`siyu-bench --attack-child`, the attacker of the
/// bench's attack section): written as that process's command line by the bench and read back by
/// the child, so the two never disagree on a flag. Reading never traps: every malformed argument
/// throws an `AttackError` naming the flag and what it takes.
public struct AttackOrder: Equatable, Sendable {
    /// The row whose rounds are repeated.
    public var input: HostileInput
    /// The hub, and the registered node whose secret the attacker holds.
    public var target: AttackTarget
    /// Seconds the rounds go on for, at most (the attacker also stops when its standard input closes).
    public var seconds: Double
    /// Seconds a round waits for an answer or for the hub to close (`Attacker.wait`).
    public var wait: Double

    /// The most seconds an order may ask for (the bench's windows are at most 600 s).
    public static let maxSeconds = 600.0
    /// The longest secret an order carries, in bytes.
    public static let maxSecretBytes = 1_024

    public init(input: HostileInput, target: AttackTarget, seconds: Double, wait: Double) {
        self.input = input
        self.target = target
        self.seconds = seconds
        self.wait = wait
    }

    public static let usage = "--hub HOST:PORT --row ROW --node NODE --secret-hex HEX --seconds S --wait S"

    /// The order as command-line arguments (the secret in hexadecimal; the ops of another origin
    /// go under `--other-node`).
    public var arguments: [String] {
        ["--hub", "\(target.hub)", "--row", input.rawValue, "--node", target.node, "--secret-hex", target.secret.map { String(format: "%02x", $0) }.joined(),
         "--other-node", target.otherNode, "--seconds", "\(seconds)", "--wait", "\(wait)"]
    }

    /// Reads `arguments` as `arguments` writes them (each flag once, in any order; `--other-node`
    /// may be left out: "hq").
    public init(parsing arguments: [String]) throws {
        var values: [String: String] = [:]
        var it = arguments.makeIterator()
        let flags = ["--hub", "--row", "--node", "--secret-hex", "--other-node", "--seconds", "--wait"]
        while let flag = it.next() {
            guard flags.contains(flag) else { throw AttackError("unknown argument '\(flag)'; usage: \(AttackOrder.usage)") }
            guard values[flag] == nil else { throw AttackError("\(flag) given twice") }
            guard let value = it.next() else { throw AttackError("\(flag) needs a value") }
            values[flag] = value
        }
        func value(_ flag: String) throws -> String {
            guard let v = values[flag] else { throw AttackError("missing \(flag); usage: \(AttackOrder.usage)") }
            return v
        }
        func seconds(_ flag: String) throws -> Double {
            let text = try value(flag)
            guard let s = Double(text), s > 0, s <= AttackOrder.maxSeconds else {
                throw AttackError("\(flag) needs seconds, more than 0 and at most \(Int(AttackOrder.maxSeconds)) (got '\(text)')")
            }
            return s
        }
        let hubText = try value("--hub")
        let hub: SocketAddress
        do { hub = try SocketAddress(parsing: hubText) } catch { throw AttackError("--hub: \(error)") }
        let rowText = try value("--row")
        guard let input = HostileInput(rawValue: rowText) else {
            throw AttackError("--row: no row '\(rowText)' (rows: \(HostileInput.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let node = try value("--node")
        guard !node.isEmpty else { throw AttackError("--node needs a node id") }
        let hex = Array(try value("--secret-hex").utf8)
        guard !hex.isEmpty, hex.count % 2 == 0, hex.count <= 2 * AttackOrder.maxSecretBytes else {
            throw AttackError("--secret-hex needs an even number of hexadecimal digits, 2 to \(2 * AttackOrder.maxSecretBytes)")
        }
        func digit(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var secret: [UInt8] = []
        for i in stride(from: 0, to: hex.count, by: 2) {
            guard let high = digit(hex[i]), let low = digit(hex[i + 1]) else { throw AttackError("--secret-hex: not a hexadecimal digit in '\(String(decoding: hex, as: UTF8.self))'") }
            secret.append(high << 4 | low)
        }
        let other = values["--other-node"] ?? "hq"
        guard !other.isEmpty else { throw AttackError("--other-node needs a node id") }
        self.init(input: input, target: AttackTarget(hub: hub, node: node, secret: secret, otherNode: other),
                  seconds: try seconds("--seconds"), wait: try seconds("--wait"))
    }
}

/// What an attack process did (`AttackOrder`'s answer), as one JSON line on its standard output.
public struct AttackTally: Codable, Equatable, Sendable {
    /// The row (`HostileInput.rawValue`).
    public var row: String
    /// The rounds made.
    public var rounds: Int
    /// Per distinct round (its answers joined by ", "), how many rounds saw it.
    public var answers: [String: Int]
    /// What ended the rounds early (a round's error, or the rounds not ending in time); nil if nothing.
    public var failure: String?
    /// CPU seconds (user and system) the attack process used over its rounds, and the wall-clock seconds they took.
    public var cpuSeconds: Double
    public var seconds: Double

    public init(row: HostileInput, outcomes: [AttackOutcome], failure: String?, cpuSeconds: Double, seconds: Double) {
        self.row = row.rawValue
        rounds = outcomes.count
        answers = [:]
        for outcome in outcomes { answers[outcome.answers.joined(separator: ", "), default: 0] += 1 }
        self.failure = failure
        self.cpuSeconds = cpuSeconds
        self.seconds = seconds
    }

    /// The tally as one line of JSON (keys sorted, snake_case).
    public var line: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Reads a line `line` wrote.
    public init(line: String) throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do { self = try decoder.decode(AttackTally.self, from: Data(line.utf8)) } catch {
            throw AttackError("not an attack tally: '\(line.prefix(200))' (\(error))")
        }
    }
}
