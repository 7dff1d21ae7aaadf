import Foundation

/// `siyu-hub`: the hub server. The commands are in HubCommands.swift; this wires the process's
/// arguments and streams to them.
setvbuf(stdout, nil, _IOLBF, 0)
exit(HubProgram.program.run(Array(CommandLine.arguments.dropFirst()), in: HubContext(io: .standard)))
