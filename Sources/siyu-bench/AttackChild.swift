// The attack section's attacker: `siyu-bench --attack-child --hub HOST:PORT --row ROW --node NODE
// --secret-hex HEX --seconds S --wait S` (the arguments `AttackOrder` writes) repeats one row of
// `HostileInput` against a running hub for S seconds, in a process of its own — so the bench can
// place it away from the hub (`CPUPlacement`) and count its CPU apart from the nodes'.

import Foundation
import SiyuProbe

/// The attacker process of the attack section. Prints `ready` once it is about to start its
/// rounds, then, when they end (after `--seconds`, or soon after its standard input closes), its
/// `AttackTally` as one JSON line. Exit status 0 after the tally (a round's error is in it), 2 on a
/// bad command line.
enum AttackChild {
    static let flag = "--attack-child"

    static func main(_ arguments: [String]) -> Int32 {
        let order: AttackOrder
        do {
            order = try AttackOrder(parsing: arguments)
        } catch {
            FileHandle.standardError.write(Data("siyu-bench \(flag): \(error)\nusage: siyu-bench \(flag) \(AttackOrder.usage)\n".utf8))
            return 2
        }
        let attacker = Attacker(order.input, target: order.target)
        attacker.wait = order.wait
        print("ready")
        fflush(stdout)
        let cpuStart = ownCPUSeconds()
        let start = Date()
        let end = start.addingTimeInterval(order.seconds)
        let rounds = AttackLoop(attacker, until: end)
        rounds.start()
        // The bench closes this process's standard input when it stops it early (or dies).
        Thread.detachNewThread {
            _ = FileHandle.standardInput.readDataToEndOfFile()
            rounds.requestStop()
        }
        while !rounds.isFinished && Date() < end { usleep(20_000) }
        let (outcomes, failure) = rounds.stop(timeout: 30)
        let tally = AttackTally(row: order.input, outcomes: outcomes, failure: failure,
                                cpuSeconds: ownCPUSeconds() - cpuStart, seconds: Date().timeIntervalSince(start))
        print(tally.line)
        fflush(stdout)
        return 0
    }
}
