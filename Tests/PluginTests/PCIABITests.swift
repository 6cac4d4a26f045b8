import Testing
import VeneerHarness
import VeneerHost

/// The PCI part of ABI 1.2 from C, on fixture plugins compiled at test time: how the host reads
/// `veneer_pci_function`, the `pci_config` callback and its flags, the rule that an instance
/// either owns functions or forwards configuration accesses, and that older plugins still load.
@Suite struct PCIABITests {
    /// A function with a 32-bit memory BAR (region 7), a 64-bit BAR in slots 2-3 (region 9) and
    /// a two-entry capability list; `pci_config` records its last call in a register behind the
    /// BAR. Macros bend it: SHORT_STRUCT (struct_size stops before the BARs), LONG_CAPS (193
    /// capability bytes), LOOP (the capability list points back at itself), NULL_HANDLE, and
    /// ALSO_FORWARD (after registering, it also tries pci_config_access).
    static let fixture = #"""
        #include "veneer_plugin.h"
        #include <stddef.h>
        #include <stdlib.h>
        #include <string.h>

        struct veneer_device {
            const veneer_host_api *api;
            veneer_host *host;
            uint32_t handle;
            uint32_t last_function, last_offset, last_size, last_flags, last_data, calls;
        };

        static veneer_device *create(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args) {
            (void)args;
            veneer_device *dev = calloc(1, sizeof *dev);
            dev->api = api;
            dev->host = host;
            /* Two capabilities: power management (1) at 0x40 -> vendor-specific (9) at 0x48. */
            uint8_t *caps = calloc(1, 200);
            caps[0] = 0x01; caps[1] = 0x48; caps[2] = 0x03; caps[3] = 0x00;
            caps[8] = 0x09; caps[9] = 0x00; caps[10] = 4; caps[11] = 0xAB;
        #ifdef LOOP
            caps[9] = 0x40;
        #endif
            veneer_pci_function fn = {
                .struct_size = sizeof(veneer_pci_function),
                .vendor_id = 0x1234, .device_id = 0x5678,
                .subsystem_vendor_id = 0x9abc, .subsystem_id = 0xdef0,
                .class_code = 0x020000, .revision = 7,
                .interrupt_pin = 2, .interrupt_line = 10, .slot = 3,
                .capability_pointer = 0x40,
                .capabilities_length = 12,
                .capabilities = caps,
                .bars = {
                    [0] = { .size = 0x100, .flags = 0, .region = 7 },
                    [2] = { .size = 0x2000, .flags = VENEER_PCI_BAR_MEM64 | VENEER_PCI_BAR_PREFETCH, .region = 9 },
                },
            };
        #ifdef SHORT_STRUCT
            fn.struct_size = offsetof(veneer_pci_function, bars);
        #endif
        #ifdef LONG_CAPS
            fn.capabilities_length = 193;
        #endif
        #ifdef NULL_HANDLE
            veneer_status status = api->pci_register(host, &fn, NULL);
        #else
            veneer_status status = api->pci_register(host, &fn, &dev->handle);
        #endif
            /* The host copied the capability bytes: scribbling on them must not show. */
            memset(caps, 0xEE, 200);
            free(caps);
            if (status != VENEER_OK) {
                api->set_error(host, status == VENEER_EINVAL ? "pci_register: EINVAL" : "pci_register: other");
                free(dev);
                return NULL;
            }
        #ifdef ALSO_FORWARD
            uint32_t data = 0;
            if (api->pci_config_access(host, 0, 0, 4, 0, &data) != VENEER_EBUSY) {
                api->set_error(host, "pci_config_access was allowed for an instance that owns a function");
                free(dev);
                return NULL;
            }
        #endif
            return dev;
        }
        static veneer_status reset(veneer_device *dev) { (void)dev; return VENEER_OK; }
        static void destroy(veneer_device *dev) { free(dev); }
        static void io(veneer_device *dev, uint32_t region, uint64_t offset, uint32_t size, uint32_t flags, uint64_t *data) {
            (void)size; (void)flags;
            if (flags & VENEER_IO_WRITE) return;
            switch (offset) {
            case 0x00: *data = region; break;
            case 0x04: *data = dev->last_function; break;
            case 0x08: *data = dev->last_offset; break;
            case 0x0c: *data = dev->last_size; break;
            case 0x10: *data = dev->last_flags; break;
            case 0x14: *data = dev->last_data; break;
            case 0x18: *data = dev->calls; break;
            case 0x1c: *data = dev->handle; break;
            default: *data = 0; break;
            }
        }
        static void pci_config(veneer_device *dev, uint32_t function, uint32_t offset, uint32_t size, uint32_t flags, uint32_t *data) {
            dev->last_function = function;
            dev->last_offset = offset;
            dev->last_size = size;
            dev->last_flags = flags;
            dev->last_data = *data;
            dev->calls++;
            if (!(flags & VENEER_IO_WRITE) && offset == 0x80) *data = 0xC0FFEE00u | size;
        }

        static const veneer_plugin_descriptor descriptor = {
            .struct_size = sizeof(veneer_plugin_descriptor),
            .abi_major = VENEER_ABI_MAJOR,
            .abi_minor = VENEER_ABI_MINOR,
            .name = "pcifixture",
            .version = "0.1",
            .summary = "PCI ABI test fixture",
            .kind = VENEER_KIND_EMULATED,
            .state_version = 1,
            .create = create,
            .reset = reset,
            .destroy = destroy,
            .io = io,
            .pci_config = pci_config,
        };

        const veneer_plugin_descriptor *veneer_plugin_entry(void) { return &descriptor; }
        """#

    static func plugin(_ defines: String...) throws -> String {
        try TestSupport.compilePlugin(fixture, defines: defines, name: "pcifixture")
    }

    /// Reads the fixture's record of its last pci_config call through BAR0 at 0xe0000000.
    struct LastCall: Equatable {
        var function, offset, size, flags, data: UInt64
    }

    static func lastCall(_ h: PluginHarness) -> LastCall {
        LastCall(function: h.read(mmio: 0xe000_0004), offset: h.read(mmio: 0xe000_0008), size: h.read(mmio: 0xe000_000c),
                 flags: h.read(mmio: 0xe000_0010), data: h.read(mmio: 0xe000_0014))
    }

    @Test func theHostReadsEveryFieldOfTheFunction() throws {
        let h = try PluginHarness(plugin: try Self.plugin())
        #expect(h.pciFunction == 3 << 3, "slot 3")
        #expect(h.pciConfigRead(0x00) == 0x5678_1234)
        #expect(h.pciConfigRead(0x08) == 0x0200_0007)
        #expect(h.pciConfigRead(0x2c) == 0xdef0_9abc)
        #expect(h.pciConfigRead(0x3c) == 0x0000_020a, "pin INTB#, line 10")
        #expect(h.pciConfigRead(0x34) == 0x40)
        h.pciConfigWrite(0x10, 0xffff_ffff)
        h.pciConfigWrite(0x18, 0xffff_ffff)
        h.pciConfigWrite(0x1c, 0xffff_ffff)
        #expect(h.pciConfigRead(0x10) == 0xffff_ff00)
        #expect(h.pciConfigRead(0x14) == 0)
        #expect(h.pciConfigRead(0x18) == 0xffff_e00c)
        #expect(h.pciConfigRead(0x1c) == 0xffff_ffff)
    }

    @Test func capabilityBytesAreCopiedAndPresetForTheCallback() throws {
        let h = try PluginHarness(plugin: try Self.plugin())
        h.placeBAR(0, at: 0xe000_0000)
        #expect(h.read(mmio: 0xe000_001c) == 3 << 3, "the handle is the function's address")
        // The plugin sees the preset bytes and keeps them.
        #expect(h.pciConfigRead(0x40) == 0x0003_4801)
        #expect(Self.lastCall(h) == LastCall(function: 3 << 3, offset: 0x40, size: 4, flags: 0, data: 0x0003_4801))
        #expect(h.pciConfigRead(0x48) == 0xab04_0009)
        #expect(h.pciConfigRead(0x4c) == 0)
        // ... or replaces them.
        #expect(h.pciConfigRead(0x80, size: 2) == 0xee02, "the host masks what the plugin stored to the size")
        h.pciConfigWrite(0x84, 0x1122_3344)
        #expect(Self.lastCall(h) == LastCall(function: 3 << 3, offset: 0x84, size: 4, flags: 1, data: 0x1122_3344))
    }

    @Test func headerWritesArriveAsNotificationsWithTheNewValue() throws {
        let h = try PluginHarness(plugin: try Self.plugin())
        h.placeBAR(0, at: 0xe000_0000)  // the last write: command |= 3
        #expect(Self.lastCall(h) == LastCall(function: 3 << 3, offset: 0x04, size: 2, flags: 0x5, data: 3))
        h.pciConfigWrite(0x10, 0xe000_00ff)  // bits below the 256-byte size do not stick: the notice says so
        #expect(Self.lastCall(h) == LastCall(function: 3 << 3, offset: 0x10, size: 4, flags: 0x5, data: 0xe000_0000))
        let calls = h.read(mmio: 0xe000_0018)
        _ = h.pciConfigRead(0x00)
        #expect(h.read(mmio: 0xe000_0018) == calls, "header reads stay in the core")
    }

    @Test(arguments: [
        (define: "SHORT_STRUCT", reason: "pci_register: EINVAL"),
        (define: "LONG_CAPS", reason: "pci_register: EINVAL"),
        (define: "LOOP", reason: "pci_register: EINVAL"),
        (define: "NULL_HANDLE", reason: "pci_register: EINVAL"),
    ])
    func malformedRegistrationsAreRefused(define: String, reason: String) throws {
        let path = try Self.plugin(define)
        let bus = PCIBus()
        let error = #expect(throws: PluginDeviceError.self) { try PluginHarness(plugin: path, pciBus: bus) }
        #expect(error?.reason.hasPrefix(reason) == true, "\(error?.reason ?? "")")
        // The harness takes a failed instance's functions off the bus.
        #expect(bus.functions.map(\.bdf) == [0])
    }

    @Test func anInstanceThatOwnsAFunctionCannotForwardConfigurationAccesses() throws {
        // The fixture fails its create unless pci_config_access answers VENEER_EBUSY.
        let h = try PluginHarness(plugin: try Self.plugin("ALSO_FORWARD"))
        #expect(h.host.errors == ["a device that owns PCI functions cannot forward configuration accesses"])
    }

    /// 1.0 and 1.1 plugins have no PCI callback; 1.2 plugins (built before machine facts, ABI
    /// 1.3) and 1.3 plugins (before Hyper-V connections, ABI 1.4) load and run unchanged too.
    @Test(arguments: [0, 1, 2, 3])
    func olderMinorsStillLoadAndHaveNoPCICallback(minor: Int) throws {
        let path = try ABICompatibilityTests.plugin("ABI_MINOR=\(minor)")
        let library = try PluginLibrary(path: path)
        #expect(library.info.abiMinor == UInt16(minor))
        let h = try PluginHarness(plugin: path, parameters: ["port": .int(0x640)])
        #expect(!h.device.handlesPCIConfig)
        h.write(port: 0x640, 0x42)
        #expect(h.read(port: 0x640) == 0x42)
        #expect(ConformanceSuite(plugin: path, accesses: 500).run().allPassed)
    }
}
