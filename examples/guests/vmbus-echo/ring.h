/*
 * VMBus ring buffers, the guest's side (Linux drivers/hv/ring_buffer.c). A ring is a 4 KiB
 * control page followed by data pages; this guest maps the data pages twice in a row, as Linux
 * does, so a packet that wraps is still one contiguous copy.
 */
#ifndef RING_H
#define RING_H

#include "guest.h"

struct hv_ring_control {
    u32 write_index;
    u32 read_index;
    u32 interrupt_mask;         /* reader: "don't signal me" */
    u32 pending_send_sz;        /* writer: "signal me when this much is free" */
    u32 reserved1[12];
    u32 feature_bits;           /* bit 0: pending_send_sz supported */
    u8 reserved2[4096 - 68];
} PACKED;
_Static_assert(sizeof(struct hv_ring_control) == 4096, "ring control page");

struct vmpacket_descriptor {
    u16 type;
    u16 offset8;
    u16 len8;
    u16 flags;
    u64 trans_id;
} PACKED;

#define VM_PKT_DATA_INBAND 6
#define VM_PKT_DATA_USING_GPA_DIRECT 9
#define VM_PKT_COMP 11
#define VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED 1
#define VMBUS_PKT_TRAILER 8

struct ring {
    volatile struct hv_ring_control *control;
    u8 *data;                   /* data area, mapped twice: data[0 .. 2*size) */
    u32 size;                   /* bytes in the data area */
    u32 read_index;             /* reader's private index (inbound ring) */
    /* statistics */
    u64 wraps;                  /* times our index passed the end of the data area */
    u64 signals;                /* signals this ring's rules asked for */
};

/* Sets up a ring whose control page is at `control` and whose data follows it (double-mapped):
 * both indexes 0, interrupts wanted, flow control declared (as hv_ringbuffer_init). */
void ring_init(struct ring *r, void *control, u32 data_pages);

/* Writes one in-band packet into an outbound ring. Returns false when it does not fit (the ring
 * is never filled completely). Sets *signal when the host must be told (Linux
 * hv_signal_on_write: it was empty before this write and the host has not masked signals). */
bool ring_write_inband(struct ring *r, u64 trans_id, u16 flags, const void *payload, u32 len, bool *signal);

/* The general form: a packet of `type` whose descriptor is followed by `header_len` bytes (a
 * multiple of 8: e.g. a GPA-direct range list) and then the payload at offset8 * 8. */
bool ring_write_packet(struct ring *r, u16 type, u64 trans_id, u16 flags, const void *header, u32 header_len,
                       const void *payload, u32 len, bool *signal);

/* The next packet in an inbound ring, validated (type, offsets, length, trailer), or NULL when
 * the ring is empty. Does not consume it. */
const struct vmpacket_descriptor *ring_peek(struct ring *r, const char *step);

/* Consumes the packet ring_peek returned and publishes the read index. Returns whether the
 * host, blocked as a writer, must be signalled (it set pending_send_sz and this read took the
 * free space from at most that to more than that, as Linux's hv_pkt_iter_close). */
bool ring_consume(struct ring *r, const struct vmpacket_descriptor *packet);

/* Bytes the writer may still use in an outbound ring. */
u32 ring_free_bytes(struct ring *r, const char *step);

#endif
