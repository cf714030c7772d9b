#ifndef SUNDIAL_SOCKET_H
#define SUNDIAL_SOCKET_H
#include <stdint.h>

/// The credentials of the peer of a connected Unix socket (SO_PEERCRED), which Swift's Glibc
/// module does not expose (`struct ucred` needs _GNU_SOURCE). Returns 0, or -1 with errno set.
int sundial_peer_credentials(int fd, uint32_t *uid, uint32_t *gid, int32_t *pid);

#endif
