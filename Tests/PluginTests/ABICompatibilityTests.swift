import Testing
import VeneerHarness
import VeneerHost

/// What the loader accepts and refuses, on tiny C plugins compiled at test time, plus the
/// conformance suite on the Swift debug-exit plugin and the `veneer-plugin-test` executable.
@Suite struct ABICompatibilityTests {
    /// A one-register device at `port` (default 0x600) whose state is that byte. Macros bend it:
    /// ABI_MAJOR / ABI_MINOR, ENTRY (the exported name), BAD_SCHEMA=1|2|3, CREATE_FAILS and
    /// SHORT_DESCRIPTOR (see below).
    static let fixture = #"""
        #include "veneer_plugin.h"
        #include <stddef.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/mman.h>
        #include <unistd.h>

        #ifndef ABI_MAJOR
        #define ABI_MAJOR VENEER_ABI_MAJOR
        #endif
        #ifndef ABI_MINOR
        #define ABI_MINOR VENEER_ABI_MINOR
        #endif
        #ifndef ENTRY
        #define ENTRY veneer_plugin_entry
        #endif

        struct veneer_device { uint8_t value; };

        #define INT_PARAM(n, d, lo, hi) { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_INT, \
            .name = n, .doc = n, .default_value = d, .min = lo, .max = hi }

        static const veneer_param_spec params[] = {
            INT_PARAM("port", "0x600", 0, 0xffff),
        #if BAD_SCHEMA == 1
            INT_PARAM("port", "0x700", 0, 0xffff),  /* the same name twice */
        #elif BAD_SCHEMA == 2
            INT_PARAM("depth", "1", 8, 4),          /* min > max */
        #elif BAD_SCHEMA == 3
            INT_PARAM("depth", "99", 1, 16),        /* default out of range */
        #else
            INT_PARAM("depth", "1", 1, 16),
        #endif
        };

        static veneer_device *create(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args) {
        #ifdef CREATE_FAILS
            (void)args;
            api->set_error(host, "fixture refuses: no frobnicator attached");
            return NULL;
        #else
            if (api->register_pio(host, 0, (uint16_t)args->params[0].int_value, 1) != VENEER_OK) {
                api->set_error(host, "port taken");
                return NULL;
            }
            return calloc(1, sizeof(veneer_device));
        #endif
        }
        static veneer_status reset(veneer_device *dev) { dev->value = 0; return VENEER_OK; }
        static void destroy(veneer_device *dev) { free(dev); }
        static void io(veneer_device *dev, uint32_t region, uint64_t offset, uint32_t size, uint32_t flags, uint64_t *data) {
            (void)region; (void)offset; (void)size;
            if (flags & VENEER_IO_WRITE) dev->value = (uint8_t)*data; else *data = dev->value;
        }
        static veneer_status save(veneer_device *dev, uint8_t *buffer, size_t capacity, size_t *length) {
            *length = 1;
            if (buffer == NULL || capacity < 1) return VENEER_ENOSPC;
            buffer[0] = dev->value;
            return VENEER_OK;
        }
        static veneer_status load(veneer_device *dev, uint32_t version, const uint8_t *buffer, size_t length) {
            if (version != 1 || buffer == NULL || length != 1) return VENEER_ESTATE;
            dev->value = buffer[0];
            return VENEER_OK;
        }

        static const veneer_plugin_descriptor descriptor = {
            .struct_size = sizeof(veneer_plugin_descriptor),
            .abi_major = ABI_MAJOR,
            .abi_minor = ABI_MINOR,
            .name = "fixture",
            .version = "0.1",
            .summary = "ABI test fixture",
            .kind = VENEER_KIND_EMULATED,
            .state_version = 1,
            .param_count = sizeof params / sizeof params[0],
            .param_spec_size = sizeof(veneer_param_spec),
            .params = params,
            .create = create,
            .reset = reset,
            .destroy = destroy,
            .io = io,
            .save = save,
            .load = load,
        };

        #ifdef SHORT_DESCRIPTOR
        /* An ABI 1.0 plugin compiled without the reserved tails: the descriptor is 1.0's fields
         * alone (up to `load`) and each parameter spec stops before `reserved`. Both end flush
         * against an inaccessible page, so a host reading one byte past struct_size or
         * param_spec_size faults. */
        _Static_assert(offsetof(veneer_plugin_descriptor, load) + sizeof(void *) == 152, "1.0 layout");
        static const veneer_plugin_descriptor *short_descriptor;

        static char *guarded_tail(size_t size) {
            size_t page = (size_t)sysconf(_SC_PAGESIZE);
            char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED || mprotect(p + page, page, PROT_NONE) != 0) return NULL;
            return p + page - size;
        }

        __attribute__((constructor)) static void build_short_descriptor(void) {
            size_t spec_size = offsetof(veneer_param_spec, reserved), count = sizeof params / sizeof params[0];
            size_t size = offsetof(veneer_plugin_descriptor, load) + sizeof(void *);
            char *specs = guarded_tail(spec_size * count), *d = guarded_tail(size);
            if (specs == NULL || d == NULL) return;
            for (size_t i = 0; i < count; i++) memcpy(specs + i * spec_size, &params[i], spec_size);
            memcpy(d, &descriptor, size);
            uint32_t struct_size = (uint32_t)size, param_spec_size = (uint32_t)spec_size;
            const veneer_param_spec *table = (const veneer_param_spec *)specs;
            memcpy(d + offsetof(veneer_plugin_descriptor, struct_size), &struct_size, sizeof struct_size);
            memcpy(d + offsetof(veneer_plugin_descriptor, param_spec_size), &param_spec_size, sizeof param_spec_size);
            memcpy(d + offsetof(veneer_plugin_descriptor, params), &table, sizeof table);
            short_descriptor = (const veneer_plugin_descriptor *)d;
        }

        const veneer_plugin_descriptor *ENTRY(void) { return short_descriptor; }
        #else
        const veneer_plugin_descriptor *ENTRY(void) { return &descriptor; }
        #endif
        """#

    static func plugin(_ defines: String...) throws -> String {
        try TestSupport.compilePlugin(fixture, defines: defines)
    }

    @Test func theUnmodifiedFixtureLoadsAndRuns() throws {
        let h = try PluginHarness(plugin: try Self.plugin())
        h.write(port: 0x600, 0x5a)
        #expect(h.read(port: 0x600) == 0x5a)
        #expect(try h.save() == [0x5a])
    }

    @Test func missingEntrySymbol() throws {
        let path = try Self.plugin("ENTRY=some_other_entry")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .missingEntry(path: path))
        #expect(error?.description.contains("veneer_plugin_entry") == true)
    }

    @Test func majorVersionTwoIsRefusedNamingBothVersions() throws {
        let path = try Self.plugin("ABI_MAJOR=2")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .abiMismatch(path: path, plugin: "2.\(PluginLibrary.hostABI.minor)", host: "1.\(PluginLibrary.hostABI.minor)"))
        let text = error?.description ?? ""
        #expect(text.contains(path) && text.contains("ABI 2.\(PluginLibrary.hostABI.minor)") && text.contains("ABI 1.\(PluginLibrary.hostABI.minor)"), "\(text)")
    }

    @Test func newerMinorIsRefused() throws {
        let newer = PluginLibrary.hostABI.minor + 1
        let path = try Self.plugin("ABI_MINOR=\(newer)")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .abiMismatch(path: path, plugin: "1.\(newer)", host: "1.\(PluginLibrary.hostABI.minor)"))
        let text = error?.description ?? ""
        #expect(text.contains("ABI 1.\(newer)") && text.contains("ABI 1.\(PluginLibrary.hostABI.minor)"), "\(text)")
    }

    /// This host is ABI 1.8 (management: metrics, control requests, run state): a 1.9 plugin is
    /// refused naming both versions, and the header, the table and the loader agree on the minor.
    @Test func theHostIsABI18AndRefusesA19Plugin() throws {
        #expect(PluginLibrary.hostABI.major == 1 && PluginLibrary.hostABI.minor == 8)
        #expect(HostServiceTable.api.pointee.abi_minor == 8)
        let path = try Self.plugin("ABI_MINOR=9")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .abiMismatch(path: path, plugin: "1.9", host: "1.8"))
        let text = error?.description ?? ""
        #expect(text.contains("ABI 1.9") && text.contains("ABI 1.8"), "\(text)")
    }

    /// Plugins built against every earlier minor (1.0 to 1.7) still load and run on this host.
    @Test(arguments: 0...7)
    func anOlderMinorPluginStillLoadsAndRuns(minor: Int) throws {
        let path = try Self.plugin("ABI_MINOR=\(minor)")
        let library = try PluginLibrary(path: path)
        #expect(library.info.abiMinor == UInt16(minor))
        let h = try PluginHarness(plugin: path, parameters: ["port": .int(0x630)])
        h.write(port: 0x630, 0x5a)
        #expect(h.read(port: 0x630) == 0x5a)
    }

    /// Regression: the loader used to copy whole host-sized structs out of the plugin.
    @Test func shortABI10DescriptorLoadsAndRuns() throws {
        let path = try Self.plugin("SHORT_DESCRIPTOR")
        let library = try PluginLibrary(path: path)
        #expect(library.info.name == "fixture")
        #expect(library.info.parameters.map(\.name) == ["port", "depth"])
        let h = try PluginHarness(plugin: path, parameters: ["port": .int(0x620)])
        h.write(port: 0x620, 0x33)
        #expect(h.read(port: 0x620) == 0x33)
        let state = try h.save()
        try h.reset()
        try h.load(state)
        #expect(h.read(port: 0x620) == 0x33)
        #expect(ConformanceSuite(plugin: path, accesses: 500).run().allPassed)
    }

    @Test(arguments: [
        (variant: "BAD_SCHEMA=1", field: "params[1].name", problem: "'port' is repeated"),
        (variant: "BAD_SCHEMA=2", field: "params[1].min", problem: "8 is greater than max 4"),
        (variant: "BAD_SCHEMA=3", field: "params[1].default_value", problem: "depth: 99 (0x63) is outside 1...16"),
    ])
    func badParameterSchemaIsMalformed(variant: String, field: String, problem: String) throws {
        let path = try Self.plugin(variant)
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .invalidField(path: path, field: field, problem: problem))
    }

    @Test func createFailureCarriesThePluginsMessage() throws {
        let path = try Self.plugin("CREATE_FAILS")
        let error = #expect(throws: PluginDeviceError.self) { try PluginHarness(plugin: path, instanceName: "frob0") }
        #expect(error?.instance == "frob0")
        #expect(error?.operation == "create")
        #expect(error?.reason == "fixture refuses: no frobnicator attached")
        #expect(error?.description == "device 'frob0' (plugin fixture): create failed: fixture refuses: no frobnicator attached")
    }

    @Test func debugExitPassesTheConformanceSuite() {
        let report = ConformanceSuite(plugin: "debug-exit").run()
        #expect(report.allPassed, "\(report.checks.map(\.line))")
        #expect(report.checks.count == 6)
        #expect(report.checks.first?.line == "PASS  load: debug-exit 1.0.0 (ABI 1.\(PluginLibrary.hostABI.minor))")
    }

    @Test func conformanceSuiteReportsALoadFailure() throws {
        let path = try Self.plugin("ABI_MAJOR=2")
        let report = ConformanceSuite(plugin: path).run()
        #expect(report.loadError == .abiMismatch(path: path, plugin: "2.\(PluginLibrary.hostABI.minor)", host: "1.\(PluginLibrary.hostABI.minor)"))
        #expect(report.checks.map(\.name) == ["load"])
        #expect(!report.allPassed)
    }

    // MARK: veneer-plugin-test

    static var tool: String { TestSupport.productsDirectory + "/veneer-plugin-test" }

    @Test func toolPassesTheScratchpad() throws {
        let result = try TestSupport.run(Self.tool, [try TestSupport.scratchpad(), "--seed", "42", "--accesses", "3000"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.last == "6 passed, 0 failed")
        #expect(lines.first == "PASS  load: scratchpad 1.0.0 (ABI 1.\(PluginLibrary.hostABI.minor))")
        #expect(lines.dropLast().allSatisfy { $0.hasPrefix("PASS  ") })
    }

    @Test func toolFailsOnABrokenPlugin() throws {
        let path = try Self.plugin("ABI_MAJOR=2")
        let result = try TestSupport.run(Self.tool, [path])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line naming the file and the reason: \(result.stderr)")
        #expect(lines.first?.contains(path) == true && lines.first?.contains("ABI 2.") == true)
    }

    @Test func toolFailsWhenACheckFails() throws {
        let result = try TestSupport.run(Self.tool, [try TestSupport.scratchpad(), "--param", "mmio_base=0x1234"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAIL  create: device 'dut' (plugin scratchpad): create failed: mmio_base 0x1234"))
        #expect(result.stdout.hasSuffix("1 passed, 1 failed\n"))
    }

    @Test(arguments: [[String](), ["x.so", "--seed"], ["x.so", "--seed", "lots"], ["x.so", "--bogus"], ["a.so", "b.so"],
                      ["x.so", "--param", "novalue"]])
    func toolRejectsBadUsage(arguments: [String]) throws {
        let result = try TestSupport.run(Self.tool, arguments)
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("veneer-plugin-test: "))
        #expect(result.stderr.contains("usage: veneer-plugin-test PLUGIN"))
    }
}
