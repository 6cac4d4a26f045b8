#define _GNU_SOURCE
#include "ckvm.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int ckvm_ioctl(int fd, unsigned long request, void *argument) { return ioctl(fd, request, argument); }
int ckvm_ioctl_value(int fd, unsigned long request, unsigned long argument) { return ioctl(fd, request, argument); }

int ckvm_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int ckvm_epoll_add(int epfd, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev = {.events = events, .data.u64 = token};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int ckvm_epoll_modify(int epfd, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev = {.events = events, .data.u64 = token};
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

int ckvm_epoll_remove(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int ckvm_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int capacity, int timeout_ms) {
    struct epoll_event buffer[64];
    if (capacity > 64) capacity = 64;
    int n = epoll_wait(epfd, buffer, capacity, timeout_ms);
    for (int i = 0; i < n; i++) {
        tokens[i] = buffer[i].data.u64;
        events[i] = buffer[i].events;
    }
    return n;
}

static void kick_handler(int signo) { (void)signo; }

static void install_kick_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return EINTR */
    sigaction(SIGUSR2, &sa, NULL);
}

int ckvm_install_kick_signal(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_kick_handler);
    return SIGUSR2;
}

int ckvm_unblock_kick_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int ckvm_kick_thread(unsigned long pthread_id) { return pthread_kill((pthread_t)pthread_id, SIGUSR2); }

unsigned long ckvm_current_thread(void) { return (unsigned long)pthread_self(); }

int ckvm_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int ckvm_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int ckvm_eventfd(int nonblocking) { return eventfd(0, EFD_CLOEXEC | (nonblocking ? EFD_NONBLOCK : 0)); }

int ckvm_timerfd(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK); }

int ckvm_timerfd_arm(int fd, uint64_t deadline_ns, uint64_t period_ns) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    /* An absolute deadline of 0 would disarm; anything already past fires at once. */
    if (deadline_ns == 0 && period_ns != 0) deadline_ns = 1;
    spec.it_value.tv_sec = (time_t)(deadline_ns / 1000000000u);
    spec.it_value.tv_nsec = (long)(deadline_ns % 1000000000u);
    spec.it_interval.tv_sec = (time_t)(period_ns / 1000000000u);
    spec.it_interval.tv_nsec = (long)(period_ns % 1000000000u);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

uint64_t ckvm_monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t ckvm_rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

void ckvm_host_cpuid(uint32_t leaf, uint32_t out[4]) {
    __asm__ volatile("cpuid" : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3]) : "a"(leaf), "c"(0));
}

int ckvm_termination_signalfd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int ckvm_read_signal(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    return n == (ssize_t)sizeof info ? (int)info.ssi_signo : -1;
}

void ckvm_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

uint32_t ckvm_atomic_or32(volatile uint32_t *p, uint32_t mask) { return __atomic_fetch_or(p, mask, __ATOMIC_SEQ_CST); }
void ckvm_store_release32(volatile uint32_t *p, uint32_t value) { __atomic_store_n(p, value, __ATOMIC_RELEASE); }
uint32_t ckvm_load_acquire32(volatile uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void ckvm_atomic_or8(volatile uint8_t *p, uint8_t mask) { __atomic_fetch_or(p, mask, __ATOMIC_SEQ_CST); }
