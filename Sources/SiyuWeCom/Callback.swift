import Foundation
#if canImport(FoundationXML)
import FoundationXML   // XMLParser lives here on Linux
#endif

/// A change callback (`change_external_contact`, `change_external_chat`, `change_external_tag`),
/// from its XML (as WeCom posts it, decrypted) or from its JSON rendering (keys = the XML element
/// names). Values are kept as the text the XML carries; `MemChangeList` as its items.
///
/// Guarantees: at most `maxElements` elements and `maxMembers` member items are read; each
/// value at most `maxValueBytes` bytes; anything larger is refused with its element's path.
public struct WeComCallback: Sendable, Equatable {
    public static let maxElements = 64
    public static let maxMembers = 2_000
    public static let maxValueBytes = 4_096

    public var values: [String: String]
    public var memChangeList: [String]

    public init(values: [String: String], memChangeList: [String] = []) {
        self.values = values
        self.memChangeList = memChangeList
    }

    public subscript(_ key: String) -> String? { values[key] }

    /// Reads the JSON rendering (`{"Event": "...", "MemChangeList": {"Item": [...]}, ...}`).
    static func decodeJSON(_ data: Data) throws -> WeComCallback {
        let decoded: JSONCallback
        do {
            decoded = try JSONDecoder().decode(JSONCallback.self, from: data)
        } catch let e as WeComError {
            throw e
        } catch {
            throw WeComError.decoding(error, at: "$")
        }
        return WeComCallback(values: decoded.values, memChangeList: decoded.items)
    }

    /// Reads the XML callback (`<xml><Event><![CDATA[...]]></Event>...</xml>`).
    static func decodeXML(_ data: Data) throws -> WeComCallback {
        let reader = XMLCallbackReader()
        let parser = XMLParser(data: data)
        parser.shouldResolveExternalEntities = false
        parser.delegate = reader
        let ok = parser.parse()
        if let e = reader.failure { throw e }
        guard ok else {
            let detail = parser.parserError.map { ($0 as NSError).localizedDescription } ?? "malformed XML"
            throw WeComError(path: "xml", "is not well-formed XML (\(detail)) at line \(parser.lineNumber), column \(parser.columnNumber)",
                             hint: "a callback is the decrypted XML WeCom posts, <xml>…</xml>")
        }
        return WeComCallback(values: reader.values, memChangeList: reader.items)
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.stringValue = String(intValue); self.intValue = intValue }
}

/// The JSON rendering: every value a string, number or boolean (kept as text), except
/// `MemChangeList`: `{"Item": "id" | ["id", …]}` or a plain array of ids.
private struct JSONCallback: Decodable {
    var values: [String: String] = [:]
    var items: [String] = []

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        guard c.allKeys.count <= WeComCallback.maxElements else {
            throw WeComError(path: "$", "has \(c.allKeys.count) keys, more than a callback has (\(WeComCallback.maxElements))",
                             hint: "a callback holds the envelope and a few elements; check the file")
        }
        for key in c.allKeys {
            let path = "$." + key.stringValue
            if key.stringValue == "MemChangeList" {
                if let list = try? c.decode([String].self, forKey: key) {
                    items = list
                } else if let nested = try? c.nestedContainer(keyedBy: AnyKey.self, forKey: key) {
                    let item = AnyKey(stringValue: "Item")
                    if let list = try? nested.decode([String].self, forKey: item) {
                        items = list
                    } else if let one = try? nested.decode(String.self, forKey: item) {
                        items = [one]
                    } else if !nested.contains(item) {
                        items = []
                    } else {
                        throw WeComError(path: path + ".Item", "must be a string or an array of strings (member ids)",
                                         hint: "write MemChangeList as {\"Item\": [\"id\", …]}")
                    }
                } else {
                    throw WeComError(path: path, "must be {\"Item\": [ids]} or an array of ids",
                                     hint: "write MemChangeList as {\"Item\": [\"id\", …]}")
                }
                guard items.count <= WeComCallback.maxMembers else {
                    throw WeComError(path: path, "lists \(items.count) members, more than \(WeComCallback.maxMembers)",
                                     hint: "a group holds at most 500 members")
                }
                continue
            }
            let text: String
            if let s = try? c.decode(String.self, forKey: key) {
                text = s
            } else if let n = try? c.decode(Int64.self, forKey: key) {
                text = String(n)
            } else if let b = try? c.decode(Bool.self, forKey: key) {
                text = b ? "true" : "false"
            } else if (try? c.decodeNil(forKey: key)) == true {
                continue
            } else {
                throw WeComError(path: path, "must be a string or a number",
                                 hint: "callback elements carry text; only MemChangeList holds items")
            }
            guard text.utf8.count <= WeComCallback.maxValueBytes else {
                throw WeComError(path: path, "is \(text.utf8.count) bytes, more than \(WeComCallback.maxValueBytes)",
                                 hint: "callback elements are short ids and words; check the file")
            }
            values[key.stringValue] = text
        }
    }
}

/// Collects the children of `<xml>` and the `<Item>`s of `<MemChangeList>`.
private final class XMLCallbackReader: NSObject, XMLParserDelegate {
    var values: [String: String] = [:]
    var items: [String] = []
    var failure: WeComError?
    private var stack: [String] = []
    private var text = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        stack.append(name)
        text = ""
        if stack.count == 1 && name != "xml" {
            fail(parser, WeComError(path: "xml", "the root element is <\(name)>, not <xml>", hint: "a WeCom callback is <xml>…</xml>"))
        } else if stack.count > 3 {
            fail(parser, WeComError(path: "xml/" + stack.dropFirst().joined(separator: "/"), "is nested deeper than a callback's elements",
                                    hint: "only MemChangeList has children (Item)"))
        } else if values.count > WeComCallback.maxElements || items.count > WeComCallback.maxMembers {
            fail(parser, WeComError(path: "xml", "has more elements than a callback holds", hint: "check the file"))
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { append(parser, string) }

    func parser(_ parser: XMLParser, foundCDATA block: Data) { append(parser, String(decoding: block, as: UTF8.self)) }

    private func append(_ parser: XMLParser, _ s: String) {
        text += s
        if text.utf8.count > WeComCallback.maxValueBytes {
            fail(parser, WeComError(path: "xml/" + stack.dropFirst().joined(separator: "/"), "is longer than \(WeComCallback.maxValueBytes) bytes",
                                    hint: "callback elements are short ids and words; check the file"))
        }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if stack.count == 2 && name != "MemChangeList" {
            values[name] = value
        } else if stack.count == 3 && stack[1] == "MemChangeList" && name == "Item" {
            items.append(value)
        }
        stack.removeLast()
        text = ""
    }

    private func fail(_ parser: XMLParser, _ error: WeComError) {
        if failure == nil { failure = error }
        parser.abortParsing()
    }
}
