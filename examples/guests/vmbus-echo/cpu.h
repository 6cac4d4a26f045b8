/*
 * The guest's own CPU environment: page tables with user access, a GDT with user segments and
 * a TSS whose I/O bitmap lets CPL3 reach the few ports it needs, an IDT, the local APIC, and
 * the switch to CPL3 for the hot loops.
 */
#ifndef CPU_H
#define CPU_H

#include "guest.h"

#define SINT_VECTOR 0xF3        /* HYPERVISOR_CALLBACK_VECTOR, as Linux programs SINT2 */
#define SPURIOUS_VECTOR 0xFF

/* Virtual window (above the 4 GiB identity map) where ring pages are mapped with 4 KiB pages. */
#define RING_WINDOW_VA 0x100000000UL
#define RING_WINDOW_PAGES 512

/* What an exception left on the stack (entry.S exc_common). */
struct exception_frame {
    u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    u64 vector, error, rip, cs, rflags, rsp, ss;
};

/* A test's exception fixup: returns true when it handled the exception (it may move rip), which
 * then resumes; NULL or false makes every exception a failure. */
extern bool (*exception_fixup)(struct exception_frame *frame);

/* Vectors with a C handler through entry.S's stubs (0xe1, 0xe2, 0xed); the handler runs with
 * interrupts off and the local APIC is EOIed after it. */
void cpu_set_interrupt_handler(u8 vector, void (*handler)(void));

void cpu_init(void);
/* A second (third, ...) vCPU after vCPU 0's cpu_init: see cpu.c. */
void cpu_init_ap(void);
/* Maps `pa` at RING_WINDOW_VA + index pages, user-accessible; call cpu_flush_tlb afterwards. */
void cpu_map_window_page(u32 index, u64 pa);
void cpu_flush_tlb(void);
void cpu_enable_interrupts(void);
void apic_eoi(void);

/* Runs fn(arg) at CPL3 on its own stack and returns its result (entry.S). */
u64 run_user(u64 (*fn)(u64), u64 arg, void *user_stack_top);
/* Top of the stack for run_user. */
void *user_stack_top(void);

#endif
