import Foundation
import SiyuCore

/// One step of an import: the edits of one payload, or of one entry of a batch.
public struct WeComUnit: Sendable {
    public var kind: PayloadKind
    /// The line the payload starts on.
    public var line: Int
    /// Where in the payload (`$` or `$.external_contact_list[12]`).
    public var path: String
    public var edits: [WeComEdit]
}

/// The payloads of one file: a single JSON document, JSON lines (one payload per line, as
/// `siyu wecom export` writes), or one XML callback.
///
/// Guarantees: the file is read through memory mapping and decoded one payload — for a
/// `batch/get_by_user` response, one entry — at a time, so memory does not grow with the file;
/// files over `maxFileBytes`, single payloads over `maxPayloadBytes` (a batch's entries count
/// one by one) and XML over `maxXMLBytes` are refused; every error is a `WeComError` with the
/// line and JSON path of what is wrong. Reading twice gives the same units.
public struct WeComPayloadFile {
    public static let maxFileBytes = 4 << 30
    public static let maxPayloadBytes = 64 << 20
    public static let maxXMLBytes = 1 << 20

    public let data: Data

    public init(data: Data) { self.data = data }

    /// Maps the file at `path` into memory (the pages are read as they are used).
    public init(contentsOf path: String) throws {
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        guard size <= WeComPayloadFile.maxFileBytes else {
            throw WeComError(path: "", "is \(size) bytes, more than an import reads (\(WeComPayloadFile.maxFileBytes >> 30) GiB)",
                             hint: "split it: WeCom pages its responses, and each page can be its own file")
        }
        data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
    }

    /// Calls `body` with the edits of each payload (or batch entry) in file order.
    public func read(_ body: (WeComUnit) throws -> Void) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let scanner = JSONScanner(raw)
            let first = scanner.skipSpace(0)
            guard first < raw.count else {
                throw WeComError(path: "", "is empty", hint: "give a WeCom API response (JSON) or callback (XML)")
            }
            if raw[first] == UInt8(ascii: "<") {
                guard raw.count <= WeComPayloadFile.maxXMLBytes else {
                    throw WeComError(path: "xml", "is \(raw.count) bytes, more than a callback (\(WeComPayloadFile.maxXMLBytes) bytes)", hint: "check the file")
                }
                let callback = try WeComCallback.decodeXML(Data(raw))
                let kind = try PayloadKind.recognise(keys: Set(callback.values.keys), event: callback["Event"])
                let edits = try Mapping.callback(callback, kind: kind, xml: true)
                try body(WeComUnit(kind: kind, line: 1, path: "xml", edits: edits))
                return
            }
            var position = 0
            var count = 0
            var lines = JSONScanner.LineCounter()
            while let range = try located(scanner, { try scanner.nextValue(from: position) }, at: position) {
                position = range.upperBound
                count += 1
                let line = lines.line(at: range.lowerBound, in: raw)
                do {
                    try payload(scanner, range, line: line, body)
                } catch var e as WeComError {
                    if e.line == nil { e.line = line }
                    throw e
                }
            }
            if count == 0 { throw WeComError(path: "", "is empty", hint: "give a WeCom API response (JSON) or callback (XML)") }
        }
    }

    private func located<T>(_ scanner: JSONScanner, _ body: () throws -> T, at: Int) throws -> T {
        do { return try body() } catch var e as WeComError {
            e.line = e.line ?? scanner.location(at).line
            throw e
        }
    }

    private func payload(_ scanner: JSONScanner, _ range: Range<Int>, line: Int, _ body: (WeComUnit) throws -> Void) throws {
        guard scanner.isObject(range) else {
            throw WeComError(path: "$", "is not a JSON object", hint: "WeCom responses and callbacks are objects ({…})")
        }
        let members = try scanner.members(range)
        var keys: [String: Range<Int>] = [:]
        for m in members where keys[m.key] == nil { keys[m.key] = m.value }
        func decode<T: Decodable>(_ type: T.Type, _ r: Range<Int>, at path: String) throws -> T {
            do {
                return try JSONDecoder().decode(T.self, from: scanner.data(r))
            } catch let e as WeComError {
                throw e.under(path)
            } catch {
                throw WeComError.decoding(error, at: path)
            }
        }
        // A WeCom error response: say so rather than "missing field".
        if let r = keys["errcode"], let code = try? decode(WeComInt.self, r, at: "$.errcode"), code.value != 0 {
            let message = keys["errmsg"].flatMap { try? decode(String.self, $0, at: "$.errmsg") } ?? ""
            throw WeComError(path: "$.errcode", "is \(code.value): the payload is a WeCom error response (\(message))",
                             hint: "fix the API call that produced it (errcode 701008: no member has an interoperability licence) and import the new response")
        }
        var event: String?
        if let r = keys["Event"] { event = try? decode(String.self, r, at: "$.Event") }
        let kind = try PayloadKind.recognise(keys: Set(keys.keys), event: event)
        if kind == .customerBatch, let list = keys["external_contact_list"] {
            guard scanner.isArray(list) else {
                throw WeComError(path: "$.external_contact_list", "has the wrong type (expected an array)", hint: "check the payload")
            }
            try scanner.elements(list) { index, element in
                let path = "$.external_contact_list[\(index)]"
                guard element.count <= WeComPayloadFile.maxPayloadBytes else {
                    throw WeComError(path: path, "is \(element.count) bytes, more than one entry holds", hint: "check the payload")
                }
                let entry = try BatchEntry.quickly(scanner, element) ?? decode(BatchEntry.self, element, at: path)
                try body(WeComUnit(kind: kind, line: line, path: path, edits: try Mapping.batchEntry(entry, at: path)))
            }
            var notices: [WeComEdit] = []
            if let r = keys["next_cursor"], let next = try decode(String?.self, r, at: "$.next_cursor"), !next.isEmpty {
                notices.append(.notice("batch/get_by_user has more customers: call it again with cursor \(next)"))
            }
            if let r = keys["fail_info"], let fail = try decode(BatchFailInfo?.self, r, at: "$.fail_info"),
               let users = fail.unlicensed_userid_list, !users.isEmpty {
                notices.append(.notice("batch/get_by_user left out \(users.count) staff without an interoperability licence: "
                                       + users.prefix(10).joined(separator: ", ") + (users.count > 10 ? ", …" : "")))
            }
            if !notices.isEmpty { try body(WeComUnit(kind: kind, line: line, path: "$", edits: notices)) }
            return
        }
        guard range.count <= WeComPayloadFile.maxPayloadBytes else {
            throw WeComError(path: "$", "is \(range.count) bytes, more than one \(kind.label) payload holds (\(WeComPayloadFile.maxPayloadBytes >> 20) MiB)",
                             hint: "split it into pages as WeCom sends them")
        }
        let edits: [WeComEdit]
        switch kind {
        case .corpTagList: edits = try Mapping.corpTags(try decode(CorpTagList.self, range, at: "$"))
        case .customerDetail: edits = try Mapping.customer(try decode(CustomerDetail.self, range, at: "$"))
        case .customerBatch: edits = []
        case .groupChatDetail: edits = try Mapping.groupChat(try decode(GroupChatDetail.self, range, at: "$"))
        case .groupChatList: edits = try Mapping.groupChatList(try decode(GroupChatList.self, range, at: "$"))
        case .contactCallback, .chatCallback, .tagCallback:
            let callback: WeComCallback
            do {
                callback = try WeComCallback.decodeJSON(scanner.data(range))
            }
            edits = try Mapping.callback(callback, kind: kind, xml: false)
        }
        try body(WeComUnit(kind: kind, line: line, path: "$", edits: edits))
    }
}
