#define _GNU_SOURCE
#include "veneer_libaio.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <linux/falloc.h>

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif

int veneer_aio_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int veneer_aio_open_direct(const char *path, int writable) {
    return open(path, (writable ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
}

int veneer_aio_dio_alignment(int fd, uint32_t *memory, uint32_t *offset) {
    struct statx sx;
    memset(&sx, 0, sizeof sx);
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) != 0) return errno;
    if (!(sx.stx_mask & STATX_DIOALIGN) || sx.stx_dio_mem_align == 0 || sx.stx_dio_offset_align == 0)
        return ENOTSUP;
    *memory = sx.stx_dio_mem_align;
    *offset = sx.stx_dio_offset_align;
    return 0;
}

int veneer_aio_zero_range(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_ZERO_RANGE, offset, length) == 0 ? 0 : errno;
}

void veneer_aio_prep_rw(struct iocb *cb, int write, int fd, const struct iovec *iov, int count,
                        int64_t offset, int dsync, int eventfd, uint64_t tag) {
    if (write) io_prep_pwritev(cb, fd, iov, count, offset);
    else io_prep_preadv(cb, fd, iov, count, offset);
    cb->aio_rw_flags = dsync ? RWF_DSYNC : 0;
    io_set_eventfd(cb, eventfd);
    cb->data = (void *)(uintptr_t)tag;
}

void veneer_aio_prep_fdsync(struct iocb *cb, int fd, int eventfd, uint64_t tag) {
    io_prep_fdsync(cb, fd);
    io_set_eventfd(cb, eventfd);
    cb->data = (void *)(uintptr_t)tag;
}

uint64_t veneer_aio_event_tag(const struct io_event *event) { return (uint64_t)(uintptr_t)event->data; }
int64_t veneer_aio_event_result(const struct io_event *event) { return (int64_t)(long)event->res; }
