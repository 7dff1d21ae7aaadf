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

    /// Hashes the clock and the node, as equality compares both. (Hashing the clock alone let a
    /// peer send many stamps of one clock from distinct nodes, which all fell into one bucket: a
    /// remove naming 130k of them took 42 s to merge, and every later edit of its customer as long.)
    public func hash(into hasher: inout Hasher) {
        hasher.combine(hlc.raw)
        hasher.combine(node)
    }

    public var description: String { "\(hlc)@\(node)" }
}
