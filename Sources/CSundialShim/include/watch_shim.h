#ifndef SUNDIAL_WATCH_SHIM_H
#define SUNDIAL_WATCH_SHIM_H

#include <stdint.h>

/// Creates an eventfd (non-blocking, close-on-exec) used to wake the config watcher's thread.
/// Swift's Glibc module does not export <sys/eventfd.h>. Returns the fd, or -1 with errno set.
int sundial_watch_eventfd(void);

/// Adds 1 to the eventfd counter so a poll() on it returns. Returns 0, or -1 with errno set.
int sundial_watch_eventfd_signal(int fd);

#endif
