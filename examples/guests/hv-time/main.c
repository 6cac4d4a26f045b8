/*
 * hv-time: Veneer's Hyper-V timekeeping as a guest depends on it, checked from inside the guest.
 *
 * - The reference TSC page against TIME_REF_COUNT: a page read, an MSR read, a page read, many
 *   thousands of times at CPL0 (the MSR lies between the two page reads, never behind the first),
 *   and millions of page reads at CPL3 (monotonic); once at the start and once at the end.
 * - MSRs the partition does not implement, or must not accept a write to, raise #GP for reads
 *   and writes alike (a #GP fixup counts them and skips the instruction).
 * - Synthetic timers: a one-shot in message mode (auto-enabled by its count), a periodic one in
 *   message mode, a one-shot and a periodic one in direct mode; never early, expiration and
 *   delivery times as the TLFS defines them.
 * Built from vmbus-echo's runtime (entry, cpu, console, hv); one line per check, last line
 * "hv-time: all checks passed" and exit status 0, or "hv-time: FAILED <step>: <detail>" and 1.
 */
#include "../vmbus-echo/cpu.h"
#include "../vmbus-echo/hv.h"

#define HV_MSR_REFERENCE_TSC 0x40000021
#define HV_MSR_STIMER0_CONFIG 0x400000B0
#define HV_MSR_STIMER0_COUNT 0x400000B1
#define STIMER_CONFIG(n) (HV_MSR_STIMER0_CONFIG + 2 * (n))
#define STIMER_COUNT(n) (HV_MSR_STIMER0_COUNT + 2 * (n))

#define STIMER_ENABLE (1UL << 0)
#define STIMER_PERIODIC (1UL << 1)
#define STIMER_AUTO_ENABLE (1UL << 3)
#define STIMER_VECTOR(v) ((u64)(v) << 4)
#define STIMER_DIRECT (1UL << 12)
#define STIMER_SINT(s) ((u64)(s) << 16)

#define HVMSG_TIMER_EXPIRED 0x80000010
#define TIMER_SINT 3
#define TIMER_SINT_VECTOR 0xe1
#define DIRECT_VECTOR 0xed

/* CPUID 0x40000003 */
#define HV_MSR_SYNTIMER_AVAILABLE (1u << 3)
#define HV_STIMER_DIRECT_MODE_AVAILABLE (1u << 19)
#define HV_ACCESS_TSC_INVARIANT (1u << 15)
#define HV_MSR_TSC_INVARIANT_CONTROL 0x40000118

#define CPL0_TRIPLES 20000
#define CPL3_READS 4000000UL

struct tsc_page {
    u32 sequence;
    u32 reserved;
    u64 scale;
    long offset;
} PACKED;

static struct tsc_page tsc_page ALIGNED(4096);

static inline u64 mul_shr64(u64 a, u64 b) { return (u64)(((unsigned __int128)a * b) >> 64); }

/* As Linux's hv_read_tsc_page_tsc: sequence, parameters, TSC, sequence again; 0 = invalid. */
static bool page_time(u64 *out)
{
    for (;;) {
        u32 sequence = READ_ONCE(tsc_page.sequence);
        if (sequence == 0)
            return false;
        barrier();
        u64 scale = READ_ONCE(tsc_page.scale);
        long offset = READ_ONCE(tsc_page.offset);
        u64 tsc = rdtsc();
        barrier();
        if (READ_ONCE(tsc_page.sequence) == sequence) {
            *out = mul_shr64(tsc, scale) + (u64)offset;
            return true;
        }
    }
}

static u64 now(void)
{
    u64 t;
    if (!page_time(&t))
        fail("tsc-page", "sequence 0 (invalid) after the page was enabled");
    return t;
}

static void check_version(void)
{
    u32 a, b, c, d;
    cpuid(0x40000002, &a, &b, &c, &d);
    if (a == 0 && b == 0)
        fail("cpuid", "hypervisor version leaf 0x40000002 is all zeros");
    cpuid(0x40000003, &a, &b, &c, &d);
    if (!(a & HV_MSR_SYNTIMER_AVAILABLE) || !(d & HV_STIMER_DIRECT_MODE_AVAILABLE))
        fail("cpuid", "0x40000003 EAX 0x%x EDX 0x%x: synthetic timers (EAX bit 3) or direct mode (EDX bit 19) "
             "not offered", a, d);
    u32 build, version;
    cpuid(0x40000002, &build, &version, &c, &d);
    printf(PROG ": cpuid: Hyper-V %u.%u build %u, synthetic timers with direct mode offered\n", version >> 16,
           version & 0xffff, build);
}

/* --- reference TSC page against TIME_REF_COUNT ---------------------------------------------- */

static void enable_tsc_page(void)
{
    u64 msr = (rdmsr(HV_MSR_REFERENCE_TSC) & 0xFFEUL) | (u64)&tsc_page | 1;
    wrmsr(HV_MSR_REFERENCE_TSC, msr);
    if (rdmsr(HV_MSR_REFERENCE_TSC) != msr)
        fail("tsc-page", "REFERENCE_TSC reads 0x%lx after writing 0x%lx", rdmsr(HV_MSR_REFERENCE_TSC), msr);
    if (READ_ONCE(tsc_page.sequence) == 0 || tsc_page.scale == 0)
        fail("tsc-page", "sequence %u scale 0x%lx after enabling", tsc_page.sequence, tsc_page.scale);
    printf(PROG ": tsc-page: enabled at 0x%lx, sequence %u, scale 0x%lx, offset %ld\n", (u64)&tsc_page,
           tsc_page.sequence, tsc_page.scale, tsc_page.offset);
}

/* page, MSR, page: the MSR read is ordered between the two page reads. */
static void page_msr_agreement(const char *when)
{
    u64 last = 0, spread = 0, start = now();
    for (u32 i = 0; i < CPL0_TRIPLES; i++) {
        u64 before = now();
        u64 msr = rdmsr(HV_MSR_TIME_REF_COUNT);
        u64 after = now();
        if (msr < before || msr > after || before < last)
            fail("tsc-page", "%s, read %u: page %lu, then TIME_REF_COUNT %lu, then page %lu (previous %lu)", when, i,
                 before, msr, after, last);
        if (after - before > spread)
            spread = after - before;
        last = after;
    }
    printf(PROG ": tsc-page: %s: %u page/MSR/page reads over %lu us, the MSR always between its page reads "
           "(widest gap %lu x 100 ns)\n", when, CPL0_TRIPLES, (last - start) / 10, spread);
}

/* CPL3, native speed: reads must never go back. Returns the number of reads that did. */
static u64 page_reads_user(u64 count)
{
    u64 last = 0, backwards = 0;
    for (u64 i = 0; i < count; i++) {
        u64 t;
        if (!page_time(&t))
            return count + 1;
        if (t < last)
            backwards++;
        last = t;
    }
    return backwards;
}

static void page_monotonic(const char *when)
{
    u64 t0 = now();
    u64 backwards = run_user(page_reads_user, CPL3_READS, user_stack_top());
    u64 t1 = now();
    if (backwards > CPL3_READS)
        fail("tsc-page", "%s: the page turned invalid (sequence 0) during the CPL3 reads", when);
    if (backwards)
        fail("tsc-page", "%s: %lu of %lu page reads at CPL3 went backwards", when, backwards, CPL3_READS);
    /* The page runs at TSC_FREQUENCY: 100 ns per tsc_hz / 10^7 TSC ticks, checked over this run. */
    printf(PROG ": tsc-page: %s: %lu reads at CPL3 in %lu us, monotonic\n", when, CPL3_READS, (t1 - t0) / 10);
}

/* --- MSRs that must fault -------------------------------------------------------------------- */

static volatile bool probing;
static volatile u64 gp_faults;

static bool gp_fixup(struct exception_frame *f)
{
    const u8 *ip = (const u8 *)f->rip;
    if (!probing || f->vector != 13 || ip[0] != 0x0f || (ip[1] != 0x30 && ip[1] != 0x32))
        return false;
    gp_faults++;
    f->rip += 2;
    return true;
}

static const u32 unimplemented_msrs[] = {
    0x40000003,                 /* unassigned synthetic MSR */
    0x40000010,                 /* VP_RUNTIME: not offered */
    0x40000070,                 /* APIC EOI: APIC access MSRs not offered */
    0x400000B8,                 /* past STIMER3_COUNT */
    0x400000FF,
    0x40000100,                 /* crash MSRs: not offered */
    0x40000105,
    0x40000106,                 /* reenlightenment control: not offered */
    0x400001FF,
    0x00000011, 0x00000012,     /* KVM's old kvmclock MSRs: a Hyper-V partition has no KVM leaves */
    0x4B564D00, 0x4B564D01,     /* KVM's kvmclock MSRs */
    0x4B564D02, 0x4B564D04,     /* KVM async page faults, PV EOI */
    0x00002FFF, 0xC0002FFF,     /* unassigned architectural indexes */
};

static const u32 read_only_msrs[] = {
    HV_MSR_VP_INDEX, HV_MSR_TIME_REF_COUNT, HV_MSR_TSC_FREQUENCY, 0x40000023 /* APIC_FREQUENCY */,
};

static void probe(u32 msr, bool write)
{
    u64 before = gp_faults;
    if (write)
        wrmsr(msr, 0);
    else
        (void)rdmsr(msr);
    if (gp_faults != before + 1)
        fail("msr-probe", "%s of MSR 0x%x did not raise #GP", write ? "a write" : "a read", msr);
}

static void probe_msrs(void)
{
    exception_fixup = gp_fixup;
    probing = true;
    for (u32 i = 0; i < ARRAY_SIZE(unimplemented_msrs); i++) {
        probe(unimplemented_msrs[i], false);
        probe(unimplemented_msrs[i], true);
    }
    for (u32 i = 0; i < ARRAY_SIZE(read_only_msrs); i++) {
        (void)rdmsr(read_only_msrs[i]);
        if (gp_faults != 2 * ARRAY_SIZE(unimplemented_msrs) + i)
            fail("msr-probe", "reading the read-only MSR 0x%x raised #GP", read_only_msrs[i]);
        probe(read_only_msrs[i], true);
    }
    u64 expected = 2 * ARRAY_SIZE(unimplemented_msrs) + ARRAY_SIZE(read_only_msrs);

    /* HV_X64_MSR_TSC_INVARIANT_CONTROL exists only with the AccessTscInvariantControls privilege:
     * bit 0 sticks, reserved bits fault. Without the privilege it is one more unimplemented MSR. */
    bool invariant = hv.privileges & HV_ACCESS_TSC_INVARIANT;
    if (invariant) {
        wrmsr(HV_MSR_TSC_INVARIANT_CONTROL, 1);
        if (gp_faults != expected || rdmsr(HV_MSR_TSC_INVARIANT_CONTROL) != 1)
            fail("msr-probe", "TSC_INVARIANT_CONTROL: writing 1 faulted or does not read back");
        probe(HV_MSR_TSC_INVARIANT_CONTROL, true); /* wrmsr(.., 0): cannot be cleared once set */
        expected++;
    } else {
        probe(HV_MSR_TSC_INVARIANT_CONTROL, false);
        probe(HV_MSR_TSC_INVARIANT_CONTROL, true);
        expected += 2;
    }
    probing = false;
    exception_fixup = NULL;
    if (gp_faults != expected)
        fail("msr-probe", "%lu #GP, want %lu", gp_faults, expected);
    printf(PROG ": msr-probe: %lu reads and writes of unimplemented MSRs and writes of read-only ones, each a #GP; "
           "invariant TSC %s\n", expected, invariant ? "offered, its control MSR set" : "not offered, its MSR faults");
}

/* --- synthetic timers ------------------------------------------------------------------------ */

static volatile u64 sint3_interrupts, direct_interrupts, direct_first_time;

static void on_timer_sint(void) { sint3_interrupts++; }

static void on_direct(void)
{
    if (direct_interrupts++ == 0)
        direct_first_time = now();
}

struct timer_payload {
    u32 timer_index;
    u32 reserved;
    u64 expiration_time;
    u64 delivery_time;
} PACKED;

/* Waits up to `ms` for a timer message in SINT3's slot; checks it and returns its payload. */
static bool wait_timer_message(u32 ms, struct timer_payload *out, u64 *arrival)
{
    struct hv_message m;
    u64 until = deadline_ms(ms);
    while (!hv_take_message(TIMER_SINT, &m)) {
        if (expired(until))
            return false;
        cpu_relax();
    }
    *arrival = now();
    if (m.message_type != HVMSG_TIMER_EXPIRED || m.payload_size != sizeof(*out))
        fail("stimer", "SINT%u slot has message type 0x%x size %u, want 0x%x size %lu", TIMER_SINT, m.message_type,
             m.payload_size, HVMSG_TIMER_EXPIRED, sizeof(*out));
    memcpy(out, m.payload, sizeof(*out));
    if (out->delivery_time < out->expiration_time)
        fail("stimer", "timer %u delivered at %lu before its expiration %lu", out->timer_index, out->delivery_time,
             out->expiration_time);
    if (*arrival < out->expiration_time)
        fail("stimer", "timer %u message seen at %lu, before its expiration %lu (early)", out->timer_index, *arrival,
             out->expiration_time);
    return true;
}

static void oneshot_message(void)
{
    wrmsr(STIMER_CONFIG(0), STIMER_AUTO_ENABLE | STIMER_SINT(TIMER_SINT));
    if (rdmsr(STIMER_CONFIG(0)) & STIMER_ENABLE)
        fail("stimer", "STIMER0 enabled by a config write with count 0");
    u64 expiration = now() + 20000;     /* 2 ms */
    wrmsr(STIMER_COUNT(0), expiration);
    if (!(rdmsr(STIMER_CONFIG(0)) & STIMER_ENABLE))
        fail("stimer", "STIMER0 not auto-enabled by its count (config 0x%lx)", rdmsr(STIMER_CONFIG(0)));
    struct timer_payload p;
    u64 arrival;
    if (!wait_timer_message(3000, &p, &arrival))
        fail("stimer", "no message from the one-shot STIMER0 within 3 s (config 0x%lx)", rdmsr(STIMER_CONFIG(0)));
    if (p.timer_index != 0 || p.expiration_time != expiration)
        fail("stimer", "one-shot message says timer %u expiration %lu, want 0 and %lu", p.timer_index,
             p.expiration_time, expiration);
    if (rdmsr(STIMER_CONFIG(0)) & STIMER_ENABLE)
        fail("stimer", "one-shot STIMER0 still enabled after its message (config 0x%lx)", rdmsr(STIMER_CONFIG(0)));
    u64 until = deadline_ms(1000);
    while (sint3_interrupts == 0 && !expired(until))
        cpu_relax();
    if (sint3_interrupts == 0)
        fail("stimer", "the one-shot message came without a SINT%u interrupt", TIMER_SINT);
    printf(PROG ": stimer: one-shot message mode: expired at %lu, delivered at %lu, seen at %lu (+%lu x 100 ns), "
           "then disabled\n", p.expiration_time, p.delivery_time, arrival, arrival - p.expiration_time);
}

static void periodic_message(void)
{
    const u64 period = 10000;           /* 1 ms */
    wrmsr(STIMER_COUNT(1), period);
    wrmsr(STIMER_CONFIG(1), STIMER_ENABLE | STIMER_PERIODIC | STIMER_SINT(TIMER_SINT));
    u64 first = 0, previous = 0;
    for (u32 i = 0; i < 10; i++) {
        struct timer_payload p;
        u64 arrival;
        if (!wait_timer_message(3000, &p, &arrival))
            fail("stimer", "periodic STIMER1: tick %u missing after 3 s", i);
        if (p.timer_index != 1)
            fail("stimer", "periodic tick from timer %u, want 1", p.timer_index);
        if (i == 0)
            first = p.expiration_time;
        else if (p.expiration_time <= previous || (p.expiration_time - first) % period != 0)
            fail("stimer", "periodic tick %u expires at %lu after %lu: not on the %lu grid from %lu", i,
                 p.expiration_time, previous, period, first);
        previous = p.expiration_time;
    }
    if (!(rdmsr(STIMER_CONFIG(1)) & STIMER_ENABLE))
        fail("stimer", "periodic STIMER1 disabled itself");
    wrmsr(STIMER_COUNT(1), 0);
    if (rdmsr(STIMER_CONFIG(1)) & STIMER_ENABLE)
        fail("stimer", "STIMER1 still enabled after count 0");
    struct timer_payload p;
    u64 arrival;
    (void)wait_timer_message(20, &p, &arrival);        /* one may have been on its way */
    if (wait_timer_message(20, &p, &arrival))
        fail("stimer", "STIMER1 still ticking after count 0 (expiration %lu)", p.expiration_time);
    printf(PROG ": stimer: periodic message mode: 10 ticks on a 1 ms grid, stopped by count 0\n");
}

static void direct_mode(void)
{
    cpu_set_interrupt_handler(DIRECT_VECTOR, on_direct);
    u64 expiration = now() + 20000;
    wrmsr(STIMER_COUNT(2), expiration);
    wrmsr(STIMER_CONFIG(2), STIMER_ENABLE | STIMER_DIRECT | STIMER_VECTOR(DIRECT_VECTOR));
    u64 until = deadline_ms(3000);
    while (direct_interrupts == 0 && !expired(until))
        cpu_relax();
    if (direct_interrupts != 1)
        fail("stimer", "direct-mode one-shot STIMER2: %lu interrupts on vector 0x%x", direct_interrupts, DIRECT_VECTOR);
    if (direct_first_time < expiration)
        fail("stimer", "direct-mode interrupt at %lu, before the expiration %lu (early)", direct_first_time, expiration);
    if (rdmsr(STIMER_CONFIG(2)) & STIMER_ENABLE)
        fail("stimer", "direct one-shot STIMER2 still enabled after firing");
    struct hv_message m;
    for (u32 sint = 0; sint < 16; sint++)
        if (hv_take_message(sint, &m))
            fail("stimer", "a direct-mode timer left message type 0x%x in SINT%u", m.message_type, sint);
    u64 late = direct_first_time - expiration;

    wrmsr(STIMER_COUNT(3), 5000);       /* 0.5 ms */
    wrmsr(STIMER_CONFIG(3), STIMER_ENABLE | STIMER_PERIODIC | STIMER_DIRECT | STIMER_VECTOR(DIRECT_VECTOR));
    until = deadline_ms(3000);
    while (direct_interrupts < 6 && !expired(until))
        cpu_relax();
    wrmsr(STIMER_CONFIG(3), 0);
    if (direct_interrupts < 6)
        fail("stimer", "direct-mode periodic STIMER3: %lu interrupts in 3 s", direct_interrupts - 1);
    printf(PROG ": stimer: direct mode: one-shot on vector 0x%x after its expiration (+%lu x 100 ns), periodic "
           "ticking\n", DIRECT_VECTOR, late);
}

void kmain(u64 vcpu_index, u64 vcpu_count)
{
    if (vcpu_index != 0)
        for (;;)
            __asm__ volatile("cli; hlt");
    printf(PROG ": start on vCPU %lu of %lu\n", vcpu_index, vcpu_count);
    cpu_init();
    hv_detect();
    hv_enable_hypercalls((u32)vcpu_index);
    check_version();
    enable_tsc_page();
    page_msr_agreement("start");
    page_monotonic("start");
    probe_msrs();

    hv_enable_synic();
    wrmsr(HV_MSR_SINT0 + TIMER_SINT, TIMER_SINT_VECTOR);
    cpu_set_interrupt_handler(TIMER_SINT_VECTOR, on_timer_sint);
    cpu_enable_interrupts();
    oneshot_message();
    periodic_message();
    direct_mode();

    page_msr_agreement("end");
    page_monotonic("end");
    printf(PROG ": all checks passed\n");
    guest_exit(0);
}
