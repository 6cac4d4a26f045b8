/*
 * UART output (COM1, polled), a small printf, the failure path and the libc functions the
 * compiler may call on its own (memset, memcpy, memcmp).
 */
#include "guest.h"
#include <stdarg.h>

#define COM1 0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_THRE 0x20
#define DEBUG_EXIT 0xf4

NORETURN void guest_exit(u8 status)
{
    outb(DEBUG_EXIT, status);
    for (;;) /* backstop only: hlt with interrupts off would never come back */
        cpu_relax();
}

void console_putc(char c)
{
    /* Bounded: a dead UART must end the run, not hang it. */
    for (u32 spins = 0; !(inb(COM1_LSR) & LSR_THRE); spins++) {
        if (spins > 1000000)
            guest_exit(1);
        cpu_relax();
    }
    outb(COM1, (u8)c);
}

static void put_unsigned(u64 value, unsigned base, int width, char pad)
{
    char digits[24];
    int n = 0;
    do {
        unsigned d = value % base;
        digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        value /= base;
    } while (value);
    for (; width > n; width--)
        console_putc(pad);
    while (n)
        console_putc(digits[--n]);
}

/* %s %c %d %u %x %p with optional '0' flag, width and 'l'/'ll'; %% */
static void vprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            if (*fmt == '\n')
                console_putc('\r');
            console_putc(*fmt);
            continue;
        }
        char pad = ' ';
        int width = 0, longs = 0;
        fmt++;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                console_putc(*s);
            break;
        }
        case 'c':
            console_putc((char)va_arg(ap, int));
            break;
        case 'd': {
            long v = longs ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) {
                console_putc('-');
                v = -v;
            }
            put_unsigned((u64)v, 10, width, pad);
            break;
        }
        case 'u':
            put_unsigned(longs ? va_arg(ap, u64) : va_arg(ap, u32), 10, width, pad);
            break;
        case 'x':
            put_unsigned(longs ? va_arg(ap, u64) : va_arg(ap, u32), 16, width, pad);
            break;
        case 'p':
            console_putc('0');
            console_putc('x');
            put_unsigned((u64)va_arg(ap, void *), 16, width, pad);
            break;
        case '%':
            console_putc('%');
            break;
        default: /* unknown conversion: show it rather than guess */
            console_putc('%');
            console_putc(*fmt ? *fmt : '?');
            if (!*fmt)
                return;
        }
    }
}

void printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

NORETURN void fail(const char *step, const char *fmt, ...)
{
    va_list ap;
    printf(PROG ": FAILED %s: ", step);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    guest_exit(1);
}

void *memset(void *dst, int value, u64 n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(value) : "memory");
    return dst;
}

void *memcpy(void *dst, const void *src, u64 n)
{
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, u64 n)
{
    const u8 *x = a, *y = b;
    for (u64 i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}
