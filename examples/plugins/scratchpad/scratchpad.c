/*
 * scratchpad.c: an example Veneer device plugin written in plain C.
 *
 * It is built against PluginSDK/include/veneer_plugin.h and nothing else from Veneer: that header
 * is the whole contract between the VMM and a plugin. Read it alongside this file.
 *
 * The device is a tiny register file, reachable both through port I/O and through MMIO:
 *
 *   offset  name         access  meaning
 *   0x0     ID           RO      0x53524356: the bytes 'V' 'C' 'R' 'S' in little-endian order
 *   0x4     SCRATCH      RW      32 bits the guest may use freely
 *   0x8     WRITE_COUNT  RO      number of guest writes to the device, wherever they landed
 *   0xc     IRQ          RW      write 1 to assert the `irq` line (level-triggered), 0 to
 *                                deassert it (only bit 0 counts); reads return the level
 *
 * Registers are 32 bits wide. An access at a register's offset sees its low `size` bytes (an
 * 8-byte MMIO read is zero-extended); a narrower write to SCRATCH replaces only those bytes. Any
 * other offset, including the middle of a register, reads as 0 and ignores writes, which are still
 * counted. Because writes are counted and otherwise dropped, the benchmarks use this device as a
 * cheap exit sink: `io` must stay minimal.
 *
 * Parameters (validated by the host against the schema below before `create` runs):
 *   port       first of the 16 I/O ports (one per register-file byte), default 0x510
 *   mmio_base  base of the 4 KiB MMIO window, default 0xd0000000 (must be 4 KiB aligned)
 *   irq        interrupt line (GSI 0-23), default 5
 */
#include "veneer_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCHPAD_ID 0x53524356u /* "VCRS" as little-endian bytes */

enum {
    REG_ID = 0x0,
    REG_SCRATCH = 0x4,
    REG_WRITE_COUNT = 0x8,
    REG_IRQ = 0xc,
};

/* Region ids are ours to choose; `io` reports accesses as (region, offset from its base). */
enum {
    REGION_PIO = 0,
    REGION_MMIO = 1,
};

#define PIO_PORTS 16u     /* the whole register file */
#define MMIO_BYTES 4096u  /* one page; offsets past the register file read as 0 */

#define STATE_VERSION 1u
#define STATE_BYTES 9u    /* u32 scratch, u32 write count, u8 IRQ level; little-endian */

/* veneer_plugin.h declares `struct veneer_device` and leaves its definition to the plugin: the host
 * only passes the pointer back, so callbacks receive our own type without casts. */
struct veneer_device {
    const veneer_host_api *api;  /* host services; valid for the life of the instance */
    veneer_host *host;           /* our context, passed back to every host service */
    uint32_t irq_line;
    uint32_t scratch;
    uint32_t write_count;
    uint32_t irq_level;          /* 0 or 1: the level we last drove the line to */
};

/* ---------------------------------------------------------------------------------------------- */
/* Parameters                                                                                      */

/* The host reads this table at load time, prints it for `veneer plugins --describe scratchpad` and
 * checks VM configs against it, so `create` receives only well-typed, in-range values. */
static const veneer_param_spec scratchpad_params[] = {
    {
        .struct_size = sizeof(veneer_param_spec),
        .type = VENEER_PARAM_INT,
        .name = "port",
        .doc = "first of the 16 I/O ports of the register file",
        .default_value = "0x510",
        .min = 0,
        .max = 0x10000 - PIO_PORTS,
    },
    {
        .struct_size = sizeof(veneer_param_spec),
        .type = VENEER_PARAM_INT,
        .name = "mmio_base",
        .doc = "guest-physical base of the 4 KiB MMIO window (4 KiB aligned)",
        .default_value = "0xd0000000",
        .min = 0,
        .max = (INT64_C(1) << 52) - MMIO_BYTES,
    },
    {
        .struct_size = sizeof(veneer_param_spec),
        .type = VENEER_PARAM_INT,
        .name = "irq",
        .doc = "interrupt line (GSI) driven by the IRQ register",
        .default_value = "5",
        .min = 0,
        .max = 23,
    },
};

/* Every parameter arrives, in schema order, but look them up by name: it keeps working if the
 * schema grows. The stride is the host's struct size, which may differ from ours. */
static int64_t param_int(const veneer_create_args *args, const char *name, int64_t fallback)
{
    const char *base = (const char *)args->params;
    for (uint32_t i = 0; base != NULL && i < args->param_count; i++) {
        const veneer_param_value *v = (const veneer_param_value *)(base + (size_t)i * args->param_value_size);
        if (v->name != NULL && strcmp(v->name, name) == 0)
            return v->int_value;
    }
    return fallback;
}

/* ---------------------------------------------------------------------------------------------- */
/* Lifecycle                                                                                       */

static void drive_irq(veneer_device *dev, uint32_t level)
{
    if (dev->irq_level == level)
        return;
    dev->irq_level = level;
    dev->api->irq_set(dev->host, dev->irq_line, level);
}

static veneer_device *scratchpad_create(const veneer_host_api *api, veneer_host *host,
                                        const veneer_create_args *args)
{
    char line[160];
    uint16_t port = (uint16_t)param_int(args, "port", 0x510);
    uint64_t mmio_base = (uint64_t)param_int(args, "mmio_base", 0xd0000000);
    uint32_t irq = (uint32_t)param_int(args, "irq", 5);

    /* The schema cannot express alignment, so check it here and say why we refuse. */
    if (mmio_base % MMIO_BYTES != 0) {
        snprintf(line, sizeof line, "mmio_base 0x%llx is not 4 KiB aligned", (unsigned long long)mmio_base);
        api->set_error(host, line);
        return NULL;
    }

    veneer_status status = api->register_pio(host, REGION_PIO, port, PIO_PORTS);
    if (status != VENEER_OK) {
        snprintf(line, sizeof line, "cannot claim ports 0x%x-0x%x (status %d)", port, port + PIO_PORTS - 1, status);
        api->set_error(host, line);
        return NULL;
    }
    status = api->register_mmio(host, REGION_MMIO, mmio_base, MMIO_BYTES);
    if (status != VENEER_OK) {
        snprintf(line, sizeof line, "cannot claim MMIO 0x%llx-0x%llx (status %d)", (unsigned long long)mmio_base,
                 (unsigned long long)(mmio_base + MMIO_BYTES - 1), status);
        api->set_error(host, line);
        api->unregister_region(host, REGION_PIO); /* a failed create leaves nothing claimed */
        return NULL;
    }

    veneer_device *dev = calloc(1, sizeof *dev);
    if (dev == NULL) {
        api->set_error(host, "out of memory");
        api->unregister_region(host, REGION_MMIO);
        api->unregister_region(host, REGION_PIO);
        return NULL;
    }
    dev->api = api;
    dev->host = host;
    dev->irq_line = irq;

    snprintf(line, sizeof line, "scratchpad '%s': ports 0x%x-0x%x, MMIO 0x%llx-0x%llx, IRQ %u",
             args->instance_name != NULL ? args->instance_name : "?", port, port + PIO_PORTS - 1,
             (unsigned long long)mmio_base, (unsigned long long)(mmio_base + MMIO_BYTES - 1), irq);
    api->log(host, VENEER_LOG_INFO, line);
    return dev;
}

/* Power-on state. Called after create and on every VM reset, so it must be idempotent. */
static veneer_status scratchpad_reset(veneer_device *dev)
{
    dev->scratch = 0;
    dev->write_count = 0;
    drive_irq(dev, 0);
    return VENEER_OK;
}

/* Nothing runs on its own (no timers, no threads), so start and stop have nothing to do. */
static veneer_status scratchpad_start(veneer_device *dev)
{
    (void)dev;
    return VENEER_OK;
}

static veneer_status scratchpad_stop(veneer_device *dev)
{
    (void)dev;
    return VENEER_OK;
}

static void scratchpad_destroy(veneer_device *dev)
{
    free(dev);
}

/* ---------------------------------------------------------------------------------------------- */
/* Guest accesses                                                                                  */

/* Runs on a vCPU thread for every guest access, with the instance's lock held by the host (we do
 * not declare VENEER_PLUGIN_CONCURRENT), so it needs no locking of its own. Both regions expose the
 * same registers, so the region id does not matter here. */
static void scratchpad_io(veneer_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                          uint32_t flags, uint64_t *data)
{
    (void)region;
    uint32_t mask = size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1;

    if (flags & VENEER_IO_WRITE) {
        dev->write_count++;
        if (offset == REG_SCRATCH)
            dev->scratch = (dev->scratch & ~mask) | ((uint32_t)*data & mask);
        else if (offset == REG_IRQ)
            drive_irq(dev, (uint32_t)*data & 1);
        return; /* ID, WRITE_COUNT and other offsets: counted, otherwise ignored */
    }

    uint32_t value;
    switch (offset) {
    case REG_ID: value = SCRATCHPAD_ID; break;
    case REG_SCRATCH: value = dev->scratch; break;
    case REG_WRITE_COUNT: value = dev->write_count; break;
    case REG_IRQ: value = dev->irq_level; break;
    default: value = 0; break;
    }
    *data = value & mask;
}

/* ---------------------------------------------------------------------------------------------- */
/* Save and load                                                                                   */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The host first asks with capacity 0; answering VENEER_ENOSPC with the size needed is the
 * protocol, not an error. The layout is fixed little-endian so a snapshot moves between hosts. */
static veneer_status scratchpad_save(veneer_device *dev, uint8_t *buffer, size_t capacity, size_t *length)
{
    if (length == NULL)
        return VENEER_EINVAL;
    *length = STATE_BYTES;
    if (buffer == NULL || capacity < STATE_BYTES)
        return VENEER_ENOSPC;
    put_u32(buffer, dev->scratch);
    put_u32(buffer + 4, dev->write_count);
    buffer[8] = (uint8_t)dev->irq_level;
    return VENEER_OK;
}

/* Saved state is as untrusted as anything the guest wrote: check everything before changing
 * anything, so a rejected blob leaves the device as it was. */
static veneer_status scratchpad_load(veneer_device *dev, uint32_t state_version, const uint8_t *buffer, size_t length)
{
    if (state_version != STATE_VERSION) {
        dev->api->set_error(dev->host, "unknown state version");
        return VENEER_ESTATE;
    }
    if (buffer == NULL || length != STATE_BYTES) {
        dev->api->set_error(dev->host, "state is not 9 bytes long");
        return VENEER_ESTATE;
    }
    if (buffer[8] > 1) {
        dev->api->set_error(dev->host, "state has an IRQ level other than 0 or 1");
        return VENEER_ESTATE;
    }
    dev->scratch = get_u32(buffer);
    dev->write_count = get_u32(buffer + 4);
    drive_irq(dev, buffer[8]); /* the line follows the restored level */
    return VENEER_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* The descriptor and the one exported symbol                                                      */

static const veneer_plugin_descriptor scratchpad_descriptor = {
    .struct_size = sizeof(veneer_plugin_descriptor),
    .abi_major = VENEER_ABI_MAJOR,
    .abi_minor = VENEER_ABI_MINOR,
    .name = "scratchpad",
    .version = "1.0.0",
    .summary = "example C plugin: a scratch register file over PIO and MMIO, with a level IRQ",
    .kind = VENEER_KIND_EMULATED,
    .flags = 0,
    .state_version = STATE_VERSION,
    .param_count = sizeof scratchpad_params / sizeof scratchpad_params[0],
    .param_spec_size = sizeof(veneer_param_spec),
    .params = scratchpad_params,
    .create = scratchpad_create,
    .reset = scratchpad_reset,
    .start = scratchpad_start,
    .stop = scratchpad_stop,
    .destroy = scratchpad_destroy,
    .io = scratchpad_io,
    /* timer, fd_ready and work stay NULL: this device never asks for them. */
    .save = scratchpad_save,
    .load = scratchpad_load,
};

/* Everything above is static; this is the only symbol the shared object exports. */
const veneer_plugin_descriptor *veneer_plugin_entry(void)
{
    return &scratchpad_descriptor;
}
