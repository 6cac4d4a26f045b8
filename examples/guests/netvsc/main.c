/*
 * netvsc: a freestanding netvsc on vmbus-echo's runtime that proves Veneer's netvsp (issue 8).
 * It brings the synthetic NIC up the way Linux's drivers/net/hyperv does (netvsc.c
 * netvsc_connect_vsp / netvsc_init_buf, rndis_filter.c rndis_filter_device_add and
 * rndis_set_subchannel), checking every answer a Linux guest depends on:
 *   open        the adapter's offer, rings both ways, no userdata;
 *   nvsp        INIT with 6.1, 6, 5, 4, 2, 1 in that order (one each, min = max) until status 1;
 *               then SEND_NDIS_CONFIG (MTU 1514, 802.1Q; SR-IOV and teaming from 5; RSC from 6.1)
 *               and SEND_NDIS_VER (6.30 from NVSP 5, else 6.1), neither asking for a completion;
 *   buffers     a 16 MiB receive buffer (4096 pages) through a GPADL, SEND_RECV_BUF id 0xCAFE
 *               (one section at offset 0, sub-allocations >= 68 bytes that fit); a send buffer of
 *               192 x 6144 bytes, SEND_SEND_BUF id 0 (section size >= 68);
 *   rndis       INITIALIZE 1.0 max 0x4000; QUERY MAXIMUM_FRAME_SIZE, PERMANENT_ADDRESS,
 *               FRIENDLY_NAME, TCP_OFFLOAD_HARDWARE_CAPABILITIES; SET TCP_OFFLOAD_PARAMETERS from
 *               those capabilities (as rndis_netdev_set_hwcaps); QUERY MEDIA_CONNECT_STATUS,
 *               LINK_SPEED, RECEIVE_SCALE_CAPABILITIES;
 *   subchannels SUBCHANNEL allocate min(vCPUs, receive queues, 4) - 1, open every offer, SET
 *               RECEIVE_SCALE_PARAMETERS disabled and then enabled (128-entry table i % n, 40-byte
 *               Toeplitz key), take the host's SEND_INDIRECTION_TABLE if it sends one;
 *   filter      SET CURRENT_PACKET_FILTER directed | all-multicast | broadcast (promiscuous too in
 *               the watch mode), as `ip link set up`.
 * Then the data phase runs at CPL3 (native here; CPL0 is interpreted), polling every channel: it
 * completes each transfer-page packet, answers ARP and ICMP echo for its address, and sends frames
 * as RNDIS PACKET messages copied into send-buffer sections (Linux's path for frames that fit a
 * section). What it does besides depends on the mode it was built for (-DMODE_*, Makefile):
 *   netvsc.bin        responder: ARP + ICMP echo until a stop datagram (below);
 *   netvsc-ping.bin   pings PEER_IP (the responder) 20 times, then sends it the stop datagram;
 *   netvsc-watch.bin  promiscuous: prints every frame from another MAC (the first 32), until a
 *                     stop datagram;
 *   netvsc-udp.bin    sends 10 UDP datagrams to the host each way: plain, with the UDP checksum
 *                     offloaded (TX checksum PPI), and with a spoofed source MAC; then responds;
 *   netvsc-bench.bin  blasts UDP frames of 64 and 1514 bytes to the host, then counts the host's.
 *
 * Addressing: the MAC is the host's (PERMANENT_ADDRESS); the IPv4 address is 10.99.0.<last MAC
 * byte>/24, the host (an internal switch's address) 10.99.0.1. A UDP datagram to port 9 whose
 * payload starts with "veneer-netvsc-stop" ends a mode that waits for one.
 *
 * Output: one line per step and check; the last is "netvsc: all checks passed" and exit status
 * 0, or "netvsc: FAILED <step>: <detail>" and 1.
 */
#include "../vmbus-echo/cpu.h"
#include "../vmbus-echo/hv.h"
#include "../vmbus-echo/ring.h"
#include "../vmbus-echo/vmbus.h"
#include "netvsc.h"

#if !defined(MODE_PING) && !defined(MODE_WATCH) && !defined(MODE_UDP) && !defined(MODE_BENCH)
#define MODE_RESPONDER
#endif

/* ---- memory layout ----------------------------------------------------------------------- */

/* Everything large lives in fixed RAM past the image (no .bss to clear at interpreted CPL0). */
#define RING_POOL_PA 0x800000UL         /* MAX_CHANNELS x 2 x RING_PAGES pages */
#define SEND_BUF_PA 0xA00000UL          /* SEND_BUF_BYTES */
#define PFN_SCRATCH_PA 0xC00000UL       /* the GPADLs' PFN lists (4096 x 8 bytes) */
#define RECV_BUF_PA 0x1000000UL         /* RECV_BUF_BYTES: the VM needs 48 MiB or more */
/* Linux's defaults (netvsc_drv.c): 9709 receive sections of 1728 bytes, 192 send sections of
 * 6144 bytes, each buffer rounded up to whole pages. */
#define RECV_BUF_BYTES (((9709UL * 1728) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
#define SEND_BUF_BYTES (192UL * 6144)
#define RECV_BUF_PAGES (RECV_BUF_BYTES / PAGE_SIZE)
#define SEND_BUF_PAGES (SEND_BUF_BYTES / PAGE_SIZE)
/* 128 KiB each way (Linux's netvsc uses 512 KiB; the window this runtime maps rings into holds
 * four channels of 128 KiB). */
#define RING_PAGES 32
#define RING_DATA_PAGES (RING_PAGES - 1)
#define WINDOW_PAGES_PER_RING (1 + 2 * RING_DATA_PAGES)
#define MAX_CHANNELS 4
#define MAX_SEND_SECTIONS 2048
_Static_assert(MAX_CHANNELS * 2 * WINDOW_PAGES_PER_RING <= RING_WINDOW_PAGES, "ring window too small");
_Static_assert(SEND_BUF_PA + SEND_BUF_BYTES <= PFN_SCRATCH_PA, "send buffer overlaps the PFN scratch");
_Static_assert(RING_POOL_PA + MAX_CHANNELS * 2 * RING_PAGES * PAGE_SIZE <= SEND_BUF_PA, "rings overlap the send buffer");

#define REPLY_MS 5000
#define STALL_MS 10000
#define MTU 1500
#define NETVSC_MTU_MIN 68
/* Ids of what this guest sends: control messages count up from 1; data and RNDIS sends carry
 * SEND_ID_BASE + their send section, so a completion names the section it frees. */
#define SEND_ID_BASE 0x100000000UL

extern char _end[];

static const u8 adapter_interface[16] = { 0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46,
                                          0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e };

/* ---- state ------------------------------------------------------------------------------- */

struct channel {
    struct vmbus_offer_info offer;
    u32 gpadl;
    struct ring out, in;
    u64 signals, frames_in, frames_out, xfer_packets;
};

static struct channel channels[MAX_CHANNELS];
static u32 channel_count;
static u32 nvsp_version;
static u32 send_section_size, send_section_count;
static u32 free_sections[MAX_SEND_SECTIONS];
static u32 free_count;
static u8 section_busy[MAX_SEND_SECTIONS];
static u64 next_control_id = 1;
static u32 next_rndis_id = 1;
static u32 indirection[NVSP_INDIRECTION_ENTRIES];
static bool have_indirection;

/* The completion a control request waits for. */
static struct {
    bool ready;
    u64 id;
    u32 len;
    struct nvsp_message msg;
} nvsp_reply;

/* The RNDIS completion a request waits for (it arrives in the receive buffer). */
static struct {
    bool ready;
    u32 type, len;
    u8 data[1024];
} rndis_reply;

static struct {
    u64 link_up, link_down, network_change, other;
} indications;
static u64 stray_completions, dropped_tx, vf_associations;
static u64 rx_csum_udp_ok, rx_csum_ip_ok;

static u8 my_mac[ETH_ALEN];
static u8 my_ip[4] = { 10, 99, 0, 0 };
static __attribute__((unused)) const u8 host_ip[4] = { 10, 99, 0, 1 };
static const u8 broadcast_mac[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static bool stop_requested;

static struct channel *primary(void) { return &channels[0]; }
static u8 *recv_buf(void) { return (u8 *)RECV_BUF_PA; }
static u8 *send_section(u32 index) { return (u8 *)SEND_BUF_PA + (u64)index * send_section_size; }

/* ---- channels ---------------------------------------------------------------------------- */

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

/* vmbus_open as netvsc_device_add / netvsc_sc_open call it: one GPADL over both rings
 * (outbound first), no userdata. */
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
    vmbus_create_gpadl(c->offer.child_relid, c->gpadl, pfns, 2 * RING_PAGES);
    vmbus_open(c->offer.child_relid, c->gpadl, RING_PAGES);
    printf(PROG ": %s: relid %u (sub-channel %u) open, connection 0x%x\n", step, c->offer.child_relid,
           c->offer.sub_channel_index, c->offer.connection_id);
}

static void signal_host(struct channel *c, const char *step)
{
    u16 status = hv_signal_event(c->offer.connection_id, 0);
    if (status != HV_STATUS_SUCCESS)
        fail(step, "HvSignalEvent on connection 0x%x returned 0x%x", c->offer.connection_id, status);
    c->signals++;
}

/* One packet into c's outbound ring; false when the ring has no room. */
static bool try_write(struct channel *c, u16 type, u64 id, u16 flags, const void *header, u32 header_len,
                      const void *payload, u32 len, const char *step)
{
    bool signal;
    if (!ring_write_packet(&c->out, type, id, flags, header, header_len, payload, len, &signal))
        return false;
    if (signal)
        signal_host(c, step);
    return true;
}

/* The same, waiting (bounded) for room: the host drains the ring by itself. */
static void write_packet(struct channel *c, u16 type, u64 id, u16 flags, const void *payload, u32 len, const char *step)
{
    u64 deadline = deadline_ms(STALL_MS);
    while (!try_write(c, type, id, flags, NULL, 0, payload, len, step)) {
        if (expired(deadline))
            fail(step, "outbound ring of relid %u full for %u ms", c->offer.child_relid, STALL_MS);
        cpu_relax();
    }
}

/* ---- send sections ----------------------------------------------------------------------- */

static bool take_section(u32 *index)
{
    if (free_count == 0)
        return false;
    *index = free_sections[--free_count];
    section_busy[*index] = 1;
    return true;
}

static void release_section(u32 index, const char *step)
{
    if (index >= send_section_count || !section_busy[index])
        fail(step, "send completion for section %u, which is not in flight (%u sections)", index, send_section_count);
    section_busy[index] = 0;
    free_sections[free_count++] = index;
}

/* ---- receiving --------------------------------------------------------------------------- */

struct frame_info {
    u32 csum;           /* the checksum PPI's receive bits, 0 without one */
    u32 vlan;           /* the 802.1Q PPI, 0 without one */
    bool has_vlan;
};

static void on_frame(struct channel *c, const u8 *frame, u32 len, const struct frame_info *info);

/* A completion (packet type 11) from the host. */
static void on_completion(u64 id, const u8 *body, u32 len, const char *step)
{
    u32 type = 0;
    if (len >= 4)
        memcpy(&type, body, 4);
    if (type == NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE && id >= SEND_ID_BASE) {
        /* A completion without a body is an error to Linux (only SWITCH_DATA_PATH may be empty). */
        u32 status = 0;
        if (len < 8)
            fail(step, "SEND_RNDIS_PKT completion of %u bytes (Linux needs the status)", len);
        memcpy(&status, body + 4, 4);
        if (status != NVSP_STAT_SUCCESS)
            fail(step, "SEND_RNDIS_PKT for section %lu completed with status %u", id - SEND_ID_BASE, status);
        if (id - SEND_ID_BASE >= send_section_count)
            fail(step, "send completion with transaction 0x%lx names no section", id);
        release_section((u32)(id - SEND_ID_BASE), step);
        return;
    }
    if (id == VMBUS_RQST_ID_NO_RESPONSE || nvsp_reply.ready) {
        /* NDIS_CONFIG / NDIS_VER: Linux asks for none but tolerates one (OpenVMM sends one). */
        stray_completions++;
        return;
    }
    nvsp_reply.ready = true;
    nvsp_reply.id = id;
    nvsp_reply.len = len < sizeof(nvsp_reply.msg) ? len : (u32)sizeof(nvsp_reply.msg);
    memset(&nvsp_reply.msg, 0, sizeof(nvsp_reply.msg));
    memcpy(&nvsp_reply.msg, body, nvsp_reply.len);
}

/* An in-band NVSP message the host sends by itself. */
static void on_inband(const u8 *body, u32 len, const char *step)
{
    struct nvsp_message m;
    memset(&m, 0, sizeof(m));
    memcpy(&m, body, len < sizeof(m) ? len : sizeof(m));
    if (len < 4)
        fail(step, "in-band packet of %u bytes from the host", len);
    switch (m.msg_type) {
    case NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE: {
        /* netvsc_send_table: count must be 16; the table sits at `offset` from the message start. */
        u32 count = m.indirection_table.count, offset = m.indirection_table.offset;
        if (count != NVSP_INDIRECTION_ENTRIES || offset < 12 || offset > len || len - offset < count * 4)
            fail(step, "SEND_INDIRECTION_TABLE count %u offset %u in %u bytes", count, offset, len);
        memcpy(indirection, body + offset, sizeof(indirection));
        have_indirection = true;
        return;
    }
    case NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION:
        vf_associations++;
        return;
    default:
        fail(step, "unexpected in-band NVSP message type %u (%u bytes)", m.msg_type, len);
    }
}

/* One RNDIS PACKET in the receive buffer: bounds as Linux's rndis_filter_receive_data checks. */
static void on_rndis_packet(struct channel *c, const u8 *msg, u32 msg_len, const char *step)
{
    if (msg_len < sizeof(struct rndis_header) + sizeof(struct rndis_packet))
        fail(step, "RNDIS PACKET of %u bytes", msg_len);
    struct rndis_packet p;
    memcpy(&p, msg + 8, sizeof(p));
    u32 body_len = msg_len - 8;
    if (p.data_offset > body_len || p.data_len > body_len - p.data_offset || p.data_len < ETH_HLEN)
        fail(step, "RNDIS PACKET data %u bytes at %u in a %u-byte body", p.data_len, p.data_offset, body_len);
    if (p.per_pkt_info_offset > body_len || p.per_pkt_info_len > body_len - p.per_pkt_info_offset)
        fail(step, "RNDIS PACKET PPIs %u bytes at %u in a %u-byte body", p.per_pkt_info_len, p.per_pkt_info_offset,
             body_len);
    struct frame_info info = { 0 };
    const u8 *ppi = msg + 8 + p.per_pkt_info_offset;
    for (u32 left = p.per_pkt_info_len; left > 0;) {
        struct rndis_per_packet_info h;
        if (left < sizeof(h))
            fail(step, "%u stray PPI bytes", left);
        memcpy(&h, ppi, sizeof(h));
        if (h.size < sizeof(h) || h.size > left || h.ppi_offset < sizeof(h) || h.ppi_offset > h.size)
            fail(step, "PPI type %u size %u offset %u with %u bytes left", h.type, h.size, h.ppi_offset, left);
        u32 value = 0;
        if (h.size - h.ppi_offset >= 4)
            memcpy(&value, ppi + h.ppi_offset, 4);
        switch (h.type & 0x7FFFFFFF) {
        case PPI_TCPIP_CHKSUM:
            info.csum = value;
            break;
        case PPI_IEEE_8021Q:
            info.vlan = value;
            info.has_vlan = true;
            break;
        default:
            break;
        }
        ppi += h.size;
        left -= h.size;
    }
    if (info.csum & CSUM_RX_UDP_SUCCEEDED)
        rx_csum_udp_ok++;
    if (info.csum & CSUM_RX_IP_SUCCEEDED)
        rx_csum_ip_ok++;
    c->frames_in++;
    on_frame(c, msg + 8 + p.data_offset, p.data_len, &info);
}

static void on_rndis(struct channel *c, const u8 *msg, u32 len, const char *step)
{
    struct rndis_header h;
    if (len < sizeof(h))
        fail(step, "RNDIS message of %u bytes", len);
    memcpy(&h, msg, sizeof(h));
    if (h.msg_len < sizeof(h) || h.msg_len > len)
        fail(step, "RNDIS message type 0x%x claims %u bytes in a %u-byte range", h.msg_type, h.msg_len, len);
    switch (h.msg_type) {
    case RNDIS_MSG_PACKET:
        on_rndis_packet(c, msg, h.msg_len, step);
        return;
    case RNDIS_MSG_INDICATE: {
        struct rndis_indicate_status s;
        if (h.msg_len < sizeof(h) + sizeof(s))
            fail(step, "INDICATE_STATUS of %u bytes", h.msg_len);
        memcpy(&s, msg + 8, sizeof(s));
        if (s.status == RNDIS_STATUS_MEDIA_CONNECT)
            indications.link_up++;
        else if (s.status == RNDIS_STATUS_MEDIA_DISCONNECT)
            indications.link_down++;
        else if (s.status == RNDIS_STATUS_NETWORK_CHANGE)
            indications.network_change++;
        else
            indications.other++;
        return;
    }
    case RNDIS_MSG_INIT | RNDIS_MSG_COMPLETION:
    case RNDIS_MSG_QUERY | RNDIS_MSG_COMPLETION:
    case RNDIS_MSG_SET | RNDIS_MSG_COMPLETION:
    case RNDIS_MSG_RESET | RNDIS_MSG_COMPLETION:
    case RNDIS_MSG_KEEPALIVE | RNDIS_MSG_COMPLETION:
        if (h.msg_len > sizeof(rndis_reply.data))
            fail(step, "RNDIS completion 0x%x of %u bytes", h.msg_type, h.msg_len);
        if (rndis_reply.ready)
            fail(step, "RNDIS completion 0x%x while another is unread", h.msg_type);
        memcpy(rndis_reply.data, msg, h.msg_len);
        rndis_reply.type = h.msg_type;
        rndis_reply.len = h.msg_len;
        rndis_reply.ready = true;
        return;
    default:
        fail(step, "RNDIS message type 0x%x from the host", h.msg_type);
    }
}

/* A transfer-page packet: ranges of the receive buffer, each one RNDIS message. Completed at
 * once, as Linux's netvsc_receive (status 1) once it has copied the frames out. */
static void on_transfer_pages(struct channel *c, const struct vmpacket_descriptor *d, const char *step)
{
    u32 offset = d->offset8 * 8, total = d->len8 * 8;
    const u8 *packet = (const u8 *)d;
    if (offset < 16 + sizeof(struct vmtransfer_page_header) || total - offset < 12)
        fail(step, "transfer-page packet with data offset %u, length %u", offset, total);
    const struct vmtransfer_page_header *t = (const void *)(packet + 16);
    struct nvsp_message m;
    memset(&m, 0, sizeof(m));
    memcpy(&m, packet + offset, total - offset < sizeof(m) ? total - offset : sizeof(m));
    if (m.msg_type != NVSP_MSG1_TYPE_SEND_RNDIS_PKT)
        fail(step, "transfer-page packet carries NVSP type %u, want %u", m.msg_type, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
    if (t->xfer_pageset_id != NETVSC_RECEIVE_BUFFER_ID)
        fail(step, "transfer-page packet for page set 0x%x, want 0x%x (Linux drops it)", t->xfer_pageset_id,
             NETVSC_RECEIVE_BUFFER_ID);
    u32 count = t->range_cnt;
    if (count == 0 || count > (offset - 16 - sizeof(*t)) / sizeof(struct vmtransfer_page_range))
        fail(step, "transfer-page packet with %u ranges in a %u-byte header", count, offset);
    c->xfer_packets++;
    for (u32 i = 0; i < count; i++) {
        struct vmtransfer_page_range r = t->ranges[i];
        if (r.byte_offset >= RECV_BUF_BYTES || r.byte_count > RECV_BUF_BYTES - r.byte_offset)
            fail(step, "range %u: %u bytes at %u, outside the %lu-byte receive buffer", i, r.byte_count, r.byte_offset,
                 RECV_BUF_BYTES);
        on_rndis(c, recv_buf() + r.byte_offset, r.byte_count, step);
    }
    struct { u32 type, status; } PACKED done = { NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, NVSP_STAT_SUCCESS };
    write_packet(c, VM_PKT_COMP, d->trans_id, 0, &done, sizeof(done), step);
}

/* Takes and handles c's next inbound packet; false when the ring is empty. */
static bool poll_channel(struct channel *c, const char *step)
{
    const struct vmpacket_descriptor *d = ring_peek(&c->in, step);
    if (d == NULL)
        return false;
    const u8 *body = (const u8 *)d + d->offset8 * 8;
    u32 len = (u32)(d->len8 - d->offset8) * 8;
    switch (d->type) {
    case VM_PKT_COMP:
        on_completion(d->trans_id, body, len, step);
        break;
    case VM_PKT_DATA_INBAND:
        on_inband(body, len, step);
        break;
    case VM_PKT_DATA_USING_XFER_PAGES:
        on_transfer_pages(c, d, step);
        break;
    default:
        fail(step, "packet type %u on relid %u", d->type, c->offer.child_relid);
    }
    if (ring_consume(&c->in, d))
        signal_host(c, step);
    return true;
}

static bool poll_all(const char *step)
{
    bool any = false;
    for (u32 k = 0; k < channel_count; k++)
        while (poll_channel(&channels[k], step))
            any = true;
    return any;
}

/* ---- control requests -------------------------------------------------------------------- */

/* Sends a 40-byte NVSP message on c with a completion requested and waits for that completion. */
static struct nvsp_message *nvsp_request(struct channel *c, struct nvsp_message *m, u32 min_reply, const char *step)
{
    u64 id = next_control_id++;
    nvsp_reply.ready = false;
    write_packet(c, VM_PKT_DATA_INBAND, id, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, m, sizeof(*m), step);
    u64 deadline = deadline_ms(REPLY_MS);
    while (!nvsp_reply.ready) {
        if (!poll_channel(c, step)) {
            if (expired(deadline))
                fail(step, "no completion for NVSP message %u within %u ms (Linux waits forever here)", m->msg_type,
                     REPLY_MS);
            cpu_relax();
        }
    }
    if (nvsp_reply.id != id)
        fail(step, "completion for transaction 0x%lx, want 0x%lx", nvsp_reply.id, id);
    if (nvsp_reply.len < min_reply)
        fail(step, "completion of NVSP message %u carries %u bytes; Linux needs %u", m->msg_type, nvsp_reply.len,
             min_reply);
    nvsp_reply.ready = false;
    return &nvsp_reply.msg;
}

/* An NVSP message Linux sends without asking for a completion. */
static void nvsp_post(struct channel *c, const struct nvsp_message *m, const char *step)
{
    write_packet(c, VM_PKT_DATA_INBAND, VMBUS_RQST_ID_NO_RESPONSE, 0, m, sizeof(*m), step);
}

/* Sends an RNDIS message (copied into a send section, channel type 1 = control) on the primary
 * channel and waits for its completion in the receive buffer. Returns the completion. */
static const u8 *rndis_request(const void *msg, u32 len, u32 want_type, const char *step)
{
    struct channel *c = primary();
    u32 section;
    u64 deadline = deadline_ms(REPLY_MS);
    while (!take_section(&section)) {
        poll_all(step);
        if (expired(deadline))
            fail(step, "no free send section for %u ms", REPLY_MS);
    }
    if (len > send_section_size)
        fail(step, "RNDIS request of %u bytes exceeds the %u-byte section", len, send_section_size);
    memcpy(send_section(section), msg, len);
    struct nvsp_message m;
    memset(&m, 0, sizeof(m));
    m.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT;
    m.send_rndis_pkt.channel_type = 1;
    m.send_rndis_pkt.send_buf_section_index = section;
    m.send_rndis_pkt.send_buf_section_size = len;
    rndis_reply.ready = false;
    write_packet(c, VM_PKT_DATA_INBAND, SEND_ID_BASE + section, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, &m,
                 sizeof(m), step);
    deadline = deadline_ms(REPLY_MS);
    while (!rndis_reply.ready) {
        if (!poll_all(step)) {
            if (expired(deadline))
                fail(step, "no RNDIS completion within %u ms (Linux waits forever here)", REPLY_MS);
            cpu_relax();
        }
    }
    rndis_reply.ready = false;
    if (rndis_reply.type != want_type)
        fail(step, "RNDIS completion type 0x%x, want 0x%x", rndis_reply.type, want_type);
    u32 req_id;
    memcpy(&req_id, rndis_reply.data + 8, 4);
    u32 sent_id;
    memcpy(&sent_id, (const u8 *)msg + 8, 4);
    if (req_id != sent_id)
        fail(step, "RNDIS completion for request %u, want %u (Linux drops it and waits on)", req_id, sent_id);
    return rndis_reply.data;
}

/* QUERY `oid` (with `in_len` bytes of input, as Linux sends for the two object queries); copies
 * at most `max` bytes of the answer to `out`. Returns its status and sets *got to its length. */
static u32 rndis_query(u32 oid, const void *in, u32 in_len, void *out, u32 max, u32 *got, const char *step)
{
    u8 buf[8 + sizeof(struct rndis_query_request) + 256];
    if (in_len > 256)
        fail(step, "query input of %u bytes", in_len);
    struct rndis_header h = { RNDIS_MSG_QUERY, (u32)(8 + sizeof(struct rndis_query_request) + in_len) };
    struct rndis_query_request q = { next_rndis_id++, oid, in_len, sizeof(struct rndis_query_request), 0 };
    memcpy(buf, &h, 8);
    memcpy(buf + 8, &q, sizeof(q));
    if (in_len)
        memcpy(buf + 8 + sizeof(q), in, in_len);
    const u8 *r = rndis_request(buf, h.msg_len, RNDIS_MSG_QUERY | RNDIS_MSG_COMPLETION, step);
    u32 msg_len;
    memcpy(&msg_len, r + 4, 4);
    struct rndis_query_complete c;
    if (msg_len < 8 + sizeof(c))
        fail(step, "QUERY_CMPLT of %u bytes", msg_len);
    memcpy(&c, r + 8, sizeof(c));
    *got = 0;
    if (c.status != RNDIS_STATUS_SUCCESS)
        return c.status;
    /* rndis_filter_query_device: the answer must fit the caller's buffer and the message, and
     * start after the completion's own 16 bytes (Linux checks that even for an empty answer). */
    if (c.info_buflen > max)
        fail(step, "QUERY 0x%08x answered %u bytes; Linux's buffer holds %u", oid, c.info_buflen, max);
    if (c.info_buf_offset < 16 || c.info_buf_offset > msg_len - 8 || c.info_buflen > msg_len - 8 - c.info_buf_offset)
        fail(step, "QUERY 0x%08x answer %u bytes at offset %u of a %u-byte message", oid, c.info_buflen,
             c.info_buf_offset, msg_len);
    memcpy(out, r + 8 + c.info_buf_offset, c.info_buflen);
    *got = c.info_buflen;
    return c.status;
}

static u32 rndis_set(u32 oid, const void *data, u32 len, const char *step)
{
    u8 buf[8 + sizeof(struct rndis_query_request) + 1024];
    if (len > 1024)
        fail(step, "SET data of %u bytes", len);
    struct rndis_header h = { RNDIS_MSG_SET, (u32)(8 + sizeof(struct rndis_query_request) + len) };
    struct rndis_query_request s = { next_rndis_id++, oid, len, sizeof(struct rndis_query_request), 0 };
    memcpy(buf, &h, 8);
    memcpy(buf + 8, &s, sizeof(s));
    memcpy(buf + 8 + sizeof(s), data, len);
    const u8 *r = rndis_request(buf, h.msg_len, RNDIS_MSG_SET | RNDIS_MSG_COMPLETION, step);
    struct rndis_set_complete c;
    memcpy(&c, r + 8, sizeof(c));
    return c.status;
}

/* ---- bring-up (CPL0) --------------------------------------------------------------------- */

static void negotiate(struct channel *c)
{
    static const u32 versions[] = { NVSP_PROTOCOL_VERSION_61, NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_5,
                                    NVSP_PROTOCOL_VERSION_4, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_1 };
    u32 i;
    for (i = 0; i < ARRAY_SIZE(versions); i++) {
        struct nvsp_message m;
        memset(&m, 0, sizeof(m));
        m.msg_type = NVSP_MSG_TYPE_INIT;
        m.init.min_protocol_ver = versions[i];
        m.init.max_protocol_ver = versions[i];
        struct nvsp_message *r = nvsp_request(c, &m, NVSP_MIN_COMPLETION, "nvsp");
        if (r->msg_type != NVSP_MSG_TYPE_INIT_COMPLETE)
            fail("nvsp", "INIT answered with type %u, want %u", r->msg_type, NVSP_MSG_TYPE_INIT_COMPLETE);
        printf(PROG ": nvsp: INIT 0x%x -> status %u\n", versions[i], r->init_complete.status);
        if (r->init_complete.status == NVSP_STAT_SUCCESS)
            break;
    }
    if (i == ARRAY_SIZE(versions))
        fail("nvsp", "host refused every NVSP version from 6.1 down to 1");
    nvsp_version = versions[i];
    if (nvsp_version != NVSP_PROTOCOL_VERSION_61)
        fail("nvsp", "host settled on 0x%x; issue 8 wants 6.1, the version a current Linux proposes first", nvsp_version);

    /* negotiate_nvsp_ver: NDIS config from NVSP 2, no completion asked for. */
    struct nvsp_message m;
    memset(&m, 0, sizeof(m));
    m.msg_type = NVSP_MSG2_TYPE_SEND_NDIS_CONFIG;
    m.send_ndis_config.mtu = MTU + ETH_HLEN;
    m.send_ndis_config.capability = NDIS_CAP_IEEE8021Q;
    if (nvsp_version >= NVSP_PROTOCOL_VERSION_5)
        m.send_ndis_config.capability |= NDIS_CAP_SRIOV | NDIS_CAP_TEAMING;
    if (nvsp_version >= NVSP_PROTOCOL_VERSION_61)
        m.send_ndis_config.capability |= NDIS_CAP_RSC;
    nvsp_post(c, &m, "nvsp");

    u32 ndis = nvsp_version <= NVSP_PROTOCOL_VERSION_4 ? NDIS_VERSION_6_1 : NDIS_VERSION_6_30;
    memset(&m, 0, sizeof(m));
    m.msg_type = NVSP_MSG1_TYPE_SEND_NDIS_VER;
    m.send_ndis_ver.ndis_major_ver = ndis >> 16;
    m.send_ndis_ver.ndis_minor_ver = ndis & 0xFFFF;
    nvsp_post(c, &m, "nvsp");
    printf(PROG ": nvsp: NDIS_CONFIG mtu %u caps 0x%lx and NDIS_VER %u.%u sent without completions\n", MTU + ETH_HLEN,
           (u64)(NDIS_CAP_IEEE8021Q | NDIS_CAP_SRIOV | NDIS_CAP_TEAMING | NDIS_CAP_RSC), ndis >> 16, ndis & 0xFFFF);
}

static u32 gpadl_of(struct channel *c, u32 number, u64 pa, u32 pages)
{
    u64 *pfns = (u64 *)PFN_SCRATCH_PA;
    for (u32 k = 0; k < pages; k++)
        pfns[k] = pa / PAGE_SIZE + k;
    u32 gpadl = VMBUS_FIRST_GPADL + MAX_CHANNELS + number;
    vmbus_create_gpadl(c->offer.child_relid, gpadl, pfns, pages);
    return gpadl;
}

/* netvsc_init_buf */
static void init_buffers(struct channel *c)
{
    u32 gpadl = gpadl_of(c, 0, RECV_BUF_PA, (u32)RECV_BUF_PAGES);
    struct nvsp_message m;
    memset(&m, 0, sizeof(m));
    m.msg_type = NVSP_MSG1_TYPE_SEND_RECV_BUF;
    m.send_buf.gpadl_handle = gpadl;
    m.send_buf.id = NETVSC_RECEIVE_BUFFER_ID;
    struct nvsp_message *r = nvsp_request(c, &m, NVSP_MIN_COMPLETION, "buffers");
    if (r->msg_type != NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE || r->recv_buf_complete.status != NVSP_STAT_SUCCESS)
        fail("buffers", "SEND_RECV_BUF answered with type %u status %u", r->msg_type, r->recv_buf_complete.status);
    struct nvsp_receive_buffer_section s = r->recv_buf_complete.sections[0];
    if (r->recv_buf_complete.num_sections != 1 || s.offset != 0)
        fail("buffers", "receive buffer has %u sections, the first at offset %u: Linux wants one at 0",
             r->recv_buf_complete.num_sections, s.offset);
    if (s.sub_alloc_size < NETVSC_MTU_MIN || (u64)s.sub_alloc_size * s.num_sub_allocs > RECV_BUF_BYTES)
        fail("buffers", "receive sub-allocations %u x %u bytes in a %lu-byte buffer", s.num_sub_allocs,
             s.sub_alloc_size, RECV_BUF_BYTES);
    printf(PROG ": buffers: receive buffer %lu KiB (GPADL 0x%x, %lu pages) id 0x%x: %u sub-allocations of %u bytes\n",
           RECV_BUF_BYTES / 1024, gpadl, RECV_BUF_PAGES, NETVSC_RECEIVE_BUFFER_ID, s.num_sub_allocs, s.sub_alloc_size);

    gpadl = gpadl_of(c, 1, SEND_BUF_PA, (u32)SEND_BUF_PAGES);
    memset(&m, 0, sizeof(m));
    m.msg_type = NVSP_MSG1_TYPE_SEND_SEND_BUF;
    m.send_buf.gpadl_handle = gpadl;
    m.send_buf.id = NETVSC_SEND_BUFFER_ID;
    r = nvsp_request(c, &m, NVSP_MIN_COMPLETION, "buffers");
    if (r->msg_type != NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE || r->send_buf_complete.status != NVSP_STAT_SUCCESS)
        fail("buffers", "SEND_SEND_BUF answered with type %u status %u", r->msg_type, r->send_buf_complete.status);
    send_section_size = r->send_buf_complete.section_size;
    if (send_section_size < NETVSC_MTU_MIN || send_section_size > SEND_BUF_BYTES)
        fail("buffers", "send section size %u (Linux needs at least %u)", send_section_size, NETVSC_MTU_MIN);
    send_section_count = (u32)(SEND_BUF_BYTES / send_section_size);
    if (send_section_count > MAX_SEND_SECTIONS)
        send_section_count = MAX_SEND_SECTIONS;
    for (u32 i = send_section_count; i-- > 0;)
        free_sections[free_count++] = i;
    printf(PROG ": buffers: send buffer %lu KiB (GPADL 0x%x) id 0: %u sections of %u bytes\n", SEND_BUF_BYTES / 1024,
           gpadl, send_section_count, send_section_size);
}

static u32 max_pkt_per_msg, pkt_align;

static void rndis_init(void)
{
    struct {
        struct rndis_header h;
        struct rndis_initialize_request r;
    } PACKED msg = { { RNDIS_MSG_INIT, sizeof(msg) }, { next_rndis_id++, 1, 0, 0x4000 } };
    const u8 *r = rndis_request(&msg, sizeof(msg), RNDIS_MSG_INIT | RNDIS_MSG_COMPLETION, "rndis");
    u32 len;
    memcpy(&len, r + 4, 4);
    struct rndis_initialize_complete c;
    if (len < 8 + sizeof(c))
        fail("rndis", "INITIALIZE_CMPLT of %u bytes, want %lu", len, 8 + sizeof(c));
    memcpy(&c, r + 8, sizeof(c));
    if (c.status != RNDIS_STATUS_SUCCESS)
        fail("rndis", "INITIALIZE completed with status 0x%x", c.status);
    if (c.pkt_alignment_factor > 12)
        fail("rndis", "packet alignment factor %u", c.pkt_alignment_factor);
    max_pkt_per_msg = c.max_pkt_per_msg;
    pkt_align = 1u << c.pkt_alignment_factor;
    printf(PROG ": rndis: INITIALIZE 1.0 -> %u.%u, medium %u, flags 0x%x, %u packets per message, alignment %u, "
                "max transfer 0x%x\n",
           c.major_ver, c.minor_ver, c.medium, c.dev_flags, c.max_pkt_per_msg, pkt_align, c.max_xfer_size);
    if (c.medium != 0)
        fail("rndis", "medium %u, want 0 (802.3)", c.medium);
}

static u32 u32_at(const u8 *p, u32 offset)
{
    u32 v;
    memcpy(&v, p + offset, 4);
    return v;
}

static u32 rss_queues;

/* rndis_filter_device_add's queries and rndis_netdev_set_hwcaps' SET, in Linux's order. */
static void rndis_queries(void)
{
    u8 buf[512];
    u32 got, status;

    status = rndis_query(OID_GEN_MAXIMUM_FRAME_SIZE, NULL, 0, buf, 4, &got, "mtu");
    if (status == RNDIS_STATUS_SUCCESS && got == 4)
        printf(PROG ": mtu: MAXIMUM_FRAME_SIZE %u\n", u32_at(buf, 0));
    else
        printf(PROG ": mtu: MAXIMUM_FRAME_SIZE not answered (status 0x%x, %u bytes): Linux keeps its MTU\n", status, got);

    status = rndis_query(OID_802_3_PERMANENT_ADDRESS, NULL, 0, buf, ETH_ALEN, &got, "mac");
    if (status != RNDIS_STATUS_SUCCESS || got != ETH_ALEN)
        fail("mac", "PERMANENT_ADDRESS: status 0x%x, %u bytes (Linux's probe fails)", status, got);
    memcpy(my_mac, buf, ETH_ALEN);
    if (my_mac[0] & 1)
        fail("mac", "PERMANENT_ADDRESS %02x:%02x:%02x:%02x:%02x:%02x is a multicast address", my_mac[0], my_mac[1],
             my_mac[2], my_mac[3], my_mac[4], my_mac[5]);
    my_ip[3] = my_mac[5];
    if (my_ip[3] == 0 || my_ip[3] == 1 || my_ip[3] == 255)
        fail("mac", "the MAC's last byte 0x%02x makes no host address in 10.99.0.0/24 (1 is the host's)", my_mac[5]);
    printf(PROG ": mac: %02x:%02x:%02x:%02x:%02x:%02x, so 10.99.0.%u\n", my_mac[0], my_mac[1], my_mac[2], my_mac[3],
           my_mac[4], my_mac[5], my_ip[3]);

    status = rndis_query(OID_GEN_FRIENDLY_NAME, NULL, 0, buf, 512, &got, "name");
    printf(PROG ": name: FRIENDLY_NAME status 0x%x, %u bytes\n", status, got);

    /* rndis_query_hwcaps: the object header Linux writes for NVSP >= 5, in a zeroed object. */
    u8 caps_in[NDIS_OFFLOAD_SIZE];
    memset(caps_in, 0, sizeof(caps_in));
    struct ndis_object_header hdr = { NDIS_OBJECT_TYPE_OFFLOAD, 3, NDIS_OFFLOAD_SIZE };
    memcpy(caps_in, &hdr, sizeof(hdr));
    status = rndis_query(OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, caps_in, sizeof(caps_in), buf, NDIS_OFFLOAD_SIZE, &got,
                         "offload");
    memcpy(&hdr, buf, sizeof(hdr));
    if (status != RNDIS_STATUS_SUCCESS || got < NDIS_OFFLOAD_SIZE_6_0 || hdr.type != NDIS_OBJECT_TYPE_OFFLOAD
        || hdr.revision < 1 || hdr.size < NDIS_OFFLOAD_SIZE_6_0 || hdr.size > NDIS_OFFLOAD_SIZE || hdr.size > got)
        fail("offload", "HARDWARE_CAPABILITIES: status 0x%x, %u bytes, type 0x%x revision %u size %u (Linux's probe "
                        "fails)",
             status, got, hdr.type, hdr.revision, hdr.size);
    u32 ip4_tx = u32_at(buf, NDIS_OFFLOAD_CSUM_IP4_TX), ip6_tx = u32_at(buf, NDIS_OFFLOAD_CSUM_IP6_TX);
    u32 lso4_encap = u32_at(buf, NDIS_OFFLOAD_LSOV2_IP4_ENCAP), lso4_max = u32_at(buf, NDIS_OFFLOAD_LSOV2_IP4_MAXSZ);
    bool rsc = hdr.size >= NDIS_OFFLOAD_SIZE && buf[144] && buf[145];
    printf(PROG ": offload: revision %u size %u: IPv4 tx csum 0x%x, IPv6 tx csum 0x%x, LSOv2 IPv4 encap 0x%x max %u, "
                "RSC %s\n",
           hdr.revision, hdr.size, ip4_tx, ip6_tx, lso4_encap, lso4_max, rsc ? "yes" : "no");
    if ((ip4_tx & 0x14) != 0x14 || !(ip4_tx & 0x40))
        fail("offload", "IPv4 tx checksum caps 0x%x lack TCP (0x14) or UDP (0x40): Linux would compute checksums itself",
             ip4_tx);

    struct ndis_offload_params p;
    memset(&p, 0, sizeof(p));
    p.header.type = NDIS_OBJECT_TYPE_DEFAULT;
    p.header.revision = nvsp_version <= NVSP_PROTOCOL_VERSION_4 ? 2 : 3;
    p.header.size = nvsp_version <= NVSP_PROTOCOL_VERSION_4 ? NDIS_OFFLOAD_PARAMETERS_SIZE_6_1 : NDIS_OFFLOAD_PARAMETERS_SIZE;
    p.ip_v4_csum = NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED;
    p.tcp_ip_v4_csum = NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED;
    p.udp_ip_v4_csum = NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED;
    if (lso4_encap & 0x2)
        p.lso_v2_ipv4 = NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED;
    if ((ip6_tx & 0x15) == 0x15) {
        p.tcp_ip_v6_csum = NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED;
        if (ip6_tx & 0x40)
            p.udp_ip_v6_csum = NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED;
        if ((u32_at(buf, NDIS_OFFLOAD_LSOV2_IP6_ENCAP) & 0x2) && (u32_at(buf, NDIS_OFFLOAD_LSOV2_IP6_OPTS) & 0x5) == 0x5)
            p.lso_v2_ipv6 = NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED;
    }
    if (rsc) {
        /* LRO starts off in Linux, so it turns RSC off explicitly (NDIS_OFFLOAD_PARAMETERS_RSC_DISABLED). */
        p.rsc_ip_v4 = 1;
        p.rsc_ip_v6 = 1;
    }
    status = rndis_set(OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p), "offload");
    if (status != RNDIS_STATUS_SUCCESS)
        fail("offload", "SET TCP_OFFLOAD_PARAMETERS: status 0x%x (Linux's probe fails)", status);
    printf(PROG ": offload: SET OFFLOAD_PARAMETERS tcp4 %u udp4 %u tcp6 %u udp6 %u lso4 %u lso6 %u -> status 0\n",
           p.tcp_ip_v4_csum, p.udp_ip_v4_csum, p.tcp_ip_v6_csum, p.udp_ip_v6_csum, p.lso_v2_ipv4, p.lso_v2_ipv6);

    status = rndis_query(OID_GEN_MEDIA_CONNECT_STATUS, NULL, 0, buf, 4, &got, "link");
    if (status != RNDIS_STATUS_SUCCESS || got != 4)
        fail("link", "MEDIA_CONNECT_STATUS: status 0x%x, %u bytes", status, got);
    printf(PROG ": link: MEDIA_CONNECT_STATUS %u (%s)\n", u32_at(buf, 0), u32_at(buf, 0) == 0 ? "connected" : "disconnected");
    if (u32_at(buf, 0) != 0)
        fail("link", "the adapter reports no link");

    status = rndis_query(OID_GEN_LINK_SPEED, NULL, 0, buf, 4, &got, "speed");
    if (status == RNDIS_STATUS_SUCCESS && got == 4)
        printf(PROG ": speed: LINK_SPEED %u Mbit/s\n", u32_at(buf, 0) / 10000);
    else
        printf(PROG ": speed: LINK_SPEED not answered (status 0x%x)\n", status);

    struct ndis_recv_scale_cap cap;
    memset(&cap, 0, sizeof(cap));
    cap.hdr = (struct ndis_object_header){ NDIS_OBJECT_TYPE_RSS_CAPABILITIES, 2, sizeof(cap) };
    status = rndis_query(OID_GEN_RECEIVE_SCALE_CAPABILITIES, &cap, sizeof(cap), buf, sizeof(cap), &got, "rss");
    memcpy(&cap, buf, sizeof(cap));
    if (status != RNDIS_STATUS_SUCCESS || got < sizeof(cap)) {
        rss_queues = 1;
        printf(PROG ": rss: RECEIVE_SCALE_CAPABILITIES not answered (status 0x%x, %u bytes): one channel\n", status, got);
    } else {
        rss_queues = cap.num_recv_que;
        printf(PROG ": rss: type 0x%x revision %u: %u receive queues, %u indirection entries, caps 0x%x\n", cap.hdr.type,
               cap.hdr.revision, cap.num_recv_que, cap.num_indirect_tabent, cap.capabilities);
    }
}

/* rndis_set_subchannel + rndis_filter_set_rss_param */
static void create_subchannels(u64 vcpus)
{
    u32 n = (u32)vcpus;
    if (n > rss_queues)
        n = rss_queues;
    if (n > MAX_CHANNELS)
        n = MAX_CHANNELS;
    if (n < 2)
        fail("subchannels", "%lu vCPUs and %u receive queues: no sub-channel to ask for (give the VM 4 vCPUs)", vcpus,
             rss_queues);
    struct nvsp_message m;
    memset(&m, 0, sizeof(m));
    m.msg_type = NVSP_MSG5_TYPE_SUBCHANNEL;
    m.subchannel_request.op = NVSP_SUBCHANNEL_ALLOCATE;
    m.subchannel_request.num_subchannels = n - 1;
    struct nvsp_message *r = nvsp_request(primary(), &m, NVSP_MIN_COMPLETION, "subchannels");
    if (r->msg_type != NVSP_MSG5_TYPE_SUBCHANNEL || r->subchannel_complete.status != NVSP_STAT_SUCCESS)
        fail("subchannels", "SUBCHANNEL %u answered with type %u status %u", n - 1, r->msg_type,
             r->subchannel_complete.status);
    u32 k = r->subchannel_complete.num_subchannels;
    if (k > n - 1 || k == 0)
        fail("subchannels", "host granted %u sub-channels for a request of %u", k, n - 1);
    printf(PROG ": subchannels: SUBCHANNEL allocate %u -> status 1, %u granted; waiting for %u offers\n", n - 1, k, k);
    /* netvsc_sc_open: the guest blocks until every granted sub-channel is open. */
    u32 seen = 0;
    for (u32 i = 1; i <= k; i++) {
        struct channel *c = &channels[i];
        vmbus_wait_offer(&c->offer, "subchannels");
        if (memcmp(c->offer.if_type, primary()->offer.if_type, 16) != 0
            || memcmp(c->offer.if_instance, primary()->offer.if_instance, 16) != 0)
            fail("subchannels", "offer relid %u is not of the adapter's interface and instance", c->offer.child_relid);
        u16 index = c->offer.sub_channel_index;
        if (index == 0 || index > k || (seen & (1u << index)))
            fail("subchannels", "offer relid %u has sub_channel_index %u: want each of 1..%u once", c->offer.child_relid,
                 index, k);
        seen |= 1u << index;
        if (c->offer.monitor_allocated || !c->offer.is_dedicated_interrupt || c->offer.connection_id == 0)
            fail("subchannels", "relid %u: this guest signals with HvSignalEvent on dedicated channels only",
                 c->offer.child_relid);
    }
    for (u32 i = 1; i <= k; i++)
        open_channel(&channels[i], i, "subchannels");
    channel_count = 1 + k;

    static u8 rss[sizeof(struct ndis_recv_scale_param) + ITAB_NUM * 4 + NETVSC_HASH_KEYLEN];
    static const u8 key[NETVSC_HASH_KEYLEN] = { 0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
                                                0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
                                                0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
                                                0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa };
    for (u32 pass = 0; pass < 2; pass++) {
        struct ndis_recv_scale_param p;
        memset(&p, 0, sizeof(p));
        p.hdr = (struct ndis_object_header){ NDIS_OBJECT_TYPE_RSS_PARAMETERS, 2, sizeof(p) };
        p.flag = pass == 0 ? NDIS_RSS_PARAM_FLAG_DISABLE_RSS : 0;
        p.hashinfo = NDIS_RSS_HASHINFO;
        p.indirect_tabsize = 4 * ITAB_NUM;
        p.indirect_taboffset = sizeof(p);
        p.hashkey_size = NETVSC_HASH_KEYLEN;
        p.hashkey_offset = p.indirect_taboffset + p.indirect_tabsize;
        memcpy(rss, &p, sizeof(p));
        for (u32 i = 0; i < ITAB_NUM; i++) {
            u32 q = i % channel_count;
            memcpy(rss + sizeof(p) + i * 4, &q, 4);
        }
        memcpy(rss + p.hashkey_offset, key, sizeof(key));
        u32 status = rndis_set(OID_GEN_RECEIVE_SCALE_PARAMETERS, rss, sizeof(rss), "rss");
        printf(PROG ": rss: SET RECEIVE_SCALE_PARAMETERS %s, table i %% %u -> status 0x%x\n",
               pass == 0 ? "disabled" : "enabled", channel_count, status);
        if (status != RNDIS_STATUS_SUCCESS)
            fail("rss", "RECEIVE_SCALE_PARAMETERS refused with 0x%x: Linux would run on one queue", status);
    }
    poll_all("rss");
    if (have_indirection) {
        printf(PROG ": rss: host's send indirection table:");
        for (u32 i = 0; i < NVSP_INDIRECTION_ENTRIES; i++) {
            printf(" %u", indirection[i]);
            if (indirection[i] >= channel_count)
                fail("rss", "indirection entry %u names channel %u of %u", i, indirection[i], channel_count);
        }
        printf("\n");
    }
}

static void set_packet_filter(u32 filter)
{
    u32 status = rndis_set(OID_GEN_CURRENT_PACKET_FILTER, &filter, 4, "filter");
    if (status != RNDIS_STATUS_SUCCESS)
        fail("filter", "SET CURRENT_PACKET_FILTER 0x%x: status 0x%x (`ip link set up` fails)", filter, status);
    printf(PROG ": filter: CURRENT_PACKET_FILTER 0x%x -> status 0\n", filter);
}

/* ---- sending frames ---------------------------------------------------------------------- */

/* Sends one frame on channel c as an RNDIS PACKET copied into a send section; with `csum`, a
 * checksum PPI asks the host to fill in the UDP checksum (as Linux for CHECKSUM_PARTIAL).
 * Returns false without a free section or ring room (the caller retries or drops). */
static bool send_frame(struct channel *c, const u8 *frame, u32 len, u32 csum)
{
    u32 section;
    if (!take_section(&section))
        return false;
    u8 *s = send_section(section);
    u32 ppi_len = csum ? sizeof(struct rndis_per_packet_info) + 4 : 0;
    u32 msg_len = 8 + (u32)sizeof(struct rndis_packet) + ppi_len + len;
    if (msg_len > send_section_size)
        fail("send", "a %u-byte frame does not fit a %u-byte section", len, send_section_size);
    struct rndis_header h = { RNDIS_MSG_PACKET, msg_len };
    struct rndis_packet p;
    memset(&p, 0, sizeof(p));
    p.data_offset = (u32)sizeof(p) + ppi_len;
    p.data_len = len;
    if (csum) {
        p.per_pkt_info_offset = sizeof(p);
        p.per_pkt_info_len = ppi_len;
        struct rndis_per_packet_info i = { ppi_len, PPI_TCPIP_CHKSUM, sizeof(struct rndis_per_packet_info) };
        memcpy(s + 8 + sizeof(p), &i, sizeof(i));
        memcpy(s + 8 + sizeof(p) + sizeof(i), &csum, 4);
    }
    memcpy(s, &h, sizeof(h));
    memcpy(s + 8, &p, sizeof(p));
    memcpy(s + 8 + p.data_offset, frame, len);
    struct nvsp_message m;
    memset(&m, 0, sizeof(m));
    m.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT;
    m.send_rndis_pkt.channel_type = 0;
    m.send_rndis_pkt.send_buf_section_index = section;
    m.send_rndis_pkt.send_buf_section_size = msg_len;
    if (!try_write(c, VM_PKT_DATA_INBAND, SEND_ID_BASE + section, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, NULL, 0,
                   &m, sizeof(m), "send")) {
        section_busy[section] = 0;
        free_sections[free_count++] = section;
        return false;
    }
    c->frames_out++;
    return true;
}

/* Sends, polling for completions while no section or ring room is free (not from a handler). */
static void send_frame_wait(struct channel *c, const u8 *frame, u32 len, u32 csum, const char *step)
{
    u64 deadline = deadline_ms(STALL_MS);
    while (!send_frame(c, frame, len, csum)) {
        if (!poll_all(step) && expired(deadline))
            fail(step, "no send section or ring room for %u ms (%u of %u sections free)", STALL_MS, free_count,
                 send_section_count);
    }
}

/* From a receive handler: never waits (it would re-enter the receive path); drops and counts. */
static void reply_frame(struct channel *c, const u8 *frame, u32 len)
{
    if (!send_frame(c, frame, len, 0))
        dropped_tx++;
}

/* ---- Ethernet, ARP, IPv4 ------------------------------------------------------------------ */

static u16 checksum(const void *data, u32 len, u32 sum)
{
    const u8 *p = data;
    for (u32 i = 0; i + 1 < len; i += 2)
        sum += (u32)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (u32)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (u16)sum;
}

static void fill_ip(struct iphdr *ip, const u8 *src, const u8 *dst, u8 protocol, u32 payload)
{
    memset(ip, 0, sizeof(*ip));
    ip->ihl_version = 0x45;
    ip->tot_len = htons((u16)(sizeof(*ip) + payload));
    ip->frag_off = htons(0x4000);       /* DF */
    ip->ttl = 64;
    ip->protocol = protocol;
    memcpy(ip->saddr, src, 4);
    memcpy(ip->daddr, dst, 4);
    ip->check = htons((u16)~checksum(ip, sizeof(*ip), 0));
}

/* A UDP datagram from `src_mac` (normally ours) to dst; `offload`: leave the checksum to the host
 * (the field holds the pseudo-header sum, as Linux hands a CHECKSUM_PARTIAL skb over), else 0
 * (no checksum, valid for IPv4). Returns the frame length. */
static u32 build_udp(u8 *frame, const u8 *src_mac, const u8 *dst_mac, const u8 *dst_ip, u16 sport, u16 dport,
                     const void *payload, u32 payload_len, bool offload)
{
    struct ethhdr *e = (void *)frame;
    memcpy(e->dest, dst_mac, ETH_ALEN);
    memcpy(e->source, src_mac, ETH_ALEN);
    e->proto = htons(ETH_P_IP);
    struct iphdr *ip = (void *)(frame + ETH_HLEN);
    u32 udp_len = (u32)sizeof(struct udphdr) + payload_len;
    fill_ip(ip, my_ip, dst_ip, IPPROTO_UDP, udp_len);
    struct udphdr *u = (void *)(frame + ETH_HLEN + sizeof(*ip));
    u->source = htons(sport);
    u->dest = htons(dport);
    u->len = htons((u16)udp_len);
    u->check = 0;
    memcpy(frame + ETH_HLEN + sizeof(*ip) + sizeof(*u), payload, payload_len);
    if (offload) {
        u8 pseudo[12];
        memcpy(pseudo, ip->saddr, 4);
        memcpy(pseudo + 4, ip->daddr, 4);
        pseudo[8] = 0;
        pseudo[9] = IPPROTO_UDP;
        pseudo[10] = (u8)(udp_len >> 8);
        pseudo[11] = (u8)udp_len;
        u->check = htons(checksum(pseudo, sizeof(pseudo), 0));
    }
    return ETH_HLEN + (u32)sizeof(*ip) + udp_len;
}

static __attribute__((unused)) u32 csum_request(void)
{
    return CSUM_TX_IPV4 | CSUM_TX_UDP | (u32)(ETH_HLEN + sizeof(struct iphdr)) << CSUM_TX_HEADER_OFFSET_SHIFT;
}

static void send_arp(struct channel *c, u16 oper, const u8 *tha, const u8 *tpa, const u8 *dst_mac, bool wait)
{
    u8 frame[ETH_HLEN + sizeof(struct arphdr) + 18];   /* padded to the 60-byte minimum */
    memset(frame, 0, sizeof(frame));
    struct ethhdr *e = (void *)frame;
    memcpy(e->dest, dst_mac, ETH_ALEN);
    memcpy(e->source, my_mac, ETH_ALEN);
    e->proto = htons(ETH_P_ARP);
    struct arphdr *a = (void *)(frame + ETH_HLEN);
    a->htype = htons(1);
    a->ptype = htons(ETH_P_IP);
    a->hlen = ETH_ALEN;
    a->plen = 4;
    a->oper = htons(oper);
    memcpy(a->sha, my_mac, ETH_ALEN);
    memcpy(a->spa, my_ip, 4);
    memcpy(a->tha, tha, ETH_ALEN);
    memcpy(a->tpa, tpa, 4);
    if (wait)
        send_frame_wait(c, frame, sizeof(frame), 0, "arp");
    else
        reply_frame(c, frame, sizeof(frame));
}

/* What every mode answers and counts. */
static struct {
    u64 arp_requests, arp_replies_sent, echo_replies_sent, frames, foreign_vlan;
    u8 resolved_ip[4];
    u8 resolved_mac[ETH_ALEN];
    bool resolved;
    u64 echo_replies_seen;
    u16 last_echo_seq;
    u8 senders[8][4];
    u64 sender_frames[8];
    u32 sender_count;
} net;

static void note_sender(const u8 *ip)
{
    for (u32 i = 0; i < net.sender_count; i++)
        if (memcmp(net.senders[i], ip, 4) == 0) {
            net.sender_frames[i]++;
            return;
        }
    if (net.sender_count < ARRAY_SIZE(net.senders)) {
        memcpy(net.senders[net.sender_count], ip, 4);
        net.sender_frames[net.sender_count++] = 1;
    }
}

static void print_senders(void)
{
    printf(PROG ": senders:");
    for (u32 i = 0; i < net.sender_count; i++)
        printf(" %u.%u.%u.%u=%lu", net.senders[i][0], net.senders[i][1], net.senders[i][2], net.senders[i][3],
               net.sender_frames[i]);
    printf(net.sender_count ? "\n" : " none\n");
}

static void on_arp(struct channel *c, const u8 *frame, u32 len)
{
    if (len < ETH_HLEN + sizeof(struct arphdr))
        return;
    struct arphdr a;
    memcpy(&a, frame + ETH_HLEN, sizeof(a));
    if (a.htype != htons(1) || a.ptype != htons(ETH_P_IP) || a.hlen != ETH_ALEN || a.plen != 4)
        return;
    note_sender(a.spa);
    if (a.oper == htons(1) && memcmp(a.tpa, my_ip, 4) == 0) {
        net.arp_requests++;
        send_arp(c, 2, a.sha, a.spa, a.sha, false);
        net.arp_replies_sent++;
    } else if (a.oper == htons(2) && memcmp(a.tpa, my_ip, 4) == 0 && memcmp(a.spa, net.resolved_ip, 4) == 0) {
        memcpy(net.resolved_mac, a.sha, ETH_ALEN);
        net.resolved = true;
    }
}

static void on_udp(struct channel *c, const u8 *frame, u32 len, const struct iphdr *ip, const struct udphdr *u,
                   const u8 *payload, u32 payload_len, const struct frame_info *info);

static void on_ipv4(struct channel *c, const u8 *frame, u32 len, const struct frame_info *info)
{
    if (len < ETH_HLEN + sizeof(struct iphdr))
        return;
    struct iphdr ip;
    memcpy(&ip, frame + ETH_HLEN, sizeof(ip));
    u32 ihl = (ip.ihl_version & 0xF) * 4u;
    u32 total = ntohs(ip.tot_len);
    if ((ip.ihl_version >> 4) != 4 || ihl < sizeof(ip) || total < ihl || total > len - ETH_HLEN)
        return;
    note_sender(ip.saddr);
    if (memcmp(ip.daddr, my_ip, 4) != 0)
        return;
    const u8 *l4 = frame + ETH_HLEN + ihl;
    u32 l4_len = total - ihl;
    if (ip.protocol == IPPROTO_ICMP && l4_len >= sizeof(struct icmphdr)) {
        struct icmphdr icmp;
        memcpy(&icmp, l4, sizeof(icmp));
        if (icmp.type == 8 && icmp.code == 0) {
            /* Echo reply: same identifier, sequence and data; addresses swapped. */
            static u8 reply[1514];
            u32 n = ETH_HLEN + (u32)sizeof(struct iphdr) + l4_len;
            if (n > sizeof(reply))
                return;
            struct ethhdr *e = (void *)reply;
            memcpy(e->dest, frame + ETH_ALEN, ETH_ALEN);
            memcpy(e->source, my_mac, ETH_ALEN);
            e->proto = htons(ETH_P_IP);
            struct iphdr *rip = (void *)(reply + ETH_HLEN);
            fill_ip(rip, my_ip, ip.saddr, IPPROTO_ICMP, l4_len);
            u8 *ricmp = reply + ETH_HLEN + sizeof(struct iphdr);
            memcpy(ricmp, l4, l4_len);
            ricmp[0] = 0;
            ricmp[2] = ricmp[3] = 0;
            u16 sum = (u16)~checksum(ricmp, l4_len, 0);
            ricmp[2] = (u8)(sum >> 8);
            ricmp[3] = (u8)sum;
            reply_frame(c, reply, n);
            net.echo_replies_sent++;
        } else if (icmp.type == 0) {
            net.echo_replies_seen++;
            net.last_echo_seq = ntohs(icmp.sequence);
        }
    } else if (ip.protocol == IPPROTO_UDP && l4_len >= sizeof(struct udphdr)) {
        struct udphdr u;
        memcpy(&u, l4, sizeof(u));
        u32 ulen = ntohs(u.len);
        if (ulen < sizeof(u) || ulen > l4_len)
            return;
        const u8 *payload = l4 + sizeof(u);
        u32 payload_len = ulen - (u32)sizeof(u);
        static const char stop[] = "veneer-netvsc-stop";
        if (ntohs(u.dest) == 9 && payload_len >= sizeof(stop) - 1 && memcmp(payload, stop, sizeof(stop) - 1) == 0) {
            stop_requested = true;
            return;
        }
        on_udp(c, frame, len, &ip, &u, payload, payload_len, info);
    }
}

#ifdef MODE_WATCH
static void watch_frame(const u8 *frame, u32 len);
#endif

static void on_frame(struct channel *c, const u8 *frame, u32 len, const struct frame_info *info)
{
    net.frames++;
#ifdef MODE_WATCH
    watch_frame(frame, len);
#endif
    if (info->has_vlan)
        net.foreign_vlan++;     /* an access port's guest never sees a tag */
    u16 proto;
    memcpy(&proto, frame + 2 * ETH_ALEN, 2);
    if (proto == htons(ETH_P_ARP))
        on_arp(c, frame, len);
    else if (proto == htons(ETH_P_IP))
        on_ipv4(c, frame, len, info);
}

/* ARP for `ip` (broadcast once a second) until it answers or `seconds` pass. */
static __attribute__((unused)) bool resolve(const u8 *ip, u32 seconds, const char *step)
{
    memcpy(net.resolved_ip, ip, 4);
    net.resolved = false;
    static const u8 zero[ETH_ALEN];
    u64 end = deadline_ms(seconds * 1000UL);
    while (!net.resolved && !expired(end)) {
        send_arp(primary(), 1, zero, ip, broadcast_mac, true);
        u64 next = deadline_ms(1000);
        while (!net.resolved && !expired(next))
            if (!poll_all(step))
                cpu_relax();
    }
    if (net.resolved)
        printf(PROG ": %s: %u.%u.%u.%u is at %02x:%02x:%02x:%02x:%02x:%02x\n", step, ip[0], ip[1], ip[2], ip[3],
               net.resolved_mac[0], net.resolved_mac[1], net.resolved_mac[2], net.resolved_mac[3], net.resolved_mac[4],
               net.resolved_mac[5]);
    return net.resolved;
}

/* Answers ARP and pings until a stop datagram arrives or `seconds` pass; returns whether it
 * stopped. */
static __attribute__((unused)) bool serve(u32 seconds, const char *step)
{
    u64 end = deadline_ms(seconds * 1000UL);
    while (!stop_requested && !expired(end))
        if (!poll_all(step))
            cpu_relax();
    return stop_requested;
}

static __attribute__((unused)) void send_stop(const u8 *ip, const u8 *mac)
{
    static const char stop[] = "veneer-netvsc-stop";
    u8 frame[128];
    u32 n = build_udp(frame, my_mac, mac, ip, 9, 9, stop, sizeof(stop) - 1, false);
    send_frame_wait(primary(), frame, n, 0, "stop");
}

static void report(void)
{
    u64 in = 0, out = 0, signals = 0;
    printf(PROG ": channels: frames in/out per channel");
    for (u32 k = 0; k < channel_count; k++) {
        printf(" %lu/%lu", channels[k].frames_in, channels[k].frames_out);
        in += channels[k].frames_in;
        out += channels[k].frames_out;
        signals += channels[k].signals;
    }
    printf("\n" PROG ": totals: %lu frames in, %lu out, %lu ARP requests answered, %lu echo replies sent, %lu replies "
                 "dropped, %lu tagged frames, %lu UDP and %lu IP checksums verified by the host, link indications "
                 "up %lu down %lu, %lu host signals, %u of %u send sections completed back\n",
           in, out, net.arp_requests, net.echo_replies_sent, dropped_tx, net.foreign_vlan, rx_csum_udp_ok,
           rx_csum_ip_ok, indications.link_up, indications.link_down, signals, free_count, send_section_count);
    print_senders();
}

/* ---- modes (CPL3) ------------------------------------------------------------------------ */

#define STOP_WAIT_SECONDS 600

#ifdef MODE_RESPONDER
static void on_udp(struct channel *c, const u8 *frame, u32 len, const struct iphdr *ip, const struct udphdr *u,
                   const u8 *payload, u32 payload_len, const struct frame_info *info)
{
    (void)c, (void)frame, (void)len, (void)ip, (void)u, (void)payload, (void)payload_len, (void)info;
}

static u64 mode_main(u64 unused)
{
    (void)unused;
    printf(PROG ": ready: answering ARP and ICMP echo for 10.99.0.%u\n", my_ip[3]);
    if (!serve(STOP_WAIT_SECONDS, "responder"))
        fail("responder", "no stop datagram within %u s", STOP_WAIT_SECONDS);
    report();
    printf(PROG ": responder: stopped by datagram\n");
    return 0;
}
#endif

#ifdef MODE_PING
#ifndef PEER_HOST
#define PEER_HOST 10
#endif
#define PINGS 20
static void on_udp(struct channel *c, const u8 *frame, u32 len, const struct iphdr *ip, const struct udphdr *u,
                   const u8 *payload, u32 payload_len, const struct frame_info *info)
{
    (void)c, (void)frame, (void)len, (void)ip, (void)u, (void)payload, (void)payload_len, (void)info;
}

static u64 mode_main(u64 unused)
{
    (void)unused;
    const u8 peer[4] = { 10, 99, 0, PEER_HOST };
    printf(PROG ": ready: pinging 10.99.0.%u\n", PEER_HOST);
    /* The peer may still be coming up (its setup runs interpreted): ARP for up to two minutes. */
    if (!resolve(peer, 120, "ping"))
        fail("ping", "10.99.0.%u did not answer ARP within 120 s", PEER_HOST);
    u8 peer_mac[ETH_ALEN];
    memcpy(peer_mac, net.resolved_mac, ETH_ALEN);
    u32 answered = 0;
    for (u16 seq = 1; seq <= PINGS; seq++) {
        u8 frame[ETH_HLEN + sizeof(struct iphdr) + sizeof(struct icmphdr) + 56];
        struct ethhdr *e = (void *)frame;
        memcpy(e->dest, peer_mac, ETH_ALEN);
        memcpy(e->source, my_mac, ETH_ALEN);
        e->proto = htons(ETH_P_IP);
        u32 l4_len = sizeof(struct icmphdr) + 56;
        fill_ip((void *)(frame + ETH_HLEN), my_ip, peer, IPPROTO_ICMP, l4_len);
        u8 *icmp = frame + ETH_HLEN + sizeof(struct iphdr);
        memset(icmp, 0, l4_len);
        icmp[0] = 8;
        icmp[5] = 0x42;
        icmp[6] = (u8)(seq >> 8);
        icmp[7] = (u8)seq;
        for (u32 i = 8; i < l4_len; i++)
            icmp[i] = (u8)i;
        u16 sum = (u16)~checksum(icmp, l4_len, 0);
        icmp[2] = (u8)(sum >> 8);
        icmp[3] = (u8)sum;
        u64 before = net.echo_replies_seen;
        send_frame_wait(&channels[seq % channel_count], frame, sizeof(frame), 0, "ping");
        u64 deadline = deadline_ms(1000);
        while (net.echo_replies_seen == before && !expired(deadline))
            if (!poll_all("ping"))
                cpu_relax();
        if (net.echo_replies_seen > before && net.last_echo_seq == seq)
            answered++;
    }
    printf(PROG ": ping: %u of %u echo requests to 10.99.0.%u answered\n", answered, PINGS, PEER_HOST);
    send_stop(peer, peer_mac);
    report();
    if (answered != PINGS)
        fail("ping", "%u of %u pings lost", PINGS - answered, PINGS);
    return 0;
}
#endif

#ifdef MODE_WATCH
#define WATCH_PRINT_MAX 32
static u64 foreign_frames;

static void watch_frame(const u8 *frame, u32 len)
{
    if (memcmp(frame + ETH_ALEN, my_mac, ETH_ALEN) == 0)
        return;
    foreign_frames++;
    if (foreign_frames <= WATCH_PRINT_MAX)
        printf(PROG ": watch: frame %lu from %02x:%02x:%02x:%02x:%02x:%02x to %02x:%02x:%02x:%02x:%02x:%02x type "
                    "0x%02x%02x, %u bytes\n",
               foreign_frames, frame[6], frame[7], frame[8], frame[9], frame[10], frame[11], frame[0], frame[1], frame[2],
               frame[3], frame[4], frame[5], frame[12], frame[13], len);
}

static void on_udp(struct channel *c, const u8 *frame, u32 len, const struct iphdr *ip, const struct udphdr *u,
                   const u8 *payload, u32 payload_len, const struct frame_info *info)
{
    (void)c, (void)frame, (void)len, (void)ip, (void)u, (void)payload, (void)payload_len, (void)info;
}

static u64 mode_main(u64 unused)
{
    (void)unused;
    printf(PROG ": ready: watching every frame (promiscuous)\n");
    u64 start = rdtsc();
    u64 tick = deadline_ms(10000);
    u64 end = deadline_ms(STOP_WAIT_SECONDS * 1000UL);
    while (!stop_requested && !expired(end)) {
        if (!poll_all("watch"))
            cpu_relax();
        if (expired(tick)) {
            printf(PROG ": watch: %lu foreign frames after %lu s\n", foreign_frames, (rdtsc() - start) / tsc_hz);
            tick = deadline_ms(10000);
        }
    }
    report();
    printf(PROG ": watch: %lu foreign frames in all\n", foreign_frames);
    return 0;
}
#endif

#ifdef MODE_UDP
/* 10 datagrams each way of three kinds; the host's test counts what arrives (port 7000) and
 * sends 10 to port 7001, whose checksum results this guest reports. */
#define UDP_EACH 10
static u64 host_datagrams, host_datagrams_csum_ok;

static void on_udp(struct channel *c, const u8 *frame, u32 len, const struct iphdr *ip, const struct udphdr *u,
                   const u8 *payload, u32 payload_len, const struct frame_info *info)
{
    (void)c, (void)frame, (void)len, (void)ip, (void)payload, (void)payload_len;
    if (ntohs(u->dest) != 7001)
        return;
    host_datagrams++;
    if (info->csum & CSUM_RX_UDP_SUCCEEDED)
        host_datagrams_csum_ok++;
}

static u64 mode_main(u64 unused)
{
    (void)unused;
    printf(PROG ": ready: UDP to 10.99.0.1:7000\n");
    if (!resolve(host_ip, 60, "udp"))
        fail("udp", "the host (10.99.0.1) did not answer ARP within 60 s");
    u8 host_mac[ETH_ALEN];
    memcpy(host_mac, net.resolved_mac, ETH_ALEN);
    static const u8 spoofed[ETH_ALEN] = { 0x02, 0x00, 0x5e, 0x00, 0x00, 0x99 };
    u8 frame[256];
    char text[32];
    for (u32 i = 0; i < UDP_EACH; i++) {
        static const char *kinds[] = { "plain", "offload", "spoofed" };
        for (u32 kind = 0; kind < 3; kind++) {
            u32 n = 0;
            for (const char *s = kinds[kind]; *s; s++)
                text[n++] = *s;
            text[n++] = ' ';
            text[n++] = (char)('0' + i);
            u32 len = build_udp(frame, kind == 2 ? spoofed : my_mac, host_mac, host_ip, 7000, 7000, text, n, kind == 1);
            send_frame_wait(&channels[i % channel_count], frame, len, kind == 1 ? csum_request() : 0, "udp");
        }
    }
    printf(PROG ": udp: sent %u plain, %u with the checksum offloaded, %u from spoofed MAC 02:00:5e:00:00:99\n",
           UDP_EACH, UDP_EACH, UDP_EACH);
    if (!serve(STOP_WAIT_SECONDS, "udp"))
        fail("udp", "no stop datagram within %u s", STOP_WAIT_SECONDS);
    printf(PROG ": udp: %lu datagrams from the host on port 7001, %lu with the UDP checksum verified by the host\n",
           host_datagrams, host_datagrams_csum_ok);
    report();
    return 0;
}
#endif

#ifdef MODE_BENCH
#ifndef BENCH_SECONDS
#define BENCH_SECONDS 5
#endif
/* Host frames on port 9001 by size class (64-byte frames and the rest), each with the TSC of
 * its first and last frame. */
static struct {
    u64 frames, first, last;
} rx_class[2];

static void on_udp(struct channel *c, const u8 *frame, u32 len, const struct iphdr *ip, const struct udphdr *u,
                   const u8 *payload, u32 payload_len, const struct frame_info *info)
{
    (void)c, (void)frame, (void)ip, (void)payload, (void)payload_len, (void)info;
    if (ntohs(u->dest) != 9001)
        return;
    u64 now = rdtsc();
    u32 k = len <= 128 ? 0 : 1;
    if (rx_class[k].frames++ == 0)
        rx_class[k].first = now;
    rx_class[k].last = now;
}

/* Frames of `size` bytes to the host's port 9000 for BENCH_SECONDS, spread over the channels by
 * flow (source port = 10000 + channel), as fast as sections and rings allow. */
static void blast(const u8 *host_mac, u32 size)
{
    static u8 frames[MAX_CHANNELS][1514];
    static const u8 zeros[1514];
    u32 payload = size - ETH_HLEN - (u32)sizeof(struct iphdr) - (u32)sizeof(struct udphdr);
    for (u32 k = 0; k < channel_count; k++)
        build_udp(frames[k], my_mac, host_mac, host_ip, (u16)(10000 + k), 9000, zeros, payload, false);
    printf(PROG ": bench: tx %u start\n", size);
    u64 sent = 0, start = rdtsc(), end = start + BENCH_SECONDS * tsc_hz;
    u64 signals_before = 0;
    for (u32 k = 0; k < channel_count; k++)
        signals_before += channels[k].signals;
    u32 k = 0;
    while ((long)(rdtsc() - end) < 0) {
        if (send_frame(&channels[k], frames[k], size, 0)) {
            sent++;
            k = k + 1 == channel_count ? 0 : k + 1;
        } else {
            poll_all("bench");
        }
    }
    u64 deadline = deadline_ms(STALL_MS);
    while (free_count != send_section_count && !expired(deadline))
        poll_all("bench");
    u64 ns = (rdtsc() - start) * 1000 / (tsc_hz / 1000000);
    u64 signals = 0;
    for (u32 j = 0; j < channel_count; j++)
        signals += channels[j].signals;
    printf(PROG ": bench: tx %u frames %lu ns %lu signals %lu\n", size, sent, ns, signals - signals_before);
}

static u64 mode_main(u64 unused)
{
    (void)unused;
    printf(PROG ": ready: bench\n");
    if (!resolve(host_ip, 60, "bench"))
        fail("bench", "the host (10.99.0.1) did not answer ARP within 60 s");
    u8 host_mac[ETH_ALEN];
    memcpy(host_mac, net.resolved_mac, ETH_ALEN);
    blast(host_mac, 64);
    blast(host_mac, 1514);
    printf(PROG ": bench: rx ready\n");
    if (!serve(STOP_WAIT_SECONDS, "bench"))
        fail("bench", "no stop datagram within %u s", STOP_WAIT_SECONDS);
    for (u32 k = 0; k < 2; k++)
        printf(PROG ": bench: rx %u frames %lu ns %lu\n", k == 0 ? 64 : 1514, rx_class[k].frames,
               (rx_class[k].last - rx_class[k].first) * 1000 / (tsc_hz / 1000000));
    report();
    return 0;
}
#endif

/* ---- kmain (CPL0) ------------------------------------------------------------------------ */

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
    u32 adapters = vmbus_request_offers_of(adapter_interface, &c->offer, 1);
    if (adapters != 1)
        fail("offers", "%u offers of the network adapter " NETWORK_ADAPTER_GUID_TEXT ", want 1", adapters);
    if (c->offer.sub_channel_index != 0)
        fail("offers", "the adapter's offer has sub_channel_index %u, want 0 (primary)", c->offer.sub_channel_index);
    if (c->offer.monitor_allocated || !c->offer.is_dedicated_interrupt || c->offer.connection_id == 0)
        fail("offers", "adapter offer with monitor %u, dedicated %u, connection 0x%x: this guest signals with "
                       "HvSignalEvent on dedicated channels only",
             c->offer.monitor_allocated, c->offer.is_dedicated_interrupt, c->offer.connection_id);
    printf(PROG ": offers: network adapter " NETWORK_ADAPTER_GUID_TEXT " is relid %u\n", c->offer.child_relid);

    open_channel(c, 0, "open");
    channel_count = 1;
    negotiate(c);
    init_buffers(c);
    rndis_init();
    rndis_queries();
    create_subchannels(vcpu_count);
#ifdef MODE_WATCH
    set_packet_filter(NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_ALL_MULTICAST | NDIS_PACKET_TYPE_BROADCAST
                      | NDIS_PACKET_TYPE_PROMISCUOUS);
#else
    set_packet_filter(NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_ALL_MULTICAST | NDIS_PACKET_TYPE_BROADCAST);
#endif
    if (stray_completions)
        printf(PROG ": nvsp: %lu completions the guest did not ask for (tolerated, as Linux)\n", stray_completions);

    run_user(mode_main, 0, user_stack_top());

    printf(PROG ": all checks passed\n");
    guest_exit(0);
}
