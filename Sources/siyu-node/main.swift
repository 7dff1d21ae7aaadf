import Foundation

/// `siyu-node`: the store node daemon. The commands are in NodeCommands.swift; this wires the
/// process's arguments, environment and streams to them.
setvbuf(stdout, nil, _IOLBF, 0)
exit(NodeProgram.program.run(Array(CommandLine.arguments.dropFirst()), in: NodeContext(io: .standard)))
