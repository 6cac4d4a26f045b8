/*
 * CPUID detection, synthetic MSRs, the hypercall page and the SynIC, in the order Linux's
 * ms_hyperv_init_platform / hyperv_init / hv_synic_enable_regs do them.
 */
#include "hv.h"
#include "cpu.h"

#define CPUID_VENDOR 0x40000000
#define CPUID_INTERFACE 0x40000001
#define CPUID_FEATURES 0x40000003
#define CPUID_ENLIGHTENMENTS 0x40000004
#define HV_INTERFACE_HV1 0x31237648 /* "Hv#1" */

/* CPUID 0x40000003 EAX */
#define HV_MSR_TIME_REF_COUNT_AVAILABLE (1u << 1)
#define HV_MSR_SYNIC_AVAILABLE (1u << 2)
#define HV_MSR_HYPERCALL_AVAILABLE (1u << 5)
#define HV_MSR_VP_INDEX_AVAILABLE (1u << 6)
#define HV_MSR_REFERENCE_TSC_AVAILABLE (1u << 9)
#define HV_ACCESS_FREQUENCY_MSRS (1u << 11)
/* CPUID 0x40000003 EBX */
#define HV_POST_MESSAGES (1u << 4)
#define HV_SIGNAL_EVENTS (1u << 5)
/* CPUID 0x40000004 EAX */
#define HV_DEPRECATING_AEOI_RECOMMENDED (1u << 9)

/* An open-source guest (bit 63), Linux vendor id 0x8100, as hv_generate_guest_id builds it. */
#define GUEST_OS_ID 0x8100000006000000UL

#define SINT_MASKED (1UL << 16)
#define SINT_AUTO_EOI (1UL << 17)

struct hv_info hv;
u64 tsc_hz;
volatile u64 sint_interrupts;
volatile u64 eom_writes;

u8 hypercall_page[4096] ALIGNED(4096);
static u8 simp_page[4096] ALIGNED(4096);
static u8 siefp_page[4096] ALIGNED(4096);
/* HvPostMessage input: 8-byte aligned and never crossing a page, so a page of its own. */
static struct hv_post_message_input post_input ALIGNED(4096);

void hv_detect(void)
{
    u32 a, b, c, d;
    cpuid(1, &a, &b, &c, &d);
    if (!(c & (1u << 31)))
        fail("cpuid", "CPUID.1:ECX bit 31 (hypervisor present) is clear");
    cpuid(CPUID_VENDOR, &a, &b, &c, &d);
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &c, 4);
    memcpy(vendor + 8, &d, 4);
    vendor[12] = 0;
    if (memcmp(vendor, "Microsoft Hv", 12) != 0)
        fail("cpuid", "leaf 0x40000000 vendor \"%s\", want \"Microsoft Hv\"", vendor);
    if (a < 0x40000005)
        fail("cpuid", "max hypervisor leaf 0x%x, want >= 0x40000005", a);
    hv.max_leaf = a;
    cpuid(CPUID_INTERFACE, &a, &b, &c, &d);
    if (a != HV_INTERFACE_HV1)
        fail("cpuid", "interface signature 0x%x, want 0x%x (\"Hv#1\")", a, HV_INTERFACE_HV1);
    cpuid(CPUID_FEATURES, &a, &b, &c, &d);
    hv.privileges = a;
    hv.flags = b;
    cpuid(CPUID_ENLIGHTENMENTS, &a, &b, &c, &d);
    hv.recommendations = a;

    const u32 need = HV_MSR_TIME_REF_COUNT_AVAILABLE | HV_MSR_SYNIC_AVAILABLE | HV_MSR_HYPERCALL_AVAILABLE
                     | HV_MSR_VP_INDEX_AVAILABLE | HV_ACCESS_FREQUENCY_MSRS;
    if ((hv.privileges & need) != need)
        fail("cpuid", "privileges 0x%x lack 0x%x (TIME_REF_COUNT, SYNIC, HYPERCALL, VP_INDEX, frequency MSRs)",
             hv.privileges, need & ~hv.privileges);
    if ((hv.flags & (HV_POST_MESSAGES | HV_SIGNAL_EVENTS)) != (HV_POST_MESSAGES | HV_SIGNAL_EVENTS))
        fail("cpuid", "0x40000003 EBX 0x%x lacks PostMessages (bit 4) or SignalEvents (bit 5)", hv.flags);
    printf(PROG ": cpuid: \"%s\" max leaf 0x%x, Hv#1, privileges 0x%x%s, flags 0x%x, recommendations 0x%x%s\n",
           vendor, hv.max_leaf, hv.privileges,
           hv.privileges & HV_MSR_REFERENCE_TSC_AVAILABLE ? " (reference TSC)" : "", hv.flags, hv.recommendations,
           hv.recommendations & HV_DEPRECATING_AEOI_RECOMMENDED ? " (no auto-EOI)" : "");
}

void hv_enable_hypercalls(u32 expected_vp_index)
{
    wrmsr(HV_MSR_GUEST_OS_ID, GUEST_OS_ID);
    u64 id = rdmsr(HV_MSR_GUEST_OS_ID);
    if (id != GUEST_OS_ID)
        fail("msr", "GUEST_OS_ID reads 0x%lx after writing 0x%lx", id, GUEST_OS_ID);

    /* Linux keeps the reserved bits 1-11 as read and sets the page and the enable bit. */
    u64 msr = rdmsr(HV_MSR_HYPERCALL);
    if (msr & 1)
        fail("msr", "hypercall page already enabled (0x%lx) before the guest enabled it", msr);
    hv.hypercall_gpa = (u64)hypercall_page;
    msr = (msr & 0xFFEUL) | hv.hypercall_gpa | 1;
    wrmsr(HV_MSR_HYPERCALL, msr);
    u64 back = rdmsr(HV_MSR_HYPERCALL);
    if (back != msr)
        fail("msr", "HYPERCALL reads 0x%lx after writing 0x%lx", back, msr);
    if (hypercall_page[0] == 0 && hypercall_page[1] == 0)
        fail("msr", "hypercall page at 0x%lx still empty after enabling it", hv.hypercall_gpa);

    hv.vp_index = (u32)rdmsr(HV_MSR_VP_INDEX);
    if (hv.vp_index != expected_vp_index)
        fail("msr", "VP_INDEX %u on vCPU %u", hv.vp_index, expected_vp_index);
    tsc_hz = rdmsr(HV_MSR_TSC_FREQUENCY);
    if (tsc_hz < 100000000UL || tsc_hz > 10000000000UL)
        fail("msr", "TSC_FREQUENCY %lu Hz is implausible", tsc_hz);

    printf(PROG ": msr: guest OS id set, hypercall page at 0x%lx (", hv.hypercall_gpa);
    for (int i = 0; i < 12; i++)
        printf("%s%02x", i ? " " : "", hypercall_page[i]);
    printf(" ...), VP index %u, TSC %lu Hz\n", hv.vp_index, tsc_hz);
}

/* TIME_REF_COUNT counts 100 ns units: check it against the TSC over ~20 ms. */
void hv_check_time(void)
{
    u64 ref0 = rdmsr(HV_MSR_TIME_REF_COUNT), tsc0 = rdtsc();
    u64 end = tsc0 + tsc_hz / 50;
    while (rdtsc() < end)
        cpu_relax();
    u64 ref1 = rdmsr(HV_MSR_TIME_REF_COUNT), tsc1 = rdtsc();
    u64 ticks = ref1 - ref0, expected = (tsc1 - tsc0) * 10000000UL / tsc_hz;
    if (ref1 <= ref0 || ticks * 4 < expected * 3 || ticks * 4 > expected * 5)
        fail("time", "TIME_REF_COUNT went %lu -> %lu (%lu ticks) while the TSC says %lu ticks of 100 ns",
             ref0, ref1, ticks, expected);
    printf(PROG ": time: TIME_REF_COUNT advanced %lu ticks of 100 ns, TSC says %lu\n", ticks, expected);
}

void hv_enable_synic(void)
{
    u64 version = rdmsr(HV_MSR_SVERSION);
    if (version != 1)
        fail("synic", "SVERSION %lu, want 1", version);

    hv.simp_gpa = (u64)simp_page;
    u64 simp = (rdmsr(HV_MSR_SIMP) & 0xFFEUL) | hv.simp_gpa | 1;
    wrmsr(HV_MSR_SIMP, simp);
    if (rdmsr(HV_MSR_SIMP) != simp)
        fail("synic", "SIMP reads 0x%lx after writing 0x%lx", rdmsr(HV_MSR_SIMP), simp);

    hv.siefp_gpa = (u64)siefp_page;
    u64 siefp = (rdmsr(HV_MSR_SIEFP) & 0xFFEUL) | hv.siefp_gpa | 1;
    wrmsr(HV_MSR_SIEFP, siefp);
    if (rdmsr(HV_MSR_SIEFP) != siefp)
        fail("synic", "SIEFP reads 0x%lx after writing 0x%lx", rdmsr(HV_MSR_SIEFP), siefp);

    u64 sint = rdmsr(HV_MSR_SINT0 + VMBUS_MESSAGE_SINT);
    if (!(sint & SINT_MASKED))
        printf(PROG ": synic: note: SINT2 read 0x%lx at reset; the TLFS default is masked (0x10000)\n", sint);
    /* Vector 0xF3, unmasked, no auto-EOI (the in-kernel APIC has none): we EOI ourselves. */
    sint = (sint & ~(0xFFUL | SINT_MASKED | SINT_AUTO_EOI)) | SINT_VECTOR;
    wrmsr(HV_MSR_SINT0 + VMBUS_MESSAGE_SINT, sint);
    if (rdmsr(HV_MSR_SINT0 + VMBUS_MESSAGE_SINT) != sint)
        fail("synic", "SINT2 reads 0x%lx after writing 0x%lx", rdmsr(HV_MSR_SINT0 + VMBUS_MESSAGE_SINT), sint);

    u64 scontrol = rdmsr(HV_MSR_SCONTROL) | 1;
    wrmsr(HV_MSR_SCONTROL, scontrol);
    if (!(rdmsr(HV_MSR_SCONTROL) & 1))
        fail("synic", "SCONTROL enable bit does not stick");
    printf(PROG ": synic: SVERSION 1, SIMP 0x%lx, SIEFP 0x%lx, SINT2 0x%lx, SCONTROL enabled\n", hv.simp_gpa,
           hv.siefp_gpa, sint);
}

static u16 post_prepared(void)
{
    /* The host may be out of message buffers for us (HV_STATUS_INSUFFICIENT_BUFFERS): Linux
     * retries with a growing delay; so do we, bounded. */
    for (int attempt = 0;; attempt++) {
        u16 status = (u16)hv_hypercall(HVCALL_POST_MESSAGE, (u64)&post_input, 0);
        if (status != HV_STATUS_INSUFFICIENT_BUFFERS || attempt == 100)
            return status;
        u64 until = deadline_ms(1);
        while (!expired(until))
            cpu_relax();
    }
}

u16 hv_post_message(u32 connection_id, u32 message_type, const void *payload, u32 size)
{
    if (size > HV_MESSAGE_PAYLOAD_BYTES)
        fail("post", "payload of %u bytes", size);
    post_input.connection_id = connection_id;
    post_input.reserved = 0;
    post_input.message_type = message_type;
    post_input.payload_size = size;
    memset(post_input.payload, 0, sizeof(post_input.payload));
    memcpy(post_input.payload, payload, size);
    return post_prepared();
}

/* For the error-path checks: a post whose payload_size field says `claimed_size`. */
u16 hv_post_message_raw_size(u32 connection_id, u32 message_type, u32 claimed_size)
{
    post_input.connection_id = connection_id;
    post_input.reserved = 0;
    post_input.message_type = message_type;
    post_input.payload_size = claimed_size;
    memset(post_input.payload, 0, sizeof(post_input.payload));
    return post_prepared();
}

bool hv_take_message(u32 sint, struct hv_message *out)
{
    struct hv_message *slot = (struct hv_message *)(simp_page + sint * sizeof(struct hv_message));
    if (READ_ONCE(slot->message_type) == HVMSG_NONE)
        return false;
    barrier(); /* x86 keeps loads in order; the compiler must too */
    memcpy(out, slot, sizeof(*out));
    if (out->payload_size > HV_MESSAGE_PAYLOAD_BYTES)
        fail("synic", "message type 0x%x with payload_size %u > 240", out->message_type, out->payload_size);
    /* As vmbus_signal_eom: free the slot, then look at "pending" (the host may have set it
     * meanwhile) and ask for the next message. */
    WRITE_ONCE(slot->message_type, HVMSG_NONE);
    mb();
    if (READ_ONCE(slot->message_flags) & 1) {
        wrmsr(HV_MSR_EOM, 0);
        eom_writes++;
    }
    return true;
}

volatile u64 *hv_event_flags(u32 sint) { return (volatile u64 *)(siefp_page + sint * 256); }

volatile u64 channel_events;
static volatile u32 watched_flag;

void hv_watch_event_flag(u32 flag) { WRITE_ONCE(watched_flag, flag); }

/* Vector 0xF3 (entry.S). Counts the interrupt, claims the watched channel's event flag the way
 * vmbus_chan_sched does (test, then atomically clear) and EOIs the local APIC. Correctness never
 * depends on it: the rings and the message slot are polled as well. */
void sint_handler(void)
{
    sint_interrupts++;
    u32 flag = READ_ONCE(watched_flag);
    if (flag) {
        volatile u64 *word = hv_event_flags(VMBUS_MESSAGE_SINT) + flag / 64;
        u64 bit = 1UL << (flag % 64);
        if (*word & bit) {
            __atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST);
            channel_events++;
        }
    }
    apic_eoi();
}
