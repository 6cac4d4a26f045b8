/*
 * What the storvsc guest's extra modes (durability.c, bench.c) share: they compile main.c into
 * themselves with its kmain renamed, so they reuse its channel, ring and SCSI request code
 * unchanged, and start on LUN 0 right after the channels are up (no bus probe: a durability
 * trial must start writing at once).
 */
#ifndef STORVSC_MODES_H
#define STORVSC_MODES_H

#define kmain storvsc_kmain
#include "main.c"
#undef kmain

/* CPL0: connect, open the controller, initialize, open every sub-channel (as main.c's kmain). */
static __attribute__((unused)) void modes_bring_up(u64 vcpu_index, u64 vcpu_count)
{
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
    if (vmbus_request_offers_of(scsi_interface, &c->offer, 1) != 1)
        fail("offers", "want exactly one SCSI controller offer");
    open_channel(c, 0, "open");
    channel_count = 1;
    channel_init(c);
    create_subchannels(c, vcpu_count);
}

/* READ CAPACITY(16) of `lun`: its block count and block size. */
static __attribute__((unused)) void modes_capacity(u8 lun, u64 *blocks, u32 *block)
{
    struct scsi_result r;
    u8 cdb[16] = { SERVICE_ACTION_IN_16, SAI_READ_CAPACITY_16 };
    cdb[13] = 32;
    scsi_sync(primary(), 0, EXPECTED_TARGET, lun, cdb, 16, READ_TYPE, 32, &r, "capacity");
    expect_good(&r, "capacity", "READ CAPACITY(16)");
    *blocks = be64(probe_data()) + 1;
    *block = be32(probe_data() + 8);
}

/* One EXECUTE_SRB for `blocks` blocks at `lba` of LUN 0 (READ(16)/WRITE(16), FUA optional)
 * over the pages `pfns`, as transaction `id` on `channel`. */
static __attribute__((unused)) void modes_rw16(u32 channel, u64 id, bool write, bool fua, u64 lba, u32 blocks, u32 block, const u64 *pfns,
                       const char *step)
{
    u8 cdb[16];
    memset(cdb, 0, sizeof(cdb));
    cdb[0] = write ? WRITE_16 : READ_16;
    if (fua)
        cdb[1] |= 0x08;
    put_be64(cdb + 2, lba);
    put_be32(cdb + 10, blocks);
    struct vstor_packet p;
    build_srb(&p, 0, EXPECTED_TARGET, 0, cdb, 16, write ? WRITE_TYPE : READ_TYPE, blocks * block);
    send_srb(&channels[channel], id, &p, pfns, step);
}

/* SYNCHRONIZE CACHE(10) of LUN 0 (the whole LUN) as transaction `id` on `channel`. */
static __attribute__((unused)) void modes_flush(u32 channel, u64 id, const char *step)
{
    u8 cdb[10] = { SYNCHRONIZE_CACHE };
    struct vstor_packet p;
    build_srb(&p, 0, EXPECTED_TARGET, 0, cdb, 10, UNKNOWN_TYPE, 0);
    send_srb(&channels[channel], id, &p, NULL, step);
}

#endif
