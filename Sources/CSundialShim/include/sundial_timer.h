#ifndef SUNDIAL_TIMER_H
#define SUNDIAL_TIMER_H
#include <stdint.h>

/// A CLOCK_REALTIME timerfd (close-on-exec, non-blocking). Returns -1 and sets errno on failure.
int sundial_timerfd_create(void);
/// Arms `fd` to expire at the absolute wall time `unix_ms` (milliseconds since the epoch), with
/// TFD_TIMER_CANCEL_ON_SET so that a step of the wall clock wakes the reader (read() fails
/// with ECANCELED). `unix_ms < 0` disarms. Returns 0, or -1 with errno.
int sundial_timerfd_arm(int fd, int64_t unix_ms);
/// A CLOCK_MONOTONIC timerfd (close-on-exec, non-blocking), for deadlines that must not move
/// with the wall clock (the config watcher's debounce). Returns -1 and sets errno on failure.
int sundial_monotonic_timerfd_create(void);
/// Arms `fd` to expire once, `ms` milliseconds from now (0: at once); `ms < 0` disarms.
/// Returns 0, or -1 with errno.
int sundial_timerfd_arm_after(int fd, int64_t ms);
/// Blocks the calling thread until the wall clock reads `unix_ms`, if that is in the future by
/// at most `cap_ms`; otherwise (already past, or further than the cap: the clock was stepped
/// since the caller decided) returns at once. Sleeps on CLOCK_MONOTONIC, so a wall-clock step
/// during the wait cannot stretch it past `cap_ms`. Returns the nanoseconds slept.
int64_t sundial_hold_until_ms(int64_t unix_ms, int64_t cap_ms);
#endif
