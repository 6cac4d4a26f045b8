/* Compile-time checks of the ABI's layout on the platforms Veneer supports (LP64).
 * Offsets of published fields never move within a major version: if one of these fails, a change
 * broke every plugin built against an earlier header. */
#include "veneer_plugin.h"
#include <assert.h>

static_assert(sizeof(void *) == 8, "Veneer's ABI is defined for LP64 hosts");
static_assert(sizeof(veneer_param_spec) == 88, "veneer_param_spec layout");
static_assert(sizeof(veneer_param_value) == 48, "veneer_param_value layout");
static_assert(sizeof(veneer_create_args) == 88, "veneer_create_args layout");
static_assert(offsetof(veneer_host_api, log) == 8, "veneer_host_api layout");
static_assert(offsetof(veneer_host_api, request_stop) == 136, "veneer_host_api layout");
static_assert(sizeof(veneer_host_api) == 144 + 24 * 8, "veneer_host_api layout");
static_assert(offsetof(veneer_plugin_descriptor, params) == 56, "veneer_plugin_descriptor layout");
static_assert(offsetof(veneer_plugin_descriptor, load) == 144, "veneer_plugin_descriptor layout");
static_assert(sizeof(veneer_plugin_descriptor) == 152 + 24 * 8, "veneer_plugin_descriptor layout");
/* 1.1 took its fields from the reserved tails: sizes unchanged. */
static_assert(offsetof(veneer_host_api, vmbus_offer) == 144, "veneer_host_api 1.1 layout");
static_assert(offsetof(veneer_plugin_descriptor, vmbus_opened) == 152, "veneer_plugin_descriptor 1.1 layout");
static_assert(sizeof(veneer_vmbus_offer) == 200, "veneer_vmbus_offer layout");
static_assert(sizeof(veneer_vmbus_packet) == 40, "veneer_vmbus_packet layout");
static_assert(offsetof(veneer_host_api, ioevent_add) == 168, "veneer_host_api 1.1 layout");
/* 1.2 took its fields from the reserved tails too: sizes unchanged. */
static_assert(offsetof(veneer_host_api, pci_register) == 176, "veneer_host_api 1.2 layout");
static_assert(offsetof(veneer_host_api, pci_config_access) == 184, "veneer_host_api 1.2 layout");
static_assert(offsetof(veneer_plugin_descriptor, pci_config) == 176, "veneer_plugin_descriptor 1.2 layout");
static_assert(sizeof(veneer_pci_bar) == 16, "veneer_pci_bar layout");
static_assert(offsetof(veneer_pci_function, class_code) == 12, "veneer_pci_function layout");
static_assert(offsetof(veneer_pci_function, capability_pointer) == 20, "veneer_pci_function layout");
static_assert(offsetof(veneer_pci_function, capabilities_length) == 24, "veneer_pci_function layout");
static_assert(offsetof(veneer_pci_function, capabilities) == 32, "veneer_pci_function layout");
static_assert(offsetof(veneer_pci_function, bars) == 40, "veneer_pci_function layout");
static_assert(sizeof(veneer_pci_function) == 200, "veneer_pci_function layout");
/* 1.3 took machine_fact from the host table's reserved tail: sizes unchanged. */
static_assert(offsetof(veneer_host_api, machine_fact) == 192, "veneer_host_api 1.3 layout");
static_assert(sizeof(veneer_memory_range) == 24, "veneer_memory_range layout");
/* 1.4 (Hyper-V connections) took its fields from the reserved tails after 1.3's: sizes unchanged. */
static_assert(offsetof(veneer_host_api, hv_connect) == 200, "veneer_host_api 1.4 layout");
static_assert(offsetof(veneer_host_api, hv_post_message) == 208, "veneer_host_api 1.4 layout");
static_assert(offsetof(veneer_host_api, hv_signal_event) == 216, "veneer_host_api 1.4 layout");
static_assert(offsetof(veneer_plugin_descriptor, hv_message) == 184, "veneer_plugin_descriptor 1.4 layout");
static_assert(offsetof(veneer_plugin_descriptor, hv_event) == 192, "veneer_plugin_descriptor 1.4 layout");
/* 1.5 (partition reference time) took hv_reference_time from the host table's reserved tail. */
static_assert(offsetof(veneer_host_api, hv_reference_time) == 224, "veneer_host_api 1.5 layout");
/* 1.6 added a parameter type (VENEER_PARAM_PATH) and gave `choices` a meaning on integers: no
 * field moved, sizes unchanged. */
static_assert(VENEER_PARAM_PATH == 5, "veneer_param_type 1.6");
static_assert(offsetof(veneer_param_spec, choices) == 48, "veneer_param_spec layout");
static_assert(sizeof(veneer_param_spec) == 88, "veneer_param_spec layout");
/* 1.7 (VSP channels, parameter groups) took its fields from the reserved tails: sizes unchanged. */
static_assert(VENEER_PARAM_GROUP == 6, "veneer_param_type 1.7");
static_assert(offsetof(veneer_param_spec, members) == 56, "veneer_param_spec 1.7 layout");
static_assert(offsetof(veneer_param_spec, member_count) == 64, "veneer_param_spec 1.7 layout");
static_assert(offsetof(veneer_param_value, items) == 32, "veneer_param_value 1.7 layout");
static_assert(offsetof(veneer_host_api, vmbus_rescind) == 232, "veneer_host_api 1.7 layout");
static_assert(offsetof(veneer_host_api, vmbus_write_batch) == 264, "veneer_host_api 1.7 layout");
static_assert(sizeof(veneer_guest_segment) == 16, "veneer_guest_segment layout");
static_assert(offsetof(veneer_vmbus_send, header) == 16, "veneer_vmbus_send layout");
static_assert(offsetof(veneer_vmbus_send, payload) == 32, "veneer_vmbus_send layout");
static_assert(sizeof(veneer_vmbus_send) == 64, "veneer_vmbus_send layout");
/* 1.8 (metrics, management requests, run state) took its fields from the reserved tails. */
static_assert(offsetof(veneer_host_api, metric_register) == 272, "veneer_host_api 1.8 layout");
static_assert(offsetof(veneer_host_api, control_reply) == 296, "veneer_host_api 1.8 layout");
static_assert(offsetof(veneer_plugin_descriptor, control) == 200, "veneer_plugin_descriptor 1.8 layout");
static_assert(offsetof(veneer_plugin_descriptor, run_state) == 208, "veneer_plugin_descriptor 1.8 layout");
