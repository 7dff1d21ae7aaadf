#ifndef SIYU_CSIYUTESTSUPPORT_SHIM_H
#define SIYU_CSIYUTESTSUPPORT_SHIM_H
/* The two C library calls the tests' ChildProcess needs that <spawn.h> and <unistd.h> declare only
   under _GNU_SOURCE, which Swift's Glibc module is built without (glibc has both since 2.34).
   Only SiyuTestSupport imports this module (tools/check-layering.sh). */
#include <spawn.h>

extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
extern int pipe2(int fds[2], int flags);

static inline int siyu_spawn_actions_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

static inline int siyu_pipe_close_on_exec(int fds[2], int flags) {
    return pipe2(fds, flags);
}
#endif
