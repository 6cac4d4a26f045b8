/*
 * crash_guard.h — names the plugin callback a fatal signal interrupted.
 *
 * A plugin runs in the VMM's process, so a plugin that faults takes the VMM with it. What the user
 * must still learn is which device, plugin and callback it was. Every call into a plugin stores a
 * pointer to a preformatted site ("device 'com1' (plugin serial16550) crashed in io") in a
 * thread-local marker and restores the previous value afterwards (callbacks may nest: a host
 * service called from one plugin can call into another). The fatal-signal handler reads the
 * marker of the thread that faulted, writes one line with write(2) and exits with the status given
 * at installation. Outside any callback (the marker is NULL) it hands the signal on to whatever
 * handler was installed before (the Swift runtime's backtracer, or the default action).
 *
 * Invariants: a site stays valid and unchanged while it is the marker of any thread (the owner
 * frees it only after its last callback returned). The handler touches only the marker, the site,
 * a static buffer filled before installation and write(2)/_exit(2): it is async-signal-safe.
 */
#ifndef CKVM_CRASH_GUARD_H
#define CKVM_CRASH_GUARD_H

#include <stddef.h>

typedef struct ckvm_crash_site {
    const char *text; /* no newline; the handler appends " (SIGSEGV)\n" */
    size_t length;
} ckvm_crash_site;

extern _Thread_local const ckvm_crash_site *ckvm_crash_marker;

/* Marks the calling thread as inside `site` until ckvm_crash_leave; returns the previous marker.
 * Inline: on the exit path this is two thread-local stores around the call. The signal fences keep
 * the compiler from moving the stores across the call into the plugin. */
static inline const ckvm_crash_site *ckvm_crash_enter(const ckvm_crash_site *site) {
    const ckvm_crash_site *previous = ckvm_crash_marker;
    ckvm_crash_marker = site;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return previous;
}

static inline void ckvm_crash_leave(const ckvm_crash_site *previous) {
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ckvm_crash_marker = previous;
}

/* Installs the handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT (once per process; a
 * second call only changes prefix and status). `prefix` starts the line ("veneer: "), at most 63
 * bytes. Also gives the calling thread an alternate signal stack. Returns 0 or -1 (errno). */
int ckvm_crash_guard_install(const char *prefix, int exit_status);

/* Gives the calling thread an alternate signal stack, so a plugin that overflows its stack is
 * still reported; ckvm_crash_guard_thread_end releases it before the thread exits. */
void ckvm_crash_guard_thread_begin(void);
void ckvm_crash_guard_thread_end(void);

#endif
