// Socket helpers for the event-loop servers (Sources/SundialRuntime/Net, /Control, /Metrics).
#define _GNU_SOURCE
#include "sundial_net.h"

#include <stddef.h>
#include <sys/socket.h>

int sundial_accept_nonblocking(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}
