/// The `[cpu]` table of a VM config:
///
///     [cpu]
///     template = "x86-64-v2"            # host (default) | x86-64-v1 | -v2 | -v3 | -v4
///     disable = ["avx", "rdrand"]        # more features to hide, by their /proc/cpuinfo names
extension ConfigParser {
    static func parseCPU(_ table: inout TableReader, file: String) throws(ConfigError) -> CPUModel {
        var model = CPUModel()
        if let name = try table.string("template") {
            guard let template = CPUTemplate(rawValue: name) else {
                throw ConfigError(file: file, key: "cpu.template",
                                  reason: "'\(name)' is not one of \(CPUTemplate.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            model.template = template
        }
        for (i, name) in try table.strings("disable").enumerated() {
            guard let feature = CPUFeature.named(name) else {
                throw ConfigError(file: file, key: "cpu.disable[\(i)]",
                                  reason: "'\(name)' is not a CPU feature Veneer knows (`veneer cpu-features` lists them)")
            }
            guard !model.disabled.contains(feature) else {
                throw ConfigError(file: file, key: "cpu.disable[\(i)]", reason: "'\(name)' is listed twice")
            }
            model.disabled.append(feature)
        }
        try table.finish()
        return model
    }
}
