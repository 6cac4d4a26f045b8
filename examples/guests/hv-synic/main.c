/*
 * hv-synic: the SynIC's message queueing, EOM and cross-VP paths, driven from inside a 2-vCPU
 * guest through the hv-testdev plugin (Plugins/Synthetic/hv-testdev), whose commands are
 * HvPostMessage payloads to its message connection:
 *   [1, vp, sint, tag, count] post `count` messages {tag, sequence, posting VP} to `sint` of `vp`
 *   [2, vp, sint, flag]       set event flag `flag` of `sint` of `vp`
 *   [3, vp, sint]             route HvSignalEvent flags on the event connection to `sint` of `vp`
 * VP 0 drives and prints; VP 1 enables its own SynIC, drains its message slot (with EOM), claims
 * its event flags and runs the commands VP 0 hands it. Last line "hv-synic: all checks passed",
 * exit status 0; "hv-synic: FAILED <step>: <detail>" and 1 if not.
 */
#include "../vmbus-echo/cpu.h"
#include "../vmbus-echo/hv.h"

#define MESSAGE_CONNECTION 0x10001
#define EVENT_CONNECTION 0x10002
#define REPLY_TYPE 0x7E57
#define MSG_SINT 4
#define EVENT_SINT 5
#define MSG_VECTOR 0xe1
#define EVENT_VECTOR 0xe2

enum { CMD_POST = 1, CMD_SIGNAL = 2, CMD_ROUTE = 3 };

/* Per VP: SynIC pages, hypercall input page, counters. */
struct vp_state {
    u8 simp[4096] ALIGNED(4096);
    u8 siefp[4096] ALIGNED(4096);
    struct hv_post_message_input input ALIGNED(4096);
    volatile u64 msg_interrupts, event_interrupts, eom_writes;
};
static struct vp_state vps[2];

static u32 current_vp(void) { return *(volatile u32 *)0xFEE00020UL >> 24; }   /* local APIC id = VP index */

static void on_message(void) { vps[current_vp() & 1].msg_interrupts++; }
static void on_event(void) { vps[current_vp() & 1].event_interrupts++; }

static void enable_synic(u32 vp)
{
    struct vp_state *s = &vps[vp];
    wrmsr(HV_MSR_SIMP, (u64)s->simp | 1);
    wrmsr(HV_MSR_SIEFP, (u64)s->siefp | 1);
    wrmsr(HV_MSR_SINT0 + MSG_SINT, MSG_VECTOR);
    wrmsr(HV_MSR_SINT0 + EVENT_SINT, EVENT_VECTOR);
    wrmsr(HV_MSR_SCONTROL, 1);
}

static u16 post(u32 vp, const u32 *words, u32 count)
{
    struct hv_post_message_input *in = &vps[vp].input;
    in->connection_id = MESSAGE_CONNECTION;
    in->reserved = 0;
    in->message_type = 1;
    in->payload_size = count * 4;
    memcpy(in->payload, words, count * 4);
    return (u16)hv_hypercall(HVCALL_POST_MESSAGE, (u64)in, 0);
}

static u16 post_raw(u32 vp, u32 connection)
{
    struct hv_post_message_input *in = &vps[vp].input;
    in->connection_id = connection;
    in->message_type = 1;
    in->payload_size = 4;
    return (u16)hv_hypercall(HVCALL_POST_MESSAGE, (u64)in, 0);
}

static u16 command(u32 vp, u32 cmd, u32 a, u32 b, u32 c, u32 d)
{
    u32 words[5] = { cmd, a, b, c, d };
    return post(vp, words, 5);
}

struct reply {
    u32 tag, sequence, from_vp;
};

/* Takes the next message from `vp`'s slot for MSG_SINT, as vmbus_signal_eom does: copy, free the
 * slot, then EOM if the host marked more pending. */
static bool take(u32 vp, struct reply *out)
{
    struct hv_message *slot = (struct hv_message *)(vps[vp].simp + MSG_SINT * sizeof(struct hv_message));
    u32 type = READ_ONCE(slot->message_type);
    if (type == HVMSG_NONE)
        return false;
    barrier();
    if (type != REPLY_TYPE || slot->payload_size != sizeof(*out))
        fail("message", "VP %u SINT%u slot: type 0x%x size %u, want 0x%x size %lu", vp, MSG_SINT, type,
             slot->payload_size, REPLY_TYPE, sizeof(*out));
    memcpy(out, slot->payload, sizeof(*out));
    WRITE_ONCE(slot->message_type, HVMSG_NONE);
    mb();
    if (READ_ONCE(slot->message_flags) & 1) {
        wrmsr(HV_MSR_EOM, 0);
        vps[vp].eom_writes++;
    }
    return true;
}

/* Receives `count` messages of `tag` in sequence order on `vp`, within `ms`. */
static void receive(u32 vp, u32 tag, u32 count, u32 from_vp, u32 ms, const char *step)
{
    u64 until = deadline_ms(ms);
    for (u32 i = 0; i < count;) {
        struct reply r;
        if (!take(vp, &r)) {
            if (expired(until))
                fail(step, "VP %u got %u of %u messages of tag 0x%x", vp, i, count, tag);
            cpu_relax();
            continue;
        }
        if (r.tag != tag || r.sequence != i || r.from_vp != from_vp)
            fail(step, "VP %u message %u: tag 0x%x sequence %u from VP %u, want 0x%x %u from VP %u", vp, i, r.tag,
                 r.sequence, r.from_vp, tag, i, from_vp);
        i++;
    }
}

/* Claims event flag `flag` of EVENT_SINT on `vp` (test, then atomically clear). */
static bool claim_flag(u32 vp, u32 flag)
{
    volatile u64 *word = (volatile u64 *)(vps[vp].siefp + EVENT_SINT * 256) + flag / 64;
    u64 bit = 1UL << (flag % 64);
    if (!(*word & bit))
        return false;
    __atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST);
    return true;
}

static void wait_flag(u32 vp, u32 flag, const char *step)
{
    u64 until = deadline_ms(2000);
    while (!claim_flag(vp, flag)) {
        if (expired(until))
            fail(step, "event flag %u of SINT%u never set on VP %u", flag, EVENT_SINT, vp);
        cpu_relax();
    }
}

/* The SynIC writes the slot or flag before it sends the interrupt: a poller can see the data
 * first, so interrupt counts are awaited (bounded), not read at once. */
static bool await_count(volatile u64 *counter, u64 above, u32 ms)
{
    u64 until = deadline_ms(ms);
    while (*counter <= above)
        if (expired(until))
            return false;
    return true;
}

/* --- VP 1 ------------------------------------------------------------------------------------ */

/* VP 0 hands VP 1 one task at a time: task and argument first, then a new request number;
 * VP 1 answers with that number in ap_completed. */
enum { AP_RECEIVE = 1, AP_FLAG, AP_SIGNAL, AP_POST_TO_0, AP_DONE };
static volatile u32 bsp_ready, ap_ready, ap_task, ap_arg, ap_request, ap_completed;
static volatile u16 ap_status;

static void ap_main(void)
{
    while (!READ_ONCE(bsp_ready))      /* VP 0 builds the page tables, GDT and IDT first */
        cpu_relax();
    cpu_init_ap();
    if (rdmsr(HV_MSR_VP_INDEX) != 1)
        fail("vp1", "VP_INDEX %lu on vCPU 1", rdmsr(HV_MSR_VP_INDEX));
    enable_synic(1);
    cpu_enable_interrupts();
    WRITE_ONCE(ap_ready, 1);
    u32 handled = 0;
    for (;;) {
        u32 request = READ_ONCE(ap_request);
        if (request == handled) {
            cpu_relax();
            continue;
        }
        barrier();                      /* task and argument were written before the number */
        u32 task = READ_ONCE(ap_task), arg = READ_ONCE(ap_arg);
        switch (task) {
        case AP_RECEIVE: receive(1, 0x2222, arg, 0, 5000, "cross-vp-post"); break;
        case AP_FLAG: wait_flag(1, arg, "cross-vp-event"); break;
        case AP_SIGNAL: ap_status = hv_signal_event(EVENT_CONNECTION, (u16)arg); break;
        case AP_POST_TO_0: ap_status = command(1, CMD_POST, 0, MSG_SINT, 0x3333, arg); break;
        case AP_DONE:
            for (;;)
                __asm__ volatile("cli; hlt");
        }
        handled = request;
        barrier();
        WRITE_ONCE(ap_completed, request);
    }
}

static u32 ap_start(u32 task, u32 arg)
{
    WRITE_ONCE(ap_task, task);
    WRITE_ONCE(ap_arg, arg);
    barrier();
    u32 request = READ_ONCE(ap_request) + 1;
    WRITE_ONCE(ap_request, request);
    return request;
}

static void ap_wait(u32 request, const char *step)
{
    u64 until = deadline_ms(10000);
    while (READ_ONCE(ap_completed) != request) {
        if (expired(until))
            fail(step, "VP 1 did not finish its part within 10 s");
        cpu_relax();
    }
}

/* Hands VP 1 a task and waits for it (VP 1 fails the run itself if the task fails). */
static void ap_run(u32 task, u32 arg, const char *step) { ap_wait(ap_start(task, arg), step); }

/* --- VP 0 ------------------------------------------------------------------------------------ */

static void expect_status(const char *step, const char *what, u16 got, u16 want)
{
    if (got != want)
        fail(step, "%s: status 0x%x, want 0x%x", what, got, want);
}

void kmain(u64 vcpu_index, u64 vcpu_count)
{
    if (vcpu_index == 1)
        ap_main();
    if (vcpu_index != 0)
        for (;;)
            __asm__ volatile("cli; hlt");
    printf(PROG ": start on vCPU %lu of %lu\n", vcpu_index, vcpu_count);
    if (vcpu_count != 2)
        fail("setup", "this test needs exactly 2 vCPUs, not %lu", vcpu_count);
    cpu_init();
    cpu_set_interrupt_handler(MSG_VECTOR, on_message);
    cpu_set_interrupt_handler(EVENT_VECTOR, on_event);
    hv_detect();
    hv_enable_hypercalls(0);
    WRITE_ONCE(bsp_ready, 1);
    enable_synic(0);
    cpu_enable_interrupts();
    u64 until = deadline_ms(10000);
    while (!READ_ONCE(ap_ready))
        if (expired(until))
            fail("setup", "vCPU 1 did not come up within 10 s");
    printf(PROG ": both VPs have their SynIC: messages on SINT%u (vector 0x%x), events on SINT%u (vector 0x%x)\n",
           MSG_SINT, MSG_VECTOR, EVENT_SINT, EVENT_VECTOR);

    /* 1. To itself: one message in the slot, four queued behind it, each after an EOM. */
    expect_status("self-post", "POST 5 to VP 0", command(0, CMD_POST, 0, MSG_SINT, 0x1111, 5), 0);
    receive(0, 0x1111, 5, 0, 2000, "self-post");
    if (vps[0].eom_writes < 4)
        fail("self-post", "%lu EOM writes for 5 queued messages, want 4 (each message after the first was pending)",
             vps[0].eom_writes);
    printf(PROG ": self-post: 5 messages in order through one slot, %lu EOMs, %lu interrupts\n", vps[0].eom_writes,
           vps[0].msg_interrupts);

    /* 2. To the other VP: VP 1 drains 40 messages while VP 0 posted them all at once. */
    u32 receiving = ap_start(AP_RECEIVE, 40);
    expect_status("cross-vp-post", "POST 40 to VP 1", command(0, CMD_POST, 1, MSG_SINT, 0x2222, 40), 0);
    ap_wait(receiving, "cross-vp-post");
    if (!await_count(&vps[1].msg_interrupts, 0, 1000))
        fail("cross-vp-post", "VP 1 got its messages without a SINT%u interrupt", MSG_SINT);
    printf(PROG ": cross-vp-post: VP 0 -> VP 1: 40 messages in order, %lu EOMs and %lu interrupts on VP 1\n",
           vps[1].eom_writes, vps[1].msg_interrupts);

    /* 3. An event flag set on the other VP. */
    expect_status("cross-vp-event", "SIGNAL flag 300 on VP 1", command(0, CMD_SIGNAL, 1, EVENT_SINT, 300, 0), 0);
    ap_run(AP_FLAG, 300, "cross-vp-event");
    if (!await_count(&vps[1].event_interrupts, 0, 1000))
        fail("cross-vp-event", "flag 300 reached VP 1 without a SINT%u interrupt", EVENT_SINT);
    printf(PROG ": cross-vp-event: flag 300 set on VP 1's SINT%u, %lu interrupt(s)\n", EVENT_SINT,
           vps[1].event_interrupts);

    /* 4. VP 1 signals the event connection; the route lands the flags on VP 0. */
    expect_status("event-route", "ROUTE to VP 0", command(0, CMD_ROUTE, 0, EVENT_SINT, 0, 0), 0);
    u64 before = vps[0].event_interrupts;
    ap_run(AP_SIGNAL, 17, "event-route");
    expect_status("event-route", "HvSignalEvent flag 17 from VP 1", ap_status, 0);
    ap_run(AP_SIGNAL, 2047, "event-route");
    expect_status("event-route", "HvSignalEvent flag 2047 from VP 1", ap_status, 0);
    wait_flag(0, 17, "event-route");
    wait_flag(0, 2047, "event-route");
    if (!await_count(&vps[0].event_interrupts, before, 1000))
        fail("event-route", "flags arrived on VP 0 without an interrupt");
    printf(PROG ": event-route: VP 1's HvSignalEvent flags 17 and 2047 set on VP 0's SINT%u\n", EVENT_SINT);

    /* 5. VP 1 posts to VP 0. */
    ap_run(AP_POST_TO_0, 3, "reverse-post");
    expect_status("reverse-post", "POST 3 to VP 0 from VP 1", ap_status, 0);
    receive(0, 0x3333, 3, 1, 2000, "reverse-post");
    printf(PROG ": reverse-post: VP 1 -> VP 0: 3 messages in order\n");

    /* 6. Refusals. */
    expect_status("errors", "POST to VP 2 of 2", command(0, CMD_POST, 2, MSG_SINT, 0, 1), HV_STATUS_INVALID_PARAMETER);
    expect_status("errors", "unknown command", command(0, 99, 0, 0, 0, 0), HV_STATUS_INVALID_PARAMETER);
    expect_status("errors", "post to an unconnected id", post_raw(0, 0x10003), HV_STATUS_INVALID_CONNECTION_ID);
    expect_status("errors", "post to the event connection", post_raw(0, EVENT_CONNECTION), HV_STATUS_INVALID_CONNECTION_ID);
    expect_status("errors", "signal an unconnected id", hv_signal_event(0x10009, 0), HV_STATUS_INVALID_CONNECTION_ID);
    expect_status("errors", "signal flag 2048", hv_signal_event(EVENT_CONNECTION, 2048), HV_STATUS_INVALID_PARAMETER);
    printf(PROG ": errors: bad VP, command, connection ids and flag number refused\n");

    /* 7. A full queue: 256 wait behind the slot, then the device is told to come back later. */
    for (u32 burst = 0; burst < 4; burst++)
        expect_status("queue-full", "a burst of 64 that fits", command(0, CMD_POST, 0, MSG_SINT, 0x4440 + burst, 64), 0);
    expect_status("queue-full", "the burst that overflows the queue", command(0, CMD_POST, 0, MSG_SINT, 0x4444, 64),
                  HV_STATUS_INSUFFICIENT_BUFFERS);
    /* 1 in the slot + 256 queued: the four bursts and the first message of the refused one. */
    for (u32 burst = 0; burst < 4; burst++)
        receive(0, 0x4440 + burst, 64, 0, 20000, "queue-full");
    receive(0, 0x4444, 1, 0, 2000, "queue-full");
    struct reply r;
    if (take(0, &r))
        fail("queue-full", "a message (tag 0x%x sequence %u) beyond the queue's 256 was delivered", r.tag, r.sequence);
    expect_status("queue-full", "POST after draining", command(0, CMD_POST, 0, MSG_SINT, 0x5555, 1), 0);
    receive(0, 0x5555, 1, 0, 2000, "queue-full");
    printf(PROG ": queue-full: 257 messages held (slot + 256 queued), then HV_STATUS_INSUFFICIENT_BUFFERS; "
           "all delivered after draining\n");

    (void)ap_start(AP_DONE, 0);
    printf(PROG ": all checks passed\n");
    guest_exit(0);
}
