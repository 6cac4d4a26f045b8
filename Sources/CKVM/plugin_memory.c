/* See plugin_memory.h. Neither function dereferences the address it is asked about: the kernel
 * copies (process_vm_readv), and the loader's own tables are walked (dl_iterate_phdr). */
#define _GNU_SOURCE
#include "plugin_memory.h"
#include <link.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t ckvm_read_own_memory(void *destination, uintptr_t address, size_t count) {
    struct iovec local = {.iov_base = destination, .iov_len = count};
    struct iovec remote = {.iov_base = (void *)address, .iov_len = count};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
}

struct query {
    uintptr_t address;
    int found;
};

static int check_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct query *q = data;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t start = (uintptr_t)info->dlpi_addr + (uintptr_t)ph->p_vaddr;
        if (q->address >= start && q->address - start < (uintptr_t)ph->p_memsz) {
            q->found = 1;
            return 1;
        }
    }
    return 0;
}

int ckvm_address_is_code(uintptr_t address) {
    struct query q = {address, 0};
    dl_iterate_phdr(check_object, &q);
    return q.found;
}
