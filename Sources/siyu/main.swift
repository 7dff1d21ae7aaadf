import Foundation
import SiyuCLI

/// `siyu`: the command-line tool. Everything is in SiyuCLI (one file per command); this only wires
/// the process's arguments and streams to it.
exit(SiyuProgram.main(Array(CommandLine.arguments.dropFirst())))
