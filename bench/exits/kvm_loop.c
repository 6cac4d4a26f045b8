/*
 * kvm_loop - the baseline for Veneer's exit benchmark: the leanest correct
 * KVM run loop for a one-vCPU, long-mode flat image.
 *
 *   usage: kvm_loop IMAGE        (cc -O2 -o kvm_loop kvm_loop.c)
 *
 * Sets the VM up exactly like Veneer's `format = "flat"`, `mode = "long"`
 * boot (64 MiB RAM at GPA 0, GDT at 0x500, identity map of the low 4 GiB
 * with 2 MiB pages at 0x9000-0xEFFF, image at 0x100000, RDI = 0, RSI = 1),
 * then runs KVM_RUN with nothing on the exit path but the minimum:
 * an OUT to port 0xf4 ends the process with the written byte as status,
 * other port writes and all MMIO writes are dropped, reads return all ones.
 * Prints nothing unless something goes wrong (status 125 then).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_SIZE     (64u << 20)
#define LOAD_ADDR    0x100000u
#define GDT_ADDR     0x500u
#define PML4_ADDR    0x9000u
#define PDPT_ADDR    0xa000u
#define PD_ADDR      0xb000u         /* four PDs: 0xb000-0xefff */
#define TSS_ADDR     0xfffbd000u     /* 3 pages KVM needs for its own use (VMX real mode) */
#define DEBUG_EXIT   0xf4
#define MAX_CPUID    256

#define CR0_PE (1u << 0)
#define CR0_MP (1u << 1)
#define CR0_ET (1u << 4)
#define CR0_NE (1u << 5)
#define CR0_WP (1u << 16)
#define CR0_PG (1u << 31)
#define CR4_PAE        (1u << 5)
#define CR4_OSFXSR     (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)

static void die(const char *what)
{
    fprintf(stderr, "kvm_loop: %s: %s\n", what, strerror(errno));
    exit(125);
}

static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
    int r = ioctl(fd, req, arg);
    if (r < 0)
        die(what);
    return r;
}

static void load_image(uint8_t *ram, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    size_t n = fread(ram + LOAD_ADDR, 1, RAM_SIZE - LOAD_ADDR, f);
    if (ferror(f) || n == 0)
        die("reading image");
    if (!feof(f)) {
        fprintf(stderr, "kvm_loop: %s does not fit in guest RAM\n", path);
        exit(125);
    }
    fclose(f);
}

static void setup_long_mode(uint8_t *ram, int vcpu)
{
    /* null, 64-bit code (0x08), flat data (0x10) */
    uint64_t *gdt = (uint64_t *)(ram + GDT_ADDR);
    gdt[0] = 0;
    gdt[1] = 0x00af9a000000ffffull;
    gdt[2] = 0x00cf92000000ffffull;

    uint64_t *pml4 = (uint64_t *)(ram + PML4_ADDR);
    uint64_t *pdpt = (uint64_t *)(ram + PDPT_ADDR);
    uint64_t *pd = (uint64_t *)(ram + PD_ADDR);
    pml4[0] = PDPT_ADDR | 3;                         /* present | writable */
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (PD_ADDR + i * 0x1000) | 3;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | 0x83;                    /* present | writable | 2 MiB */

    struct kvm_sregs s;
    xioctl(vcpu, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 11,
        .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
    };
    struct kvm_segment data = {
        .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 3,
        .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.gdt.base = GDT_ADDR;
    s.gdt.limit = 3 * 8 - 1;
    s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    s.cr3 = PML4_ADDR;
    s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    s.efer = EFER_LME | EFER_LMA;
    xioctl(vcpu, KVM_SET_SREGS, &s, "KVM_SET_SREGS");

    struct kvm_regs r = {
        .rip = LOAD_ADDR, .rflags = 0x2, .rsp = 0, .rdi = 0, .rsi = 1,
    };
    xioctl(vcpu, KVM_SET_REGS, &r, "KVM_SET_REGS");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kvm_loop IMAGE\n");
        return 2;
    }

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        die("/dev/kvm");
    int vm = xioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
    xioctl(vm, KVM_SET_TSS_ADDR, (void *)(uintptr_t)TSS_ADDR, "KVM_SET_TSS_ADDR");
    xioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");

    uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED)
        die("mmap RAM");
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE,
        .userspace_addr = (uintptr_t)ram,
    };
    xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");
    load_image(ram, argv[1]);

    int vcpu = xioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
    int run_size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        die("mmap kvm_run");

    struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + MAX_CPUID * sizeof cpuid->entries[0]);
    cpuid->nent = MAX_CPUID;
    xioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid, "KVM_GET_SUPPORTED_CPUID");
    xioctl(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");

    setup_long_mode(ram, vcpu);

    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die("KVM_RUN");
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            if (run->io.direction == KVM_EXIT_IO_OUT) {
                if (run->io.port == DEBUG_EXIT)
                    exit(data[0]);
            } else {
                memset(data, 0xff, (size_t)run->io.size * run->io.count);
            }
            break;
        }
        case KVM_EXIT_MMIO:
            if (!run->mmio.is_write)
                memset(run->mmio.data, 0xff, run->mmio.len);
            break;
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_SHUTDOWN:
            fprintf(stderr, "kvm_loop: guest shut down (triple fault)\n");
            return 125;
        case KVM_EXIT_INTERNAL_ERROR:
            fprintf(stderr, "kvm_loop: KVM internal error, suberror %u\n", run->internal.suberror);
            return 125;
        default:
            fprintf(stderr, "kvm_loop: unexpected exit reason %u\n", run->exit_reason);
            return 125;
        }
    }
}
