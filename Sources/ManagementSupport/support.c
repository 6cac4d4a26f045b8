#define _GNU_SOURCE
#include "management_support.h"
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

short veneer_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }

int veneer_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int veneer_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int low) {
    return posix_spawn_file_actions_addclosefrom_np(actions, low);
}

int veneer_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
