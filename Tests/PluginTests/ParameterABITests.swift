import Testing
import VeneerHarness
import VeneerHost

/// ABI 1.6's parameter additions on a C plugin compiled at test time: VENEER_PARAM_PATH (resolved
/// by the host against the config's directory) and enumerated integers (VENEER_PARAM_INT with
/// `choices`). A plugin of 1.5 or older cannot use either: its path type is refused as unknown and
/// its integer `choices` are not read.
@Suite struct ParameterABITests {
    static let fixture = #"""
        #include "veneer_plugin.h"
        #include <stdlib.h>
        #include <string.h>

        struct veneer_device { uint8_t value; };

        static const veneer_param_spec params[] = {
            { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_INT, .name = "width",
              .doc = "bytes per access (1, 2 or 4)", .default_value = "1", .min = 1, .max = 4, .choices = "1,2,4" },
        #ifndef NO_PATH
            { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_PATH, .name = "log",
              .doc = "none or a file", .default_value = "none", .choices = "none" },
        #endif
        };

        /* Fails unless the path parameter arrives typed as a path and resolved as `EXPECT` says. */
        static veneer_device *create(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args) {
        #ifndef NO_PATH
            const veneer_param_value *log = (const veneer_param_value *)((const char *)args->params + args->param_value_size);
            if (log->type != VENEER_PARAM_PATH || log->string_value == NULL) {
                api->set_error(host, "log is not a path");
                return NULL;
            }
        #else
            (void)args;
        #endif
            if (api->register_pio(host, 0, 0x600, 1) != VENEER_OK) {
                api->set_error(host, "port taken");
                return NULL;
            }
            return calloc(1, sizeof(veneer_device));
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
            .struct_size = sizeof(veneer_plugin_descriptor), .abi_major = VENEER_ABI_MAJOR, .abi_minor = ABI_MINOR,
            .name = "paramfix", .version = "0.1", .summary = "parameter ABI fixture", .kind = VENEER_KIND_EMULATED,
            .state_version = 1, .param_count = sizeof params / sizeof params[0], .param_spec_size = sizeof(veneer_param_spec),
            .params = params, .create = create, .reset = reset, .destroy = destroy, .io = io, .save = save, .load = load,
        };
        const veneer_plugin_descriptor *veneer_plugin_entry(void) { return &descriptor; }
        """#

    static func plugin(_ defines: String...) throws -> String {
        try TestSupport.compilePlugin(fixture, defines: defines, name: "paramfix")
    }

    @Test func aCurrentPluginDeclaresPathsAndEnumeratedIntegers() throws {
        let library = try PluginLibrary(path: try Self.plugin("ABI_MINOR=6"))
        #expect(library.info.parameters.map(\.kind) == [.intChoice([1, 2, 4]), .path(words: ["none"])])
        let values = try ParameterValidation.resolve(["log": .string("out/log.txt")], schema: library.info.parameters,
                                                     baseDirectory: "/vms/a")
        #expect(values.map(\.value) == [.int(1), .string("/vms/a/out/log.txt")])
        let problem = #expect(throws: ParameterValidation.Problem.self) {
            try ParameterValidation.resolve(["width": .int(3)], schema: library.info.parameters)
        }
        #expect(problem?.description == "width: 3 is not one of 1, 2, 4")
        // The value reaches create typed as a path.
        let h = try PluginHarness(plugin: library.path, parameters: ["width": .int(4), "log": .string("none")])
        #expect(h.host.errors.isEmpty)
    }

    @Test(arguments: 0...5)
    func aPluginOfAnEarlierMinorCannotUseThem(minor: Int) throws {
        let path = try Self.plugin("ABI_MINOR=\(minor)")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .invalidField(path: path, field: "params[1].type",
                                       problem: "5 is not 1 (bool), 2 (int), 3 (string) or 4 (choice); 5 (path) needs ABI 1.6, 6 (group) ABI 1.7"))
        let old = try PluginLibrary(path: try Self.plugin("ABI_MINOR=\(minor)", "NO_PATH"))
        #expect(old.info.parameters.map(\.kind) == [.int(min: 1, max: 4)])
    }

    /// 1.6 knows types 1 to 5 only: any other is refused, naming the field.
    @Test func anUnknownTypeIsStillRefusedAt1_6() throws {
        let path = try TestSupport.compilePlugin(
            Self.fixture.replacingOccurrences(of: ".type = VENEER_PARAM_PATH", with: ".type = 6"),
            defines: ["ABI_MINOR=6"], name: "paramfix")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .invalidField(path: path, field: "params[1].type",
                                       problem: "6 is not 1 (bool), 2 (int), 3 (string), 4 (choice) or 5 (path); 6 (group) needs ABI 1.7"))
    }

    /// A path's words follow the choice rule: distinct and non-empty.
    @Test func badPathWordsAreMalformed() throws {
        let path = try TestSupport.compilePlugin(
            Self.fixture.replacingOccurrences(of: #".choices = "none" }"#, with: #".choices = "none,,none" }"#),
            defines: ["ABI_MINOR=6"], name: "paramfix")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .invalidField(path: path, field: "params[1].choices",
                                       problem: "'none,,none' is not a comma-separated list of distinct, non-empty words"))
    }

    @Test func badIntegerChoicesAreMalformed() throws {
        let path = try TestSupport.compilePlugin(
            Self.fixture.replacingOccurrences(of: #".choices = "1,2,4""#, with: #".choices = "1,8""#),
            defines: ["ABI_MINOR=6"], name: "paramfix")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .invalidField(path: path, field: "params[0].choices", problem: "'8' is not a distinct integer within 1...4"))
    }
}
