/*
 * groups.c — a plugin with a parameter group (ABI 1.7's VENEER_PARAM_GROUP), for the tests of the
 * loader, the config and create's arguments. Without any macro it is a well-formed device: a
 * controller whose `disk` group (0 to 4 tables) has the members lun, path, cache and read_only.
 * create logs one line per table as it read it from `items` ("disk[0]: lun=1 path=/x cache=none
 * read_only=0") and one with the table count, so a test sees exactly what reached the plugin.
 * One macro breaks one promise of a group:
 *
 *   ABI_MINOR=n            the descriptor's abi_minor (default: the header's)
 *   GROUP_MIN=n, GROUP_MAX=n  the group's bounds on its table count
 *   GROUP_DEFAULT          the group has a default_value ("x")
 *   MEMBER_COUNT=n         member_count (the member table has 4 entries)
 *   MEMBERS_NULL           members = NULL
 *   MEMBERS_DANGLING       members points at an unmapped address
 *   MEMBER_NAME="x"        the second member's name
 *   MEMBER_NESTED          the second member is itself a group
 *   MEMBER_TYPE=n          the second member's type
 *   MEMBER_DOC_AT_GUARD    the first member's doc runs into an inaccessible page
 *   MEMBER_BAD_DEFAULT     the third member's default is not one of its choices
 *   GROUP_STRUCT_SIZE=n    the group spec's struct_size
 */
#include "veneer_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef ABI_MINOR
#define ABI_MINOR VENEER_ABI_MINOR
#endif
#ifndef GROUP_MIN
#define GROUP_MIN 0
#endif
#ifndef GROUP_MAX
#define GROUP_MAX 4
#endif

struct veneer_device { uint8_t value; };

static veneer_param_spec members[] = {
    { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_INT, .name = "lun", .doc = "logical unit",
      .min = 0, .max = 63 },
    { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_PATH, .name = "path", .doc = "the image",
      .choices = "none" },
    { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_CHOICE, .name = "cache", .doc = "cache mode",
      .default_value = "none", .choices = "none,writeback,unsafe" },
    { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_BOOL, .name = "read_only", .doc = "refuse writes",
      .default_value = "false" },
};

static veneer_param_spec params[] = {
    { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_INT, .name = "port", .doc = "the register",
      .default_value = "0x600", .min = 0, .max = 0xffff },
    { .struct_size = sizeof(veneer_param_spec), .type = VENEER_PARAM_GROUP, .name = "disk", .doc = "one table per disk",
      .min = GROUP_MIN, .max = GROUP_MAX, .members = members, .member_count = 4 },
};

static const veneer_param_value *value_at(const veneer_param_value *base, uint32_t stride, size_t i) {
    return (const veneer_param_value *)((const char *)base + (size_t)stride * i);
}

static veneer_device *create(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args) {
    const veneer_param_value *port = value_at(args->params, args->param_value_size, 0);
    const veneer_param_value *disk = value_at(args->params, args->param_value_size, 1);
    char line[512];
    if (args->param_count != 2 || disk->type != VENEER_PARAM_GROUP || strcmp(disk->name, "disk") != 0) {
        api->set_error(host, "the group did not arrive as the second value");
        return NULL;
    }
    for (int64_t t = 0; t < disk->int_value; t++) {
        const veneer_param_value *lun = value_at(disk->items, args->param_value_size, (size_t)t * 4);
        const veneer_param_value *path = value_at(disk->items, args->param_value_size, (size_t)t * 4 + 1);
        const veneer_param_value *cache = value_at(disk->items, args->param_value_size, (size_t)t * 4 + 2);
        const veneer_param_value *ro = value_at(disk->items, args->param_value_size, (size_t)t * 4 + 3);
        if (lun->type != VENEER_PARAM_INT || path->type != VENEER_PARAM_PATH || cache->type != VENEER_PARAM_CHOICE
            || ro->type != VENEER_PARAM_BOOL || strcmp(lun->name, "lun") || strcmp(path->name, "path")
            || strcmp(cache->name, "cache") || strcmp(ro->name, "read_only")) {
            api->set_error(host, "a table's items are not lun, path, cache, read_only with their types");
            return NULL;
        }
        snprintf(line, sizeof line, "disk[%lld]: lun=%lld path=%s cache=%s read_only=%lld", (long long)t,
                 (long long)lun->int_value, path->string_value, cache->string_value, (long long)ro->int_value);
        api->log(host, VENEER_LOG_INFO, line);
    }
    snprintf(line, sizeof line, "%lld disks", (long long)disk->int_value);
    api->log(host, VENEER_LOG_INFO, line);
    if (api->register_pio(host, 0, (uint16_t)port->int_value, 1) != VENEER_OK) {
        api->set_error(host, "port taken");
        return NULL;
    }
    return calloc(1, sizeof(veneer_device));
}

static veneer_status reset(veneer_device *dev) { dev->value = 0; return VENEER_OK; }
static void destroy(veneer_device *dev) { free(dev); }
static void io(veneer_device *dev, uint32_t region, uint64_t offset, uint32_t size, uint32_t flags, uint64_t *data) {
    (void)region; (void)offset; (void)size;
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
    .abi_minor = ABI_MINOR,
    .name = "groups",
    .version = "0.1",
    .summary = "parameter group fixture",
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

/* `size` bytes ending flush against an inaccessible page. */
__attribute__((unused)) static char *guarded_tail(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect(p + page, page, PROT_NONE) != 0) abort();
    return p + page - size;
}

__attribute__((constructor)) static void break_a_promise(void) {
#ifdef GROUP_DEFAULT
    params[1].default_value = "x";
#endif
#ifdef MEMBER_COUNT
    params[1].member_count = MEMBER_COUNT;
#endif
#ifdef MEMBERS_NULL
    params[1].members = NULL;
#endif
#ifdef MEMBERS_DANGLING
    params[1].members = (const veneer_param_spec *)(uintptr_t)0x10;
#endif
#ifdef MEMBER_NAME
    members[1].name = MEMBER_NAME;
#endif
#ifdef MEMBER_NESTED
    members[1].type = VENEER_PARAM_GROUP;
    members[1].members = members;
    members[1].member_count = 1;
#endif
#ifdef MEMBER_TYPE
    members[1].type = MEMBER_TYPE;
#endif
#ifdef MEMBER_DOC_AT_GUARD
    char *doc = guarded_tail(12);
    memcpy(doc, "logical unit", 12);
    members[0].doc = doc;
#endif
#ifdef MEMBER_BAD_DEFAULT
    members[2].default_value = "fast";
#endif
#ifdef GROUP_STRUCT_SIZE
    params[1].struct_size = GROUP_STRUCT_SIZE;
#endif
}

const veneer_plugin_descriptor *veneer_plugin_entry(void) { return &descriptor; }
