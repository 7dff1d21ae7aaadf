import Foundation
import SiyuCore
import SiyuStore
import SiyuTestSupport

/// Replicas in a temporary directory that is removed when the cluster goes away.
final class Cluster {
    let dir: TemporaryDirectory
    let clock = WallClock()
    private(set) var replicas: [String: Replica] = [:]
    var skew: [String: Int64] = [:]

    init(_ nodes: [(String, Role)] = [("hq", .hq), ("xihu", .store), ("jingan", .store)]) throws {
        dir = try TemporaryDirectory()
        for (id, role) in nodes { try add(id, role: role) }
    }

    deinit {
        for r in replicas.values { r.close() }
        dir.remove()
    }

    func path(_ node: String) -> String { dir.path("\(node).db") }

    @discardableResult
    func add(_ node: String, role: Role) throws -> Replica {
        let clock = self.clock
        let r = try Replica(path: path(node), options: ReplicaOptions(node: node, role: role, wallClock: { [weak self] in
            UInt64(Int64(clock.now) + (self?.skew[node] ?? 0))
        }))
        replicas[node] = r
        return r
    }

    subscript(_ node: String) -> Replica { replicas[node]! }

    /// `to` applies what `from` has and `to` lacks.
    @discardableResult
    func send(_ from: String, to: String) throws -> ApplyReport {
        clock.advance()
        return try self[to].apply(try self[from].changeSet(since: try self[to].versionVector()))
    }

    /// Every replica exchanges with every other until nothing new flows.
    func syncAll() throws {
        let names = replicas.keys.sorted()
        for _ in 0..<3 {
            for a in names { for b in names where a != b { try send(a, to: b) } }
        }
    }

    func digests() throws -> [String: String] {
        try replicas.mapValues { try $0.digest().hexString }
    }
}
