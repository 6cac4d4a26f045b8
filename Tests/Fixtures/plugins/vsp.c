/*
 * vsp.c — a synthetic plugin that exercises every ABI 1.7 VMBus call on the guest's command, for
 * the tests that check the host's side of them (through PluginHarness, which plays the guest).
 *
 * It offers one channel in create. Every channel it owns answers the same way when signalled: it
 * reads packets with vmbus_read_segments (first try with the capacities command 'C' set, default
 * 4096 bytes and 256 segments; after VENEER_ENOSPC it reports what was needed and reads again
 * with enough room). An in-band packet is a command (first byte), answered with an in-band packet
 * of the same transaction id: {i32 status; ...}. Any other packet is answered with
 * {i32 0; u16 type; u16 flags; u32 header_length; u32 payload_length; u32 segment_count;
 *  segments...; header+payload bytes}.
 *
 *   'S' u32 count          vmbus_offer_subchannels(this channel, count) -> status, ids[count]
 *   'R' u32 channel        vmbus_rescind(channel) -> status
 *   'O'                    vmbus_offer of another channel at run time -> status, id
 *   'C' u32 bytes u32 segs capacities of the first read_segments try -> 0
 *   'G' u32 channel u32 gpadl u32 capacity
 *                          vmbus_gpadl_segments -> status, count, segments[min(count, capacity)]
 *   'B' u32 count u32 stride u32 mode
 *                          vmbus_write_batch of `count` packets (transaction ids 1000+i, payload
 *                          {i}) with stride `stride` (0: sizeof) -> status, written. mode: 0 in-band,
 *                          1 transfer pages (16-byte header {i, ...}), 2 packet 1 has struct_size 8,
 *                          3 packet 1 has header_length 4, 4 packet 1 has a NULL header of 8 bytes,
 *                          5 packet 1 has a NULL payload of 8 bytes, 6 packet 1's payload is 1 MiB
 *   'Z'                    every new call with bad arguments -> the statuses, in the order below
 *   'M' u64 gpa u32 length mem_map of the range writable, then writes 0xA5 over it -> 0 or -1
 *
 * Built with -DCONCURRENT the descriptor sets VENEER_PLUGIN_CONCURRENT; vmbus_signalled then
 * counts callbacks in flight per channel (logging "overlap on channel N" if ever two of one
 * channel run at once) and, for a packet-free signal on channel 1, waits up to 10 s for a
 * callback of another channel to be running at the same time (logging "parallel" if one was).
 */
#include "veneer_plugin.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct veneer_device {
    const veneer_host_api *api;
    veneer_host *host;
    uint32_t first_bytes, first_segments;
};

static atomic_int in_flight[4096];
static atomic_int total_in_flight;

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void reply(veneer_device *d, uint32_t channel, uint64_t id, const uint8_t *bytes, size_t length) {
    d->api->vmbus_write(d->host, channel, VENEER_VMBUS_INBAND, 0, id, bytes, length);
}

static veneer_status offer(veneer_device *d, uint8_t instance, uint32_t *id) {
    veneer_vmbus_offer o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    static const uint8_t type[16] = {0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f};
    memcpy(o.interface_type, type, 16);
    o.interface_instance[15] = instance;
    return d->api->vmbus_offer(d->host, &o, id);
}

static size_t bad_arguments(veneer_device *d, uint32_t channel, uint8_t *out) {
    const veneer_host_api *a = d->api;
    veneer_host *h = d->host;
    int32_t s[24];
    int n = 0;
    uint32_t ids[70], count = 0, written = 0;
    uint8_t buffer[64];
    veneer_guest_segment segs[4];
    veneer_vmbus_packet p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    veneer_vmbus_send send[2];
    memset(send, 0, sizeof send);
    send[0].struct_size = send[1].struct_size = sizeof send[0];
    send[0].type = send[1].type = VENEER_VMBUS_INBAND;
    /* offer_subchannels */
    s[n++] = a->vmbus_offer_subchannels(h, channel, 0, ids);                 /* 0: no sub-channels asked */
    s[n++] = a->vmbus_offer_subchannels(h, channel, 65, ids);                /* 1: more than 64 */
    s[n++] = a->vmbus_offer_subchannels(h, channel, 1, NULL);                /* 2: nowhere for the ids */
    s[n++] = a->vmbus_offer_subchannels(h, 4000, 1, ids);                    /* 3: not the instance's channel */
    /* rescind */
    s[n++] = a->vmbus_rescind(h, 4000);                                      /* 4 */
    /* read_segments */
    s[n++] = a->vmbus_read_segments(h, channel, NULL, buffer, sizeof buffer, segs, 4, &count);   /* 5 */
    s[n++] = a->vmbus_read_segments(h, channel, &p, buffer, sizeof buffer, segs, 4, NULL);       /* 6 */
    p.struct_size = 8;
    s[n++] = a->vmbus_read_segments(h, channel, &p, buffer, sizeof buffer, segs, 4, &count);     /* 7: struct_size */
    p.struct_size = sizeof p;
    s[n++] = a->vmbus_read_segments(h, channel, &p, NULL, 64, segs, 4, &count);                  /* 8 */
    s[n++] = a->vmbus_read_segments(h, channel, &p, buffer, sizeof buffer, NULL, 4, &count);     /* 9 */
    s[n++] = a->vmbus_read_segments(h, 4000, &p, buffer, sizeof buffer, segs, 4, &count);        /* 10 */
    /* gpadl_segments */
    s[n++] = a->vmbus_gpadl_segments(h, channel, 1, segs, 4, NULL);           /* 11 */
    s[n++] = a->vmbus_gpadl_segments(h, channel, 1, NULL, 4, &count);         /* 12 */
    s[n++] = a->vmbus_gpadl_segments(h, 4000, 1, segs, 4, &count);            /* 13 */
    /* write_batch */
    s[n++] = a->vmbus_write_batch(h, channel, send, 5000, sizeof send[0], &written);   /* 14: too many */
    s[n++] = a->vmbus_write_batch(h, channel, send, 1, 8, &written);                   /* 15: stride */
    s[n++] = a->vmbus_write_batch(h, channel, NULL, 1, sizeof send[0], &written);      /* 16 */
    s[n++] = a->vmbus_write_batch(h, channel, send, 1, sizeof send[0], NULL);          /* 17 */
    s[n++] = a->vmbus_write_batch(h, 4000, send, 1, sizeof send[0], &written);         /* 18: not a channel */
    s[n++] = a->vmbus_write_batch(h, channel, send, 2, 1 << 20, &written);             /* 19: absurd stride */
    s[n++] = a->vmbus_write_batch(h, channel, send, 0, sizeof send[0], &written);      /* 20: nothing: ok */
    memcpy(out, s, n * 4);
    return n * 4;
}

static void batch(veneer_device *d, uint32_t channel, uint64_t id, uint32_t count, uint32_t stride, uint32_t mode) {
    size_t size = stride ? stride : sizeof(veneer_vmbus_send);
    if (size < sizeof(veneer_vmbus_send)) size = sizeof(veneer_vmbus_send);   /* room to fill in; the host is told `stride` */
    uint8_t *packets = calloc(count ? count : 1, size);
    uint8_t *payloads = calloc(count ? count : 1, 1);
    uint8_t headers[16 * 64];
    static uint8_t huge[1 << 20];
    for (uint32_t i = 0; i < count; i++) {
        veneer_vmbus_send *s = (veneer_vmbus_send *)(packets + i * size);
        payloads[i] = (uint8_t)i;
        s->struct_size = sizeof *s;
        s->type = VENEER_VMBUS_INBAND;
        s->transaction_id = 1000 + i;
        s->payload = payloads + i;
        s->payload_length = 1;
        if (mode == 1 && i < 64) {
            memset(headers + 16 * i, 0, 16);
            headers[16 * i] = (uint8_t)i;
            s->type = VENEER_VMBUS_TRANSFER_PAGES;
            s->header = headers + 16 * i;
            s->header_length = 16;
        }
        if (i == 1 && mode == 2) s->struct_size = 8;
        if (i == 1 && mode == 3) { s->header = headers; s->header_length = 4; }
        if (i == 1 && mode == 4) { s->header = NULL; s->header_length = 8; }
        if (i == 1 && mode == 5) { s->payload = NULL; s->payload_length = 8; }
        if (i == 1 && mode == 6) { s->payload = huge; s->payload_length = sizeof huge; }
    }
    uint32_t written = 77;
    int32_t status = d->api->vmbus_write_batch(d->host, channel, (veneer_vmbus_send *)packets, count,
                                               stride ? stride : sizeof(veneer_vmbus_send), &written);
    uint8_t out[8];
    put32(out, (uint32_t)status);
    put32(out + 4, written);
    reply(d, channel, id, out, 8);
    free(packets);
    free(payloads);
}

static void command(veneer_device *d, uint32_t channel, uint64_t id, const uint8_t *c, size_t length) {
    uint8_t out[2048];
    memset(out, 0, sizeof out);
    if (length < 1) return;
    switch (c[0]) {
    case 'S': {
        uint32_t count = length >= 5 ? get32(c + 1) : 0, ids[64];
        if (count > 64) count = 64;
        put32(out, (uint32_t)d->api->vmbus_offer_subchannels(d->host, channel, count, ids));
        memcpy(out + 4, ids, 4 * count);
        reply(d, channel, id, out, 4 + 4 * count);
        break;
    }
    case 'R':
        put32(out, (uint32_t)d->api->vmbus_rescind(d->host, length >= 5 ? get32(c + 1) : 0));
        reply(d, channel, id, out, 4);
        break;
    case 'O': {
        uint32_t added = 0;
        put32(out, (uint32_t)offer(d, 2, &added));
        put32(out + 4, added);
        reply(d, channel, id, out, 8);
        break;
    }
    case 'C':
        d->first_bytes = length >= 9 ? get32(c + 1) : 4096;
        d->first_segments = length >= 9 ? get32(c + 5) : 256;
        reply(d, channel, id, out, 4);
        break;
    case 'G': {
        if (length < 13) return;
        uint32_t count = 0, capacity = get32(c + 9);
        veneer_guest_segment segs[64];
        if (capacity > 64) capacity = 64;
        put32(out, (uint32_t)d->api->vmbus_gpadl_segments(d->host, get32(c + 1), get32(c + 5), capacity ? segs : NULL, capacity, &count));
        put32(out + 4, count);
        uint32_t shown = count < capacity ? count : capacity;
        memcpy(out + 8, segs, 16 * shown);
        reply(d, channel, id, out, 8 + 16 * shown);
        break;
    }
    case 'B':
        if (length >= 13) batch(d, channel, id, get32(c + 1), get32(c + 5), get32(c + 9));
        break;
    case 'Z':
        reply(d, channel, id, out, bad_arguments(d, channel, out));
        break;
    case 'M': {
        if (length < 13) return;
        uint64_t gpa = get64(c + 1);
        uint32_t len = get32(c + 9);
        uint8_t *p = d->api->mem_map(d->host, gpa, len, VENEER_MAP_READ | VENEER_MAP_WRITE);
        if (p) memset(p, 0xA5, len);
        put32(out, p ? 0 : (uint32_t)-1);
        reply(d, channel, id, out, 4);
        break;
    }
    }
}

static void drain(veneer_device *d, uint32_t channel) {
    static _Thread_local uint8_t buffer[8192];
    static _Thread_local veneer_guest_segment segs[256];
    for (;;) {
        veneer_vmbus_packet p;
        memset(&p, 0, sizeof p);
        p.struct_size = sizeof p;
        uint32_t count = 0;
        uint32_t bytes = d->first_bytes < sizeof buffer ? d->first_bytes : sizeof buffer;
        uint32_t nsegs = d->first_segments < 256 ? d->first_segments : 256;
        veneer_status s = d->api->vmbus_read_segments(d->host, channel, &p, buffer, bytes, segs, nsegs, &count);
        if (s == VENEER_ENOSPC) {
            uint8_t out[16];
            put32(out, (uint32_t)s);
            put32(out + 4, p.header_length + p.payload_length);
            put32(out + 8, count);
            put32(out + 12, p.type);
            reply(d, channel, p.transaction_id, out, 16);
            s = d->api->vmbus_read_segments(d->host, channel, &p, buffer, sizeof buffer, segs, 256, &count);
        }
        if (s != VENEER_OK) return;
        if (p.type == VENEER_VMBUS_INBAND) {
            command(d, channel, p.transaction_id, buffer, p.payload_length);
            continue;
        }
        static _Thread_local uint8_t out[16 + 16 * 256 + 8192 + 8];
        put32(out, 0);
        memcpy(out + 4, &p.type, 2);
        memcpy(out + 6, &p.flags, 2);
        put32(out + 8, p.header_length);
        put32(out + 12, p.payload_length);
        put32(out + 16, count);
        memcpy(out + 20, segs, 16 * count);
        memcpy(out + 20 + 16 * count, buffer, p.header_length + p.payload_length);
        reply(d, channel, p.transaction_id, out, 20 + 16 * count + p.header_length + p.payload_length);
    }
}

static void signalled(veneer_device *d, uint32_t channel) {
#ifdef CONCURRENT
    int mine = atomic_fetch_add(&in_flight[channel & 4095], 1) + 1;
    atomic_fetch_add(&total_in_flight, 1);
    if (mine > 1) {
        char line[64];
        snprintf(line, sizeof line, "overlap on channel %u", channel);
        d->api->log(d->host, VENEER_LOG_ERROR, line);
    }
    if (channel == 1000) {
        /* Rendezvous: another channel's callback running now proves the two run in parallel. */
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            if (atomic_load(&total_in_flight) - atomic_load(&in_flight[1000 & 4095]) > 0) {
                d->api->log(d->host, VENEER_LOG_INFO, "parallel");
                break;
            }
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - start.tv_sec > 10) break;
        }
    } else {
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
    }
    atomic_fetch_sub(&total_in_flight, 1);
    atomic_fetch_sub(&in_flight[channel & 4095], 1);
#endif
    drain(d, channel);
}

static veneer_device *create(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args) {
    veneer_device *d = calloc(1, sizeof *d);
    d->api = api;
    d->host = host;
    d->first_bytes = 4096;
    d->first_segments = 256;
    uint32_t id;
    if (offer(d, 1, &id) != VENEER_OK) {
        free(d);
        return NULL;
    }
    return d;
}

static void destroy(veneer_device *d) { free(d); }
static void opened(veneer_device *d, uint32_t channel, const uint8_t *data, size_t length) {}
static void closed(veneer_device *d, uint32_t channel) {
    char line[48];
    snprintf(line, sizeof line, "closed %u", channel);
    d->api->log(d->host, VENEER_LOG_INFO, line);
}

static const veneer_plugin_descriptor descriptor = {
    .struct_size = sizeof(veneer_plugin_descriptor),
    .abi_major = VENEER_ABI_MAJOR,
    .abi_minor = VENEER_ABI_MINOR,
    .name = "vspfixture",
    .version = "1.0.0",
    .summary = "exercises the ABI 1.7 VMBus calls",
    .kind = VENEER_KIND_SYNTHETIC,
#ifdef CONCURRENT
    .flags = VENEER_PLUGIN_CONCURRENT,
#endif
    .param_spec_size = sizeof(veneer_param_spec),
    .create = create,
    .destroy = destroy,
    .vmbus_opened = opened,
    .vmbus_signalled = signalled,
    .vmbus_closed = closed,
};

const veneer_plugin_descriptor *veneer_plugin_entry(void) { return &descriptor; }
