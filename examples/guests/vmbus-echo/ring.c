/*
 * Ring buffer rules, guest side. Everything the host writes (its write index on the inbound
 * ring, its read index on the outbound ring, packet descriptors) is validated before use: a bad
 * value fails the run instead of reading or writing outside the ring.
 */
#include "ring.h"

void ring_init(struct ring *r, void *control, u32 data_pages)
{
    memset(r, 0, sizeof(*r));
    r->control = control;
    r->data = (u8 *)control + PAGE_SIZE;
    r->size = data_pages * (u32)PAGE_SIZE;
    memset(control, 0, PAGE_SIZE);
    r->control->feature_bits = 1;
}

/* A host-written index: inside the data area and 8-byte aligned. */
static u32 checked_index(const struct ring *r, u32 value, const char *what, const char *step)
{
    if (value >= r->size || value % 8)
        fail(step, "%s %u outside the %u-byte data area or unaligned", what, value, r->size);
    return value;
}

static u32 used_bytes(const struct ring *r, u32 read, u32 write)
{
    return write >= read ? write - read : r->size - read + write;
}

u32 ring_free_bytes(struct ring *r, const char *step)
{
    u32 read = checked_index(r, READ_ONCE(r->control->read_index), "host read index", step);
    return r->size - used_bytes(r, read, r->control->write_index);
}

bool ring_write_packet(struct ring *r, u16 type, u64 trans_id, u16 flags, const void *header, u32 header_len,
                       const void *payload, u32 len, bool *signal)
{
    u32 offset = (u32)sizeof(struct vmpacket_descriptor) + header_len;
    u32 packet_len = offset + ((len + 7) & ~7u);
    u32 total = packet_len + VMBUS_PKT_TRAILER;
    *signal = false;
    if (header_len % 8 || offset / 8 > 0xFFFF || packet_len / 8 > 0xFFFF || total >= r->size)
        fail("ring", "packet of %u bytes (%u-byte header) cannot fit a %u-byte ring", packet_len, header_len, r->size);
    /* Strictly more room than the packet: a completely full ring would read as empty. */
    if (ring_free_bytes(r, "ring") <= total)
        return false;

    u32 old_write = r->control->write_index;
    u8 *p = r->data + old_write; /* double mapping: the packet may run past the end */
    struct vmpacket_descriptor d = {
        .type = type,
        .offset8 = (u16)(offset / 8),
        .len8 = (u16)(packet_len / 8),
        .flags = flags,
        .trans_id = trans_id,
    };
    memcpy(p, &d, sizeof(d));
    if (header_len)
        memcpy(p + sizeof(d), header, header_len);
    memcpy(p + offset, payload, len);
    memset(p + offset + len, 0, packet_len - offset - len);
    u64 trailer = (u64)old_write << 32; /* previous packet start, as Linux writes it */
    memcpy(p + packet_len, &trailer, sizeof(trailer));

    u32 next = old_write + total;
    if (next >= r->size) {
        next -= r->size;
        r->wraps++;
    }
    /* The packet must be visible before the index that publishes it. */
    mb();
    WRITE_ONCE(r->control->write_index, next);

    /* hv_signal_on_write: the index must be visible before we look at the reader's state. */
    mb();
    if (READ_ONCE(r->control->interrupt_mask))
        return true;
    if (old_write == READ_ONCE(r->control->read_index)) {
        *signal = true;
        r->signals++;
    }
    return true;
}

bool ring_write_inband(struct ring *r, u64 trans_id, u16 flags, const void *payload, u32 len, bool *signal)
{
    return ring_write_packet(r, VM_PKT_DATA_INBAND, trans_id, flags, NULL, 0, payload, len, signal);
}

const struct vmpacket_descriptor *ring_peek(struct ring *r, const char *step)
{
    u32 write = checked_index(r, READ_ONCE(r->control->write_index), "host write index", step);
    u32 avail = used_bytes(r, r->read_index, write);
    if (avail == 0)
        return NULL;
    barrier(); /* read the data only after the index that published it */
    if (avail < sizeof(struct vmpacket_descriptor) + VMBUS_PKT_TRAILER)
        fail(step, "%u bytes published at read index %u: less than a packet", avail, r->read_index);
    const struct vmpacket_descriptor *d = (const void *)(r->data + r->read_index);
    u32 len = (u32)d->len8 * 8, offset = (u32)d->offset8 * 8;
    if (d->offset8 < 2 || offset > len || len + VMBUS_PKT_TRAILER > avail)
        fail(step, "descriptor at %u: type %u offset8 %u len8 %u with %u bytes published", r->read_index,
             d->type, d->offset8, d->len8, avail);
    u64 trailer;
    memcpy(&trailer, (const u8 *)d + len, sizeof(trailer));
    if (trailer >> 32 != r->read_index)
        fail(step, "packet at %u has trailer 0x%lx, want start index %u in the upper half", r->read_index, trailer,
             r->read_index);
    return d;
}

bool ring_consume(struct ring *r, const struct vmpacket_descriptor *packet)
{
    u32 consumed = (u32)packet->len8 * 8 + VMBUS_PKT_TRAILER;
    u32 write = checked_index(r, READ_ONCE(r->control->write_index), "host write index", "ring");
    u32 free_before = r->size - used_bytes(r, r->read_index, write);
    u32 next = r->read_index + consumed;
    if (next >= r->size) {
        next -= r->size;
        r->wraps++;
    }
    r->read_index = next;
    /* Done reading before the host may reuse the space. */
    mb();
    WRITE_ONCE(r->control->read_index, next);
    /* And the index visible before we sample pending_send_sz, or a writer that blocks in
     * between is missed (hv_pkt_iter_close). */
    mb();
    if (!(r->control->feature_bits & 1))
        return false;
    u32 pending = READ_ONCE(r->control->pending_send_sz);
    if (pending == 0)
        return false;
    /* hv_pkt_iter_close: exactly pending_send_sz free counts as "not enough" (a full ring must
     * keep a gap), so signal only on crossing from <= pending to > pending. */
    u32 free_after = free_before + consumed;
    if (free_before > pending || free_after <= pending)
        return false; /* the writer was not blocked, or still is */
    r->signals++;
    return true;
}
