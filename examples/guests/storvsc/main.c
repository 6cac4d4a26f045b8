/*
 * storvsc: a freestanding storvsc on vmbus-echo's runtime that proves Veneer's storvsp
 * (issue 7). It follows Linux's drivers/scsi/storvsc_drv.c step for step:
 *   storvsc_connect_to_vsp   open the SCSI controller offer, 128 KiB rings each way, 24 zero
 *                            bytes of userdata;
 *   storvsc_channel_init     BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION 0x602/0x600/0x501 in
 *                            that order, QUERY_PROPERTIES, END_INITIALIZATION;
 *   handle_multichannel_storage  CREATE_SUB_CHANNELS min(vCPUs - 1, host max), open each offer;
 * then what the SCSI midlayer and sd send when they find the disks (scsi_scan.c, scsi.c, sd.c):
 * INQUIRY to LUN 0 of every (channel 0..7, target 0..1), REPORT LUNS, INQUIRY per LUN, VPD 0x00
 * and every page it lists, TEST UNIT READY, READ CAPACITY(16) and (10), MODE SENSE(6) 0x3F and
 * 0x08, checked against the table below (which must match the VM config: examples/storage.toml).
 * Then I/O: patterns written with 32 requests in flight spread over ALL channels as GPA-direct
 * packets of scattered pages, read back (on another channel) and verified, SYNCHRONIZE CACHE
 * (10/16), FUA writes (WRITE(10/16) with the FUA bit), and the errors a real guest meets: LBA out
 * of range (ILLEGAL REQUEST, ASC 0x21), write to a read-only LUN (DATA PROTECT, ASC 0x27), an
 * absent LUN (INQUIRY byte 0 = 0x7F).
 *
 * Built twice: storvsc.bin closes every channel, tears down the GPADLs and unloads at the end;
 * storvsc-open.bin (-DEXIT_WITH_CHANNELS_OPEN) ends with the channels open, as Linux powers off.
 *
 * Channel management runs at CPL0 (it needs the SynIC message slot and EOM); the SCSI traffic
 * runs at CPL3 (native on this host, where CPL0 is interpreted), polling the rings. Every step
 * prints a line; the last is "storvsc: all checks passed" and exit status 0, or
 * "storvsc: FAILED <step>: <detail>" and 1.
 *
 * Host data pattern: 8-byte word at disk byte offset o (o % 8 == 0) of LUN l, generation g is
 * (o + 1) * 0x9E3779B97F4A7C15 ^ (l + 1) << 56 ^ g << 48; chunk k (0..63) of a LUN of S bytes
 * starts at k * S / 64 and is 4096 * (1 + 7k % 16) bytes long; chunks 0..7 end at generation 2
 * (the FUA pass), the others at 1; every other byte stays zero. Tests/IntegrationTests/
 * StorageGuestTests.swift checks the raw image with the same rule.
 */
#include "../vmbus-echo/cpu.h"
#include "../vmbus-echo/hv.h"
#include "../vmbus-echo/ring.h"
#include "../vmbus-echo/vmbus.h"
#include "storvsc.h"

#define MiB (1024UL * 1024)

/* ---- what the VM config promises (examples/storage.toml) ------------------------------------ */

struct expected_lun {
    u8 lun;
    u64 bytes;
    u32 logical;        /* logical block size */
    u32 physical;       /* physical block size */
    bool read_only;
    const char *what;
};

#define EXPECTED_TARGET 0
static const struct expected_lun expected[] = {
    { 0, 64 * MiB, 512, 4096, false, "disk.vhdx: dynamic VHDX" },
    { 1, 16 * MiB, 4096, 4096, false, "disk.raw: raw, 4 KiB logical blocks" },
    { 2, 8 * MiB, 512, 4096, true, "seed.raw: raw, read-only" },
};
#define LUN_COUNT ARRAY_SIZE(expected)
#define ABSENT_LUN 7            /* not in the table: must read as "no device" */
/* Sub-channels to ask for at most (Linux: one per further vCPU); the config gives 4 vCPUs. */
#ifndef MAX_SUBCHANNELS
#define MAX_SUBCHANNELS 3
#endif
#define MAX_CHANNELS (1 + MAX_SUBCHANNELS)

/* ---- memory layout ----------------------------------------------------------------------- */

/* Rings and data buffers live in fixed RAM past the image (no .bss to clear at interpreted
 * CPL0 speed); kmain checks the image ends below them. */
#define RING_POOL_PA 0x800000UL                 /* MAX_CHANNELS x 64 pages */
#define PROBE_PA 0xC00000UL                     /* one page for the probe's data */
#define DATA_PA 0x1000000UL                     /* IO_SLOTS x SLOT_PAGES pages */
#define RING_PAGES 32                           /* 128 KiB each way, control page included */
#define RING_DATA_PAGES (RING_PAGES - 1)
#define WINDOW_PAGES_PER_RING (1 + 2 * RING_DATA_PAGES)
_Static_assert(MAX_CHANNELS * 2 * WINDOW_PAGES_PER_RING <= RING_WINDOW_PAGES, "ring window too small");

#define STALL_MS 10000
#define REPLY_MS 5000           /* storvsc_execute_vstor_op waits 5 s */

extern char _end[];

/* ---- channels ----------------------------------------------------------------------------- */

struct channel {
    struct vmbus_offer_info offer;
    u32 gpadl;
    struct ring out, in;
    u64 requests, completions, signals;
};

static struct channel channels[MAX_CHANNELS];
static u32 channel_count;
static u16 protocol_version;
static struct vmstorage_channel_properties properties;
static u64 unsolicited_packets;

static const u8 scsi_interface[16] = { 0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d,
                                       0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f };

static void *map_ring(u32 window, u64 control_pa)
{
    cpu_map_window_page(window, control_pa);
    for (u32 j = 0; j < RING_DATA_PAGES; j++) {
        u64 pa = control_pa + (1 + j) * PAGE_SIZE;
        cpu_map_window_page(window + 1 + j, pa);
        cpu_map_window_page(window + 1 + RING_DATA_PAGES + j, pa);
    }
    return (void *)(RING_WINDOW_VA + (u64)window * PAGE_SIZE);
}

/* vmbus_open as storvsc_connect_to_vsp / handle_sc_creation call it: one GPADL over both rings
 * (outbound first), 128 KiB each way; the userdata is the 24 zero bytes of channel properties
 * (vmbus_open's message carries them in a zeroed 120-byte field). */
static void open_channel(struct channel *c, u32 index, const char *step)
{
    u64 base = RING_POOL_PA + (u64)index * 2 * RING_PAGES * PAGE_SIZE;
    u64 pfns[2 * RING_PAGES];
    for (u32 k = 0; k < 2 * RING_PAGES; k++)
        pfns[k] = base / PAGE_SIZE + k;
    u32 window = index * 2 * WINDOW_PAGES_PER_RING;
    void *out = map_ring(window, base);
    void *in = map_ring(window + WINDOW_PAGES_PER_RING, base + RING_PAGES * PAGE_SIZE);
    cpu_flush_tlb();
    ring_init(&c->out, out, RING_DATA_PAGES);
    ring_init(&c->in, in, RING_DATA_PAGES);
    c->gpadl = VMBUS_FIRST_GPADL + index;
    u32 bodies = vmbus_create_gpadl(c->offer.child_relid, c->gpadl, pfns, 2 * RING_PAGES);
    vmbus_open(c->offer.child_relid, c->gpadl, RING_PAGES);
    printf(PROG ": %s: relid %u (sub-channel %u) open: GPADL 0x%x (%u pages, %u bodies), 128 KiB rings, "
                "connection 0x%x\n",
           step, c->offer.child_relid, c->offer.sub_channel_index, c->gpadl, 2 * RING_PAGES, bodies,
           c->offer.connection_id);
}

static void signal_host(struct channel *c, const char *step)
{
    u16 status = hv_signal_event(c->offer.connection_id, 0);
    if (status != HV_STATUS_SUCCESS)
        fail(step, "HvSignalEvent on connection 0x%x returned 0x%x", c->offer.connection_id, status);
    c->signals++;
}

NORETURN static void stalled(struct channel *c, const char *step, const char *what)
{
    fail(step, "%s: nothing from relid %u for %u ms; outbound write %u read %u; inbound write %u read %u mask %u",
         what, c->offer.child_relid, STALL_MS, c->out.control->write_index, c->out.control->read_index,
         c->in.control->write_index, c->in.control->read_index, c->in.control->interrupt_mask);
}

/* Sends one vstor_packet (always the full 64 bytes, as Linux), in-band or, with `range`, as a
 * GPA-direct packet whose range list follows the descriptor. */
static void send_packet(struct channel *c, u64 id, const struct vstor_packet *p, const struct gpa_direct_header *range,
                        u32 range_len, const char *step)
{
    bool signal;
    u64 deadline = deadline_ms(STALL_MS);
    for (;;) {
        bool written = range ? ring_write_packet(&c->out, VM_PKT_DATA_USING_GPA_DIRECT, id,
                                                 VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, range, range_len, p,
                                                 sizeof(*p), &signal)
                             : ring_write_packet(&c->out, VM_PKT_DATA_INBAND, id,
                                                 VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, NULL, 0, p, sizeof(*p),
                                                 &signal);
        if (written)
            break;
        if (expired(deadline))
            stalled(c, step, "outbound ring full");
        cpu_relax();
    }
    if (signal)
        signal_host(c, step);
    c->requests++;
}

/* Takes the next packet from c's inbound ring. Returns true with a completion (its transaction id
 * and vstor_packet); false when the ring is empty or the packet was an unsolicited ENUMERATE_BUS /
 * REMOVE_DEVICE (transaction id 0), which Linux answers with a rescan and this guest counts. */
static bool take_packet(struct channel *c, u64 *id, struct vstor_packet *reply, const char *step)
{
    const struct vmpacket_descriptor *d = ring_peek(&c->in, step);
    if (d == NULL)
        return false;
    u32 len = (u32)(d->len8 - d->offset8) * 8;
    const u8 *payload = (const u8 *)d + d->offset8 * 8;
    bool completion = false;
    if (d->trans_id != 0) {
        if (d->type != VM_PKT_COMP && d->type != VM_PKT_DATA_INBAND)
            fail(step, "packet type %u for transaction 0x%lx on relid %u, want 11 (completion)", d->type,
                 d->trans_id, c->offer.child_relid);
        /* storvsc_on_channel_callback drops completions shorter than the Win8+ vstor_packet. */
        if (len < sizeof(struct vstor_packet))
            fail(step, "completion of transaction 0x%lx on relid %u carries %u bytes; Linux drops anything under %lu",
                 d->trans_id, c->offer.child_relid, len, sizeof(struct vstor_packet));
        memcpy(reply, payload, sizeof(*reply));
        *id = d->trans_id;
        completion = true;
        c->completions++;
    } else {
        u32 operation = 0;
        if (len >= 4)
            memcpy(&operation, payload, 4);
        if (len < 4 || (operation != VSTOR_OPERATION_ENUMERATE_BUS && operation != VSTOR_OPERATION_REMOVE_DEVICE))
            fail(step, "unsolicited packet (type %u, %u bytes, operation %u) on relid %u: only ENUMERATE_BUS and "
                       "REMOVE_DEVICE are defined",
                 d->type, len, operation, c->offer.child_relid);
        unsolicited_packets++;
        printf(PROG ": %s: unsolicited %s on relid %u (Linux rescans the bus)\n", step,
               operation == VSTOR_OPERATION_ENUMERATE_BUS ? "ENUMERATE_BUS" : "REMOVE_DEVICE", c->offer.child_relid);
    }
    if (ring_consume(&c->in, d))
        signal_host(c, step);
    return completion;
}

static void wait_completion(struct channel *c, u64 want, struct vstor_packet *reply, const char *step)
{
    u64 deadline = deadline_ms(REPLY_MS);
    u64 id;
    while (!take_packet(c, &id, reply, step)) {
        if (expired(deadline))
            stalled(c, step, "waiting for a completion");
        cpu_relax();
    }
    if (id != want)
        fail(step, "completion for transaction 0x%lx on relid %u, want 0x%lx", id, c->offer.child_relid, want);
}

/* storvsc_execute_vstor_op: send with VMBUS_RQST_INIT, wait, and (as every caller does) insist on
 * COMPLETE_IO. Returns the packet's status. */
static u32 vstor_op(struct channel *c, struct vstor_packet *p, const char *step)
{
    u32 operation = p->operation;
    p->flags = REQUEST_COMPLETION_FLAG;
    send_packet(c, VMBUS_RQST_INIT, p, NULL, 0, step);
    wait_completion(c, VMBUS_RQST_INIT, p, step);
    if (p->operation != VSTOR_OPERATION_COMPLETE_IO)
        fail(step, "reply to operation %u has operation %u, want %u (COMPLETE_IO)", operation, p->operation,
             VSTOR_OPERATION_COMPLETE_IO);
    return p->status;
}

static void vstor_op_ok(struct channel *c, u32 operation, const char *step)
{
    struct vstor_packet p;
    memset(&p, 0, sizeof(p));
    p.operation = operation;
    u32 status = vstor_op(c, &p, step);
    if (status != 0)
        fail(step, "operation %u completed with status 0x%x", operation, status);
}

/* storvsc_channel_init on the primary channel. */
static void channel_init(struct channel *c)
{
    vstor_op_ok(c, VSTOR_OPERATION_BEGIN_INITIALIZATION, "begin");
    printf(PROG ": begin: BEGIN_INITIALIZATION -> COMPLETE_IO, status 0\n");

    static const u16 versions[] = { VMSTOR_PROTO_VERSION_WIN10, VMSTOR_PROTO_VERSION_WIN8_1, VMSTOR_PROTO_VERSION_WIN8 };
    struct vstor_packet p;
    u32 i;
    for (i = 0; i < ARRAY_SIZE(versions); i++) {
        memset(&p, 0, sizeof(p));
        p.operation = VSTOR_OPERATION_QUERY_PROTOCOL_VERSION;
        p.version.major_minor = versions[i];
        p.version.revision = 0;
        u32 status = vstor_op(c, &p, "version");
        printf(PROG ": version: QUERY_PROTOCOL_VERSION 0x%x -> status 0x%x\n", versions[i], status);
        if (status == 0)
            break;
    }
    if (i == ARRAY_SIZE(versions))
        fail("version", "host refused 0x602, 0x600 and 0x501 (Linux: \"Obsolete Hyper-V version\")");
    protocol_version = versions[i];
    /* Issue 7: storvsp accepts what a current Linux proposes first. */
    if (protocol_version != VMSTOR_PROTO_VERSION_WIN10)
        fail("version", "host refused 0x602 (Win10) and settled on 0x%x", protocol_version);

    memset(&p, 0, sizeof(p));
    p.operation = VSTOR_OPERATION_QUERY_PROPERTIES;
    u32 status = vstor_op(c, &p, "properties");
    if (status != 0)
        fail("properties", "QUERY_PROPERTIES completed with status 0x%x", status);
    properties = p.storage_channel_properties;
    printf(PROG ": properties: max sub-channels %u, flags 0x%x, max transfer %u bytes\n", properties.max_channel_cnt,
           properties.flags, properties.max_transfer_bytes);
    /* Linux: max_sectors = round_down(max_transfer_bytes, 4096) / 512; our requests go up to 64 KiB. */
    if (properties.max_transfer_bytes < 64 * 1024)
        fail("properties", "max transfer %u bytes: this test's requests need 64 KiB (Linux would use %u sectors)",
             properties.max_transfer_bytes, (properties.max_transfer_bytes & ~4095u) / 512);

    vstor_op_ok(c, VSTOR_OPERATION_END_INITIALIZATION, "end");
    printf(PROG ": end: END_INITIALIZATION -> COMPLETE_IO, status 0\n");
}

/* handle_multichannel_storage: ask for min(vCPUs - 1, host max) sub-channels, then open every
 * offer that comes (same interface and instance as the primary, sub_channel_index 1..n). */
static void create_subchannels(struct channel *primary, u64 vcpus)
{
    if (!(properties.flags & STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL))
        fail("subchannels", "properties flags 0x%x lack MULTI_CHANNEL: storvsp must offer sub-channels (issue 7)",
             properties.flags);
    u32 n = (u32)vcpus - 1;
    if (n > properties.max_channel_cnt)
        n = properties.max_channel_cnt;
    if (n > MAX_SUBCHANNELS)
        n = MAX_SUBCHANNELS;
    if (n == 0)
        fail("subchannels", "%lu vCPU(s) and a host maximum of %u: no sub-channel to ask for (give the VM 4 vCPUs)",
             vcpus, properties.max_channel_cnt);

    struct vstor_packet p;
    memset(&p, 0, sizeof(p));
    p.operation = VSTOR_OPERATION_CREATE_SUB_CHANNELS;
    p.sub_channel_count = (u16)n;
    u32 status = vstor_op(primary, &p, "subchannels");
    if (status != 0)
        fail("subchannels", "CREATE_SUB_CHANNELS %u completed with status 0x%x", n, status);
    printf(PROG ": subchannels: CREATE_SUB_CHANNELS %u -> COMPLETE_IO, status 0; waiting for %u offers\n", n, n);

    u32 seen = 0;
    for (u32 k = 1; k <= n; k++) {
        struct channel *c = &channels[k];
        vmbus_wait_offer(&c->offer, "subchannels");
        if (memcmp(c->offer.if_type, primary->offer.if_type, 16) != 0
            || memcmp(c->offer.if_instance, primary->offer.if_instance, 16) != 0)
            fail("subchannels", "offer relid %u is not of the controller's interface and instance", c->offer.child_relid);
        u16 index = c->offer.sub_channel_index;
        if (index == 0 || index > n || (seen & (1u << index)))
            fail("subchannels", "offer relid %u has sub_channel_index %u: want each of 1..%u once", c->offer.child_relid,
                 index, n);
        seen |= 1u << index;
        if (c->offer.monitor_allocated || !c->offer.is_dedicated_interrupt || c->offer.connection_id == 0)
            fail("subchannels", "relid %u: monitor %u dedicated %u connection 0x%x: this guest signals with "
                                "HvSignalEvent on dedicated channels only",
                 c->offer.child_relid, c->offer.monitor_allocated, c->offer.is_dedicated_interrupt,
                 c->offer.connection_id);
        for (u32 j = 0; j < k; j++)
            if (channels[j].offer.child_relid == c->offer.child_relid)
                fail("subchannels", "relid %u offered twice", c->offer.child_relid);
    }
    /* The offers come in a burst: take them all before the GPADL and open replies (Linux handles
     * each offer in its own work item). */
    for (u32 k = 1; k <= n; k++)
        open_channel(&channels[k], k, "subchannels");
    channel_count = 1 + n;
}

/* ---- SCSI requests ------------------------------------------------------------------------ */

#ifndef MAX_PFNS /* the bench mode (bench.c) sends 1 MiB requests */
#define MAX_PFNS 17
#endif

struct scsi_result {
    u8 srb_status, scsi_status, sense_length;
    u8 sense[STORVSC_SENSE_BUFFER_SIZE];
    u32 transferred;
};

static u8 sense_key(const struct scsi_result *r)
{
    return (r->sense[0] & 0x7F) >= 0x72 ? r->sense[1] & 0xF : r->sense[2] & 0xF;
}
static u8 sense_asc(const struct scsi_result *r) { return (r->sense[0] & 0x7F) >= 0x72 ? r->sense[2] : r->sense[12]; }
static u8 sense_ascq(const struct scsi_result *r) { return (r->sense[0] & 0x7F) >= 0x72 ? r->sense[3] : r->sense[13]; }

/* The request as storvsc_queuecommand builds it. */
static void build_srb(struct vstor_packet *p, u8 path, u8 target, u8 lun, const u8 *cdb, u8 cdb_len, u8 data_in,
                      u32 length)
{
    memset(p, 0, sizeof(*p));
    p->operation = VSTOR_OPERATION_EXECUTE_SRB;
    p->flags = REQUEST_COMPLETION_FLAG;
    struct vmscsi_request *srb = &p->vm_srb;
    srb->length = sizeof(*srb);
    srb->port_number = 0;
    srb->path_id = path;
    srb->target_id = target;
    srb->lun = lun;
    srb->cdb_length = cdb_len;
    srb->sense_info_length = STORVSC_SENSE_BUFFER_SIZE;
    srb->data_in = data_in;
    srb->data_transfer_length = length;
    memcpy(srb->cdb, cdb, cdb_len);
    srb->time_out_value = 60;
    srb->srb_flags = SRB_FLAGS_DISABLE_SYNCH_TRANSFER | SRB_FLAGS_QUEUE_ACTION_ENABLE | SRB_FLAGS_NO_QUEUE_FREEZE
                     | (data_in == READ_TYPE ? SRB_FLAGS_DATA_IN : data_in == WRITE_TYPE ? SRB_FLAGS_DATA_OUT : 0);
    srb->queue_tag = SP_UNTAGGED;
    srb->queue_action = SRB_SIMPLE_TAG_REQUEST;
}

/* Sends an EXECUTE_SRB: in-band without data, GPA-direct (one range over `pfns`, starting at
 * page offset 0) with data. */
static void send_srb(struct channel *c, u64 id, const struct vstor_packet *p, const u64 *pfns, const char *step)
{
    u32 length = p->vm_srb.data_transfer_length;
    if (length == 0) {
        send_packet(c, id, p, NULL, 0, step);
        return;
    }
    static u64 buffer[(sizeof(struct gpa_direct_header) + MAX_PFNS * 8) / 8];
    struct gpa_direct_header *range = (void *)buffer;
    u32 count = (u32)((length + PAGE_SIZE - 1) / PAGE_SIZE);
    if (count > MAX_PFNS)
        fail(step, "%u bytes need %u pages", length, count);
    range->reserved = 0;
    range->range_count = 1;
    range->byte_count = length;
    range->byte_offset = 0;
    for (u32 i = 0; i < count; i++)
        range->pfn[i] = pfns[i];
    send_packet(c, id, p, range, (u32)sizeof(*range) + count * 8, step);
}

static void result_from(const struct vstor_packet *reply, struct scsi_result *r, const char *step)
{
    if (reply->operation != VSTOR_OPERATION_COMPLETE_IO)
        fail(step, "EXECUTE_SRB answered with operation %u, want %u (COMPLETE_IO)", reply->operation,
             VSTOR_OPERATION_COMPLETE_IO);
    r->srb_status = reply->vm_srb.srb_status;
    r->scsi_status = reply->vm_srb.scsi_status;
    r->transferred = reply->vm_srb.data_transfer_length;
    /* Linux clamps the sense length to its buffer. */
    r->sense_length = reply->vm_srb.sense_info_length < STORVSC_SENSE_BUFFER_SIZE ? reply->vm_srb.sense_info_length
                                                                                  : STORVSC_SENSE_BUFFER_SIZE;
    memset(r->sense, 0, sizeof(r->sense));
    if (r->scsi_status == SAM_STAT_CHECK_CONDITION && (r->srb_status & SRB_STATUS_AUTOSENSE_VALID))
        memcpy(r->sense, reply->vm_srb.sense_data, r->sense_length);
}

static u64 next_sync_id = 1;

/* One command, waited for, on `c`; data (up to a page) in the probe page. */
static void scsi_sync(struct channel *c, u8 path, u8 target, u8 lun, const u8 *cdb, u8 cdb_len, u8 data_in,
                      u32 length, struct scsi_result *r, const char *step)
{
    struct vstor_packet p;
    build_srb(&p, path, target, lun, cdb, cdb_len, data_in, length);
    u64 pfn = PROBE_PA / PAGE_SIZE;
    u64 id = next_sync_id++;
    send_srb(c, id, &p, &pfn, step);
    wait_completion(c, id, &p, step);
    result_from(&p, r, step);
    if (r->transferred > length)
        fail(step, "command 0x%02x: %u bytes transferred, %u asked for", cdb[0], r->transferred, length);
}

static bool good(const struct scsi_result *r)
{
    return SRB_STATUS(r->srb_status) == SRB_STATUS_SUCCESS && r->scsi_status == SAM_STAT_GOOD;
}

static void expect_good(const struct scsi_result *r, const char *step, const char *what)
{
    if (!good(r))
        fail(step, "%s: srb status 0x%x, scsi status 0x%x, sense key 0x%x asc 0x%x ascq 0x%x", what, r->srb_status,
             r->scsi_status, sense_key(r), sense_asc(r), sense_ascq(r));
}

static void expect_check_condition(const struct scsi_result *r, u8 key, u8 asc, const char *step, const char *what)
{
    /* What Linux needs to see the sense: CHECK CONDITION and the autosense flag (Hyper-V also says
     * SRB_STATUS_ERROR; storvsc copies the sense either way). */
    if (r->scsi_status != SAM_STAT_CHECK_CONDITION || !(r->srb_status & SRB_STATUS_AUTOSENSE_VALID)
        || r->sense_length < 14 || sense_key(r) != key || sense_asc(r) != asc)
        fail(step, "%s: srb status 0x%x, scsi status 0x%x, %u sense bytes, key 0x%x asc 0x%x ascq 0x%x; want CHECK "
                   "CONDITION with autosense, key 0x%x asc 0x%x",
             what, r->srb_status, r->scsi_status, r->sense_length, sense_key(r), sense_asc(r), sense_ascq(r), key, asc);
    printf(PROG ": %s: %s -> CHECK CONDITION, srb 0x%x, sense key 0x%x asc 0x%02x ascq 0x%02x\n", step, what,
           r->srb_status, sense_key(r), sense_asc(r), sense_ascq(r));
}

static u8 *probe_data(void) { return (u8 *)PROBE_PA; }
static u16 be16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static u32 be32(const u8 *p) { return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]; }
static u64 be64(const u8 *p) { return (u64)be32(p) << 32 | be32(p + 4); }
static void put_be32(u8 *p, u32 v)
{
    p[0] = (u8)(v >> 24);
    p[1] = (u8)(v >> 16);
    p[2] = (u8)(v >> 8);
    p[3] = (u8)v;
}
static void put_be64(u8 *p, u64 v)
{
    put_be32(p, (u32)(v >> 32));
    put_be32(p + 4, (u32)v);
}

static void inquiry(struct channel *c, u8 path, u8 target, u8 lun, bool evpd, u8 page, u8 length,
                    struct scsi_result *r, const char *step)
{
    u8 cdb[6] = { INQUIRY, evpd ? 1 : 0, page, 0, length, 0 };
    memset(probe_data(), 0, length);
    scsi_sync(c, path, target, lun, cdb, sizeof(cdb), READ_TYPE, length, r, step);
    /* storvsc_on_io_completion overwrites the status of every INQUIRY with success: only the
     * data counts, so it must be there. */
    if (r->transferred == 0)
        fail(step, "INQUIRY (evpd %u page 0x%02x) to %u:%u:%u returned no data (srb 0x%x): Linux would read zeroes",
             evpd, page, path, target, lun, r->srb_status);
}

static void print_ascii(const u8 *p, u32 n)
{
    for (u32 i = 0; i < n; i++)
        console_putc(p[i] >= 0x20 && p[i] < 0x7F ? (char)p[i] : '.');
}

/* ---- the bus scan (scsi_scan.c) ----------------------------------------------------------- */

static struct channel *primary(void) { return &channels[0]; }

static void scan_bus(void)
{
    struct scsi_result r;
    u32 absent = 0;
    for (u8 path = 0; path < 8; path++)
        for (u8 target = 0; target < 2; target++) {
            inquiry(primary(), path, target, 0, false, 0, 36, &r, "scan");
            u8 byte0 = probe_data()[0];
            bool configured = path == 0 && target == EXPECTED_TARGET;
            if (configured && byte0 != 0x00)
                fail("scan", "INQUIRY to LUN 0 of 0:%u: byte 0 = 0x%02x, want 0x00 (a disk)", target, byte0);
            if (!configured) {
                if (byte0 != 0x7F)
                    fail("scan", "INQUIRY to LUN 0 of absent %u:%u: byte 0 = 0x%02x (%u bytes), want 0x7F "
                                 "(qualifier 3, no device)",
                         path, target, byte0, r.transferred);
                absent++;
            }
        }
    printf(PROG ": scan: INQUIRY to LUN 0 of 16 (channel, target) pairs: a disk at 0:%u, 0x7F (no device) at the "
                "other %u\n",
           EXPECTED_TARGET, absent);

    /* REPORT LUNS wherever LUN 0 answered (qualifier 3 still says "target present"). */
    u32 empty = 0;
    for (u8 path = 0; path < 8; path++)
        for (u8 target = 0; target < 2; target++) {
            u8 cdb[12] = { REPORT_LUNS, 0, 0 };
            put_be32(cdb + 6, 4096);
            memset(probe_data(), 0, 4096);
            scsi_sync(primary(), path, target, 0, cdb, sizeof(cdb), READ_TYPE, 4096, &r, "report-luns");
            const u8 *d = probe_data();
            bool configured = path == 0 && target == EXPECTED_TARGET;
            if (!configured) {
                if (good(&r) && r.transferred >= 4 && be32(d) != 0)
                    fail("report-luns", "absent target %u:%u reports %u LUN bytes", path, target, be32(d));
                empty++;
                continue;
            }
            expect_good(&r, "report-luns", "REPORT LUNS");
            if (r.transferred < 8)
                fail("report-luns", "%u bytes", r.transferred);
            u32 list = be32(d);
            if (list % 8 || list / 8 != LUN_COUNT || 8 + list > r.transferred)
                fail("report-luns", "list of %u bytes (%u transferred), want %lu LUNs", list, r.transferred, LUN_COUNT);
            u32 found = 0;
            printf(PROG ": report-luns: 0:%u reports", target);
            for (u32 i = 0; i < list / 8; i++) {
                const u8 *e = d + 8 + i * 8;
                u32 lun = (u32)(e[0] & 0x3F) << 8 | e[1];
                printf(" %u", lun);
                bool known = false;
                for (u32 k = 0; k < LUN_COUNT; k++)
                    if (expected[k].lun == lun && !(found & (1u << k))) {
                        found |= 1u << k;
                        known = true;
                    }
                if (!known || (e[0] >> 6) > 1 || e[2] || e[3] || e[4] || e[5] || e[6] || e[7])
                    fail("report-luns", "entry %u (%02x %02x ..) is not one of the configured LUNs", i, e[0], e[1]);
            }
            printf("\n");
        }
    printf(PROG ": report-luns: the %u other targets report no LUN\n", empty);
}

/* ---- per LUN (scsi_add_lun, scsi_attach_vpd, sd_revalidate_disk) ---------------------------- */

struct lun_state {
    u64 blocks;
    u32 block;
    bool dpofua, wce;
};
static struct lun_state luns[LUN_COUNT];

static void check_vpd_page(const struct expected_lun *e, u8 page, const u8 *d, u32 n)
{
    char step[] = "vpd";
    u32 length = be16(d + 2);
    if (d[1] != page || (d[0] & 0x1F) != 0 || 4 + length > n)
        fail(step, "LUN %u page 0x%02x: header %02x %02x %04x with %u bytes", e->lun, page, d[0], d[1], length, n);
    switch (page) {
    case 0x80:
        printf(PROG ": vpd: LUN %u page 0x80 serial \"", e->lun);
        print_ascii(d + 4, length);
        printf("\"\n");
        break;
    case 0x83: {
        u32 count = 0;
        for (u32 at = 4; at < 4 + length; count++) {
            if (at + 4 > 4 + length || at + 4 + d[at + 3] > 4 + length)
                fail(step, "LUN %u page 0x83: designator %u at %u overruns the page", e->lun, count, at);
            at += 4 + d[at + 3];
        }
        if (count == 0)
            fail(step, "LUN %u page 0x83 has no designator", e->lun);
        printf(PROG ": vpd: LUN %u page 0x83: %u designator(s), the first of type %u, %u bytes\n", e->lun, count,
               d[5] & 0xF, d[7]);
        break;
    }
    case 0xB0:
        /* sd reads the transfer limits from bytes 8..15 and the unmap limits only if 0x3C long. */
        if (length < 0x0C)
            fail(step, "LUN %u page 0xB0 (block limits) of %u bytes, want at least 12", e->lun, length);
        printf(PROG ": vpd: LUN %u page 0xB0 (%u bytes): max transfer %u blocks, optimal %u, max unmap %u LBAs\n",
               e->lun, length, be32(d + 8), be32(d + 12), length >= 0x3C ? be32(d + 20) : 0);
        break;
    case 0xB1:
        if (length < 2)
            fail(step, "LUN %u page 0xB1 (characteristics) of %u bytes: no rotation rate", e->lun, length);
        printf(PROG ": vpd: LUN %u page 0xB1: rotation rate %u\n", e->lun, be16(d + 4));
        break;
    case 0xB2:
        if (length < 4)
            fail(step, "LUN %u page 0xB2 (provisioning) of %u bytes", e->lun, length);
        printf(PROG ": vpd: LUN %u page 0xB2: flags 0x%02x\n", e->lun, d[5]);
        break;
    default:
        printf(PROG ": vpd: LUN %u page 0x%02x: %u bytes\n", e->lun, page, length);
    }
}

static void probe_lun(u32 index)
{
    const struct expected_lun *e = &expected[index];
    struct lun_state *s = &luns[index];
    struct scsi_result r;
    u8 *d = probe_data();
    u8 lun = e->lun;

    /* scsi_probe_lun: 36 bytes, then again at the length the device says it has. */
    inquiry(primary(), 0, EXPECTED_TARGET, lun, false, 0, 36, &r, "inquiry");
    if (r.transferred < 36)
        fail("inquiry", "LUN %u: %u bytes of standard data, want 36", lun, r.transferred);
    u32 full = 5 + d[4];
    if (d[0] != 0x00 || (d[3] & 0x0F) != 2 || d[4] < 31)
        fail("inquiry", "LUN %u: byte 0 0x%02x, response format %u, additional length %u: want a disk, format 2, >= 31",
             lun, d[0], d[3] & 0x0F, d[4]);
    if (memcmp(d + 8, "Msft    ", 8) != 0)
        fail("inquiry", "LUN %u: vendor is not \"Msft    \" (Linux keys protocol quirks on it)", lun);
    printf(PROG ": inquiry: LUN %u: version %u, \"", lun, d[2]);
    print_ascii(d + 8, 8);
    printf("\" \"");
    print_ascii(d + 16, 16);
    printf("\" \"");
    print_ascii(d + 32, 4);
    printf("\", %u bytes available; expected %s\n", full, e->what);
    if (full > 36) {
        u8 first[36];
        memcpy(first, d, 36);
        u8 length = full > 255 ? 255 : (u8)full;
        inquiry(primary(), 0, EXPECTED_TARGET, lun, false, 0, length, &r, "inquiry");
        if (memcmp(first, d, 36) != 0)
            fail("inquiry", "LUN %u: the %u-byte INQUIRY differs from the 36-byte one", lun, length);
    }

    /* scsi_attach_vpd: page 0x00, then each page it lists. */
    inquiry(primary(), 0, EXPECTED_TARGET, lun, true, 0x00, 255, &r, "vpd");
    u8 pages[64];
    u32 count = be16(d + 2);
    if (d[1] != 0x00 || count == 0 || count > sizeof(pages) || 4 + count > r.transferred || d[4] != 0x00)
        fail("vpd", "LUN %u page 0x00: header %02x %02x, %u pages, %u bytes", lun, d[0], d[1], count, r.transferred);
    memcpy(pages, d + 4, count);
    printf(PROG ": vpd: LUN %u lists", lun);
    for (u32 i = 0; i < count; i++) {
        printf(" 0x%02x", pages[i]);
        if (i && pages[i] <= pages[i - 1])
            fail("vpd", "LUN %u page list not ascending at 0x%02x", lun, pages[i]);
    }
    printf("\n");
    for (u32 i = 1; i < count; i++) {
        inquiry(primary(), 0, EXPECTED_TARGET, lun, true, pages[i], 255, &r, "vpd");
        check_vpd_page(e, pages[i], d, r.transferred);
    }

    /* sd: TEST UNIT READY, READ CAPACITY (16 first: Msft at >= 0x501 means SPC-3), MODE SENSE. */
    u8 tur[6] = { TEST_UNIT_READY };
    scsi_sync(primary(), 0, EXPECTED_TARGET, lun, tur, sizeof(tur), UNKNOWN_TYPE, 0, &r, "tur");
    expect_good(&r, "tur", "TEST UNIT READY");

    u8 rc16[16] = { SERVICE_ACTION_IN_16, SAI_READ_CAPACITY_16 };
    put_be32(rc16 + 10, 32);
    memset(d, 0, 32);
    scsi_sync(primary(), 0, EXPECTED_TARGET, lun, rc16, sizeof(rc16), READ_TYPE, 32, &r, "capacity");
    expect_good(&r, "capacity", "READ CAPACITY(16)");
    if (r.transferred < 32)
        fail("capacity", "LUN %u: READ CAPACITY(16) returned %u bytes, want 32", lun, r.transferred);
    u64 last = be64(d);
    u32 block = be32(d + 8);
    u32 physical = block << (d[13] & 0xF);
    printf(PROG ": capacity: LUN %u: READ CAPACITY(16) %lu blocks of %u bytes (%lu MiB), physical %u, lbpme %u\n", lun,
           last + 1, block, (last + 1) * block / MiB, physical, d[14] >> 7);
    if (block != e->logical || physical != e->physical || (last + 1) * block != e->bytes)
        fail("capacity", "LUN %u: %lu x %u bytes, physical %u; the config says %lu bytes of %u, physical %u", lun,
             last + 1, block, physical, e->bytes, e->logical, e->physical);
    s->blocks = last + 1;
    s->block = block;

    u8 rc10[10] = { READ_CAPACITY };
    memset(d, 0, 8);
    scsi_sync(primary(), 0, EXPECTED_TARGET, lun, rc10, sizeof(rc10), READ_TYPE, 8, &r, "capacity");
    expect_good(&r, "capacity", "READ CAPACITY(10)");
    if (r.transferred < 8 || be32(d) != (u32)(s->blocks - 1) || be32(d + 4) != block)
        fail("capacity", "LUN %u: READ CAPACITY(10) says last LBA %u, block %u (%u bytes); want %lu, %u", lun, be32(d),
             be32(d + 4), r.transferred, s->blocks - 1, block);
    printf(PROG ": capacity: LUN %u: READ CAPACITY(10) agrees\n", lun);

    /* sd_read_write_protect_flag: MODE SENSE(6), all pages. */
    u8 ms_all[6] = { MODE_SENSE, 0, 0x3F, 0, 255, 0 };
    memset(d, 0, 255);
    scsi_sync(primary(), 0, EXPECTED_TARGET, lun, ms_all, sizeof(ms_all), READ_TYPE, 255, &r, "mode-sense");
    if (r.transferred < 4 || (u32)d[0] + 1 > r.transferred)
        fail("mode-sense", "LUN %u page 0x3F: mode data length %u with %u bytes transferred", lun, d[0], r.transferred);
    bool wp = d[2] & 0x80;
    printf(PROG ": mode-sense: LUN %u page 0x3F: %u bytes, write protect %u, DPOFUA %u, block descriptors %u bytes; "
                "pages",
           lun, d[0] + 1, wp, (d[2] >> 4) & 1, d[3]);
    for (u32 at = 4 + d[3]; at + 2 <= (u32)d[0] + 1; at += 2 + d[at + 1])
        printf(" 0x%02x", d[at] & 0x3F);
    printf("\n");
    if (wp != e->read_only)
        fail("mode-sense", "LUN %u: write protect %u, but the config says read_only = %u", lun, wp, e->read_only);

    /* sd_read_cache_type: header first, then the caching page at its full length. */
    u8 ms_cache[6] = { MODE_SENSE, 0, 0x08, 0, 4, 0 };
    memset(d, 0, 255);
    scsi_sync(primary(), 0, EXPECTED_TARGET, lun, ms_cache, sizeof(ms_cache), READ_TYPE, 4, &r, "mode-sense");
    if (r.transferred < 4)
        fail("mode-sense", "LUN %u page 0x08 header: %u bytes", lun, r.transferred);
    ms_cache[4] = (u8)(d[0] + 1);
    scsi_sync(primary(), 0, EXPECTED_TARGET, lun, ms_cache, sizeof(ms_cache), READ_TYPE, ms_cache[4], &r, "mode-sense");
    u32 at = 4 + d[3];
    if (r.transferred < at + 2 || (d[at] & 0x3F) != 0x08 || d[at + 1] < 0x12 || at + 2 + d[at + 1] > r.transferred)
        fail("mode-sense", "LUN %u: no caching page (0x08, 18 bytes) in %u bytes of MODE SENSE(6) 0x08", lun,
             r.transferred);
    s->wce = d[at + 2] & 0x04;
    s->dpofua = d[2] & 0x10;
    printf(PROG ": mode-sense: LUN %u caching page: WCE %u, RCD %u; DPOFUA %u\n", lun, s->wce, d[at + 2] & 1, s->dpofua);
    if (!e->read_only && !s->dpofua)
        fail("mode-sense", "LUN %u: DPOFUA clear: Linux would never send FUA writes (issue 7 honours FUA)", lun);
}

/* ---- I/O across all channels ---------------------------------------------------------------- */

#define IO_SLOTS 32
#define SLOT_PAGES 16
#define CHUNKS 64
#define FUA_CHUNKS 8

static u64 pattern(u32 lun, u8 gen, u64 offset)
{
    if (gen == 0)
        return 0;
    return (offset + 1) * 0x9E3779B97F4A7C15UL ^ (u64)(lun + 1) << 56 ^ (u64)gen << 48;
}

static u64 chunk_offset(u32 index, u32 k) { return k * (expected[index].bytes / CHUNKS); }
static u32 chunk_length(u32 k) { return (u32)PAGE_SIZE * (1 + (k * 7) % 16); }

struct io_op {
    u8 lun_index;
    u8 chunk;
    u8 gen;          /* pattern generation to write, or to expect when reading */
    bool write, fua, cdb16;
};

struct io_slot {
    bool busy;
    u64 id;
    u32 channel;
    struct io_op op;
    u64 pfn[SLOT_PAGES];
};

static struct io_slot slots[IO_SLOTS];
static u32 max_in_flight;
static u64 per_channel[MAX_CHANNELS];

/* Slot s's page j: its 16 pages in a scrambled order, so a request's PFNs are never contiguous. */
static u64 *slot_page(u32 s, u32 j) { return (u64 *)(DATA_PA + ((u64)s * SLOT_PAGES + (j * 7 + 3) % SLOT_PAGES) * PAGE_SIZE); }

static void fill(u32 s, const struct io_op *op)
{
    u64 base = chunk_offset(op->lun_index, op->chunk);
    u32 pages = chunk_length(op->chunk) / PAGE_SIZE;
    for (u32 j = 0; j < pages; j++) {
        u64 *p = slot_page(s, j);
        for (u32 i = 0; i < PAGE_SIZE / 8; i++)
            p[i] = op->write ? pattern(expected[op->lun_index].lun, op->gen, base + j * PAGE_SIZE + i * 8)
                             : 0xA5A5A5A5A5A5A5A5UL;
    }
}

static void verify(u32 s, const struct io_op *op, const char *step)
{
    u64 base = chunk_offset(op->lun_index, op->chunk);
    u32 pages = chunk_length(op->chunk) / PAGE_SIZE;
    for (u32 j = 0; j < pages; j++) {
        const u64 *p = slot_page(s, j);
        for (u32 i = 0; i < PAGE_SIZE / 8; i++) {
            u64 at = base + j * PAGE_SIZE + i * 8;
            u64 want = pattern(expected[op->lun_index].lun, op->gen, at);
            if (p[i] != want)
                fail(step, "LUN %u chunk %u: byte offset 0x%lx reads 0x%016lx, want 0x%016lx (generation %u)",
                     expected[op->lun_index].lun, op->chunk, at, p[i], want, op->gen);
        }
    }
}

static void submit(u32 s, const struct io_op *op, u32 channel, const char *step)
{
    struct io_slot *slot = &slots[s];
    const struct lun_state *l = &luns[op->lun_index];
    u32 length = chunk_length(op->chunk);
    u64 lba = chunk_offset(op->lun_index, op->chunk) / l->block;
    u32 blocks = length / l->block;
    fill(s, op);
    u8 cdb[16];
    memset(cdb, 0, sizeof(cdb));
    u8 cdb_len;
    if (op->cdb16) {
        cdb[0] = op->write ? WRITE_16 : READ_16;
        put_be64(cdb + 2, lba);
        put_be32(cdb + 10, blocks);
        cdb_len = 16;
    } else {
        cdb[0] = op->write ? WRITE_10 : READ_10;
        put_be32(cdb + 2, (u32)lba);
        cdb[7] = (u8)(blocks >> 8);
        cdb[8] = (u8)blocks;
        cdb_len = 10;
    }
    if (op->fua)
        cdb[1] |= 0x08;
    struct vstor_packet p;
    build_srb(&p, 0, EXPECTED_TARGET, expected[op->lun_index].lun, cdb, cdb_len, op->write ? WRITE_TYPE : READ_TYPE,
              length);
    for (u32 j = 0; j < length / PAGE_SIZE; j++)
        slot->pfn[j] = (u64)slot_page(s, j) / PAGE_SIZE;
    slot->busy = true;
    slot->id = ((u64)channel << 16 | s) + 1; /* like Linux: the blk-mq unique tag + 1 */
    slot->channel = channel;
    slot->op = *op;
    send_srb(&channels[channel], slot->id, &p, slot->pfn, step);
    per_channel[channel]++;
}

/* Runs `count` operations with up to IO_SLOTS in flight; operation i goes to channel
 * (i + shift) % channel_count. Every completion must come back on its request's channel, GOOD,
 * with the full length; reads are verified. */
static void run_ops(const struct io_op *ops, u32 count, u32 shift, const char *step)
{
    u32 next = 0, done = 0, in_flight = 0;
    u64 deadline = deadline_ms(STALL_MS);
    while (done < count) {
        for (u32 s = 0; s < IO_SLOTS && next < count; s++)
            if (!slots[s].busy) {
                submit(s, &ops[next], (next + shift) % channel_count, step);
                next++;
                in_flight++;
            }
        if (in_flight > max_in_flight)
            max_in_flight = in_flight;
        bool progress = false;
        for (u32 k = 0; k < channel_count; k++) {
            u64 id;
            struct vstor_packet reply;
            while (take_packet(&channels[k], &id, &reply, step)) {
                u64 s = (id - 1) & 0xFFFF;
                if (s >= IO_SLOTS || !slots[s].busy || slots[s].id != id)
                    fail(step, "completion for unknown transaction 0x%lx on relid %u", id,
                         channels[k].offer.child_relid);
                struct io_slot *slot = &slots[s];
                if (slot->channel != k)
                    fail(step, "transaction 0x%lx sent on relid %u completed on relid %u", id,
                         channels[slot->channel].offer.child_relid, channels[k].offer.child_relid);
                struct scsi_result r;
                result_from(&reply, &r, step);
                if (!good(&r) || r.transferred != chunk_length(slot->op.chunk))
                    fail(step, "%s%s(%u) of LUN %u chunk %u: srb 0x%x scsi 0x%x sense %x/%02x/%02x, %u of %u bytes",
                         slot->op.write ? "WRITE" : "READ", slot->op.fua ? " FUA " : "", slot->op.cdb16 ? 16 : 10,
                         expected[slot->op.lun_index].lun, slot->op.chunk, r.srb_status, r.scsi_status, sense_key(&r),
                         sense_asc(&r), sense_ascq(&r), r.transferred, chunk_length(slot->op.chunk));
                if (!slot->op.write)
                    verify((u32)s, &slot->op, step);
                slot->busy = false;
                in_flight--;
                done++;
                progress = true;
            }
        }
        if (progress)
            deadline = deadline_ms(STALL_MS);
        else if (expired(deadline))
            fail(step, "%u of %u requests done, %u in flight, nothing completed for %u ms", done, count, in_flight,
                 STALL_MS);
        else
            cpu_relax();
    }
}

static struct io_op ops[LUN_COUNT * CHUNKS];

/* Every chunk of every writable LUN, interleaved across LUNs; even chunks by the 10-byte CDB,
 * odd ones by the 16-byte one. `generation_of` picks the chunk's generation. */
static u32 build_ops(bool write, bool fua, u32 chunks, bool final_generations)
{
    u32 n = 0;
    for (u32 k = 0; k < chunks; k++)
        for (u32 i = 0; i < LUN_COUNT; i++) {
            if (expected[i].read_only)
                continue;
            struct io_op *op = &ops[n++];
            op->lun_index = (u8)i;
            op->chunk = (u8)k;
            op->gen = fua ? 2 : final_generations && k < FUA_CHUNKS ? 2 : 1;
            op->write = write;
            op->fua = fua;
            op->cdb16 = k & 1;
        }
    return n;
}

static u64 bytes_of(u32 n)
{
    u64 sum = 0;
    for (u32 i = 0; i < n; i++)
        sum += chunk_length(ops[i].chunk);
    return sum;
}

static void synchronize_cache(u32 index, bool sixteen, u32 channel)
{
    struct scsi_result r;
    u8 cdb[16];
    memset(cdb, 0, sizeof(cdb));
    cdb[0] = sixteen ? SYNCHRONIZE_CACHE_16 : SYNCHRONIZE_CACHE;
    scsi_sync(&channels[channel], 0, EXPECTED_TARGET, expected[index].lun, cdb, sixteen ? 16 : 10, UNKNOWN_TYPE, 0, &r,
              "flush");
    expect_good(&r, "flush", sixteen ? "SYNCHRONIZE CACHE(16)" : "SYNCHRONIZE CACHE(10)");
}

static void io_tests(void)
{
    u64 t0 = rdtsc();
    u32 n = build_ops(true, false, CHUNKS, false);
    run_ops(ops, n, 0, "write");
    printf(PROG ": write: %u WRITE(10/16) of 4-64 KiB (%lu KiB) over %u channels, up to %u in flight\n", n,
           bytes_of(n) / 1024, channel_count, max_in_flight);
    if (max_in_flight < IO_SLOTS)
        fail("write", "only %u requests were ever in flight, want %u", max_in_flight, IO_SLOTS);

    n = build_ops(false, false, CHUNKS, false);
    run_ops(ops, n, 1, "read");
    printf(PROG ": read: %u READ(10/16) on other channels than the writes, every byte verified\n", n);

    for (u32 i = 0; i < LUN_COUNT; i++)
        if (!expected[i].read_only) {
            synchronize_cache(i, false, i % channel_count);
            synchronize_cache(i, true, (i + 1) % channel_count);
            printf(PROG ": flush: LUN %u SYNCHRONIZE CACHE(10) and (16) -> GOOD\n", expected[i].lun);
        }

    n = build_ops(true, true, FUA_CHUNKS, false);
    run_ops(ops, n, 2, "fua");
    printf(PROG ": fua: %u WRITE(10/16) with FUA over chunks 0..%u (generation 2)\n", n, FUA_CHUNKS - 1);

    n = build_ops(false, false, CHUNKS, true);
    run_ops(ops, n, 3, "verify");
    u64 ms = (rdtsc() - t0) / (tsc_hz / 1000);
    printf(PROG ": verify: %u READs: FUA chunks at generation 2, the rest at 1 (I/O phase %lu ms)\n", n, ms);
    printf(PROG ": channels: requests per channel");
    for (u32 k = 0; k < channel_count; k++) {
        printf(" %lu", per_channel[k]);
        if (per_channel[k] == 0)
            fail("channels", "relid %u carried no I/O", channels[k].offer.child_relid);
    }
    printf("\n");
}

/* The read-only LUN, the range checks and an absent LUN. */
static void error_tests(void)
{
    struct scsi_result r;
    u8 *d = probe_data();
    for (u32 i = 0; i < LUN_COUNT; i++) {
        if (!expected[i].read_only)
            continue;
        /* Reads work and see the fresh (zero) image. */
        struct io_op read_ops[4];
        for (u32 k = 0; k < ARRAY_SIZE(read_ops); k++)
            read_ops[k] = (struct io_op){ .lun_index = (u8)i, .chunk = (u8)k, .gen = 0, .cdb16 = k & 1 };
        run_ops(read_ops, ARRAY_SIZE(read_ops), 0, "read-only");
        printf(PROG ": read-only: LUN %u reads (zeroes) on %u channels\n", expected[i].lun, channel_count);
        u8 cdb[10] = { WRITE_10, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
        memset(d, 0x5A, luns[i].block);
        scsi_sync(primary(), 0, EXPECTED_TARGET, expected[i].lun, cdb, sizeof(cdb), WRITE_TYPE, luns[i].block, &r,
                  "read-only");
        expect_check_condition(&r, DATA_PROTECT, 0x27, "read-only", "WRITE(10) to the read-only LUN");
    }

    /* LBA out of range on the first writable LUN: one past the end, and straddling it. */
    for (u32 i = 0; i < LUN_COUNT; i++) {
        if (expected[i].read_only)
            continue;
        const struct lun_state *l = &luns[i];
        u8 lun = expected[i].lun;
        u8 cdb[16];
        memset(cdb, 0, sizeof(cdb));
        cdb[0] = READ_10;
        put_be32(cdb + 2, (u32)l->blocks);
        cdb[8] = 1;
        scsi_sync(primary(), 0, EXPECTED_TARGET, lun, cdb, 10, READ_TYPE, l->block, &r, "range");
        expect_check_condition(&r, ILLEGAL_REQUEST, 0x21, "range", "READ(10) of the block past the end");
        /* Two blocks from the last one (one block past the end if two do not fit the probe page). */
        u32 blocks = 2 * l->block <= PAGE_SIZE ? 2 : 1;
        memset(cdb, 0, sizeof(cdb));
        cdb[0] = WRITE_16;
        put_be64(cdb + 2, l->blocks + 1 - blocks);
        put_be32(cdb + 10, blocks);
        u32 length = blocks * l->block;
        memset(d, 0x5A, length);
        scsi_sync(primary(), 0, EXPECTED_TARGET, lun, cdb, 16, WRITE_TYPE, length, &r, "range");
        expect_check_condition(&r, ILLEGAL_REQUEST, 0x21, "range", "WRITE(16) across the end");
        break;
    }

    inquiry(primary(), 0, EXPECTED_TARGET, ABSENT_LUN, false, 0, 36, &r, "absent");
    if (d[0] != 0x7F)
        fail("absent", "INQUIRY of absent LUN %u: byte 0 = 0x%02x, want 0x7F", ABSENT_LUN, d[0]);
    u8 tur[6] = { TEST_UNIT_READY };
    scsi_sync(primary(), 0, EXPECTED_TARGET, ABSENT_LUN, tur, sizeof(tur), UNKNOWN_TYPE, 0, &r, "absent");
    if (good(&r))
        fail("absent", "TEST UNIT READY to absent LUN %u succeeded", ABSENT_LUN);
    printf(PROG ": absent: LUN %u: INQUIRY byte 0 = 0x7F; TEST UNIT READY -> srb 0x%x scsi 0x%x\n", ABSENT_LUN,
           r.srb_status, r.scsi_status);
}

/* CPL3: the midlayer's probe, then the I/O. */
static u64 scsi_phase(u64 unused)
{
    (void)unused;
    scan_bus();
    for (u32 i = 0; i < LUN_COUNT; i++)
        probe_lun(i);
    io_tests();
    error_tests();
    return 0;
}

void kmain(u64 vcpu_index, u64 vcpu_count)
{
    if (vcpu_index != 0) /* one vCPU does the work (polling every ring); the others park */
        for (;;)
            __asm__ volatile("cli; hlt");
    printf(PROG ": start on vCPU %lu of %lu\n", vcpu_index, vcpu_count);
    if ((u64)_end > RING_POOL_PA)
        fail("layout", "image and .bss end at 0x%lx, past the ring pool at 0x%lx", (u64)_end, RING_POOL_PA);
    cpu_init();
    hv_detect();
    hv_enable_hypercalls((u32)vcpu_index);
    hv_enable_synic();
    cpu_enable_interrupts();

    vmbus_connect(hv.vp_index);
    struct channel *c = primary();
    u32 controllers = vmbus_request_offers_of(scsi_interface, &c->offer, 1);
    if (controllers != 1)
        fail("offers", "%u offers of the SCSI controller " SCSI_CONTROLLER_GUID_TEXT ", want 1", controllers);
    if (c->offer.sub_channel_index != 0)
        fail("offers", "the controller's offer has sub_channel_index %u, want 0 (primary)", c->offer.sub_channel_index);
    if (c->offer.monitor_allocated || !c->offer.is_dedicated_interrupt || c->offer.connection_id == 0)
        fail("offers", "controller offer with monitor %u, dedicated %u, connection 0x%x: this guest signals with "
                       "HvSignalEvent on dedicated channels only",
             c->offer.monitor_allocated, c->offer.is_dedicated_interrupt, c->offer.connection_id);
    printf(PROG ": offers: SCSI controller " SCSI_CONTROLLER_GUID_TEXT " is relid %u\n", c->offer.child_relid);

    open_channel(c, 0, "open");
    channel_count = 1;
    channel_init(c);
    create_subchannels(c, vcpu_count);

    run_user(scsi_phase, 0, user_stack_top());

#ifdef EXIT_WITH_CHANNELS_OPEN
    /* As Linux powers off: no close, no unload. The VMM and storvsp must still leave every disk
     * clean (a VHDX without a pending log). */
    printf(PROG ": exit with %u channels open, as Linux powers off\n", channel_count);
    printf(PROG ": all checks passed\n");
    guest_exit(0);
#endif

    /* vmbus_close of the primary as Linux does it: the sub-channels first. A VSP may withdraw
     * the closed sub-channels (RESCIND_CHANNELOFFER): released as Linux does. */
    vmbus.accept_rescinds = true;
    for (u32 k = channel_count; k-- > 0;) {
        vmbus_close(channels[k].offer.child_relid);
        vmbus_teardown_gpadl(channels[k].offer.child_relid, channels[k].gpadl);
    }
    vmbus_release_rescinded();
    vmbus_unload();
    u64 signals = 0;
    for (u32 k = 0; k < channel_count; k++)
        signals += channels[k].signals;
    printf(PROG ": close: %u channels closed, GPADLs torn down, %u rescinds released, unloaded; %lu host signals, "
                "%lu SINT2 interrupts, %lu unsolicited packets\n",
           channel_count, vmbus.rescinds, signals, sint_interrupts, unsolicited_packets);
    printf(PROG ": all checks passed\n");
    guest_exit(0);
}
