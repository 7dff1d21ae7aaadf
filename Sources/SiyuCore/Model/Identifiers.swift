/// A node's identity. A store node's id is its store id (so the writer's store is the origin node);
/// HQ nodes have their own ids (for example `hq`).
public typealias NodeID = String

/// Who a node is. Only HQ writes the tag library and redeems points.
public enum Role: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case hq = 0
    case store = 1

    public var description: String { self == .hq ? "hq" : "store" }

    public init?(name: String) {
        switch name.lowercased() {
        case "hq": self = .hq
        case "store": self = .store
        default: return nil
        }
    }
}

/// The identity and position of an op in the total order: its hybrid clock, then its origin node.
/// Stamps are unique: a node never issues the same clock twice.
public struct Stamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var hlc: HLC
    public var node: NodeID

    public init(hlc: HLC, node: NodeID) {
        self.hlc = hlc
        self.node = node
    }

    public static func < (a: Stamp, b: Stamp) -> Bool {
        a.hlc != b.hlc ? a.hlc < b.hlc : a.node < b.node
    }

    /// Hashes the clock only (equality still compares both): two stamps with one clock and
    /// different nodes are rare, and hashing the node's string on every set and dictionary lookup
    /// is a visible part of a merge.
    public func hash(into hasher: inout Hasher) { hasher.combine(hlc.raw) }

    public var description: String { "\(hlc)@\(node)" }
}
