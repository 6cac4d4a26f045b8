/*
 * Shared definitions for the VMBus echo / bench guest: fixed-width types, port and MSR
 * access, barriers, the console and the failure path.
 *
 * The guest is freestanding: no libc, no SSE (the image is entered in long mode with only the
 * VMM's GDT and identity map, and CPL0 code on this host is interpreted, so it stays small).
 */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

#define PAGE_SIZE 4096UL
#define ALIGNED(n) __attribute__((aligned(n)))
#define PACKED __attribute__((packed))
#define NORETURN __attribute__((noreturn))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#ifndef PROG
#if defined(BENCH)
#define PROG "vmbus-bench"
#elif defined(KVPGUEST)
#define PROG "vmbus-kvp"
#elif defined(VSSGUEST)
#define PROG "vmbus-vss"
#elif defined(FCOPYGUEST)
#define PROG "vmbus-fcopy"
#elif defined(TIMESYNCGUEST)
#define PROG "vmbus-timesync"
#elif defined(HEARTBEAT)
#define PROG "vmbus-heartbeat"
#else
#define PROG "vmbus-echo"
#endif
#endif

/* Single-copy reads and writes of memory the host shares with us (rings, SynIC pages). */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
/* Full fence: orders a store before a later load (x86 only reorders that pair). */
static inline void mb(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline void outb(u16 port, u8 value) { __asm__ volatile("outb %0, %1" ::"a"(value), "Nd"(port)); }
static inline void outl(u16 port, u32 value) { __asm__ volatile("outl %0, %1" ::"a"(value), "Nd"(port)); }
static inline u8 inb(u16 port)
{
    u8 value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (u64)hi << 32 | lo;
}

static inline u64 rdmsr(u32 msr)
{
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (u64)hi << 32 | lo;
}

static inline void wrmsr(u32 msr, u64 value)
{
    __asm__ volatile("wrmsr" ::"c"(msr), "a"((u32)value), "d"((u32)(value >> 32)) : "memory");
}

static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

/* console.c */
void console_putc(char c);
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "<prog>: FAILED <step>: <detail>" and exits 1. Usable at CPL0 and CPL3. */
NORETURN void fail(const char *step, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the VM through debug-exit. Usable at CPL0 and CPL3 (port 0xf4 is in the I/O bitmap). */
NORETURN void guest_exit(u8 status);

void *memset(void *dst, int value, u64 n);
void *memcpy(void *dst, const void *src, u64 n);
int memcmp(const void *a, const void *b, u64 n);

/* Time: the TSC, calibrated by the TSC_FREQUENCY MSR (hv.c). */
extern u64 tsc_hz;
static inline u64 deadline_ms(u64 ms) { return rdtsc() + ms * (tsc_hz / 1000); }
static inline bool expired(u64 deadline) { return (long)(rdtsc() - deadline) > 0; }

#endif
