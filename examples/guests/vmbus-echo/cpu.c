/*
 * Page tables, GDT, TSS, IDT and local APIC. Everything here runs once at CPL0, where this
 * host interprets instructions, so it is kept to a few thousand instructions.
 */
#include "cpu.h"

#define PTE_P 0x1UL
#define PTE_RW 0x2UL
#define PTE_US 0x4UL
#define PTE_PS 0x80UL
#define PTE_TABLE (PTE_P | PTE_RW | PTE_US)

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define TSS_SEL 0x28

#define APIC_BASE_MSR 0x1B
#define APIC_MMIO 0xFEE00000UL
#define APIC_TPR 0x80
#define APIC_EOI 0xB0
#define APIC_SVR 0xF0

/* Ports CPL3 may use: the ones named by the hypercall page, the UART, debug-exit, doorbell. */
static const struct { u16 first, last; } user_ports[] = {
    { 0x3f8, 0x3ff },           /* COM1 */
    { 0xf4, 0xf4 },             /* debug-exit */
    { 0xeb, 0xef },             /* hypercall page: exit port and signal-event ioeventfd ports */
    { 0x5f0, 0x5f3 },           /* echo device doorbell (bench) */
};
#define IO_BITMAP_BYTES (0x600 / 8) /* covers ports 0-0x5ff; ports past the TSS limit fault */

static u64 pml4[512] ALIGNED(4096);
static u64 pdpt[512] ALIGNED(4096);
static u64 pd_identity[4][512] ALIGNED(4096);
static u64 pd_window[512] ALIGNED(4096);
static u64 pt_window[RING_WINDOW_PAGES] ALIGNED(4096);

struct tss {
    u32 reserved0;
    u64 rsp[3];
    u64 reserved1;
    u64 ist[7];
    u64 reserved2;
    u16 reserved3;
    u16 iomap_base;
    u8 iomap[IO_BITMAP_BYTES + 1]; /* the extra byte must be all ones (SDM 19.5.2) */
} PACKED;

static struct tss tss ALIGNED(16);
static u64 gdt[7] ALIGNED(16);
static u64 idt[256 * 2] ALIGNED(16);
static u8 trap_stack[16384] ALIGNED(16);     /* TSS RSP0: interrupts and exceptions from CPL3 */
static u8 user_stack[65536] ALIGNED(16);

struct PACKED descriptor_pointer {
    u16 limit;
    u64 base;
};

extern const u64 exception_stubs[32];
extern void isr_sint(void), isr_spurious(void);
extern void isr_vector_0xe1(void), isr_vector_0xe2(void), isr_vector_0xed(void);

bool (*exception_fixup)(struct exception_frame *frame);
static void (*interrupt_handlers[256])(void);

static void build_page_tables(void)
{
    pml4[0] = (u64)pdpt | PTE_TABLE;
    for (u64 gib = 0; gib < 4; gib++) {
        pdpt[gib] = (u64)pd_identity[gib] | PTE_TABLE;
        for (u64 i = 0; i < 512; i++)
            pd_identity[gib][i] = (gib << 30 | i << 21) | PTE_P | PTE_RW | PTE_US | PTE_PS;
    }
    pdpt[RING_WINDOW_VA >> 30] = (u64)pd_window | PTE_TABLE;
    pd_window[0] = (u64)pt_window | PTE_TABLE;
    __asm__ volatile("mov %0, %%cr3" ::"r"((u64)pml4) : "memory");
}

void cpu_map_window_page(u32 index, u64 pa)
{
    if (index >= RING_WINDOW_PAGES || pa & (PAGE_SIZE - 1))
        fail("cpu", "window page %u at 0x%lx out of range or unaligned", index, pa);
    pt_window[index] = pa | PTE_P | PTE_RW | PTE_US;
}

void cpu_flush_tlb(void)
{
    __asm__ volatile("mov %0, %%cr3" ::"r"((u64)pml4) : "memory");
}

static void load_gdt(void);

static void build_gdt_and_tss(void)
{
    gdt[0] = 0;
    gdt[1] = 0x00AF9B000000FFFFUL;  /* kernel code, 64-bit */
    gdt[2] = 0x00CF93000000FFFFUL;  /* kernel data */
    gdt[3] = 0x00CFF3000000FFFFUL;  /* user data, DPL 3 (selector 0x1b) */
    gdt[4] = 0x00AFFB000000FFFFUL;  /* user code, 64-bit, DPL 3 (selector 0x23) */

    tss.rsp[0] = (u64)(trap_stack + sizeof(trap_stack));
    tss.iomap_base = __builtin_offsetof(struct tss, iomap);
    memset(tss.iomap, 0xff, sizeof(tss.iomap));
    for (u32 r = 0; r < ARRAY_SIZE(user_ports); r++)
        for (u32 port = user_ports[r].first; port <= user_ports[r].last; port++)
            tss.iomap[port / 8] &= (u8)~(1u << (port % 8));

    u64 base = (u64)&tss, limit = sizeof(tss) - 1;
    gdt[5] = (limit & 0xFFFF) | (base & 0xFFFFFF) << 16 | 0x89UL << 40 /* present 64-bit TSS */
             | (limit >> 16 & 0xF) << 48 | (base >> 24 & 0xFF) << 56;
    gdt[6] = base >> 32;

    load_gdt();
    __asm__ volatile("ltr %w0" ::"r"(TSS_SEL));
}

static void load_gdt(void)
{
    struct descriptor_pointer gdtr = { sizeof(gdt) - 1, (u64)gdt };
    __asm__ volatile("lgdt %0\n\t"
                     "pushq %1\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "lretq\n"
                     "1:\n\t"
                     "mov %2, %%eax\n\t"
                     "mov %%eax, %%ds\n\t"
                     "mov %%eax, %%es\n\t"
                     "mov %%eax, %%ss\n\t"
                     "mov %%eax, %%fs\n\t"
                     "mov %%eax, %%gs\n\t"
                     :
                     : "m"(gdtr), "i"(KERNEL_CS), "i"(KERNEL_DS)
                     : "rax", "memory");
}

static void set_gate(u32 vector, void (*handler)(void), u32 dpl)
{
    u64 offset = (u64)handler;
    idt[vector * 2] = (offset & 0xFFFF) | (u64)KERNEL_CS << 16
                      | (u64)(0x8E | dpl << 5) << 40 /* present interrupt gate */
                      | (offset >> 16 & 0xFFFF) << 48;
    idt[vector * 2 + 1] = offset >> 32;
}

static void build_idt(void)
{
    for (u32 v = 0; v < 32; v++)
        set_gate(v, (void (*)(void))exception_stubs[v], 0);
    set_gate(SINT_VECTOR, isr_sint, 0);
    set_gate(0xe1, isr_vector_0xe1, 0);
    set_gate(0xe2, isr_vector_0xe2, 0);
    set_gate(0xed, isr_vector_0xed, 0);
    set_gate(SPURIOUS_VECTOR, isr_spurious, 0);
    struct descriptor_pointer idtr = { sizeof(idt) - 1, (u64)idt };
    __asm__ volatile("lidt %0" ::"m"(idtr));
}

static inline volatile u32 *apic_reg(u32 offset) { return (volatile u32 *)(APIC_MMIO + offset); }

static void enable_apic(void)
{
    u64 base = rdmsr(APIC_BASE_MSR);
    if (!(base & (1UL << 11)) || (base & (1UL << 10)) || (base & ~0xFFFUL) != APIC_MMIO)
        fail("cpu", "local APIC base MSR 0x%lx: want xAPIC enabled at 0x%lx", base, APIC_MMIO);
    *apic_reg(APIC_TPR) = 0;
    *apic_reg(APIC_SVR) = 0x100 | SPURIOUS_VECTOR;
}

void apic_eoi(void) { *apic_reg(APIC_EOI) = 0; }

void cpu_enable_interrupts(void) { __asm__ volatile("sti" ::: "memory"); }

void *user_stack_top(void) { return user_stack + sizeof(user_stack); }

/* Another vCPU, after vCPU 0's cpu_init: the same page tables, GDT and IDT, its own local APIC.
 * No TSS (vCPU 0's is busy), so it must not go to CPL3. */
void cpu_init_ap(void)
{
    __asm__ volatile("mov %0, %%cr3" ::"r"((u64)pml4) : "memory");
    load_gdt();
    struct descriptor_pointer idtr = { sizeof(idt) - 1, (u64)idt };
    __asm__ volatile("lidt %0" ::"m"(idtr));
    enable_apic();
}

void cpu_init(void)
{
    build_page_tables();
    build_gdt_and_tss();
    build_idt();
    enable_apic();
}

void cpu_set_interrupt_handler(u8 vector, void (*handler)(void)) { interrupt_handlers[vector] = handler; }

void interrupt_dispatch(u64 vector)
{
    if (interrupt_handlers[vector & 0xff])
        interrupt_handlers[vector & 0xff]();
    apic_eoi();
}

void exception_handler(struct exception_frame *f)
{
    if (exception_fixup && exception_fixup(f))
        return;
    u64 cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    fail("exception", "vector %lu error 0x%lx at rip 0x%lx (cs 0x%lx, CPL%lu) rsp 0x%lx rflags 0x%lx cr2 0x%lx"
         " rax 0x%lx rcx 0x%lx rdx 0x%lx",
         f->vector, f->error, f->rip, f->cs, f->cs & 3, f->rsp, f->rflags, cr2, f->rax, f->rcx, f->rdx);
}
