/*
 * hostile.c — a plugin that breaks one promise of the descriptor, chosen by a macro, for the tests
 * that check the host refuses it (or survives it) with one line naming the file and the field.
 * Without any macro it is a well-formed one-register device at ports PORT..PORT+7 (default 0x600).
 *
 *   NAME="x"               the descriptor's name (default "hostile")
 *   PORT=n                 first port of the register window
 *   STRUCT_SIZE=n          descriptor struct_size
 *   PARAM_COUNT=n          param_count (the table still has 2 entries)
 *   PARAM_STRIDE=n         param_spec_size
 *   SPEC_STRUCT_SIZE=n     the first parameter's struct_size
 *   PARAMS_NULL            params = NULL with param_count 2
 *   PARAMS_DANGLING        params points at an unmapped address
 *   NAME_AT_GUARD          the name is "hostile" flush against an inaccessible page, no NUL
 *   SUMMARY_UNTERMINATED   the summary is 8000 readable bytes without a NUL
 *   DOC_AT_GUARD           the first parameter's doc runs into an inaccessible page
 *   SUMMARY_CONTROL        the summary contains a newline
 *   NULL_CALLBACKS         create and destroy are NULL
 *   IO_NOT_CODE            io points at data
 *   ENTRY_DANGLING         the entry returns an unmapped address
 *   CRASH_IN_IO=k          io crashes: 1 SIGSEGV, 2 SIGFPE, 3 SIGABRT, 4 SIGILL
 *   CRASH_IN_CREATE        create dereferences NULL
 *   CRASH_IN_ENTRY         the entry point dereferences NULL
 *   HANG_IN_IO             io never returns
 *   PRINT_IN_IO            io writes "noise" (no newline) to stdout
 *   MARKER="path"          a constructor creates this file (proves whether the file was loaded)
 */
#include "veneer_plugin.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef NAME
#define NAME "hostile"
#endif
#ifndef PORT
#define PORT 0x600
#endif

struct veneer_device { uint8_t value; };

#define STR(x) #x
#define XSTR(x) STR(x)

static veneer_param_spec params[] = {
    { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_INT, .name = "port", .doc = "first port",
      .default_value = XSTR(PORT), .min = 0, .max = 0xfff8 },
    { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_BOOL, .name = "loud", .doc = "log accesses",
      .default_value = "false" },
};

static veneer_device *create(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args) {
#ifdef CRASH_IN_CREATE
    volatile int *nowhere = NULL;
    *nowhere = 1;
#endif
    if (api->register_pio(host, 0, (uint16_t)args->params[0].int_value, 8) != VENEER_OK) {
        api->set_error(host, "ports taken");
        return NULL;
    }
    return calloc(1, sizeof(veneer_device));
}

static veneer_status reset(veneer_device *dev) { dev->value = 0; return VENEER_OK; }
static void destroy(veneer_device *dev) { free(dev); }

static volatile int divisor;

static void io(veneer_device *dev, uint32_t region, uint64_t offset, uint32_t size, uint32_t flags, uint64_t *data) {
    (void)region; (void)offset; (void)size;
#if CRASH_IN_IO == 1
    volatile int *nowhere = NULL;
    *nowhere = (int)*data;
#elif CRASH_IN_IO == 2
    *data = (uint64_t)(100 / divisor);
#elif CRASH_IN_IO == 3
    abort();
#elif CRASH_IN_IO == 4
    __builtin_trap();
#endif
#ifdef PRINT_IN_IO
    if (write(1, "noise", 5) < 0) abort();
#endif
#ifdef HANG_IN_IO
    for (;;) __asm__ volatile("" ::: "memory");
#endif
    if (flags & VENEER_IO_WRITE) dev->value = (uint8_t)*data; else *data = dev->value;
}

static veneer_status save(veneer_device *dev, uint8_t *buffer, size_t capacity, size_t *length) {
    *length = 1;
    if (buffer == NULL || capacity < 1) return VENEER_ENOSPC;
    buffer[0] = dev->value;
    return VENEER_OK;
}

static veneer_status load(veneer_device *dev, uint32_t version, const uint8_t *buffer, size_t length) {
    if (version != 1 || buffer == NULL || length != 1) return VENEER_ESTATE;
    dev->value = buffer[0];
    return VENEER_OK;
}

static veneer_plugin_descriptor descriptor = {
    .struct_size = sizeof(veneer_plugin_descriptor),
    .abi_major = VENEER_ABI_MAJOR,
    .abi_minor = VENEER_ABI_MINOR,
    .name = NAME,
    .version = "0.1",
    .summary = "hostile plugin fixture",
    .kind = VENEER_KIND_EMULATED,
    .state_version = 1,
    .param_count = 2,
    .param_spec_size = sizeof(veneer_param_spec),
    .params = params,
    .create = create,
    .reset = reset,
    .destroy = destroy,
    .io = io,
    .save = save,
    .load = load,
};

#ifdef SUMMARY_UNTERMINATED
static char long_summary[8000];
#endif

/* `size` bytes ending flush against an inaccessible page. */
__attribute__((unused)) static char *guarded_tail(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect(p + page, page, PROT_NONE) != 0) abort();
    return p + page - size;
}

__attribute__((constructor)) static void break_a_promise(void) {
#ifdef MARKER
    int fd = open(MARKER, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
#endif
#ifdef STRUCT_SIZE
    descriptor.struct_size = STRUCT_SIZE;
#endif
#ifdef PARAM_COUNT
    descriptor.param_count = PARAM_COUNT;
#endif
#ifdef PARAM_STRIDE
    descriptor.param_spec_size = PARAM_STRIDE;
#endif
#ifdef SPEC_STRUCT_SIZE
    params[0].struct_size = SPEC_STRUCT_SIZE;
#endif
#ifdef PARAMS_NULL
    descriptor.params = NULL;
#endif
#ifdef PARAMS_DANGLING
    descriptor.params = (const veneer_param_spec *)(uintptr_t)0x10;
#endif
#ifdef NAME_AT_GUARD
    char *name = guarded_tail(7);
    memcpy(name, "hostile", 7);
    descriptor.name = name;
#endif
#ifdef SUMMARY_UNTERMINATED
    memset(long_summary, 'x', sizeof long_summary - 1);
    descriptor.summary = long_summary;
#endif
#ifdef DOC_AT_GUARD
    char *doc = guarded_tail(10);
    memcpy(doc, "first port", 10);
    params[0].doc = doc;
#endif
#ifdef SUMMARY_CONTROL
    descriptor.summary = "two\nlines";
#endif
#ifdef NULL_CALLBACKS
    descriptor.create = NULL;
    descriptor.destroy = NULL;
#endif
#ifdef IO_NOT_CODE
    descriptor.io = (void (*)(veneer_device *, uint32_t, uint64_t, uint32_t, uint32_t, uint64_t *))(void *)params;
#endif
}

const veneer_plugin_descriptor *veneer_plugin_entry(void) {
#ifdef CRASH_IN_ENTRY
    volatile int *nowhere = NULL;
    *nowhere = 1;
#endif
#ifdef ENTRY_DANGLING
    return (const veneer_plugin_descriptor *)(uintptr_t)0x10;
#else
    return &descriptor;
#endif
}
