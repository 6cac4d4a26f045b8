import Testing
import VeneerHarness
import VeneerHost

/// `veneer-plugin-test`'s suite on every plugin the build produced, so a new plugin is held to
/// the same rules without anyone remembering to add it here.
struct EveryPluginConformanceTests {
    static let plugins: [String] = PluginRegistry.standard().all().plugins.map(\.info.name).sorted()

    @Test func theBuildProducedThePlugins() {
        for name in ["serial16550", "debug-exit", "pit8254", "cmos-rtc", "i8042", "acpi-pm", "vmbus-echo"] {
            #expect(Self.plugins.contains(name), "lib\(name).so missing next to the test binary")
        }
    }

    @Test(arguments: plugins)
    func passesTheConformanceSuite(plugin: String) {
        let report = ConformanceSuite(plugin: plugin, parameters: RequiredPortFixture.parameters(for: plugin), accesses: 5_000).run()
        #expect(report.allPassed, "\(report.checks.filter { !$0.passed }.map(\.line))")
    }
}
