/* Process calls VMSupervisor needs that Swift's Glibc module hides behind _GNU_SOURCE. */
#ifndef VENEER_MANAGEMENT_SUPPORT_H
#define VENEER_MANAGEMENT_SUPPORT_H

#include <spawn.h>
#include <sys/types.h>

/* posix_spawnattr flag: the child starts in a new session (setsid), so it outlives veneerd. */
short veneer_spawn_setsid_flag(void);
/* posix_spawn file actions: change directory in the child; close every fd >= low in the child. */
int veneer_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
int veneer_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int low);
/* pidfd_open(2) with PIDFD_NONBLOCK unset, close-on-exec by kernel default; -1 and errno on failure. */
int veneer_pidfd_open(pid_t pid);

#endif
