/*
 * plugin_memory.h — looking at memory a plugin points to without trusting the pointer: copying
 * from it through the kernel (a bad address is an error, not a SIGSEGV), and asking whether an
 * address is code, so a descriptor's callbacks are checked before the host ever calls one.
 */
#ifndef CKVM_PLUGIN_MEMORY_H
#define CKVM_PLUGIN_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* process_vm_readv(2) on the calling process: copies up to `count` bytes from `address`, stopping
 * at the first unreadable page. Returns the count copied, or -1 with errno (EFAULT: nothing
 * readable; ENOSYS/EPERM: the call is filtered out here). */
ssize_t ckvm_read_own_memory(void *destination, uintptr_t address, size_t count);

/* 1 when `address` is inside an executable PT_LOAD segment of the program or a loaded library. */
int ckvm_address_is_code(uintptr_t address);

#endif
