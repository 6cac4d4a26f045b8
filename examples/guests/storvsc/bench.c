/*
 * storvsc bench mode (bench/storage/run): the guest's side of issue 7's storage benchmark. On
 * LUN 0 it runs, each for bench_param[1] seconds of guest time: 4 KiB random read and write at
 * queue depth 1 and 32, then 1 MiB sequential read and write at queue depth 4 (the same
 * workloads bench/storage/run gives fio), requests spread round-robin over every channel. Time is
 * the reference TSC page (Hyper-V's clock, 100 ns units, read at CPL3 as Linux's
 * hv_read_tsc_page_tsc does). Per workload it prints
 *   "bench-start NAME"  when the first request goes out, and
 *   "bench NAME ios N us T iops X mbps Y signals S polls P interrupts I"  when the last one is back
 * (S: guest-to-host signals, P: completions taken per non-empty poll round, x100, I: VMBus
 * interrupts the host sent, each one a trip through the guest's CPL0 handler), then
 * "bench done" and exits 0. bench/storage/run patches bench_param[1] in a copy of the image.
 */
#define MAX_PFNS 256
#include "modes.h"

#define BENCH_MAGIC 0x53444E4F43455342UL /* "BSECONDS": bench/storage/run finds the seconds after it */
static const volatile u64 bench_param[2] = { BENCH_MAGIC, 5 };

#define TSC_PAGE_PA 0xC01000UL
#define PFN_PA 0x1800000UL        /* per slot MAX_PFNS page numbers */
#define QD_MAX 32

struct tsc_page {
    u32 sequence;
    u32 reserved;
    u64 scale;
    long offset;
} PACKED;

static u64 now_100ns(void)
{
    const struct tsc_page *page = (const struct tsc_page *)TSC_PAGE_PA;
    for (;;) {
        u32 sequence = READ_ONCE(page->sequence);
        if (sequence == 0)
            fail("clock", "reference TSC page invalid (sequence 0)");
        barrier();
        u64 scale = READ_ONCE(page->scale);
        long offset = READ_ONCE(page->offset);
        u64 tsc = rdtsc();
        barrier();
        if (READ_ONCE(page->sequence) == sequence)
            return (u64)(((unsigned __int128)tsc * scale) >> 64) + (u64)offset;
    }
}

struct workload {
    const char *name;
    bool write, random;
    u32 bytes, depth;
};

static const struct workload workloads[] = {
    { "randread-4k-qd1", false, true, 4096, 1 },      { "randread-4k-qd32", false, true, 4096, 32 },
    { "randwrite-4k-qd1", true, true, 4096, 1 },      { "randwrite-4k-qd32", true, true, 4096, 32 },
    { "read-1m-qd4", false, false, 1024 * 1024, 4 },  { "write-1m-qd4", true, false, 1024 * 1024, 4 },
};

static u64 rng = 0x2545F4914F6CDD1DUL;
static u64 next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static u64 *slot_pfns(u32 s) { return (u64 *)(PFN_PA + (u64)s * MAX_PFNS * 8); }

static u64 bench_run(u64 unused)
{
    (void)unused;
    u64 blocks;
    u32 block;
    modes_capacity(0, &blocks, &block);
    u64 disk = blocks * block;
    u64 seconds = bench_param[1];
    printf(PROG ": LUN 0: %lu bytes, %u-byte blocks; %u channels; %lu s per workload\n", disk, block, channel_count,
           seconds);
    if (disk < 16 * MiB)
        fail("capacity", "LUN 0 has %lu bytes: the bench wants at least 16 MiB", disk);
    if (properties.max_transfer_bytes < 1024 * 1024)
        fail("properties", "max transfer %u bytes: set max_transfer_bytes = 1048576 (1 MiB requests)",
             properties.max_transfer_bytes);

    for (u32 w = 0; w < ARRAY_SIZE(workloads); w++) {
        const struct workload *wl = &workloads[w];
        u32 pages = wl->bytes / PAGE_SIZE;
        for (u32 s = 0; s < wl->depth; s++)
            for (u32 j = 0; j < pages; j++)
                slot_pfns(s)[j] = DATA_PA / PAGE_SIZE + (u64)s * pages + j;
        bool busy[QD_MAX] = { false };
        u64 seq = 0, ios = 0, rounds = 0, taken = 0, rr = 0;
        u64 signals0 = 0, interrupts0 = READ_ONCE(sint_interrupts);
        for (u32 k = 0; k < channel_count; k++)
            signals0 += channels[k].signals;
        printf("bench-start %s\n", wl->name);
        u64 start = now_100ns(), end = start + seconds * 10000000UL;
        bool stopping = false;
        u32 in_flight = 0;
        u64 deadline = deadline_ms(STALL_MS);
        for (;;) {
            if (!stopping && now_100ns() >= end)
                stopping = true;
            for (u32 s = 0; s < wl->depth && !stopping; s++) {
                if (busy[s])
                    continue;
                u64 offset;
                if (wl->random) {
                    offset = (next_random() % (disk / wl->bytes)) * wl->bytes;
                } else {
                    offset = seq;
                    seq = seq + wl->bytes + wl->bytes > disk ? 0 : seq + wl->bytes;
                }
                busy[s] = true;
                in_flight++;
                modes_rw16((u32)(rr++ % channel_count), s + 1, wl->write, false, offset / block, wl->bytes / block,
                           block, slot_pfns(s), wl->name);
            }
            if (stopping && in_flight == 0)
                break;
            u64 got = 0;
            for (u32 k = 0; k < channel_count; k++) {
                u64 id;
                struct vstor_packet reply;
                while (take_packet(&channels[k], &id, &reply, wl->name)) {
                    struct scsi_result r;
                    result_from(&reply, &r, wl->name);
                    if (!good(&r) || r.transferred != wl->bytes || id == 0 || id > wl->depth || !busy[id - 1])
                        fail(wl->name, "completion 0x%lx: srb 0x%x scsi 0x%x, %u bytes", id, r.srb_status,
                             r.scsi_status, r.transferred);
                    busy[id - 1] = false;
                    in_flight--;
                    ios++;
                    got++;
                }
            }
            if (got) {
                rounds++;
                taken += got;
                deadline = deadline_ms(STALL_MS);
            } else if (expired(deadline)) {
                fail(wl->name, "nothing completed for %u ms, %u in flight", STALL_MS, in_flight);
            }
        }
        u64 elapsed = now_100ns() - start;
        u64 signals = 0;
        for (u32 k = 0; k < channel_count; k++)
            signals += channels[k].signals;
        u64 us = elapsed / 10;
        u64 iops = us ? ios * 1000000UL / us : 0;
        u64 mbps10 = us ? ios * wl->bytes * 10 / us : 0; /* bytes/us = MB/s */
        printf("bench %s ios %lu us %lu iops %lu mbps %lu.%lu signals %lu polls %lu interrupts %lu\n", wl->name, ios, us,
               iops, mbps10 / 10, mbps10 % 10, signals - signals0, rounds ? taken * 100 / rounds : 0,
               READ_ONCE(sint_interrupts) - interrupts0);
    }
    printf("bench done\n");
    return 0;
}

void kmain(u64 vcpu_index, u64 vcpu_count)
{
    if (vcpu_index != 0)
        for (;;)
            __asm__ volatile("cli; hlt");
    modes_bring_up(vcpu_index, vcpu_count);
    /* Hyper-V's reference TSC page: enabled at CPL0 (an MSR), read at CPL3. */
    wrmsr(0x40000021, TSC_PAGE_PA | 1);
    if (READ_ONCE(((const struct tsc_page *)TSC_PAGE_PA)->sequence) == 0)
        fail("clock", "the reference TSC page stays invalid after enabling it at 0x%lx", TSC_PAGE_PA);
    run_user(bench_run, 0, user_stack_top());
    guest_exit(0);
}
