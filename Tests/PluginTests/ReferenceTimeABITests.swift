import Testing
import VeneerHarness
import VeneerHost
import VeneerPluginABI

/// ABI 1.5 (partition reference time) from C, on a fixture compiled at test time: the plugin reads
/// hv_reference_time through the host table; reading port 0x640 (8 bytes) returns the value read
/// then, or all ones when the host refused (and port 0x648 returns the status).
@Suite struct ReferenceTimeABITests {
    static let fixture = #"""
        #include "veneer_plugin.h"
        #include <stdlib.h>

        struct veneer_device { const veneer_host_api *api; veneer_host *host; };

        static veneer_device *create(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args) {
            (void)args;
            if (api->register_pio(host, 0, 0x640, 16) != VENEER_OK) return NULL;
            veneer_device *d = calloc(1, sizeof *d);
            d->api = api;
            d->host = host;
            return d;
        }
        static veneer_status reset(veneer_device *dev) { (void)dev; return VENEER_OK; }
        static void destroy(veneer_device *dev) { free(dev); }
        static void io(veneer_device *dev, uint32_t region, uint64_t offset, uint32_t size, uint32_t flags, uint64_t *data) {
            (void)region; (void)size;
            if (flags & VENEER_IO_WRITE) return;
            uint64_t time = 0;
            veneer_status status = dev->api->hv_reference_time(dev->host, &time);
            if (offset == 0) *data = status == VENEER_OK ? time : UINT64_MAX;
            else *data = (uint64_t)(int64_t)status;
        }

        static veneer_plugin_descriptor descriptor = {
            .struct_size = sizeof(veneer_plugin_descriptor),
            .abi_major = VENEER_ABI_MAJOR,
            .abi_minor = VENEER_ABI_MINOR,
            .name = "fixture",
            .version = "0.1",
            .summary = "reference time fixture",
            .kind = VENEER_KIND_EMULATED,
            .state_version = 1,
            .create = create,
            .reset = reset,
            .destroy = destroy,
            .io = io,
        };

        const veneer_plugin_descriptor *veneer_plugin_entry(void) { return &descriptor; }
        """#

    @Test func aCPluginReadsTheFakePartitionClockThroughTheTable() throws {
        let h = try PluginHarness(plugin: try TestSupport.compilePlugin(Self.fixture))
        h.host.referenceTime = 0x0123_4567_89ab_cdef
        #expect(h.read(port: 0x640, size: 8) == 0x0123_4567_89ab_cdef)
        h.host.referenceTime = 5
        #expect(h.read(port: 0x640, size: 8) == 5, "the plugin sees the clock the host keeps, each time it asks")
        #expect(h.read(port: 0x648, size: 8) == 0)
    }

    @Test func aVMWithoutEnlightenmentsRefusesIt() throws {
        let h = try PluginHarness(plugin: try TestSupport.compilePlugin(Self.fixture))
        h.host.referenceTime = nil
        #expect(h.read(port: 0x640, size: 8) == .max)
        #expect(h.read(port: 0x648, size: 8) == UInt64(bitPattern: Int64(VENEER_ENOTSUP)))
    }
}
