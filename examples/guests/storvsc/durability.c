/*
 * storvsc durability mode (issue 7, "Durability"; Tests/IntegrationTests/StorageDurabilityTests):
 * writes numbered 4 KiB records to LUN 0 forever, with up to IN_FLIGHT requests in flight spread
 * over every channel, and after each write that became durable prints "durable N": the highest N
 * such that every record 1..N is durable. A record is durable when its WRITE(16) with FUA
 * completed, or when a SYNCHRONIZE CACHE submitted after its plain WRITE(16) completed has
 * completed. Records alternate in runs of RUN: FUA writes, then plain writes covered by flushes.
 *
 * Record n (n >= 1) lives at LBA REGION_LBA + ((n - 1) % REGION_RECORDS) * 4096 / block; its
 * 64-bit little-endian words are: MAGIC, n, a checksum of words 3..511, then pattern words
 * (n * 0x9E3779B97F4A7C15) ^ (i * 0xBF58476D1CE4E5B9) for i = 3..511. The checksum is the sum of
 * word[i] * (2i + 1). The guest never runs more than REGION_RECORDS / 4 records ahead of the
 * durable one, so the host can check the last REGION_RECORDS / 2 durable records (older ones
 * may have been overwritten by newer records on purpose: the region wraps).
 */
#include "modes.h"

#define RECORD_BYTES 4096
#define REGION_BYTE_OFFSET (1 * MiB)
#define REGION_RECORDS 4096          /* 16 MiB: the disk is at least 17 MiB */
#define IN_FLIGHT 32
#define RUN 8
#define MAGIC 0x4452524556454E56UL   /* "VENEVRRD" */
#define FLUSH_ID 0x10000UL

enum { FREE = 0, WRITING, WRITTEN, COVERED, DURABLE };

/* Per record (by n % REGION_RECORDS): its state; fixed RAM past the data pages, zero at boot. */
#define STATE_PA 0x1800000UL
static u8 *state(u64 n) { return (u8 *)STATE_PA + n % REGION_RECORDS; }

struct write_slot {
    u64 n;              /* 0 = free */
    u32 channel;
    u64 pfn;
};
static struct write_slot wslots[IN_FLIGHT];

static u64 *record_page(u32 s) { return (u64 *)(DATA_PA + (u64)s * PAGE_SIZE); }

static void fill_record(u64 *w, u64 n)
{
    w[0] = MAGIC;
    w[1] = n;
    u64 sum = 0;
    for (u64 i = 3; i < RECORD_BYTES / 8; i++) {
        w[i] = (n * 0x9E3779B97F4A7C15UL) ^ (i * 0xBF58476D1CE4E5B9UL);
        sum += w[i] * (2 * i + 1);
    }
    w[2] = sum;
}

static u64 durability_loop(u64 unused)
{
    (void)unused;
    u64 blocks;
    u32 block;
    modes_capacity(0, &blocks, &block);
    if (block != 512 && block != 4096)
        fail("capacity", "block size %u", block);
    if (blocks * block < REGION_BYTE_OFFSET + (u64)REGION_RECORDS * RECORD_BYTES)
        fail("capacity", "LUN 0 has %lu bytes: the record region needs %lu", blocks * block,
             REGION_BYTE_OFFSET + (u64)REGION_RECORDS * RECORD_BYTES);
    printf(PROG ": writing %u-byte records over %u channels, %u in flight, region of %u records\n", RECORD_BYTES,
           channel_count, IN_FLIGHT, REGION_RECORDS);

    u64 next = 1, durable = 0, printed = 0, written = 0, flushes = 0;
    u32 rr = 0;
    bool flush_busy = false;
    u64 deadline = deadline_ms(STALL_MS);
    for (;;) {
        /* Submit while slots are free and we stay within a quarter region of the durable record. */
        for (u32 s = 0; s < IN_FLIGHT && next <= durable + REGION_RECORDS / 4; s++) {
            if (wslots[s].n != 0)
                continue;
            u64 n = next++;
            bool fua = ((n - 1) / RUN) % 2 == 0;
            fill_record(record_page(s), n);
            wslots[s].n = n;
            wslots[s].channel = rr++ % channel_count;
            wslots[s].pfn = (u64)record_page(s) / PAGE_SIZE;
            *state(n) = WRITING;
            u64 lba = (REGION_BYTE_OFFSET + ((n - 1) % REGION_RECORDS) * RECORD_BYTES) / block;
            modes_rw16(wslots[s].channel, s + 1, true, fua, lba, RECORD_BYTES / block, block, &wslots[s].pfn, "write");
        }
        /* A flush covers every plain write completed before it is sent. */
        if (!flush_busy && written > 0) {
            for (u64 n = durable + 1; n < next; n++)
                if (*state(n) == WRITTEN)
                    *state(n) = COVERED;
            written = 0;
            flush_busy = true;
            modes_flush(rr++ % channel_count, FLUSH_ID, "flush");
        }
        bool progress = false;
        for (u32 k = 0; k < channel_count; k++) {
            u64 id;
            struct vstor_packet reply;
            while (take_packet(&channels[k], &id, &reply, "durability")) {
                struct scsi_result r;
                result_from(&reply, &r, "durability");
                if (!good(&r))
                    fail("durability", "transaction 0x%lx: srb 0x%x scsi 0x%x sense %x/%02x/%02x", id, r.srb_status,
                         r.scsi_status, sense_key(&r), sense_asc(&r), sense_ascq(&r));
                progress = true;
                if (id == FLUSH_ID) {
                    if (!flush_busy)
                        fail("durability", "a flush completion nobody sent");
                    for (u64 n = durable + 1; n < next; n++)
                        if (*state(n) == COVERED)
                            *state(n) = DURABLE;
                    flush_busy = false;
                    flushes++;
                    continue;
                }
                u64 s = id - 1;
                if (s >= IN_FLIGHT || wslots[s].n == 0 || wslots[s].channel != k)
                    fail("durability", "completion 0x%lx on channel %u matches no write", id, k);
                u64 n = wslots[s].n;
                bool fua = ((n - 1) / RUN) % 2 == 0;
                if (r.transferred != RECORD_BYTES)
                    fail("durability", "record %lu: %u bytes written", n, r.transferred);
                *state(n) = fua ? DURABLE : WRITTEN;
                if (!fua)
                    written++;
                wslots[s].n = 0;
            }
        }
        while (durable + 1 < next && *state(durable + 1) == DURABLE) {
            *state(durable + 1) = FREE;
            durable++;
        }
        if (durable != printed) {
            printf("durable %lu\n", durable);
            printed = durable;
        }
        if (progress)
            deadline = deadline_ms(STALL_MS);
        else if (expired(deadline))
            fail("durability", "nothing completed for %u ms (record %lu next, %lu durable, %lu flushes)", STALL_MS,
                 next, durable, flushes);
        else
            cpu_relax();
    }
    return 0;
}

void kmain(u64 vcpu_index, u64 vcpu_count)
{
    if (vcpu_index != 0)
        for (;;)
            __asm__ volatile("cli; hlt");
    modes_bring_up(vcpu_index, vcpu_count);
    run_user(durability_loop, 0, user_stack_top());
    guest_exit(1);
}
