// Where the attack section's processes run. In production an attacker's CPU is not the hub
// machine's, so the attacker's own cost must not be counted against the hub: with `taskset`
// (util-linux) and at least 2 CPUs allowed to this process, the hub is pinned to the first CPU and
// this process (the well-behaved nodes) and the attacker process to the others, the attacker at a
// lower priority (nice 10) than the nodes. Without taskset, or on one CPU, nothing is pinned (the
// attacker is still niced) and the section says so.

import Foundation

struct CPUPlacement {
    /// The CPU the hub is pinned to and the CPUs of the nodes and the attacker; nil: unpinned.
    let hubCPUs: [Int]?
    let otherCPUs: [Int]?
    /// Why nothing is pinned (nil when pinned).
    let unpinnedBecause: String?
    /// The tools' paths (nil: not found).
    let taskset: String?
    let nice: String?
    /// What the CPUs of this process were before `pinThisProcess` (`Cpus_allowed_list`), to restore.
    let allowedText: String?

    static let attackerNiceness = 10

    /// The placement this machine allows.
    static func detect() -> CPUPlacement {
        let taskset = executable(named: "taskset"), nice = executable(named: "nice")
        let allowedText = ownAllowedCPUs()
        let allowed = allowedText.flatMap(cpuList) ?? []
        var why: String?
        if taskset == nil { why = "taskset (util-linux) not found" }
        else if allowed.count < 2 { why = "only \(allowed.count) CPU allowed to this process" }
        guard why == nil else {
            return CPUPlacement(hubCPUs: nil, otherCPUs: nil, unpinnedBecause: why, taskset: taskset, nice: nice, allowedText: allowedText)
        }
        return CPUPlacement(hubCPUs: [allowed[0]], otherCPUs: Array(allowed.dropFirst()), unpinnedBecause: nil, taskset: taskset, nice: nice,
                            allowedText: allowedText)
    }

    /// The command the hub child runs behind.
    var hubPrefix: [String] {
        guard let taskset, let hubCPUs else { return [] }
        return [taskset, "-c", CPUPlacement.text(hubCPUs)]
    }

    /// The command the attack child runs behind: pinned beside the nodes, at nice 10.
    var attackerPrefix: [String] {
        var prefix: [String] = []
        if let nice { prefix += [nice, "-n", String(CPUPlacement.attackerNiceness)] }
        if let taskset, let otherCPUs { prefix += [taskset, "-c", CPUPlacement.text(otherCPUs)] }
        return prefix
    }

    /// Pins every thread of this process (the nodes' loop among them; threads made later inherit
    /// it) to the nodes' CPUs; `restore` undoes it. Nothing when unpinned.
    func pinThisProcess() throws {
        guard let otherCPUs else { return }
        try setOwnCPUs(CPUPlacement.text(otherCPUs))
    }

    /// Gives this process back the CPUs it had before `pinThisProcess`.
    func restore() {
        guard otherCPUs != nil, let allowedText else { return }
        do { try setOwnCPUs(allowedText) } catch { progress("attack: could not give this process its CPUs back: \(error)") }
    }

    /// One line for the report and the JSON (`attack_placement`).
    var description: String {
        let niced = nice == nil ? "not niced (nice not found)" : "at nice \(CPUPlacement.attackerNiceness)"
        guard let hubCPUs, let otherCPUs else {
            return "unpinned (\(unpinnedBecause ?? "?")): the hub, the nodes (this process) and the attacker process (\(niced)) share every CPU"
        }
        return "hub on CPU \(CPUPlacement.text(hubCPUs)); the nodes (this process) and the attacker process (\(niced)) on CPU \(CPUPlacement.text(otherCPUs)) (taskset)"
    }

    // MARK: Helpers

    private func setOwnCPUs(_ list: String) throws {
        guard let taskset else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: taskset)
        process.arguments = ["-a", "-p", "-c", list, String(getpid())]
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("taskset -a -p -c \(list) failed (status \(process.terminationStatus)): \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// `0-1`, `0,2`: a CPU list as taskset and /proc write it.
    static func text(_ cpus: [Int]) -> String { cpus.map(String.init).joined(separator: ",") }

    /// Reads `0-3,6`; nil if it is not a CPU list (or an absurd one).
    static func cpuList(_ text: String) -> [Int]? {
        var cpus: [Int] = []
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard bounds.count == 1 || bounds.count == 2, let low = bounds.first ?? nil, let high = bounds.last ?? nil,
                  low >= 0, high >= low, high < 4_096 else { return nil }
            cpus += Array(low...high)
        }
        return cpus.isEmpty ? nil : cpus
    }

    /// This process's `Cpus_allowed_list`, from /proc.
    private static func ownAllowedCPUs() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return nil }
        return line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
    }

    /// The first executable file named `name` on PATH (what `command -v` finds).
    private static func executable(named name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
