// Helpers for the config watcher (Sources/SundialRuntime/Watch). Kept apart from shim.c so the
// watcher does not depend on the rest of the shim.
#include "watch_shim.h"

#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int sundial_watch_eventfd(void) {
    // EFD_CLOEXEC atomically: the runner forks jobs from other threads meanwhile.
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

int sundial_watch_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    return n == (ssize_t)sizeof one ? 0 : -1;
}
