/* The fatal-signal handler behind crash_guard.h; its header states the invariants. */
#define _GNU_SOURCE
#include "crash_guard.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

_Thread_local const ckvm_crash_site *ckvm_crash_marker;

static const int guarded_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define GUARDED_COUNT (sizeof guarded_signals / sizeof guarded_signals[0])

static struct sigaction previous_actions[GUARDED_COUNT];
static char line_prefix[64];
static size_t line_prefix_length;
static volatile int crash_exit_status = 71;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int installed;

static const char *signal_name(int signo) {
    switch (signo) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "a fatal signal";
    }
}

static size_t append(char *buffer, size_t used, size_t capacity, const char *text, size_t length) {
    for (size_t i = 0; i < length && used < capacity; i++) buffer[used++] = text[i];
    return used;
}

static void crash_handler(int signo, siginfo_t *info, void *context) {
    const ckvm_crash_site *site = ckvm_crash_marker;
    if (site == NULL) {
        /* Not inside a plugin: the host's own crash, for the handler that was there before. */
        for (size_t i = 0; i < GUARDED_COUNT; i++) {
            if (guarded_signals[i] != signo) continue;
            struct sigaction *old = &previous_actions[i];
            if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction != NULL) {
                old->sa_sigaction(signo, info, context);
                return;
            }
            if (old->sa_handler != SIG_IGN && old->sa_handler != SIG_DFL) {
                old->sa_handler(signo);
                return;
            }
            /* Default action: restore it; a fault recurs when the instruction is retried, a
             * signal that was sent (abort, kill) is sent again. */
            sigaction(signo, old, NULL);
            if (info == NULL || info->si_code <= 0) raise(signo);
            return;
        }
        return;
    }
    char line[512];
    const size_t capacity = sizeof line - 1;
    size_t used = append(line, 0, capacity, line_prefix, line_prefix_length);
    used = append(line, used, capacity, site->text, site->length);
    const char *name = signal_name(signo);
    used = append(line, used, capacity, " (", 2);
    used = append(line, used, capacity, name, strlen(name));
    used = append(line, used, capacity, ")", 1);
    line[used++] = '\n';
    size_t done = 0;
    while (done < used) {
        ssize_t n = write(2, line + done, used - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    _exit(crash_exit_status);
}

static _Thread_local void *thread_alternate_stack;
static const size_t alternate_stack_size = 64 * 1024;

void ckvm_crash_guard_thread_begin(void) {
    stack_t current;
    if (thread_alternate_stack != NULL || sigaltstack(NULL, &current) != 0) return;
    if (!(current.ss_flags & SS_DISABLE)) return; /* someone (the Swift runtime) gave it one */
    void *memory = mmap(NULL, alternate_stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return;
    stack_t stack = {.ss_sp = memory, .ss_size = alternate_stack_size, .ss_flags = 0};
    if (sigaltstack(&stack, NULL) != 0) {
        munmap(memory, alternate_stack_size);
        return;
    }
    thread_alternate_stack = memory;
}

void ckvm_crash_guard_thread_end(void) {
    if (thread_alternate_stack == NULL) return;
    stack_t disable = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    if (sigaltstack(&disable, NULL) == 0) munmap(thread_alternate_stack, alternate_stack_size);
    thread_alternate_stack = NULL;
}

int ckvm_crash_guard_install(const char *prefix, int exit_status) {
    pthread_mutex_lock(&install_lock);
    /* The prefix changes only here, before any crash can need it. */
    size_t length = strnlen(prefix, sizeof line_prefix - 1);
    memcpy(line_prefix, prefix, length);
    line_prefix[length] = 0;
    line_prefix_length = length;
    crash_exit_status = exit_status;
    int result = 0;
    if (!installed) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = crash_handler;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        for (size_t i = 0; i < GUARDED_COUNT && result == 0; i++) {
            result = sigaction(guarded_signals[i], &action, &previous_actions[i]);
        }
        installed = result == 0;
    }
    pthread_mutex_unlock(&install_lock);
    ckvm_crash_guard_thread_begin();
    return result;
}
