/*
 * The test sequence. Setup runs at CPL0 (interpreted on this host, so it is short); the hot
 * loops run at CPL3 (native): the 10,000-packet echo exchange, or with -DBENCH the timed
 * round trips, HvSignalEvent calls and doorbell writes.
 */
#include "cpu.h"
#include "hv.h"
#include "ring.h"
#include "vmbus.h"

#if defined(KVPGUEST)
/* The KVP integration service: a9a0f4e7-5a45-4d96-b827-8a841e8c03e6, in wire order. */
#define DEVICE_NAME "KVP"
#define DEVICE_TEXT "KVP interface a9a0f4e7-5a45-4d96-b827-8a841e8c03e6"
static const u8 device_interface[16] = { 0xe7, 0xf4, 0xa0, 0xa9, 0x45, 0x5a, 0x96, 0x4d,
                                         0xb8, 0x27, 0x8a, 0x84, 0x1e, 0x8c, 0x03, 0xe6 };
#elif defined(VSSGUEST)
/* The VSS integration service: 35fa2e29-ea23-4236-96ae-3a6ebacba440, in wire order. */
#define DEVICE_NAME "VSS"
#define DEVICE_TEXT "VSS interface 35fa2e29-ea23-4236-96ae-3a6ebacba440"
static const u8 device_interface[16] = { 0x29, 0x2e, 0xfa, 0x35, 0x23, 0xea, 0x36, 0x42,
                                         0x96, 0xae, 0x3a, 0x6e, 0xba, 0xcb, 0xa4, 0x40 };
#elif defined(FCOPYGUEST)
/* The file-copy integration service: 34d14be3-dee4-41c8-9ae7-6b174977c192, in wire order. */
#define DEVICE_NAME "file copy"
#define DEVICE_TEXT "file-copy interface 34d14be3-dee4-41c8-9ae7-6b174977c192"
static const u8 device_interface[16] = { 0xe3, 0x4b, 0xd1, 0x34, 0xe4, 0xde, 0xc8, 0x41,
                                         0x9a, 0xe7, 0x6b, 0x17, 0x49, 0x77, 0xc1, 0x92 };
#elif defined(TIMESYNCGUEST)
/* The time-sync integration service: 9527e630-d0ae-497b-adce-e80ab0175caf, in wire order. */
#define DEVICE_NAME "timesync"
#define DEVICE_TEXT "timesync interface 9527e630-d0ae-497b-adce-e80ab0175caf"
static const u8 device_interface[16] = { 0x30, 0xe6, 0x27, 0x95, 0xae, 0xd0, 0x7b, 0x49,
                                         0xad, 0xce, 0xe8, 0x0a, 0xb0, 0x17, 0x5c, 0xaf };
#elif defined(HEARTBEAT)
/* The heartbeat integration service: 57164f39-9115-4e78-ab55-382f3bd5422d, in wire order. */
#define DEVICE_NAME "heartbeat"
#define DEVICE_TEXT "heartbeat interface 57164f39-9115-4e78-ab55-382f3bd5422d"
static const u8 device_interface[16] = { 0x39, 0x4f, 0x16, 0x57, 0x15, 0x91, 0x78, 0x4e,
                                         0xab, 0x55, 0x38, 0x2f, 0x3b, 0xd5, 0x42, 0x2d };
#else
/* Veneer's test echo VSP: e6cf4b56-4cfc-4b3c-9b5d-5e2f0e6a3b21, in wire (mixed-endian) order. */
#define DEVICE_NAME "echo"
#define DEVICE_TEXT "echo interface e6cf4b56-4cfc-4b3c-9b5d-5e2f0e6a3b21"
static const u8 device_interface[16] = { 0x56, 0x4b, 0xcf, 0xe6, 0xfc, 0x4c, 0x3c, 0x4b,
                                         0x9b, 0x5d, 0x5e, 0x2f, 0x0e, 0x6a, 0x3b, 0x21 };
#endif

/* Neither 1 nor 4 nor any relid | 2 << 12 the host hands out. */
#define UNKNOWN_CONNECTION_ID 0x7777

#define RING_DATA_PAGES 15
#define RING_PAGES (1 + RING_DATA_PAGES)
#define GPADL_PAGES (2 * RING_PAGES) /* 32 PFNs: a GPADL_HEADER (26) and one GPADL_BODY */
#define OUTBOUND_WINDOW_PAGE 0
#define INBOUND_WINDOW_PAGE 32

#define STALL_TIMEOUT_MS 3000

static struct vmbus_offer_info echo;
static struct ring outbound, inbound;
static u8 ring_pool[GPADL_PAGES][4096] ALIGNED(4096);
static u64 gpadl_pfns[GPADL_PAGES];

/* GPADL page k lives in pool page (7k + 3) mod 32: the rings are not physically contiguous (and
 * not in order), so the host's handling of scattered PFNs is exercised. */
static u8 *gpadl_page(u32 k) { return ring_pool[(k * 7 + 3) % GPADL_PAGES]; }

/* Maps ring `first_gpadl_page..+RING_PAGES` at window page `window`: control page, then the data
 * pages twice. */
static void *map_ring(u32 window, u32 first_gpadl_page)
{
    cpu_map_window_page(window, (u64)gpadl_page(first_gpadl_page));
    for (u32 j = 0; j < RING_DATA_PAGES; j++) {
        u64 pa = (u64)gpadl_page(first_gpadl_page + 1 + j);
        cpu_map_window_page(window + 1 + j, pa);
        cpu_map_window_page(window + 1 + RING_DATA_PAGES + j, pa);
    }
    return (void *)(RING_WINDOW_VA + (u64)window * PAGE_SIZE);
}

static void setup_rings(void)
{
    for (u32 k = 0; k < GPADL_PAGES; k++)
        gpadl_pfns[k] = (u64)gpadl_page(k) >> 12;
    void *out = map_ring(OUTBOUND_WINDOW_PAGE, 0);
    void *in = map_ring(INBOUND_WINDOW_PAGE, RING_PAGES);
    cpu_flush_tlb();
    ring_init(&outbound, out, RING_DATA_PAGES);
    ring_init(&inbound, in, RING_DATA_PAGES);
}

static void expect_status(const char *step, const char *what, u16 status, u16 want)
{
    if (status != want)
        fail(step, "%s returned 0x%x, want 0x%x", what, status, want);
}

static void check_hypercall_errors(void)
{
    expect_status("hypercall errors", "HvPostMessage with payload_size 241", hv_post_message_raw_size(VMBUS_MESSAGE_CONNECTION_ID,
                                                                                  VMBUS_MESSAGE_TYPE, 241),
                  HV_STATUS_INVALID_PARAMETER);
    struct vmbus_msg_header invalid = { 0, 0 };
    expect_status("hypercall errors", "HvPostMessage to unknown connection 0x7777",
                  hv_post_message(UNKNOWN_CONNECTION_ID, VMBUS_MESSAGE_TYPE, &invalid, sizeof(invalid)),
                  HV_STATUS_INVALID_CONNECTION_ID);
    expect_status("hypercall errors", "HvSignalEvent on unknown connection 0x7777", hv_signal_event(UNKNOWN_CONNECTION_ID, 0),
                  HV_STATUS_INVALID_CONNECTION_ID);
    printf(PROG ": hypercall errors: oversized post -> 0x5, post to unknown connection -> 0x12, "
                "signal on unknown connection -> 0x12\n");
}

static u64 host_signals;

static void signal_host(const char *step)
{
    u16 status = hv_signal_event(echo.connection_id, 0);
    if (status != HV_STATUS_SUCCESS)
        fail(step, "HvSignalEvent on connection 0x%x returned 0x%x", echo.connection_id, status);
    host_signals++;
}

static void stalled(const char *step, const char *what)
{
    fail(step, "%s: no progress for %u ms; outbound write %u read %u mask %u pending %u; "
               "inbound write %u read %u mask %u pending %u",
         what, STALL_TIMEOUT_MS, outbound.control->write_index, outbound.control->read_index,
         outbound.control->interrupt_mask, outbound.control->pending_send_sz, inbound.control->write_index,
         inbound.control->read_index, inbound.control->interrupt_mask, inbound.control->pending_send_sz);
}

#if defined(HEARTBEAT) || defined(KVPGUEST) || defined(VSSGUEST) || defined(FCOPYGUEST) || defined(TIMESYNCGUEST)

/* The guest side of the heartbeat IC as Linux hv_utils does it (drivers/hv/hv_util.c,
 * vmbus_prep_negotiate_resp in channel_mgmt.c): read each host packet at its ring length, answer
 * in the same buffer with TRANSACTION|RESPONSE and the host's request id. Polling at CPL0: a few
 * dozen packets, so the interpreter's speed does not matter. */

#define ICMSG_HDR 28
static u8 ic_buffer[8192]; /* a file-copy WRITE_TO_FILE is 28 + 6196 bytes */

static u16 get16(u32 at) { return (u16)(ic_buffer[at] | ic_buffer[at + 1] << 8); }
static void put16(u32 at, u16 v) { ic_buffer[at] = (u8)v; ic_buffer[at + 1] = (u8)(v >> 8); }

/* The next host packet within `ms`, copied to ic_buffer; returns its length (payload padded to
 * 8, which is what Linux's vmbus_recvpacket reports and echoes back). */
static u32 ic_receive_within(const char *step, u64 *trans_id, u32 ms)
{
    u64 deadline = deadline_ms(ms);
    const struct vmpacket_descriptor *d;
    while ((d = ring_peek(&inbound, step)) == NULL) {
        if (expired(deadline))
            stalled(step, "waiting for a packet from the heartbeat VSP");
        cpu_relax();
    }
    if (d->type != VM_PKT_DATA_INBAND)
        fail(step, "packet type %u, want %u (in-band)", d->type, VM_PKT_DATA_INBAND);
    u32 len = (u32)(d->len8 - d->offset8) * 8;
    if (len > sizeof(ic_buffer))
        fail(step, "a %u-byte packet", len);
    memcpy(ic_buffer, (const u8 *)d + d->offset8 * 8, len);
    *trans_id = d->trans_id;
    if (ring_consume(&inbound, d))
        signal_host(step);
    if (len < ICMSG_HDR)
        fail(step, "a %u-byte packet: Linux drops anything under %u bytes", len, ICMSG_HDR);
    if (ic_buffer[25] != 3)
        fail(step, "icflags 0x%x, want 0x3 (TRANSACTION|REQUEST)", ic_buffer[25]);
    return len;
}

static u32 ic_receive(const char *step, u64 *trans_id) { return ic_receive_within(step, trans_id, STALL_TIMEOUT_MS); }

static void ic_answer(const char *step, u64 trans_id, u32 len)
{
    ic_buffer[25] = 5; /* TRANSACTION|RESPONSE */
    bool signal;
    if (!ring_write_inband(&outbound, trans_id, 0, ic_buffer, len, &signal))
        fail(step, "outbound ring full");
    if (signal)
        signal_host(step);
}

/* Picks the first of `mine` (newest first) that the host listed in entries [first, first + count). */
static bool ic_pick(const u16 mine[][2], u32 n, u32 first, u32 count, u16 *major, u16 *minor)
{
    for (u32 i = 0; i < n; i++)
        for (u32 j = first; j < first + count; j++)
            if (get16(36 + 4 * j) == mine[i][0] && get16(38 + 4 * j) == mine[i][1]) {
                *major = mine[i][0];
                *minor = mine[i][1];
                return true;
            }
    return false;
}

/* What Linux accepts, newest first: framework 3.0 and 1.0 in hv_utils, 3.0 alone for VSS
 * (hv_snapshot.c) and file copy (hv_fcopy_uio_daemon.c). */
#if defined(KVPGUEST)
#define IC_SERVICE "KVP"
static const u16 service_versions[][2] = { { 4, 0 }, { 3, 0 }, { 1, 0 } }; /* hv_kvp.c kvp_versions */
static const u16 framework[][2] = { { 3, 0 }, { 1, 0 } };
#elif defined(VSSGUEST)
#define IC_SERVICE "VSS"
static const u16 service_versions[][2] = { { 5, 0 } };
static const u16 framework[][2] = { { 3, 0 } };
#elif defined(FCOPYGUEST)
#define IC_SERVICE "file copy"
static const u16 service_versions[][2] = { { 1, 1 } };
static const u16 framework[][2] = { { 3, 0 } };
#elif defined(TIMESYNCGUEST)
#define IC_SERVICE "timesync"
static const u16 service_versions[][2] = { { 4, 0 }, { 3, 0 }, { 1, 0 } }; /* hv_util.c ts_versions */
static const u16 framework[][2] = { { 3, 0 }, { 1, 0 } };
#else
#define IC_SERVICE "heartbeat"
static const u16 service_versions[][2] = { { 3, 0 }, { 1, 0 } };
static const u16 framework[][2] = { { 3, 0 }, { 1, 0 } };
#endif

static void ic_negotiate(void)
{
    u64 id;
    u32 len = ic_receive("negotiate", &id);
    if (get16(12) != 0)
        fail("negotiate", "first message of type %u, want 0 (version negotiation)", get16(12));
    u32 fw_count = get16(28), msg_count = get16(30);
    if (fw_count > 100 || msg_count > 100 || 36 + 4 * (fw_count + msg_count) > len)
        fail("negotiate", "counts %u/%u in a %u-byte packet", fw_count, msg_count, len);
    printf(PROG ": negotiate: %u bytes, host offers framework", len);
    for (u32 j = 0; j < fw_count + msg_count; j++)
        printf("%s %u.%u", j == fw_count ? ", " IC_SERVICE : "", get16(36 + 4 * j), get16(38 + 4 * j));
    printf("\n");
    u16 fw_major, fw_minor, hb_major, hb_minor;
    if (!ic_pick(framework, ARRAY_SIZE(framework), 0, fw_count, &fw_major, &fw_minor)
        || !ic_pick(service_versions, ARRAY_SIZE(service_versions), fw_count, msg_count, &hb_major, &hb_minor))
        fail("negotiate", "no framework/" IC_SERVICE " version Linux accepts");
    put16(18, 16);
    put16(28, 1);
    put16(30, 1);
    put16(36, fw_major);
    put16(38, fw_minor);
    put16(40, hb_major);
    put16(42, hb_minor);
    ic_answer("negotiate", id, len);
    printf(PROG ": negotiate: answered framework %u.%u, " IC_SERVICE " %u.%u\n", fw_major, fw_minor, hb_major, hb_minor);
}

#if defined(KVPGUEST)
#include "kvp.inc"
#elif defined(VSSGUEST) || defined(FCOPYGUEST)
#include "vss-fcopy.inc"
#elif defined(TIMESYNCGUEST)
#include "timesync.inc"
#else

/* One heartbeat: checks it and, if `answer`, sends seq_num + 1 back. Returns its seq_num. */
static u64 ic_heartbeat(bool answer)
{
    u64 id;
    u32 len = ic_receive("heartbeat", &id);
    if (get16(12) != 1)
        fail("heartbeat", "message of type %u, want 1 (heartbeat)", get16(12));
    if (len < ICMSG_HDR + 8)
        fail("heartbeat", "%u bytes: Linux needs %u", len, ICMSG_HDR + 8);
    if (get16(8) != 3 || get16(10) != 0 || get16(14) != 3 || get16(16) != 0)
        fail("heartbeat", "versions framework %u.%u, heartbeat %u.%u: want the negotiated 3.0/3.0", get16(8),
             get16(10), get16(14), get16(16));
    u64 seq;
    memcpy(&seq, ic_buffer + ICMSG_HDR, sizeof(seq));
    if (answer) {
        u64 next = seq + 1;
        memcpy(ic_buffer + ICMSG_HDR, &next, sizeof(next));
        ic_answer("heartbeat", id, len);
    }
    return seq;
}

#define ANSWERED_FIRST 3
#define IGNORED 3   /* the heartbeat plugin's default lost_after */
#define ANSWERED_AGAIN 2

static void run_test(void)
{
    if (echo.chn_flags != 0x11 || echo.pipe_mode != 4)
        fail("offers", "heartbeat offer with channel flags 0x%x and pipe mode %u, want 0x11 and 4 (message mode)",
             echo.chn_flags, echo.pipe_mode);
    printf(PROG ": offers: channel flags 0x11 (enumerate device interface, named pipe), pipe mode 4 (message)\n");
    ic_negotiate();
    u64 first = ic_heartbeat(true);
    for (u32 i = 1; i < ANSWERED_FIRST; i++)
        if (ic_heartbeat(true) != first + i)
            fail("heartbeat", "sequence numbers not consecutive from %lu", first);
    printf(PROG ": heartbeat: answered %u heartbeats (seq %lu..%lu)\n", ANSWERED_FIRST, first, first + ANSWERED_FIRST - 1);
    for (u32 i = 0; i < IGNORED; i++)
        ic_heartbeat(false);
    printf(PROG ": heartbeat: left %u heartbeats unanswered\n", IGNORED);
    u64 again = ic_heartbeat(true);
    for (u32 i = 1; i < ANSWERED_AGAIN; i++)
        if (ic_heartbeat(true) != again + i)
            fail("heartbeat", "sequence numbers not consecutive from %lu", again);
    /* The next one is sent only after the host took the last answer in. */
    ic_heartbeat(false);
    printf(PROG ": heartbeat: answered %u more (seq %lu..%lu)\n", ANSWERED_AGAIN, again, again + ANSWERED_AGAIN - 1);
}
#endif /* KVPGUEST */

#elif !defined(BENCH)

#define ECHO_PACKETS 10000
#define MAX_PAYLOAD 1024

static u32 hash32(u32 x)
{
    x ^= x >> 16;
    x *= 0x7feb352d;
    x ^= x >> 15;
    x *= 0x846ca68b;
    x ^= x >> 16;
    return x;
}

/* Packet i: 8..1024 bytes, its own transaction id and a byte pattern that depends on both the
 * index and the offset. */
static u32 payload_len(u32 i) { return 8 + hash32(i) % (MAX_PAYLOAD - 8 + 1); }
static u64 trans_id(u32 i) { return 0xEC40000000000000UL | (u64)hash32(i ^ 0x5bd1e995) << 16 | (i & 0xFFFF); }
static u8 pattern(u32 i, u32 j) { return (u8)(i * 0x9D + j * 0x3B + (j >> 8) * 0x17 + (i >> 8)); }

/* Packets in flight, by phase of 500 packets: from strict ping-pong to deep pipelines, then a
 * flood: write without reading until the host, finding our inbound ring full, asks for room
 * through pending_send_sz; then drain, which must signal it (flow control, both directions). */
#define FLOOD 0
static const u32 windows[] = { 1, 2, 5, 16, 64, FLOOD };

static u64 outbound_full_attempts, flow_control_signals, host_blocked;

static void verify_echo(const struct vmpacket_descriptor *d, u32 i)
{
    if (d->type != VM_PKT_DATA_INBAND)
        fail("echo", "reply %u has packet type %u, want %u (in-band)", i, d->type, VM_PKT_DATA_INBAND);
    if (d->trans_id != trans_id(i))
        fail("echo", "reply %u has transaction id 0x%lx, want 0x%lx", i, d->trans_id, trans_id(i));
    u32 len = payload_len(i), padded = (len + 7) & ~7u;
    u32 got = (u32)d->len8 * 8 - (u32)d->offset8 * 8;
    if (got != padded)
        fail("echo", "reply %u carries %u payload bytes, want %u (%u padded to 8)", i, got, padded, len);
    const u8 *p = (const u8 *)d + d->offset8 * 8;
    for (u32 j = 0; j < padded; j++) {
        u8 want = j < len ? pattern(i, j) : 0;
        if (p[j] != want)
            fail("echo", "reply %u byte %u is 0x%02x, want 0x%02x (payload %u bytes, zero-padded to %u)", i, j,
                 p[j], want, len, padded);
    }
}

static bool send_next(u32 *sent, u8 *buffer)
{
    u32 len = payload_len(*sent);
    for (u32 j = 0; j < len; j++)
        buffer[j] = pattern(*sent, j);
    bool signal;
    if (!ring_write_inband(&outbound, trans_id(*sent), 0, buffer, len, &signal)) {
        outbound_full_attempts++;
        return false;
    }
    if (signal)
        signal_host("echo");
    (*sent)++;
    return true;
}

/* CPL3. */
static u64 echo_exchange(u64 unused)
{
    (void)unused;
    static u8 buffer[MAX_PAYLOAD];
    u32 sent = 0, received = 0;
    bool host_waiting = false;
    u64 deadline = deadline_ms(STALL_TIMEOUT_MS);
    while (received < ECHO_PACKETS) {
        bool progress = false;
        u32 window = windows[(sent / 500) % ARRAY_SIZE(windows)];
        if (window == FLOOD && sent < ECHO_PACKETS) {
            /* Until the host blocks, only write (as fast as it takes packets). */
            if (READ_ONCE(inbound.control->pending_send_sz) == 0) {
                host_waiting = false;
                if (send_next(&sent, buffer))
                    deadline = deadline_ms(STALL_TIMEOUT_MS);
                else if (expired(deadline))
                    stalled("echo", "flood: the host never asked for room in the full inbound ring");
                continue;
            }
            if (!host_waiting) {
                host_waiting = true;
                host_blocked++;
            }
        } else {
            while (sent < ECHO_PACKETS && sent - received < window && send_next(&sent, buffer))
                progress = true;
        }
        const struct vmpacket_descriptor *d;
        while ((d = ring_peek(&inbound, "echo")) != NULL) {
            if (received >= sent)
                fail("echo", "a packet arrived with only %u sent and all of them echoed", sent);
            verify_echo(d, received);
            if (ring_consume(&inbound, d)) {
                flow_control_signals++;
                signal_host("echo");
            }
            received++;
            progress = true;
        }
        if (progress)
            deadline = deadline_ms(STALL_TIMEOUT_MS);
        else if (expired(deadline))
            stalled("echo", "exchange");
        else
            cpu_relax();
    }
    return received;
}

static void run_test(void)
{
    u64 bytes = 0;
    for (u32 i = 0; i < ECHO_PACKETS; i++)
        bytes += payload_len(i);
    u64 start = rdtsc();
    u64 echoed = run_user(echo_exchange, 0, user_stack_top());
    u64 ms = (rdtsc() - start) / (tsc_hz / 1000);
    if (echoed != ECHO_PACKETS)
        fail("echo", "%lu of %u packets echoed", echoed, ECHO_PACKETS);
    printf(PROG ": echo: %u packets (%lu payload bytes) in %lu ms at CPL3; rings wrapped %lu (out) / %lu (in) "
                "times; %lu host signals; %lu write attempts found the outbound ring full; the host waited for room "
                "%lu times and was signalled %lu times when it was there\n",
           ECHO_PACKETS, bytes, ms, outbound.wraps, inbound.wraps, host_signals, outbound_full_attempts, host_blocked,
           flow_control_signals);
    printf(PROG ": interrupts: %lu SINT2 interrupts, %lu with the channel's event flag set, %lu EOM writes\n",
           sint_interrupts, channel_events, eom_writes);
    if (outbound.wraps < 10 || inbound.wraps < 10)
        fail("echo", "rings wrapped only %lu / %lu times", outbound.wraps, inbound.wraps);
    if (host_blocked == 0 || flow_control_signals == 0)
        fail("echo", "flow control unused: the host waited for room %lu times, was signalled %lu times",
             host_blocked, flow_control_signals);
    if (sint_interrupts == 0 || channel_events == 0)
        fail("interrupts", "%lu SINT2 interrupts, %lu channel events: the host never signalled the guest",
             sint_interrupts, channel_events);
}

#else /* BENCH */

#ifndef BENCH_N
#define BENCH_N 20000
#endif
#define BENCH_WARMUP 500
#define BENCH_PAYLOAD 64
#define DOORBELL_PORT 0x5f0
#ifndef DOORBELL_VALUE
#define DOORBELL_VALUE 0
#endif

static u64 roundtrip_cycles, signal_cycles, doorbell_cycles;

/* One 64-byte packet out, wait (polling) for its echo, check it, consume it. CPL3. */
static void roundtrip(u32 i)
{
    u64 payload[BENCH_PAYLOAD / 8];
    for (u32 k = 0; k < BENCH_PAYLOAD / 8; k++)
        payload[k] = (u64)i << 32 | k;
    bool signal;
    if (!ring_write_inband(&outbound, i, 0, payload, sizeof(payload), &signal))
        fail("roundtrips", "outbound ring full with nothing in flight");
    if (signal)
        signal_host("roundtrips");
    const struct vmpacket_descriptor *d;
    u64 deadline = deadline_ms(STALL_TIMEOUT_MS);
    while ((d = ring_peek(&inbound, "roundtrips")) == NULL)
        if (expired(deadline))
            stalled("roundtrips", "waiting for an echo");
    if (d->type != VM_PKT_DATA_INBAND || d->trans_id != i || (u32)(d->len8 - d->offset8) * 8 != BENCH_PAYLOAD
        || memcmp((const u8 *)d + d->offset8 * 8, payload, BENCH_PAYLOAD) != 0)
        fail("roundtrips", "echo of packet %u: type %u id 0x%lx len8 %u offset8 %u or payload differ", i, d->type,
             d->trans_id, d->len8, d->offset8);
    if (ring_consume(&inbound, d))
        signal_host("roundtrips");
}

/* CPL3. The inbound ring is masked: we poll, so the host need not interrupt us (as a polling
 * Linux driver does); the timings measure the data path, not this guest's interrupt handler. */
static u64 bench(u64 unused)
{
    (void)unused;
    WRITE_ONCE(inbound.control->interrupt_mask, 1);
    mb();
    for (u32 i = 0; i < BENCH_WARMUP; i++)
        roundtrip(i);

    u64 t0 = rdtsc();
    for (u32 i = 0; i < BENCH_N; i++)
        roundtrip(BENCH_WARMUP + i);
    u64 t1 = rdtsc();
    roundtrip_cycles = t1 - t0;

    t0 = rdtsc();
    for (u32 i = 0; i < BENCH_N; i++) {
        u16 status = hv_signal_event(echo.connection_id, 0);
        if (status != HV_STATUS_SUCCESS)
            fail("signal", "HvSignalEvent %u on connection 0x%x returned 0x%x", i, echo.connection_id, status);
    }
    t1 = rdtsc();
    signal_cycles = t1 - t0;

    t0 = rdtsc();
    for (u32 i = 0; i < BENCH_N; i++)
        outl(DOORBELL_PORT, DOORBELL_VALUE);
    t1 = rdtsc();
    doorbell_cycles = t1 - t0;

    WRITE_ONCE(inbound.control->interrupt_mask, 0);
    mb();
    return 0;
}

static void run_test(void)
{
    printf(PROG " tsc_hz %lu\n", tsc_hz);
    run_user(bench, 0, user_stack_top());
    printf(PROG " roundtrips %u %lu\n", BENCH_N, roundtrip_cycles);
    printf(PROG " signal %u %lu\n", BENCH_N, signal_cycles);
    printf(PROG " doorbell %u %lu\n", BENCH_N, doorbell_cycles);
}

#endif /* BENCH */

void kmain(u64 vcpu_index, u64 vcpu_count)
{
    if (vcpu_index != 0) /* one vCPU does the work; others park */
        for (;;)
            __asm__ volatile("cli; hlt");
    printf(PROG ": start on vCPU %lu of %lu\n", vcpu_index, vcpu_count);
    cpu_init();
    printf(PROG ": cpu: own page tables (user-accessible), GDT with user segments, TSS with I/O bitmap, IDT, "
                "local APIC enabled\n");
    hv_detect();
    hv_enable_hypercalls((u32)vcpu_index);
    hv_check_time();
    hv_enable_synic();
    cpu_enable_interrupts();
    check_hypercall_errors();

    vmbus_connect(hv.vp_index);
    if (!vmbus_request_offers(device_interface, &echo))
        fail("offers", "no offer of the " DEVICE_TEXT);
    if (echo.monitor_allocated || !echo.is_dedicated_interrupt || echo.connection_id == 0)
        fail("offers", DEVICE_NAME " offer with monitor_allocated %u, is_dedicated_interrupt %u, connection id 0x%x: "
                       "this guest signals with HvSignalEvent on a dedicated channel only",
             echo.monitor_allocated, echo.is_dedicated_interrupt, echo.connection_id);
    printf(PROG ": offers: " DEVICE_NAME " device is relid %u, connection id 0x%x\n", echo.child_relid, echo.connection_id);

    setup_rings();
    u32 bodies = vmbus_create_gpadl(echo.child_relid, VMBUS_FIRST_GPADL, gpadl_pfns, GPADL_PAGES);
    printf(PROG ": gpadl: 0x%x of %u scattered pages (GPADL_HEADER + %u GPADL_BODY) created\n", VMBUS_FIRST_GPADL,
           GPADL_PAGES, bodies);
    vmbus_open(echo.child_relid, VMBUS_FIRST_GPADL, RING_PAGES);
    hv_watch_event_flag(echo.child_relid);
    printf(PROG ": open: relid %u open, rings of %u data pages each way, signals to VP %u\n", echo.child_relid,
           RING_DATA_PAGES, vmbus.target_vp);

    run_test();

    hv_watch_event_flag(0);
    vmbus_close(echo.child_relid);
    /* A closed channel has no event port any more: the in-kernel fast path must agree. */
    expect_status("close", "HvSignalEvent on the closed echo channel", hv_signal_event(echo.connection_id, 0),
                  HV_STATUS_INVALID_CONNECTION_ID);
    printf(PROG ": close: CLOSECHANNEL sent; signalling the closed channel -> 0x12\n");
    vmbus_teardown_gpadl(echo.child_relid, VMBUS_FIRST_GPADL);
    printf(PROG ": teardown: GPADL_TORNDOWN 0x%x\n", VMBUS_FIRST_GPADL);
    vmbus_unload();
    printf(PROG ": unload: UNLOAD_RESPONSE\n");
#if defined(KVPGUEST)
    printf(PROG ": KVP IC negotiated; pools exchanged\n");
#elif defined(VSSGUEST) || defined(FCOPYGUEST) || defined(TIMESYNCGUEST)
    printf(PROG ": " IC_SERVICE " IC negotiated and answered\n");
#elif defined(HEARTBEAT)
    printf(PROG ": heartbeat IC negotiated and answered\n");
#elif !defined(BENCH)
    printf(PROG ": %u packets echoed and verified\n", ECHO_PACKETS);
#else
    printf(PROG ": done\n");
#endif
    guest_exit(0);
}
