/*
 * veneer_plugin.h — the Veneer device-plugin ABI.
 *
 * This header is the only contract between the Veneer core and a device plugin. A plugin is a
 * shared object (.so) that exports one C symbol, VENEER_PLUGIN_ENTRY_NAME, returning a pointer to a
 * constant descriptor. Plugins may be written in any language that can produce that symbol; the
 * Swift SDK (PluginSDK/Swift) is a convenience layer over exactly this header.
 *
 * Versioning
 *   - VENEER_ABI_MAJOR changes only when an existing struct layout or call meaning changes. The host
 *     refuses a plugin whose major differs from its own.
 *   - VENEER_ABI_MINOR grows when fields or calls are appended. The host refuses a plugin whose minor
 *     is newer than its own (it could not honour calls the plugin expects) and accepts any older one.
 *   - Every struct that crosses the boundary starts with `struct_size` (the size the writer was
 *     compiled with) and ends with reserved space. A reader uses a field only if the writer's
 *     struct_size covers it, so either side can be older than the other within one major.
 *   - Arrays that cross the boundary carry their element size next to their count.
 *
 * History
 *   1.0  lifecycle, parameter schema, PIO/MMIO regions, guest memory, IRQ lines, MSI, timers,
 *        fd watches, posted work (deferred completion), save/load, logging, stop requests.
 *   1.1  VMBus service providers: channel offers, packet read/write, channel events
 *        (fields taken from the reserved tails, which 1.0 plugins leave zero).
 *   1.2  PCI: functions with BARs and capabilities (pci_register, the pci_config callback), and
 *        configuration accesses for the plugin that implements a configuration mechanism
 *        (pci_config_access); regions may now change while the VM runs (reserved tails again).
 *   1.3  Machine facts (machine_fact): vCPU count, RAM size, the memory map, the boot files and
 *        the ACPI tables in relocatable form, for devices that describe the machine to firmware
 *        (fw-cfg). Taken from the host table's reserved tail; 1.2 plugins never call it.
 *   1.4  Hyper-V connections: message and event connection ids a plugin owns (hv_connect, the
 *        hv_message and hv_event callbacks), SynIC messages and event flags to any VP
 *        (hv_post_message, hv_signal_event); reserved tails again.
 *   1.5  Partition reference time (hv_reference_time): the clock the guest reads from
 *        TIME_REF_COUNT and the reference TSC page, for services that must speak in it (time
 *        sync). Taken from the host table's reserved tail; 1.4 plugins never call it.
 *   1.6  Parameters: VENEER_PARAM_PATH (a host file, resolved against the config file's directory)
 *        and enumerated integers (VENEER_PARAM_INT with `choices`).
 *   1.7  What storage- and network-class VSPs need: offers added and rescinded while the VM runs
 *        (vmbus_offer after create, vmbus_rescind), sub-channels at the guest's request
 *        (vmbus_offer_subchannels), packets whose GPA-direct buffers arrive as bounded guest-RAM
 *        segments (vmbus_read_segments), a GPADL's pages by id (vmbus_gpadl_segments), many
 *        packets written with one signal (vmbus_write_batch); and parameter groups
 *        (VENEER_PARAM_GROUP: an array of tables in the config, e.g. a controller's disks).
 *        All taken from reserved tails: sizes unchanged.
 *   1.8  What management needs: metrics a plugin publishes (metric_register, metric_add,
 *        metric_set; the worker serves them in Prometheus text), management requests a plugin
 *        answers (the `control` callback, answered once through control_reply, possibly later),
 *        and the VM's run state (the `run_state` callback: paused, resumed). Reserved tails again.
 *
 * Threading
 *   Unless the descriptor sets VENEER_PLUGIN_CONCURRENT, the host serialises every callback into one
 *   device instance (one lock per instance): `io` arrives on vCPU threads, `timer`, `fd_ready` and
 *   `work` on the VM's event thread, never two at once (`pci_config` arrives on vCPU threads too).
 *   Host services may be called from any callback. `post_work` and `log` may also be called from
 *   any thread the plugin owns; every other service must be called from inside a callback of the
 *   same instance (or from `create`).
 *
 * Errors
 *   Calls return veneer_status: VENEER_OK (0) or a negative VENEER_E* code. A plugin that fails
 *   `create` (or another callback) should first call host->set_error with a one-line reason; the
 *   host prints it together with the plugin and device names.
 *
 * Guest memory
 *   Everything the guest wrote is hostile. The host checks every guest-physical range it is given
 *   against the VM's memory map and refuses ranges that are not entirely guest RAM
 *   (VENEER_ERANGE). Pointers from mem_map stay valid until the instance is destroyed.
 */
#ifndef VENEER_PLUGIN_H
#define VENEER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VENEER_ABI_MAJOR 1
#define VENEER_ABI_MINOR 8

/* The one symbol every plugin exports: `const veneer_plugin_descriptor *veneer_plugin_entry(void);`
 * It must be callable any number of times and return the same pointer each time. */
#define VENEER_PLUGIN_ENTRY_NAME "veneer_plugin_entry"

/* ---------------------------------------------------------------------------------------------- */
/* Status codes                                                                                    */

typedef int32_t veneer_status;

enum {
    VENEER_OK = 0,
    VENEER_EINVAL = -1,   /* an argument is malformed (bad size, unknown token, ...)          */
    VENEER_ERANGE = -2,   /* a guest-physical range is not entirely inside guest RAM          */
    VENEER_ENOMEM = -3,   /* out of host memory                                               */
    VENEER_EBUSY = -4,    /* the resource (port, address range, line) is already taken        */
    VENEER_ENOTSUP = -5,  /* the host or plugin does not offer this operation                 */
    VENEER_EIO = -6,      /* a host I/O call failed                                           */
    VENEER_ENOSPC = -7,   /* a caller-supplied buffer is too small; the needed size is given  */
    VENEER_ESTATE = -8,   /* saved state is malformed or of an unknown version                */
    VENEER_EAGAIN = -9,   /* nothing there yet (an empty ring); try again after the next event  */
};

/* ---------------------------------------------------------------------------------------------- */
/* Opaque handles                                                                                  */

/* A device instance, created and owned by the plugin. The host only passes it back. */
typedef struct veneer_device veneer_device;
/* The host's per-instance context, passed to every host service. */
typedef struct veneer_host veneer_host;

/* ---------------------------------------------------------------------------------------------- */
/* Parameter schema                                                                                */

enum veneer_param_type {
    VENEER_PARAM_BOOL = 1,   /* TOML boolean; value in int_value (0 or 1)                       */
    VENEER_PARAM_INT = 2,    /* TOML integer within [min, max]; value in int_value              */
    VENEER_PARAM_STRING = 3, /* TOML string; value in string_value                              */
    VENEER_PARAM_CHOICE = 4, /* TOML string, one of `choices`; value in string_value            */
    VENEER_PARAM_PATH = 5,   /* (1.6) TOML string naming a host file; value in string_value. The
                              * host resolves a relative path against the directory of the config
                              * file (as it does boot images); "" and the words listed in `choices`
                              * (e.g. "none,stdout") pass through unchanged.                      */
    VENEER_PARAM_GROUP = 6,  /* (1.7) a TOML array of tables, `[[device.NAME]]` in a VM config:
                              * each table is validated against `members` exactly as a device's
                              * own keys are against its schema (unknown keys, types, bounds,
                              * defaults). [min, max] bounds the number of tables (default_value
                              * must be NULL: an absent group is zero tables, so min > 0 makes it
                              * required). Members must not be groups themselves. This host
                              * accepts max <= 4096 (each table is member_count values in
                              * create's arguments).                                          */
};

/* One parameter a plugin accepts. The host validates a VM config against this schema before any
 * plugin code runs, and `veneer plugins --describe NAME` prints it. */
typedef struct veneer_param_spec {
    uint32_t struct_size;      /* sizeof(veneer_param_spec) as the plugin was compiled          */
    uint32_t type;             /* enum veneer_param_type                                        */
    const char *name;          /* [a-z][a-z0-9_]*, unique within the plugin                     */
    const char *doc;           /* one line for humans                                           */
    const char *default_value; /* textual default ("true", "0x3f8", "stdout"); NULL = required  */
    int64_t min;               /* VENEER_PARAM_INT: inclusive bounds                            */
    int64_t max;
    const char *choices;       /* VENEER_PARAM_CHOICE: comma-separated list, e.g. "a,b,c";
                                * VENEER_PARAM_PATH: words that are not paths, e.g. "none,stdout";
                                * VENEER_PARAM_INT (1.6): NULL, or the only values allowed, in
                                * decimal, e.g. "1,2,4" (each within [min, max])                 */
    /* 1.7, VENEER_PARAM_GROUP only: the schema of each table (stride param_spec_size of the
     * descriptor), at most 64 members. */
    const struct veneer_param_spec *members;
    uint32_t member_count;
    uint32_t reserved0;
    uint64_t reserved[2];
} veneer_param_spec;

/* One validated parameter value handed to create. Every parameter of the schema is present, in
 * schema order, defaults filled in. Strings stay valid only for the duration of `create`. */
typedef struct veneer_param_value {
    uint32_t struct_size;
    uint32_t type;
    const char *name;
    int64_t int_value;          /* VENEER_PARAM_GROUP: the number of tables                     */
    const char *string_value;
    /* 1.7, VENEER_PARAM_GROUP only: int_value * member_count values, table by table, each table's
     * in member order with defaults filled in (stride: the create args' param_value_size). Valid
     * for the duration of `create`, like strings. */
    const struct veneer_param_value *items;
    uint64_t reserved[1];
} veneer_param_value;

typedef struct veneer_create_args {
    uint32_t struct_size;
    uint32_t param_count;
    uint32_t param_value_size;        /* stride of `params`                                   */
    uint32_t reserved0;
    const veneer_param_value *params;
    const char *instance_name;        /* the config's device id, e.g. "com1"                   */
    uint32_t vcpu_count;
    uint32_t reserved1;
    uint64_t reserved[6];
} veneer_create_args;

/* ---------------------------------------------------------------------------------------------- */
/* VMBus (ABI 1.1)                                                                                 */

/* What a synthetic device offers the guest: one VMBus channel. GUIDs are in their wire byte order
 * (the first three fields little-endian, as Windows and Linux store them). */
typedef struct veneer_vmbus_offer {
    uint32_t struct_size;
    uint32_t user_defined_length;  /* <= 120                                                   */
    uint8_t interface_type[16];    /* the device class, e.g. storvsc's ba6163d9-...            */
    uint8_t interface_instance[16];
    uint16_t channel_flags;
    uint16_t mmio_megabytes;
    uint32_t reserved0;
    uint8_t user_defined[120];
    uint64_t reserved[4];
} veneer_vmbus_offer;

/* VMBus packet types (the descriptor's `type`). */
enum {
    VENEER_VMBUS_INBAND = 6,
    VENEER_VMBUS_TRANSFER_PAGES = 7,
    VENEER_VMBUS_GPA_DIRECT = 9,
    VENEER_VMBUS_COMPLETION = 11,
    VENEER_VMBUS_COMPLETION_REQUESTED = 0x1, /* descriptor flag */
};

/* One packet read from the guest's ring. The buffer given to vmbus_read receives the
 * type-specific header (`header_length` bytes: e.g. a GPA-direct range list) followed by the
 * payload (`payload_length` bytes). Guest buffers that a GPA-direct header names are reached with
 * mem_read/mem_write/mem_map, which bound every address. */
typedef struct veneer_vmbus_packet {
    uint32_t struct_size;
    uint16_t type;
    uint16_t flags;
    uint64_t transaction_id;
    uint32_t header_length;
    uint32_t payload_length;
    uint64_t reserved[2];
} veneer_vmbus_packet;

/* VMBus channels of storage- and network-class VSPs (ABI 1.7)
 *
 * Offers at run time: vmbus_offer may be called from any callback once the VM runs (hot add); a
 * connected guest sees the offer at once. vmbus_rescind withdraws one (hot remove): an open
 * channel is closed first (vmbus_closed follows), and the id is invalid afterwards.
 *
 * Sub-channels: when the guest asks a device for more channels (storvsc's CREATE_SUB_CHANNELS,
 * netvsc's subchannel request), the VSP calls vmbus_offer_subchannels on the open primary. Each
 * sub-channel has the primary's type and instance and the next sub_channel_index (1, 2, ...); the
 * guest opens each one (vmbus_opened), and each has its own rings, interrupt and target VP. They
 * live as long as the primary is open: when it closes, the host closes and rescinds them
 * (vmbus_closed for each open one first). With VENEER_PLUGIN_CONCURRENT the host may deliver
 * events of different channels of one instance on different threads at once, never two events of
 * one channel at once.
 *
 * Guest buffers: a GPA-direct packet's ranges are checked against guest RAM when the packet is
 * read. vmbus_read_segments hands them over as segments (guest-physical runs, each entirely guest
 * RAM, adjacent pages merged, in the guest's order, lengths summing to the ranges' byte counts),
 * ready for mem_map; vmbus_gpadl_segments does the same for a GPADL (netvsc's receive and send
 * buffers) by the id the guest gave it. Guest RAM stays mapped for the VM's life, so a segment
 * stays safe to use after the guest tears the GPADL down: it is then merely the guest's memory
 * again, and the guest's to corrupt. The layout of veneer_guest_segment is fixed in this major
 * version. */
typedef struct veneer_guest_segment {
    uint64_t gpa;
    uint64_t length;
} veneer_guest_segment;

/* One packet for vmbus_write_batch. `header` (may be NULL) is the type-specific part between the
 * descriptor and the payload, e.g. a transfer-page packet's {u16 transfer_page_set_id;
 * u8 sender_owns_set; u8 reserved; u32 range_count; {u32 byte_count; u32 byte_offset} ranges[]};
 * its length must be a multiple of 8. */
typedef struct veneer_vmbus_send {
    uint32_t struct_size;
    uint16_t type;             /* VENEER_VMBUS_INBAND, _TRANSFER_PAGES, _COMPLETION, ...         */
    uint16_t flags;            /* VENEER_VMBUS_COMPLETION_REQUESTED                              */
    uint64_t transaction_id;
    const void *header;
    uint32_t header_length;
    uint32_t reserved0;
    const void *payload;
    uint64_t payload_length;
    uint64_t reserved[2];
} veneer_vmbus_send;

/* ---------------------------------------------------------------------------------------------- */
/* PCI (ABI 1.2)                                                                                   */

/* The core owns PCI bus 0: a host bridge at 00:00.0 (its own) and the functions device plugins
 * register, one device number each. A plugin that implements a configuration mechanism (the
 * `pci-host` plugin: mechanism #1 at ports 0xCF8/0xCFC) forwards the guest's configuration
 * accesses to the core with pci_config_access; the core answers them.
 *
 * Configuration space of a registered function (256 bytes; 0x100-0xFFF read 0, ignore writes):
 *   0x00-0x3F  the type-0 header, emulated by the core:
 *              vendor, device, class, revision, subsystem ids and interrupt pin: read-only, as
 *                registered; header type 0x00; BIST, expansion ROM, Min_Gnt, Max_Lat: 0.
 *              command: I/O space (bit 0), memory space (1), bus master (2), parity error
 *                response (6), SERR# enable (8) and interrupt disable (10) are writable, the rest
 *                read 0. Bits 0 and 1 map and unmap the function's I/O and memory BARs.
 *              status: capabilities list (bit 4) when capability_pointer is set, else 0.
 *              cache line size, latency timer, interrupt line: read/write storage (the interrupt
 *                line starts as registered; writing it changes no routing, as on real hardware).
 *              BARs: the address bits are writable, the rest read as the type bits, so writing
 *                all ones reads back ~(size - 1) | type (BAR sizing). An unused BAR reads 0. A
 *                BAR is mapped (its region answers in the exit path) while its space is enabled
 *                in the command register, it fits its space (I/O: below 0x10000) and it overlaps
 *                nothing else: no RAM or ROM, no other device's region, no other BAR. An
 *                overlapping BAR stays unmapped (the access goes nowhere and reads all ones)
 *                until a later change makes room; the region that was there first keeps it.
 *   0x40-0xFF  the function's own: reads are preset to the registered `capabilities` bytes
 *              (zero past them) and then passed to the plugin's pci_config callback, if it has
 *              one, which may change *data; writes go to pci_config (dropped without one).
 *
 * BAR placement is the guest's (or its firmware's) job: BARs start unassigned (0) and disabled.
 * A BAR's region id is the one `io` reports for accesses through it; the plugin must not use it
 * for register_pio/register_mmio. A 64-bit memory BAR takes its slot and the next one, which must
 * be unused. Device numbers: `slot` (1-31) or, with 0, the lowest free one, in config order. */

enum {
    VENEER_PCI_BAR_IO = 0x1,       /* I/O space BAR (else memory space)                         */
    VENEER_PCI_BAR_MEM64 = 0x2,    /* memory BAR with a 64-bit address (two slots)              */
    VENEER_PCI_BAR_PREFETCH = 0x4, /* memory BAR, prefetchable                                  */
};

typedef struct veneer_pci_bar {
    uint64_t size;   /* 0: unused; else a power of two: I/O 4-256, memory >= 16 (32-bit: <= 2 GiB) */
    uint32_t flags;  /* VENEER_PCI_BAR_*                                                        */
    uint32_t region; /* region id `io` reports for accesses through this BAR                     */
} veneer_pci_bar;

typedef struct veneer_pci_function {
    uint32_t struct_size;
    uint16_t vendor_id;           /* not 0xFFFF (that means "no function") nor 0x0000           */
    uint16_t device_id;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    uint32_t class_code;          /* 24 bits: base class << 16 | subclass << 8 | prog-if        */
    uint8_t revision;
    uint8_t interrupt_pin;        /* 0: none, 1-4: INTA#-INTD#                                   */
    uint8_t interrupt_line;       /* the Interrupt Line register's initial value (the GSI the
                                   * device drives with irq_set, as firmware would program it);
                                   * 0xFF: none                                                 */
    uint8_t slot;                 /* device number 1-31 on bus 0; 0: the lowest free one        */
    uint8_t capability_pointer;   /* offset of the first capability (0: none); dword aligned,
                                   * 0x40-0xFC. With `capabilities`, the chain is checked: every
                                   * entry inside the bytes, dword aligned, no loops.            */
    uint8_t reserved0[3];
    uint32_t capabilities_length; /* bytes at 0x40 (<= 192)                                      */
    uint32_t reserved1;
    const uint8_t *capabilities;  /* copied by pci_register                                     */
    veneer_pci_bar bars[6];
    uint64_t reserved[8];
} veneer_pci_function;

/* pci_config flags (besides VENEER_IO_WRITE) */
enum {
    /* The core already applied this guest write to the header (offset < 0x40); *data holds what
     * now reads back at (offset, size). For information (e.g. the command register's bus-master
     * bit, a BAR's new address): the plugin must not change *data. */
    VENEER_PCI_HEADER_WRITTEN = 0x4,
};

/* ---------------------------------------------------------------------------------------------- */
/* Hyper-V connections (ABI 1.4)                                                                   */

/* Below VMBus, the Hyper-V partition interface carries two kinds of traffic, and a plugin in an
 * enlightened VM (hyperv = true) can own either end of both:
 *   - a message connection: the guest's HvPostMessage (hypercall 0x5C) to a connection id the
 *     plugin owns reaches its hv_message callback; the plugin's hv_post_message puts a message in
 *     a VP's SynIC message slot for a SINT (queued while the slot is busy, delivered after the
 *     guest's EOM, at most 256 waiting per VP and SINT);
 *   - an event connection: the guest's HvSignalEvent (hypercall 0x5D) to a connection id the
 *     plugin owns reaches its hv_event callback with the flag number; hv_signal_event sets an
 *     event flag in a VP's SIEF page for a SINT and interrupts the VP if the flag was clear.
 * Connection ids are 24 bits; plugins own ids 0x10000-0xFFFFFF (VMBus uses the ones below), each
 * at most once in a VM. SINTs are 0-15 (VMBus uses 2), event flags 0-2047, message types
 * 1-0x7FFFFFFF (0 marks a free slot, 0x80000000 and up are the hypervisor's own). */
enum veneer_hv_connection_kind {
    VENEER_HV_MESSAGE_CONNECTION = 1,
    VENEER_HV_EVENT_CONNECTION = 2,
};

/* Hypercall status codes an hv_message callback returns (TLFS HV_STATUS_*). */
enum {
    VENEER_HV_STATUS_SUCCESS = 0x0000,
    VENEER_HV_STATUS_INVALID_PARAMETER = 0x0005,
    VENEER_HV_STATUS_INSUFFICIENT_BUFFERS = 0x0013, /* the guest retries the post later */
};

/* ---------------------------------------------------------------------------------------------- */
/* Host services                                                                                   */

enum veneer_log_level {
    VENEER_LOG_ERROR = 0,
    VENEER_LOG_WARN = 1,
    VENEER_LOG_INFO = 2,
    VENEER_LOG_DEBUG = 3,
};

/* fd_watch events (same bits as poll(2)'s POLLIN / POLLOUT; POLLHUP/POLLERR are always reported) */
enum {
    VENEER_FD_READABLE = 0x1,
    VENEER_FD_WRITABLE = 0x4,
    VENEER_FD_ERROR = 0x8,
    VENEER_FD_HANGUP = 0x10,
};

/* request_stop reasons */
enum veneer_stop_reason {
    VENEER_STOP_POWEROFF = 1, /* the guest powered the machine off; exit status 0            */
    VENEER_STOP_RESET = 2,    /* the guest asked for a reset (the config says what happens)   */
    VENEER_STOP_EXIT = 3,     /* end the VM with `exit_status` (test devices such as debug-exit) */
    VENEER_STOP_ERROR = 4,    /* the device failed fatally; set_error first                  */
};

/* mem_map flags */
enum {
    VENEER_MAP_READ = 0x1,
    VENEER_MAP_WRITE = 0x2,
};

/* ---------------------------------------------------------------------------------------------- */
/* Machine facts (ABI 1.3)                                                                         */

/* What machine_fact reports. Each fact's byte layout is fixed within a major version; a new
 * layout gets a new number. Integers are little-endian. */
enum veneer_machine_fact {
    VENEER_FACT_VCPU_COUNT = 1,  /* uint32_t: vCPUs the VM has                                      */
    VENEER_FACT_RAM_BYTES = 2,   /* uint64_t: guest RAM, every range together                       */
    VENEER_FACT_MEMORY_MAP = 3,  /* veneer_memory_range[]: the e820 map the guest is told about    */
    VENEER_FACT_KERNEL = 4,      /* the boot image file's bytes (empty for flat images)            */
    VENEER_FACT_INITRD = 5,      /* the initrd's bytes (empty when there is none)                  */
    VENEER_FACT_CMDLINE = 6,     /* the kernel command line, without a NUL (may be empty)          */
    /* The ACPI tables as firmware that builds its own memory layout wants them: a blob of the
     * tables whose pointer fields hold offsets into the blob and whose checksums are zero, the
     * RSDP pointing into that blob, and the commands that place, link and checksum them in the
     * BIOS linker/loader format SeaBIOS and OVMF read ("etc/table-loader": 128-byte entries). */
    VENEER_FACT_ACPI_TABLES = 7,
    VENEER_FACT_ACPI_RSDP = 8,
    VENEER_FACT_ACPI_LOADER = 9,
    /* ABI 1.8 (additive): the VM's name from its config, UTF-8 without a NUL: what stable
     * per-VM identities (a NIC's default MAC address) are derived from. */
    VENEER_FACT_VM_NAME = 10,
};

/* One VENEER_FACT_MEMORY_MAP entry: 24 bytes. `type` is the e820 type (1 RAM, 2 reserved,
 * 3 ACPI reclaimable, 4 ACPI NVS). */
typedef struct veneer_memory_range {
    uint64_t start;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
} veneer_memory_range;

typedef struct veneer_host_api {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;

    /* Diagnostics. `msg` is a NUL-terminated line without a trailing newline. */
    void (*log)(veneer_host *host, uint32_t level, const char *msg);
    void (*set_error)(veneer_host *host, const char *msg);

    /* Address regions. The plugin picks `region` ids; `io` later reports accesses as
     * (region, offset from the region's base). Overlapping another device's range is VENEER_EBUSY.
     * PIO: 1 <= length, port + length <= 0x10000. MMIO: page-granular ranges are not required.
     * Since ABI 1.2 regions may also change while the VM runs (an access already on its way may
     * still arrive for a region just unregistered). */
    veneer_status (*register_pio)(veneer_host *host, uint32_t region, uint16_t port, uint32_t length);
    veneer_status (*register_mmio)(veneer_host *host, uint32_t region, uint64_t gpa, uint64_t length);
    veneer_status (*unregister_region)(veneer_host *host, uint32_t region);

    /* Guest memory (DMA). The whole range must lie in guest RAM, else VENEER_ERANGE and nothing
     * is copied. mem_map returns a host pointer to the range, or NULL (with the reason logged)
     * when the range is not inside one contiguous piece of guest RAM. */
    veneer_status (*mem_read)(veneer_host *host, uint64_t gpa, void *dst, uint64_t length);
    veneer_status (*mem_write)(veneer_host *host, uint64_t gpa, const void *src, uint64_t length);
    void *(*mem_map)(veneer_host *host, uint64_t gpa, uint64_t length, uint32_t flags);

    /* Interrupts. `line` is a GSI of the VM's interrupt controller (ISA IRQs 0-15 reach both the
     * PIC and the IOAPIC; 16-23 the IOAPIC only). level: 1 asserted, 0 deasserted; an edge is a
     * 1 followed by a 0. msi_send delivers one message-signalled interrupt. */
    veneer_status (*irq_set)(veneer_host *host, uint32_t line, uint32_t level);
    veneer_status (*msi_send)(veneer_host *host, uint64_t address, uint32_t data);

    /* Time. clock_ns is a monotonic nanosecond clock (a manual clock under the test harness).
     * timer_arm (re)arms the instance's timer `token` to fire at `deadline_ns` on that clock and then
     * every `period_ns` (0: once). A timer that fell behind fires once; read clock_ns to catch up. */
    uint64_t (*clock_ns)(veneer_host *host);
    veneer_status (*timer_arm)(veneer_host *host, uint64_t token, uint64_t deadline_ns, uint64_t period_ns);
    veneer_status (*timer_cancel)(veneer_host *host, uint64_t token);

    /* File descriptors. The host polls `fd` and calls fd_ready(token, events) while it is ready;
     * the plugin keeps ownership of the fd and unwatches it before closing it. */
    veneer_status (*fd_watch)(veneer_host *host, int fd, uint32_t events, uint64_t token);
    veneer_status (*fd_unwatch)(veneer_host *host, int fd);

    /* Deferred completion: thread-safe. Queues a `work(token)` callback on the instance's
     * serialised context, e.g. from a plugin-owned I/O thread whose request finished. */
    veneer_status (*post_work)(veneer_host *host, uint64_t token);

    /* Ask the VM to stop (power off, reset, exit with a status, or fail). Returns at once. */
    void (*request_stop)(veneer_host *host, uint32_t reason, int32_t exit_status);

    /* ABI 1.1: VMBus. vmbus_offer (from create only) offers a channel and returns its id in
     * *channel; the guest sees it when it asks for offers. vmbus_read copies out and consumes the
     * next packet the guest wrote: VENEER_EAGAIN when the ring is empty, VENEER_ENOSPC (packet
     * filled in, nothing consumed) when `capacity` is too small, VENEER_EIO after the guest broke
     * the ring (the channel stays unusable until the guest reopens it). vmbus_write writes one
     * packet to the guest (signalling it as the ring rules require): VENEER_ENOSPC when the ring
     * has no room yet (vmbus_signalled follows when the guest has made room). Both are valid only
     * between vmbus_opened and vmbus_closed. */
    veneer_status (*vmbus_offer)(veneer_host *host, const veneer_vmbus_offer *offer, uint32_t *channel);
    veneer_status (*vmbus_read)(veneer_host *host, uint32_t channel, veneer_vmbus_packet *packet, void *buffer, size_t capacity);
    veneer_status (*vmbus_write)(veneer_host *host, uint32_t channel, uint16_t type, uint16_t flags,
                                 uint64_t transaction_id, const void *data, size_t length);
    /* ABI 1.1: an in-kernel doorbell. The kernel signals eventfd `fd` (the plugin's; watch it with
     * fd_watch) whenever the guest writes `length` (1, 2, 4 or 8) bytes to `address` — a port with
     * VENEER_IO_MMIO clear in `flags`, else a guest-physical address — without an exit to user
     * space. The range must not overlap another device's. Valid from create. */
    veneer_status (*ioevent_add)(veneer_host *host, uint32_t flags, uint64_t address, uint32_t length, int fd);

    /* ABI 1.2: PCI. pci_register (from create only) puts a function on bus 0 and returns the id
     * that pci_config calls carry in *handle (its address: bus << 8 | device << 3 | function):
     * VENEER_EINVAL for a malformed description, VENEER_EBUSY when the slot is taken or the bus
     * is full; the host records why as if by set_error, so a failing create reports it too.
     * pci_config_access is the configuration mechanism's way in: a guest access of `size` (1, 2
     * or 4) bytes at `offset` (0-0xFFF, a multiple of size) of function `bdf` (bus << 8 |
     * device << 3 | function), VENEER_IO_WRITE in `flags` for a write. Absent functions read
     * all ones; a present function reads 0 past 0xFF (no extended capabilities). An instance
     * uses either pci_register or pci_config_access, never both (the core calls one into the
     * other: using both could deadlock), else VENEER_EBUSY. */
    veneer_status (*pci_register)(veneer_host *host, const veneer_pci_function *function, uint32_t *handle);
    veneer_status (*pci_config_access)(veneer_host *host, uint32_t bdf, uint32_t offset, uint32_t size,
                                       uint32_t flags, uint32_t *data);

    /* ABI 1.3: a machine fact (enum veneer_machine_fact). Copies it into `buffer` and sets
     * *length to its size: VENEER_ENOSPC (nothing copied, *length set) when `capacity` is too
     * small, VENEER_ENOTSUP for a fact this host does not know, VENEER_EAGAIN while the machine
     * is still being built (the boot layout is known once the VM starts, not in `create`),
     * VENEER_EIO when a boot file cannot be read any more. */
    veneer_status (*machine_fact)(veneer_host *host, uint32_t fact, void *buffer, size_t capacity, size_t *length);

    /* ABI 1.4: Hyper-V connections (see "Hyper-V connections"). hv_connect (from create only)
     * claims `connection_id` for the instance as a message or event connection: VENEER_ENOTSUP in
     * a VM that is not enlightened, VENEER_EINVAL for an id outside 0x10000-0xFFFFFF, VENEER_EBUSY
     * when the id is taken. hv_post_message queues `length` (<= 240) payload bytes as a message of
     * `message_type` for SINT `sint` of VP `vp`: VENEER_EINVAL for a bad VP, SINT, type or length,
     * VENEER_ENOSPC when 256 messages already wait there. hv_signal_event sets event flag `flag`
     * of SINT `sint` of VP `vp` (a VP whose SynIC has no event page yet misses it). Both may be
     * called from any callback once the VM runs. */
    veneer_status (*hv_connect)(veneer_host *host, uint32_t kind, uint32_t connection_id);
    veneer_status (*hv_post_message)(veneer_host *host, uint32_t vp, uint32_t sint, uint32_t message_type,
                                     const void *payload, size_t length);
    veneer_status (*hv_signal_event)(veneer_host *host, uint32_t vp, uint32_t sint, uint32_t flag);

    /* ABI 1.5: the partition reference time, in 100 ns units since the partition started: the
     * same counter the guest reads from TIME_REF_COUNT (MSR 0x40000020) and the reference TSC
     * page, never a second clock. Read outside a vCPU it is a lower bound of what a vCPU would
     * read at that instant (never ahead of the guest). VENEER_ENOTSUP in a VM that is not
     * enlightened. May be called from any callback (and from create). */
    veneer_status (*hv_reference_time)(veneer_host *host, uint64_t *time_100ns);

    /* ABI 1.7: VMBus channels of storage- and network-class VSPs (see "VMBus channels ..." above).
     * vmbus_rescind: VENEER_EINVAL for an id that is not the instance's (or a sub-channel: those
     * go with their primary). vmbus_offer_subchannels offers `count` more sub-channels of the open
     * primary `primary` and stores their ids in channels[0..count-1]: VENEER_EINVAL when `primary`
     * is not an open primary of the instance, VENEER_ENOSPC when the sub-channels would exceed 64
     * or no relid is free (nothing offered). vmbus_read_segments is vmbus_read except for a
     * GPA-direct packet: `buffer` receives only the payload (header_length 0) and its ranges go to
     * segments[0..*segment_count-1]; VENEER_ENOSPC (nothing consumed; payload_length and
     * *segment_count say what is needed) when either capacity is too small. Other packets give
     * *segment_count 0 and their header before the payload, as vmbus_read does.
     * vmbus_gpadl_segments: the pages of the complete GPADL `gpadl` the guest created for
     * `channel` (or for its primary, if `channel` is a sub-channel): VENEER_EINVAL when there is
     * none, VENEER_ENOSPC (*count set) when `capacity` is too small. vmbus_write_batch writes
     * packets[0..count-1] (stride `packet_size`) in order until one does not fit, signals the guest
     * at most once, and sets *written: VENEER_ENOSPC when not all fit (vmbus_signalled follows
     * when the guest made room), VENEER_EINVAL (nothing written) for a malformed packet. */
    veneer_status (*vmbus_rescind)(veneer_host *host, uint32_t channel);
    veneer_status (*vmbus_offer_subchannels)(veneer_host *host, uint32_t primary, uint32_t count, uint32_t *channels);
    veneer_status (*vmbus_read_segments)(veneer_host *host, uint32_t channel, veneer_vmbus_packet *packet,
                                         void *buffer, size_t capacity, veneer_guest_segment *segments,
                                         uint32_t segment_capacity, uint32_t *segment_count);
    veneer_status (*vmbus_gpadl_segments)(veneer_host *host, uint32_t channel, uint32_t gpadl,
                                          veneer_guest_segment *segments, uint32_t capacity, uint32_t *count);
    veneer_status (*vmbus_write_batch)(veneer_host *host, uint32_t channel, const veneer_vmbus_send *packets,
                                       uint32_t count, uint32_t packet_size, uint32_t *written);

    /* ABI 1.8: metrics the worker serves in Prometheus text, labelled with VM and device. metric_register: from create only; `name` matches
     * [a-z][a-z0-9_]* (at most 64 bytes, unique within the instance), `help` is one line, `kind`
     * a VENEER_METRIC_*; stores a handle in *metric. VENEER_EINVAL for a bad name or kind, a
     * duplicate, or a call after create; VENEER_ENOSPC beyond 256 metrics per instance.
     * metric_add (counters: delta >= 0) and metric_set (gauges) may be called from any thread,
     * cost one atomic operation, and ignore an unknown handle. */
    veneer_status (*metric_register)(veneer_host *host, const char *name, const char *help, uint32_t kind,
                                     uint32_t *metric);
    void (*metric_add)(veneer_host *host, uint32_t metric, uint64_t delta);
    void (*metric_set)(veneer_host *host, uint32_t metric, int64_t value);
    /* ABI 1.8: the answer to management request `request` (see `control`): `status` VENEER_OK with
     * a JSON value as the result, or a negative status with a one-line message as `json` (plain
     * text then). Exactly once per request, from any thread. VENEER_EINVAL for an unknown or
     * already answered request. */
    veneer_status (*control_reply)(veneer_host *host, uint64_t request, veneer_status status, const char *json,
                                   size_t length);

    void *reserved[4];
} veneer_host_api;

/* ABI 1.8: metric kinds and run states. */
enum {
    VENEER_METRIC_COUNTER = 1, /* only grows (metric_add); Prometheus `counter`                 */
    VENEER_METRIC_GAUGE = 2,   /* any value (metric_set); Prometheus `gauge`                     */
};
enum {
    VENEER_RUN_PAUSED = 1,
    VENEER_RUN_RESUMED = 2,
};

/* ---------------------------------------------------------------------------------------------- */
/* Plugin descriptor                                                                               */

enum veneer_plugin_kind {
    VENEER_KIND_EMULATED = 1,    /* legacy hardware behind PIO/MMIO regions                      */
    VENEER_KIND_SYNTHETIC = 2,   /* a VMBus service provider (VSP)                               */
    VENEER_KIND_PASSTHROUGH = 3, /* an assigned device (VFIO, vfio-user, SR-IOV VF)              */
};

enum {
    /* The plugin does its own locking: the host may call into one instance from several threads. */
    VENEER_PLUGIN_CONCURRENT = 0x1,
};

/* io flags */
enum {
    VENEER_IO_WRITE = 0x1, /* set: the guest writes *data; clear: the plugin stores the value read */
    VENEER_IO_MMIO = 0x2,  /* the access came through an MMIO region (else port I/O)              */
};

typedef struct veneer_plugin_descriptor {
    uint32_t struct_size;
    uint16_t abi_major;        /* VENEER_ABI_MAJOR the plugin was built against                 */
    uint16_t abi_minor;        /* VENEER_ABI_MINOR the plugin was built against                 */
    const char *name;          /* [a-z][a-z0-9_-]*: what a config's `plugin = "..."` names        */
    const char *version;       /* the plugin's own version, e.g. "1.0.0"                         */
    const char *summary;       /* one line for `veneer plugins`                                  */
    uint32_t kind;             /* enum veneer_plugin_kind                                        */
    uint32_t flags;            /* VENEER_PLUGIN_*                                                */
    uint32_t state_version;    /* version of the blob `save` writes; `load` is told which one   */
    uint32_t param_count;
    uint32_t param_spec_size;  /* stride of `params`                                             */
    uint32_t reserved0;
    const veneer_param_spec *params;

    /* Lifecycle. create returns NULL on failure (after host->set_error). It registers regions and
     * claims resources; it must not start timers or touch guest memory before `start`. reset puts
     * the device in its power-on state (it is called once after create and on every VM reset);
     * start/stop bracket the time the VM runs; destroy frees everything (after stop). */
    veneer_device *(*create)(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args);
    veneer_status (*reset)(veneer_device *dev);
    veneer_status (*start)(veneer_device *dev);
    veneer_status (*stop)(veneer_device *dev);
    void (*destroy)(veneer_device *dev);

    /* A guest access of `size` bytes (1, 2, 4 or 8) at `offset` into region `region`. For a write,
     * *data holds the value (little-endian in the low bytes); for a read, store the value in *data
     * (the host has preset it to all ones). Called on the vCPU thread: keep it short. */
    void (*io)(veneer_device *dev, uint32_t region, uint64_t offset, uint32_t size, uint32_t flags, uint64_t *data);

    /* Events asked for through timer_arm, fd_watch and post_work. */
    void (*timer)(veneer_device *dev, uint64_t token);
    void (*fd_ready)(veneer_device *dev, uint64_t token, uint32_t events);
    void (*work)(veneer_device *dev, uint64_t token);

    /* Device state. save writes at most `capacity` bytes to `buffer` and sets *length; if the
     * state does not fit it returns VENEER_ENOSPC with *length set to the size needed (the host
     * calls it with capacity 0 to ask). load gets what an earlier save wrote, with the
     * state_version it was written with, and must reject anything malformed with VENEER_ESTATE. */
    veneer_status (*save)(veneer_device *dev, uint8_t *buffer, size_t capacity, size_t *length);
    veneer_status (*load)(veneer_device *dev, uint32_t state_version, const uint8_t *buffer, size_t length);

    /* ABI 1.1: VMBus channel events, on the instance's serialised context. opened: the guest
     * opened `channel` (userdata: OPENCHANNEL's 120 bytes); signalled: the guest signalled it
     * (new packets, or room in a ring that was full); closed: the guest closed it, or unloaded. */
    void (*vmbus_opened)(veneer_device *dev, uint32_t channel, const uint8_t *userdata, size_t length);
    void (*vmbus_signalled)(veneer_device *dev, uint32_t channel);
    void (*vmbus_closed)(veneer_device *dev, uint32_t channel);

    /* ABI 1.2: an access to the configuration space of PCI function `function` (a handle from
     * pci_register) that the core does not emulate, or a header write it did emulate (flag
     * VENEER_PCI_HEADER_WRITTEN); see "PCI" above. `size` is 1, 2 or 4 and `offset` a multiple
     * of it; *data holds a write's value, or a read's preset value to keep or replace. Called on
     * vCPU threads, serialised with the instance's other callbacks: keep it short. */
    void (*pci_config)(veneer_device *dev, uint32_t function, uint32_t offset, uint32_t size, uint32_t flags,
                       uint32_t *data);

    /* ABI 1.4: the guest's HvPostMessage to message connection `connection_id` from VP `vp`:
     * `length` (<= 240) payload bytes of `message_type`. Called on the vCPU thread, serialised
     * with the instance's other callbacks; returns the hypercall's status (VENEER_HV_STATUS_*),
     * which the guest sees in RAX. */
    uint32_t (*hv_message)(veneer_device *dev, uint32_t connection_id, uint32_t vp, uint32_t message_type,
                           const uint8_t *payload, size_t length);
    /* ABI 1.4: the guest's HvSignalEvent to event connection `connection_id` from VP `vp` with
     * flag number `flag`. Called on the vCPU thread, serialised; the guest sees success. */
    void (*hv_event)(veneer_device *dev, uint32_t connection_id, uint32_t vp, uint32_t flag);

    /* ABI 1.8: a management request for this device (veneerd, `veneer ctl`): `json` is a UTF-8
     * JSON object of `length` bytes with at least {"op": "<name>"}; what ops a plugin takes is its
     * own documented interface (e.g. acpi-pm "power-button", kvp "get"/"set"). Called on the
     * event thread, serialised. The plugin answers with control_reply exactly once, now or later
     * (after the guest answered); the host times a request out after 30 s and then ignores the
     * reply. A plugin without this callback answers every request with VENEER_ENOTSUP. */
    void (*control)(veneer_device *dev, uint64_t request, const char *json, size_t length);
    /* ABI 1.8: the VM paused (state VENEER_RUN_PAUSED: every vCPU is out of the guest and the
     * instance's timers are frozen) or resumed (VENEER_RUN_RESUMED: timers run again from where
     * they stopped, with no burst of missed periods). Event thread, serialised. */
    void (*run_state)(veneer_device *dev, uint32_t state);

    void *reserved[16];
} veneer_plugin_descriptor;

typedef const veneer_plugin_descriptor *(*veneer_plugin_entry_fn)(void);

/* The entry point every plugin defines (declared here so C plugins get a prototype). */
const veneer_plugin_descriptor *veneer_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* VENEER_PLUGIN_H */
