import Foundation
import SiyuCore
import SiyuStore
import SiyuCommandLine
import SiyuWeCom

/// `siyu wecom import`: checks every payload whole (decoding and mapping, no writes), then applies
/// all of them in one transaction through the replica's edit API. Customers are staged
/// (`Replica.stageCustomerImport`) and stored a few thousand at a time as a bulk load stores
/// them; any other edit stores the staged customers first, so the order of the payloads holds.
///
/// Guarantees: a malformed or wrong-shaped payload is reported with its file, line and JSON path
/// and nothing is written; a refusal by the replica while writing rolls back the whole import;
/// importing the same payloads again writes no op; a batch file is decoded one entry at a time.
struct WeComImport {
    static let bridgeVersions = "wecom.member_version"
    static let bridgeImports = "wecom.import"

    var path: String
    var files: [String]
    var json: Bool
    /// How many payloads (or batch entries) go into one transaction.
    var batchSize = WeComImport.defaultBatchSize
    static let defaultBatchSize = 2_000

    struct Report: Encodable {
        var files: [String] = []
        var payloads = 0
        var ops = 0
        var customers = 0
        var customersSkippedDeleted: [String] = []
        var groupChats = 0
        var tagGroups = 0
        var rosterChanges = 0
        var personalTagsSkipped = 0
        var skippedTags: [SkippedTag] = []
        var refetch: [RefetchJSON] = []
        var notices: [String] = []
    }
    struct SkippedTag: Encodable { var customer: String; var tag: String; var reason: String }
    struct RefetchJSON: Encodable { var api: String; var id: String; var reason: String }

    func run(in context: CLIContext) throws -> ExitCode {
        let replica = try ReplicaAccess.openForWriting(path, context: context)
        defer { replica.close() }
        guard replica.role == .hq else {
            throw CLIError("\(path) is the replica of store node '\(replica.node)'; a WeCom import writes the tag library, which only HQ does; nothing was written",
                           hint: "import into the HQ replica (siyu init --db hq.db --node hq --role hq)")
        }
        let progress = Progress(stream: context.io.error)
        // 1. Check every file whole: decode and map each payload, write nothing.
        var payloadFiles: [(String, WeComPayloadFile)] = []
        var totals: [Int] = []
        for file in files {
            let payload = try open(file)
            var units = 0
            try read(payload, file) { _ in
                units += 1
                progress.tick("checking \(file)", units, of: nil)
            }
            progress.done()
            payloadFiles.append((file, payload))
            totals.append(units)
        }
        // 2. Apply, committing every `batchSize` units so other writers (a node daemon) get turns.
        var report = Report()
        report.files = files
        let before = try perform { try replica.versionVector()[replica.node] }
        let applier = Applier(replica: replica, report: report)
        var batchStart = before, inBatch = 0, batches = 0
        /// Records the ops this batch wrote as the import's (the export leaves them out), in its transaction.
        func closeBatch() throws {
            try replica.commitStagedImports()
            let after = try replica.versionVector()[replica.node]
            if after > batchStart {
                try replica.setBridgeValue(WeComImport.bridgeImports, String(format: "%020llu", batchStart + 1), String(after))
            }
            applier.report.ops += Int(after - batchStart)
            batchStart = after
            inBatch = 0
        }
        try perform {
            try replica.inOneTransaction {
                for ((file, payload), total) in zip(payloadFiles, totals) {
                    var done = 0
                    applier.lastLine = nil
                    try read(payload, file) { unit in
                        do {
                            try applier.apply(unit)
                        } catch {
                            let e = CLIError.from(error)
                            let kept = batches == 0 ? "nothing was written"
                                : "the \(batches == 1 ? "batch" : "\(batches) batches") before it \(batches == 1 ? "was" : "were") written; importing again writes only what is missing"
                            throw CLIError("\(file): line \(unit.line), \(unit.path): \(e.message); \(kept)", hint: e.hint)
                        }
                        done += 1
                        inBatch += 1
                        if inBatch >= batchSize {
                            try closeBatch()
                            try replica.commitSoFar()
                            batches += 1
                        }
                        progress.tick("importing \(file)", done, of: total)
                    }
                    try replica.commitStagedImports()
                    progress.done()
                }
                try closeBatch()
            }
        }
        report = applier.report
        print(report, to: context.io.output)
        return .success
    }

    private func perform<T>(_ body: () throws -> T) throws -> T {
        try ReplicaAccess.perform("importing WeCom payloads", path: path, body)
    }

    private func open(_ file: String) throws -> WeComPayloadFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw CLIError("\(file) is not a file; nothing was written", hint: "give the path of a WeCom payload (JSON or callback XML)")
        }
        do {
            return try WeComPayloadFile(contentsOf: file)
        } catch let e as WeComError {
            throw CLIError("\(file): \(e.location)\(e.message); nothing was written", hint: e.hint)
        } catch {
            throw CLIError("cannot read \(file): \(error.localizedDescription); nothing was written", hint: "check the path and its permissions")
        }
    }

    private func read(_ payload: WeComPayloadFile, _ file: String, _ body: (WeComUnit) throws -> Void) throws {
        do {
            try payload.read(body)
        } catch let e as WeComError {
            throw CLIError("\(file): \(e.location)\(e.message); nothing was written", hint: e.hint)
        }
    }

    private func print(_ r: Report, to out: TextStream) {
        if json {
            try? JSONOutput.write(r, to: out)
            return
        }
        out.line("imported \(r.files.count) file\(r.files.count == 1 ? "" : "s") into \(Render.text(path)): \(r.ops) op\(r.ops == 1 ? "" : "s") written"
                 + (r.ops == 0 ? " (the replica already held all of it)" : ""))
        out.line("  payloads \(r.payloads): customers \(r.customers), tag groups \(r.tagGroups), group chats \(r.groupChats), roster changes \(r.rosterChanges)")
        if r.personalTagsSkipped > 0 {
            out.line("  left out \(r.personalTagsSkipped) personal tag\(r.personalTagsSkipped == 1 ? "" : "s") (type 2: WeCom gives them no id and no API writes them)")
        }
        if !r.skippedTags.isEmpty {
            out.line("  left out \(r.skippedTags.count) tag\(r.skippedTags.count == 1 ? "" : "s") the tag library does not hold or HQ deleted:")
            for s in r.skippedTags.prefix(10) { out.line("    \(Render.text(s.customer)) \(Render.text(s.tag)) (\(s.reason))") }
            if r.skippedTags.count > 10 { out.line("    … \(r.skippedTags.count - 10) more (--json lists all)") }
            out.line("  hint: import get_corp_tag_list first, then this payload again")
        }
        if !r.customersSkippedDeleted.isEmpty {
            out.line("  left out \(r.customersSkippedDeleted.count) customer\(r.customersSkippedDeleted.count == 1 ? "" : "s") deleted in Siyu: "
                     + r.customersSkippedDeleted.prefix(5).map(Render.text).joined(separator: ", "))
        }
        if !r.refetch.isEmpty {
            out.line("fetch again from WeCom, then import the responses:")
            for f in r.refetch { out.line("  \(f.api) \(Render.text(f.id))  — \(Render.text(f.reason))") }
        }
        for n in r.notices { out.line("note: \(Render.text(n))") }
    }
}

/// Applies mapped edits to a replica through its edit API.
private final class Applier {
    let replica: Replica
    var report: WeComImport.Report
    /// The line of the payload the last unit came from (a payload's units share it).
    var lastLine: Int?

    init(replica: Replica, report: WeComImport.Report) {
        self.replica = replica
        self.report = report
    }

    func apply(_ unit: WeComUnit) throws {
        if lastLine != unit.line { report.payloads += 1; lastLine = unit.line }
        for edit in unit.edits {
            // Customers are staged and stored many at a time; anything else sees them stored first.
            if case .customer = edit {} else { try replica.commitStagedImports() }
            switch edit {
            case let .tagGroup(g): try tagGroup(g)
            case let .customer(c): try customer(c)
            case let .groupChat(g): try groupChat(g)
            case let .rosterChange(r): try roster(r)
            case let .deleteTag(id, isGroup): try deleteTag(id, isGroup: isGroup)
            case let .refetch(r):
                if r.onlyIfUnknown, try !replica.rows(of: .groupChats, where: "chat_id", equals: r.id).isEmpty { continue }
                refetch(r.api, r.id, r.reason)
            case let .notice(n):
                report.notices.append(n)
            }
        }
    }

    /// Asks for a fetch once per (API, id): the first reason is kept.
    /// The store of staff member `userid` as the replica knows it (cached for the import).
    private var stores: [String: String?] = [:]
    private func storeOf(_ userid: String) throws -> String? {
        if let hit = stores[userid] { return hit }
        let store = try row(.staff, "userid", userid)?["store_id"]?.textValue
        stores[userid] = store
        return store
    }

    private func refetch(_ api: String, _ id: String, _ reason: String) {
        guard !report.refetch.contains(where: { $0.api == api && $0.id == id }) else { return }
        report.refetch.append(.init(api: api, id: id, reason: reason))
    }

    private func row(_ table: Table, _ column: String, _ id: String) throws -> [String: Value]? {
        try replica.rows(of: table, where: column, equals: id).first
    }

    private func tagGroup(_ g: TagGroupEdit) throws {
        report.tagGroups += 1
        let existing = try row(.tagGroups, "group_id", g.id)
        let existingDeleted = existing?["deleted"]?.intValue == 1
        if existing != nil && (g.onlyIfMissing || (g.deleted && existingDeleted)) {
            if g.onlyIfMissing && !existingDeleted {
                for t in g.tags where try row(.tags, "tag_id", t.id) == nil {
                    try replica.defineTag(t.id, group: g.id, name: t.name, order: t.order)
                }
            }
            return
        }
        let exclusive = existing?["exclusive"]?.intValue == 1
        if !(g.deleted && existing != nil) {
            try replica.defineTagGroup(g.id, name: g.name, order: g.order, exclusive: exclusive)
        }
        for t in g.tags { try tag(t, group: g.id) }
        if g.deleted { try replica.deleteTagGroup(g.id) }
    }

    private func tag(_ t: TagEdit, group: String) throws {
        let existing = try row(.tags, "tag_id", t.id)
        if t.deleted {
            if existing == nil {
                try replica.defineTag(t.id, group: group, name: t.name, order: t.order)
                try replica.deleteTag(t.id)
            } else if existing?["deleted"]?.intValue != 1 {
                try replica.deleteTag(t.id)
            }
            return
        }
        if try row(.tagGroups, "group_id", group)?["deleted"]?.intValue == 1 { return }
        try replica.defineTag(t.id, group: group, name: t.name, order: t.order)
    }

    private func deleteTag(_ id: String, isGroup: Bool) throws {
        let existing = try row(isGroup ? .tagGroups : .tags, isGroup ? "group_id" : "tag_id", id)
        guard let existing else {
            report.notices.append("WeCom deleted \(isGroup ? "tag group" : "tag") \(id), which this replica never held")
            return
        }
        guard existing["deleted"]?.intValue != 1 else { return }
        if isGroup { try replica.deleteTagGroup(id) } else { try replica.deleteTag(id) }
    }

    private func customer(_ c: CustomerEdit) throws {
        report.customers += 1
        report.personalTagsSkipped += c.personalTagsSkipped
        let relations = c.relations.map { ImportedRelation(userid: $0.userid, fields: $0.fields, tags: $0.tags) }
        // A customer with no owner yet gets the staff member of its oldest follow relation, and
        // that member's store (when this replica knows the member's store): what `--store` finds.
        var owner: [String: Value] = [:]
        if let staff = c.firstFollower {
            owner["owner_staff"] = .text(staff)
            if let store = try storeOf(staff) { owner["owner_store"] = .text(store) }
        }
        let result = try replica.stageCustomerImport(c.id, fields: c.fields, relations: relations, fieldsIfUnset: owner)
        if result.skippedDeleted { report.customersSkippedDeleted.append(c.id) }
        for s in result.skippedTags where report.skippedTags.count < 10_000 {
            report.skippedTags.append(.init(customer: c.id, tag: s.tag, reason: s.reason))
        }
    }

    private func groupChat(_ g: GroupChatEdit) throws {
        report.groupChats += 1
        _ = try replica.importGroupChat(g.id, fields: g.fields, roster: g.members.map { ImportedMember(id: $0.id, fields: $0.fields) })
        if let version = g.memberVersion, try replica.bridgeValue(WeComImport.bridgeVersions, g.id) != version {
            try replica.setBridgeValue(WeComImport.bridgeVersions, g.id, version)
        }
    }

    private func roster(_ r: RosterChange) throws {
        report.rosterChanges += 1
        let recorded = try replica.bridgeValue(WeComImport.bridgeVersions, r.chatID)
        if recorded == r.currentVersion { return }   // applied before
        guard let recorded, recorded == r.lastVersion, try row(.groupChats, "chat_id", r.chatID) != nil else {
            let why = recorded.map { "member version gap: this replica is at \($0), the callback follows \(r.lastVersion)" }
                ?? "this replica has no member version for the chat (import its groupchat/get first)"
            refetch("groupchat/get", r.chatID, why)
            return
        }
        var fields: [String: Value] = [:]
        if let t = r.time, (0...Int64(UInt32.max)).contains(t) { fields["join_time"] = .int(t) }
        if let s = r.joinScene { fields["join_scene"] = .int(s) }
        _ = try replica.importGroupChat(r.chatID, fields: [:], roster: nil, joining: r.joined, joinFields: fields, leaving: r.left)
        try replica.setBridgeValue(WeComImport.bridgeVersions, r.chatID, r.currentVersion)
    }
}

/// Progress on a terminal: one line rewritten in place, at most ten times a second.
final class Progress {
    let stream: TextStream
    private var last = Date.distantPast
    private var shown = false

    init(stream: TextStream) { self.stream = stream }

    func tick(_ what: String, _ done: Int, of total: Int?) {
        guard stream.isTerminal, done % 256 == 0 || done == total else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.1 else { return }
        last = now
        stream.write("\r\u{1b}[K\(Render.text(what)): \(done)" + (total.map { " of \($0)" } ?? ""))
        stream.flush()
        shown = true
    }

    func done() {
        if shown { stream.write("\r\u{1b}[K"); stream.flush() }
        shown = false
        last = .distantPast
    }
}
