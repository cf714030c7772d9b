#ifndef SUNDIAL_NET_H
#define SUNDIAL_NET_H

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK) for the event-loop servers (control
/// socket, metrics endpoint), whose connections are polled, never waited on. Swift's Glibc
/// module hides accept4 (it needs _GNU_SOURCE), and accept + fcntl would leak the descriptor
/// into a job forked by another thread in between. Returns the new fd, or -1 with errno set.
int sundial_accept_nonblocking(int fd);

#endif
