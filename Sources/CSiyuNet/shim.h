#ifndef SIYU_CSIYUNET_SHIM_H
#define SIYU_CSIYUNET_SHIM_H
/* The Linux calls SiyuNet needs from headers Swift's Glibc module leaves out: epoll, eventfd and
   accept4. Only SiyuNet imports this module (tools/check-layering.sh). */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/* <sys/socket.h> declares accept4 only under _GNU_SOURCE, which the Glibc module is built
   without; the C library has it on every Linux. */
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

static inline int siyu_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}
#endif
