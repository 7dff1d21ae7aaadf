import SiyuCore
import SiyuStore
import SiyuWire

/// What `siyu --version`, `siyu-hub --version` and `siyu-node --version` print after the name:
/// the release, and the formats this build reads and writes (a file layout, the data model that
/// travels with change sets, the sync protocol's version), which say whether two builds can share
/// a file or a network.
public enum SiyuVersion {
    /// The release of the three binaries (raised with each issue merged that changes behaviour).
    public static let release = "0.19.0"

    public static var line: String {
        "\(release) (file layout \(ReplicaSchema.migrations.last?.version ?? 0), data model \(currentSchemaVersion), protocol \(Frame.supportedVersions.map(String.init).joined(separator: ", ")))"
    }
}
