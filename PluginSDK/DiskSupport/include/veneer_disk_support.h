/* What the disk formats need from libc that Swift's Glibc module does not export (it is built
 * without _GNU_SOURCE): hole punching. */
#ifndef VENEER_DISK_SUPPORT_H
#define VENEER_DISK_SUPPORT_H

/* fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length): 0, or the errno. */
int veneer_disk_punch_hole(int fd, long long offset, long long length);

#endif
