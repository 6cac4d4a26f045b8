/*
 * The Hyper-V partition interface as a guest sees it (TLFS; Linux arch/x86/kernel/cpu/mshyperv.c,
 * drivers/hv/hv.c): CPUID leaves, synthetic MSRs, the hypercall page and the SynIC.
 */
#ifndef HV_H
#define HV_H

#include "guest.h"

#define HV_MSR_GUEST_OS_ID 0x40000000
#define HV_MSR_HYPERCALL 0x40000001
#define HV_MSR_VP_INDEX 0x40000002
#define HV_MSR_TIME_REF_COUNT 0x40000020
#define HV_MSR_TSC_FREQUENCY 0x40000022
#define HV_MSR_SCONTROL 0x40000080
#define HV_MSR_SVERSION 0x40000081
#define HV_MSR_SIEFP 0x40000082
#define HV_MSR_SIMP 0x40000083
#define HV_MSR_EOM 0x40000084
#define HV_MSR_SINT0 0x40000090

#define HVCALL_POST_MESSAGE 0x005C
#define HVCALL_SIGNAL_EVENT 0x005D
#define HV_HYPERCALL_FAST_BIT (1UL << 16)

#define HV_STATUS_SUCCESS 0x0000
#define HV_STATUS_INVALID_PARAMETER 0x0005
#define HV_STATUS_INVALID_CONNECTION_ID 0x0012
#define HV_STATUS_INSUFFICIENT_BUFFERS 0x0013

#define HV_MESSAGE_PAYLOAD_BYTES 240
#define HVMSG_NONE 0
#define VMBUS_MESSAGE_SINT 2

/* HV_MESSAGE: one 256-byte slot of the SIMP page. */
struct hv_message {
    u32 message_type;
    u8 payload_size;
    u8 message_flags;           /* bit 0: message pending (write EOM after freeing the slot) */
    u16 reserved;
    u64 sender;
    u8 payload[HV_MESSAGE_PAYLOAD_BYTES];
} PACKED;

/* HvPostMessage input page. */
struct hv_post_message_input {
    u32 connection_id;
    u32 reserved;
    u32 message_type;
    u32 payload_size;
    u8 payload[HV_MESSAGE_PAYLOAD_BYTES];
} PACKED;

struct hv_info {
    u32 max_leaf;
    u32 privileges;             /* CPUID 0x40000003 EAX */
    u32 flags;                  /* CPUID 0x40000003 EBX */
    u32 recommendations;        /* CPUID 0x40000004 EAX */
    u32 vp_index;
    u64 hypercall_gpa;
    u64 simp_gpa, siefp_gpa;
};
extern struct hv_info hv;

/* Counters the SINT handler and the message path keep (for the report and the checks). */
extern volatile u64 sint_interrupts;
extern volatile u64 eom_writes;
extern volatile u64 channel_events;     /* SINT2 interrupts that found the watched flag set */

void hv_detect(void);
void hv_enable_hypercalls(u32 expected_vp_index);
void hv_check_time(void);
void hv_enable_synic(void);

/* Hypercalls; return the 16-bit status. Callable at CPL0 and at CPL3 (the page is user-mapped). */
u16 hv_post_message(u32 connection_id, u32 message_type, const void *payload, u32 size);
u16 hv_post_message_raw_size(u32 connection_id, u32 message_type, u32 claimed_size);

/* Takes the next message from SINT `sint`'s slot, if any: copies it, frees the slot and writes
 * EOM when the host has more queued. */
bool hv_take_message(u32 sint, struct hv_message *out);

/* The SIEFP row for `sint`: 2048 event flags. */
volatile u64 *hv_event_flags(u32 sint);
/* Makes the SINT handler claim and count event flag `flag` (a channel's relid); 0 stops it. */
void hv_watch_event_flag(u32 flag);
void sint_handler(void);

extern u8 hypercall_page[4096];

/* Call through the hypercall page like Linux's hv_do_hypercall: RCX control, RDX input,
 * R8 output, status in RAX; RCX, RDX and R8-R11 are clobbered. */
static inline u64 hv_hypercall(u64 control, u64 input, u64 output)
{
    u64 status;
    register u64 r8 __asm__("r8") = output;
    __asm__ volatile("call *%[page]"
                     : "=a"(status), "+c"(control), "+d"(input), "+r"(r8)
                     : [page] "r"(hypercall_page)
                     : "cc", "memory", "r9", "r10", "r11");
    return status;
}

/* HvSignalEvent, fast form: RDX = connection id | flag number << 32. */
static inline u16 hv_signal_event(u32 connection_id, u16 flag)
{
    return (u16)hv_hypercall(HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST_BIT, connection_id | (u64)flag << 32, 0);
}

#endif
