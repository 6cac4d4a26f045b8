/*
 * ckvm.h — the C facts Swift cannot import by itself: KVM/VFIO ioctl request numbers (function-like
 * macros), a non-variadic ioctl, epoll's packed event struct, and the vCPU kick signal.
 * Everything here is a thin, stateless wrapper; the Swift side owns all policy.
 */
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <stdint.h>
#include <stddef.h>

/* ioctl request numbers */
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CKVM_IRQ_LINE = KVM_IRQ_LINE;
static const unsigned long CKVM_SIGNAL_MSI = KVM_SIGNAL_MSI;
static const unsigned long CKVM_IRQFD = KVM_IRQFD;
static const unsigned long CKVM_IOEVENTFD = KVM_IOEVENTFD;
static const unsigned long CKVM_ENABLE_CAP = KVM_ENABLE_CAP;
static const unsigned long CKVM_GET_DIRTY_LOG = KVM_GET_DIRTY_LOG;
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_SET_MP_STATE = KVM_SET_MP_STATE;
static const unsigned long CKVM_GET_MP_STATE = KVM_GET_MP_STATE;
static const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CKVM_SET_FPU = KVM_SET_FPU;
static const unsigned long CKVM_SET_LAPIC = KVM_SET_LAPIC;
static const unsigned long CKVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CKVM_X86_SET_MSR_FILTER = KVM_X86_SET_MSR_FILTER;
static const unsigned long CKVM_GET_TSC_KHZ = KVM_GET_TSC_KHZ;
static const unsigned long CKVM_GET_VCPU_EVENTS = KVM_GET_VCPU_EVENTS;
static const unsigned long CKVM_SET_VCPU_EVENTS = KVM_SET_VCPU_EVENTS;

/* ioctl(2) is variadic, which Swift cannot call. */
int ckvm_ioctl(int fd, unsigned long request, void *argument);
int ckvm_ioctl_value(int fd, unsigned long request, unsigned long argument);

/* epoll_event is packed on x86-64; these keep that layout on the C side. Events use poll(2) bits. */
int ckvm_epoll_create(void);
int ckvm_epoll_add(int epfd, int fd, uint32_t events, uint64_t token);
int ckvm_epoll_modify(int epfd, int fd, uint32_t events, uint64_t token);
int ckvm_epoll_remove(int epfd, int fd);
/* Waits up to timeout_ms; stores up to `capacity` (token, events) pairs; returns the count or -1. */
int ckvm_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int capacity, int timeout_ms);

/* The signal that kicks a vCPU thread out of KVM_RUN (KVM_RUN returns EINTR). Installs a no-op
 * handler without SA_RESTART once per process; returns the signal number. */
int ckvm_install_kick_signal(void);
int ckvm_kick_thread(unsigned long pthread_id);
/* Unblocks the kick signal in the calling thread: a process may start with signals blocked
 * (a parent's mask is inherited), and a blocked kick would leave a vCPU in KVM_RUN forever. */
int ckvm_unblock_kick_signal(void);
unsigned long ckvm_current_thread(void);

/* eventfd / timerfd / signalfd with CLOEXEC (and NONBLOCK where noted); -1 and errno on failure. */
int ckvm_eventfd(int nonblocking);
/* pipe2(O_CLOEXEC): both ends close on exec, with no window for another thread's fork. */
int ckvm_pipe_cloexec(int fds[2]);
int ckvm_timerfd(void);
/* Arms a CLOCK_MONOTONIC timerfd at absolute `deadline_ns`, repeating every `period_ns` (0: once);
 * deadline 0 and period 0 disarm it. */
int ckvm_timerfd_arm(int fd, uint64_t deadline_ns, uint64_t period_ns);
uint64_t ckvm_monotonic_ns(void);
/* The host's time-stamp counter (rdtsc), and one host CPUID leaf (subleaf 0) as eax ebx ecx edx. */
uint64_t ckvm_rdtsc(void);
void ckvm_host_cpuid(uint32_t leaf, uint32_t out[4]);
/* Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in the calling thread (threads created later inherit
 * it) and returns a signalfd that reads them. */
int ckvm_termination_signalfd(void);
/* Reads one signal from a signalfd; returns the signal number or -1. */
int ckvm_read_signal(int fd);
void ckvm_set_thread_name(const char *name);

/* Guest-memory words shared with running vCPUs (SynIC pages): ordered and atomic accesses. */
uint32_t ckvm_atomic_or32(volatile uint32_t *p, uint32_t mask);
void ckvm_store_release32(volatile uint32_t *p, uint32_t value);
uint32_t ckvm_load_acquire32(volatile uint32_t *p);
void ckvm_atomic_or8(volatile uint8_t *p, uint8_t mask);

/* memfd_create with MFD_CLOEXEC; -1 and errno on failure. */
int ckvm_memfd(const char *name);

#endif
