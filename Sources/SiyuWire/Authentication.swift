import SiyuCore

/// The challenge–response proof of a node's secret. The secret never crosses the wire: the node
/// sends HMAC-SHA256(secret, "siyu-auth-v1" ‖ 0x00 ‖ nonce ‖ node id ‖ 0x00 ‖ hub id), and the
/// hub, which knows the secret, recomputes it. A fresh nonce per connection defeats replay.
public enum Authentication {
    public static let label = Array("siyu-auth-v1".utf8)

    public static func message(nonce: [UInt8], node: NodeID, hub: String) -> [UInt8] {
        label + [0] + nonce + Array(node.utf8) + [0] + Array(hub.utf8)
    }

    public static func mac(secret: [UInt8], nonce: [UInt8], node: NodeID, hub: String) -> [UInt8] {
        HMACSHA256.authenticationCode(for: message(nonce: nonce, node: node, hub: hub), key: secret)
    }

    public static func verify(_ mac: [UInt8], secret: [UInt8], nonce: [UInt8], node: NodeID, hub: String) -> Bool {
        constantTimeEquals(mac, self.mac(secret: secret, nonce: nonce, node: node, hub: hub))
    }
}
