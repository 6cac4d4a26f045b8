import Testing
import VeneerHarness
import VeneerHost
import VeneerPluginABI

/// ABI 1.4 (Hyper-V connections) from C, on a fixture compiled at test time: connections claimed
/// in create, the guest's posts and signals reaching the callbacks, the plugin's messages and
/// event flags reaching the guest, the host's checks, an ABI 1.2 plugin whose descriptor ends
/// before the new callbacks, and an ABI 1.3 plugin whose descriptor holds junk there.
@Suite struct HyperVConnectionABITests {
    /// Claims message connection MSG_ID and event connection EVENT_ID. A post is answered by
    /// posting its payload back to SINT 4 of the posting VP with the same type (status 0), except
    /// a payload starting with 0xFF (status 5); a signal sets the same flag on SINT 5 of that VP.
    /// OLD_ABI=2 builds a 1.2 plugin: no connections, and a descriptor whose struct_size stops
    /// before hv_message although the (unread) bytes after it hold a bogus pointer. OLD_ABI=3
    /// builds a 1.3 plugin (machine facts, before Hyper-V connections): a full-size descriptor
    /// whose reserved bytes where 1.4 put hv_message and hv_event hold bogus pointers.
    static let fixture = #"""
        #include "veneer_plugin.h"
        #include <stddef.h>
        #include <stdlib.h>

        #ifndef MSG_ID
        #define MSG_ID 0x10010
        #endif
        #ifndef EVENT_ID
        #define EVENT_ID 0x10011
        #endif

        struct veneer_device { const veneer_host_api *api; veneer_host *host; };

        static veneer_device *create(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args) {
            (void)args;
        #ifndef OLD_ABI
            if (api->hv_connect(host, VENEER_HV_MESSAGE_CONNECTION, MSG_ID) != VENEER_OK
                || api->hv_connect(host, VENEER_HV_EVENT_CONNECTION, EVENT_ID) != VENEER_OK) {
                api->set_error(host, "cannot claim the connections");
                return NULL;
            }
        #endif
            veneer_device *d = calloc(1, sizeof *d);
            d->api = api;
            d->host = host;
            return d;
        }
        static veneer_status reset(veneer_device *dev) { (void)dev; return VENEER_OK; }
        static void destroy(veneer_device *dev) { free(dev); }
        static void io(veneer_device *dev, uint32_t region, uint64_t offset, uint32_t size, uint32_t flags, uint64_t *data) {
            (void)dev; (void)region; (void)offset; (void)size; (void)flags; (void)data;
        }
        static uint32_t hv_message(veneer_device *dev, uint32_t connection, uint32_t vp, uint32_t type,
                                   const uint8_t *payload, size_t length) {
            if (connection != MSG_ID || (length > 0 && payload[0] == 0xFF)) return VENEER_HV_STATUS_INVALID_PARAMETER;
            return dev->api->hv_post_message(dev->host, vp, 4, type, payload, length) == VENEER_OK
                ? VENEER_HV_STATUS_SUCCESS : VENEER_HV_STATUS_INSUFFICIENT_BUFFERS;
        }
        static void hv_event(veneer_device *dev, uint32_t connection, uint32_t vp, uint32_t flag) {
            if (connection == EVENT_ID) dev->api->hv_signal_event(dev->host, vp, 5, flag);
        }

        static veneer_plugin_descriptor descriptor = {
        #if OLD_ABI == 2
            .struct_size = offsetof(veneer_plugin_descriptor, hv_message),
            .abi_minor = 2,
            .hv_message = (void *)1,
        #elif OLD_ABI == 3
            .struct_size = sizeof(veneer_plugin_descriptor),
            .abi_minor = 3,
            .hv_message = (void *)1,
            .hv_event = (void *)1,
        #else
            .struct_size = sizeof(veneer_plugin_descriptor),
            .abi_minor = VENEER_ABI_MINOR,
            .hv_message = hv_message,
            .hv_event = hv_event,
        #endif
            .abi_major = VENEER_ABI_MAJOR,
            .name = "fixture",
            .version = "0.1",
            .summary = "Hyper-V connection fixture",
            .kind = VENEER_KIND_SYNTHETIC,
            .state_version = 1,
            .create = create,
            .reset = reset,
            .destroy = destroy,
            .io = io,
        };

        const veneer_plugin_descriptor *veneer_plugin_entry(void) { return &descriptor; }
        """#

    static func plugin(_ defines: String...) throws -> String {
        try TestSupport.compilePlugin(fixture, defines: defines)
    }

    static let message = UInt32(VENEER_HV_MESSAGE_CONNECTION.rawValue), event = UInt32(VENEER_HV_EVENT_CONNECTION.rawValue)

    @Test func postsAndSignalsReachThePluginAndItsAnswersTheGuest() throws {
        let h = try PluginHarness(plugin: try Self.plugin(), vcpuCount: 2)
        #expect(h.host.hvConnections == [.init(kind: Self.message, id: 0x10010), .init(kind: Self.event, id: 0x10011)])
        #expect(h.hvPost(connection: 0x10010, vp: 1, messageType: 0x42, payload: [1, 2, 3]) == 0)
        #expect(h.host.hvMessages == [.init(vp: 1, sint: 4, messageType: 0x42, payload: [1, 2, 3])])
        #expect(h.hvPost(connection: 0x10010, payload: [0xFF]) == 5, "the plugin's own status reaches the guest")
        #expect(h.hvPost(connection: 0x10011, payload: [1]) == 0x12, "an event connection takes no posts")
        #expect(h.hvSignal(connection: 0x10011, vp: 1, flag: 77) == 0)
        #expect(h.host.hvEvents == [.init(vp: 1, sint: 5, flag: 77)])
        #expect(h.hvSignal(connection: 0x10010, flag: 1) == 0x12, "a message connection takes no signals")
    }

    @Test func theHostChecksWhatThePluginSends() throws {
        let h = try PluginHarness(plugin: try Self.plugin(), vcpuCount: 2)
        #expect(h.hvPost(connection: 0x10010, vp: 2, payload: [1]) == 0x13, "VP 2 of 2: refused, the fixture reports it")
        #expect(h.hvPost(connection: 0x10010, messageType: 0x8000_0010, payload: []) == 0x13, "hypervisor message types are not the plugin's")
        #expect(h.hvSignal(connection: 0x10011, flag: 2048) == 0)
        #expect(h.host.hvMessages.isEmpty && h.host.hvEvents.isEmpty)
        #expect(h.host.hvConnect(kind: Self.message, connectionID: 0x10010) == .busy, "claimed twice")
        #expect(h.host.hvConnect(kind: Self.event, connectionID: 0x10010) == .ok, "the other kind is a separate table")
        #expect(h.host.hvConnect(kind: Self.message, connectionID: 4) == .invalid, "VMBus's own ids are not for plugins")
        #expect(h.host.hvConnect(kind: Self.message, connectionID: 0x100_0000) == .invalid, "24 bits")
        #expect(h.host.hvConnect(kind: 3, connectionID: 0x10020) == .invalid)
    }

    @Test func anIdOutsideThePluginRangeFailsCreate() throws {
        let error = #expect(throws: PluginDeviceError.self) { try PluginHarness(plugin: try Self.plugin("MSG_ID=0x2001")) }
        #expect(error?.reason.contains("0x10000-0xffffff") == true, "\(String(describing: error))")
    }

    @Test(arguments: [2, 3])
    func anOlderPluginLoadsAndItsHyperVCallbacksAreNotRead(minor: Int) throws {
        let path = try Self.plugin("OLD_ABI=\(minor)")
        let library = try PluginLibrary(path: path)
        #expect(library.info.abiMinor == UInt16(minor))
        let h = try PluginHarness(plugin: path)
        #expect(h.host.hvConnections.isEmpty)
        // Called directly (no connection could route here): the bogus pointers past struct_size
        // (1.2) or in 1.3's reserved tail must not be used; the post is refused as with no
        // callback at all, the signal dropped.
        #expect(h.device.hvMessage(connectionID: 0x10010, vp: 0, messageType: 1, payload: [1]) == 5)
        h.device.hvEvent(connectionID: 0x10011, vp: 0, flag: 1)
        #expect(ConformanceSuite(plugin: path, accesses: 100).run().allPassed)
    }
}
