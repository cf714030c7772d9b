#ifndef SUNDIAL_SOCKET_H
#define SUNDIAL_SOCKET_H
#include <stdint.h>

/// The credentials of the peer of a connected Unix socket (SO_PEERCRED), which Swift's Glibc
/// module does not expose (`struct ucred` needs _GNU_SOURCE). Returns 0, or -1 with errno set.
int sundial_peer_credentials(int fd, uint32_t *uid, uint32_t *gid, int32_t *pid);

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC): the descriptor is close-on-exec from birth, so a job
/// launched by another thread at that moment cannot inherit it. Returns the fd or -1 (errno).
int sundial_accept_cloexec(int fd);

/// pipe2(fds, O_CLOEXEC). Returns 0 or -1 (errno).
int sundial_pipe_cloexec(int fds[2]);

#endif
