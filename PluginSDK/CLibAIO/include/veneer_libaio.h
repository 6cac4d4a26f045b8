/* libaio for VeneerDisk's engine, plus the few Linux calls around it that Swift's Glibc module
 * does not export (eventfd, O_DIRECT, statx's DIO alignment, fallocate's ZERO_RANGE, RWF_DSYNC).
 * Every function returns 0 or a positive errno unless it says otherwise; none keeps state. */
#ifndef VENEER_LIBAIO_H
#define VENEER_LIBAIO_H

#include <libaio.h>
#include <stdint.h>
#include <sys/uio.h>

/* A non-blocking, close-on-exec eventfd for AIO completions; -1 and errno on failure. */
int veneer_aio_eventfd(void);

/* Opens `path` again with O_DIRECT (read-only or read-write), close-on-exec; -1 and errno. */
int veneer_aio_open_direct(const char *path, int writable);

/* What O_DIRECT on `fd` needs: memory and file-offset alignment in bytes (statx STATX_DIOALIGN).
 * Returns ENOTSUP when the file system does not say. */
int veneer_aio_dio_alignment(int fd, uint32_t *memory, uint32_t *offset);

/* fallocate(FALLOC_FL_ZERO_RANGE): [offset, offset + length) reads as zeros afterwards. */
int veneer_aio_zero_range(int fd, int64_t offset, int64_t length);

/* Fills `cb` for a vectored read or write of `fd` at `offset`, tagged with `tag`, signalling
 * `eventfd` on completion. `dsync` asks for RWF_DSYNC (a FUA write). */
void veneer_aio_prep_rw(struct iocb *cb, int write, int fd, const struct iovec *iov, int count,
                        int64_t offset, int dsync, int eventfd, uint64_t tag);

/* Fills `cb` for an fdatasync of `fd` (IOCB_CMD_FDSYNC, Linux 4.18+), tagged and signalled as above. */
void veneer_aio_prep_fdsync(struct iocb *cb, int fd, int eventfd, uint64_t tag);

/* An event's tag and result (bytes moved, or a negative errno). */
uint64_t veneer_aio_event_tag(const struct io_event *event);
int64_t veneer_aio_event_result(const struct io_event *event);

#endif
