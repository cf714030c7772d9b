// Internal to CSundialShim (not under include/, so not imported by Swift): the tail shared by
// the two watcher processes, the configuration loader's (isolate.c) and a notification
// command's (notify_spawn.c). Each watcher holds the status pipe as fd 3.
#ifndef SUNDIAL_WATCHER_H
#define SUNDIAL_WATCHER_H
#include <stdint.h>
#include <sys/types.h>

/// Writes one 8-byte status record (struct sundial_isolate_status) to `fd`, retrying EINTR.
void sundial_watcher_status(int fd, int32_t kind, int32_t value);

/// Closes 0-2 (only the child holds the output pipes now: their EOF is its exit), waits for
/// `child`, writes its exit (kind 1, code) or signal (kind 2, number) to fd 3, and exits.
_Noreturn void sundial_watcher_finish(pid_t child);

#endif
