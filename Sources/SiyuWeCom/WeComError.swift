import Foundation

/// The one error type of the WeCom mapping layer: what is wrong, where in the payload (a JSON path
/// such as `$.external_contact_list[3].follow_info.createtime`, or an XML element), and a hint.
///
/// Guarantees: `message` and `hint` are one line each; `path` is empty only when the error is
/// about the payload as a whole (its size, its kind).
public struct WeComError: Error, Equatable, CustomStringConvertible {
    /// Where in the payload: a JSON path starting with `$`, `xml/…` for a callback in XML, or "".
    public var path: String
    public var message: String
    public var hint: String
    /// The line the payload starts on, in a file of several payloads (JSON lines).
    public var line: Int?

    public init(path: String, _ message: String, hint: String) {
        self.path = path
        self.message = message
        self.hint = hint
    }

    public var description: String { "\(location)\(message) (hint: \(hint))" }

    /// "line 3, $.a.b: " — where, as a message prefix ("" when nothing is known).
    public var location: String {
        let parts = [line.map { "line \($0)" }, path.isEmpty ? nil : path].compactMap { $0 }
        return parts.isEmpty ? "" : parts.joined(separator: ", ") + ": "
    }

    /// The same error, its path put under `prefix` (the path of the value it was found in).
    func under(_ prefix: String) -> WeComError {
        var copy = self
        if path.hasPrefix("$") { copy.path = prefix + path.dropFirst() } else if path.isEmpty { copy.path = prefix }
        return copy
    }

    /// A `DecodingError` from decoding the value at `prefix`, as a path and a sentence.
    static func decoding(_ error: Error, at prefix: String) -> WeComError {
        guard let error = error as? DecodingError else {
            return WeComError(path: prefix, "cannot be read: \(error)", hint: "check that the file is a WeCom API response or callback")
        }
        func path(_ keys: [CodingKey]) -> String {
            var out = prefix
            for key in keys {
                if let i = key.intValue, key.stringValue.hasPrefix("Index") || key.stringValue == String(i) {
                    out += "[\(i)]"
                } else {
                    out += "." + key.stringValue
                }
            }
            return out
        }
        switch error {
        case let .keyNotFound(key, context):
            return WeComError(path: path(context.codingPath + [key]), "is missing",
                              hint: "WeCom always sends this field; check that the payload is a complete response of the API it claims to be")
        case let .typeMismatch(type, context):
            return WeComError(path: path(context.codingPath), "has the wrong type (expected \(typeName(type)))",
                              hint: "check the field against WeCom's documentation (docs/WECOM.md lists the fields read)")
        case let .valueNotFound(type, context):
            return WeComError(path: path(context.codingPath), "is null (expected \(typeName(type)))",
                              hint: "give a value or leave the field out")
        case let .dataCorrupted(context):
            let detail = context.debugDescription
            return WeComError(path: path(context.codingPath), detail.isEmpty ? "is not valid" : detail,
                              hint: "fix the value; the file must be JSON as WeCom sends it")
        @unknown default:
            return WeComError(path: prefix, "cannot be read", hint: "check the payload")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int64.Type, is Int.Type, is WeComInt.Type: return "a number"
        case is [Any].Type: return "an array"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}
