import VeneerHost

/// The figures veneerd shows for a VM without a worker (name, vCPUs, memory), read with the
/// same parser the worker uses. Only syntax is parsed here: plugins are never loaded into
/// veneerd (`veneer check` in a child validates devices).
struct ConfigFacts: Sendable, Equatable {
    var name: String
    var vcpus: Int
    var memoryBytes: UInt64

    static func read(_ text: String, file: String, baseDirectory: String) throws(ManagementError) -> ConfigFacts {
        do {
            let config = try ConfigParser.parse(text, file: file, baseDirectory: baseDirectory)
            return ConfigFacts(name: config.name, vcpus: Int(config.vcpus), memoryBytes: config.memoryBytes)
        } catch {
            throw .invalid(field: "config", reason: "\(error)")
        }
    }
}
