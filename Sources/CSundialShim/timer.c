// Wall-clock timers for the agent's main loop. Glibc's Swift module does not expose
// <sys/timerfd.h>, and TFD_TIMER_CANCEL_ON_SET is how Linux tells a sleeper that the wall
// clock was stepped (the same mechanism systemd uses for calendar timers).
#define _GNU_SOURCE
#include "sundial_timer.h"
#include <sys/timerfd.h>
#include <time.h>

#ifndef TFD_TIMER_CANCEL_ON_SET
#define TFD_TIMER_CANCEL_ON_SET (1 << 1)
#endif

int sundial_timerfd_create(void) {
    return timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
}

int sundial_timerfd_arm(int fd, int64_t unix_ms) {
    struct itimerspec spec = {0};
    if (unix_ms < 0) {
        return timerfd_settime(fd, 0, &spec, NULL);
    }
    if (unix_ms == 0) unix_ms = 1; // it_value zero would disarm; 1 ms past the epoch is "now".
    spec.it_value.tv_sec = unix_ms / 1000;
    spec.it_value.tv_nsec = (long)(unix_ms % 1000) * 1000000L;
    return timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, NULL);
}

int sundial_monotonic_timerfd_create(void) {
    return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
}

int sundial_timerfd_arm_after(int fd, int64_t ms) {
    struct itimerspec spec = {0};
    if (ms >= 0) {
        if (ms == 0) {
            spec.it_value.tv_nsec = 1; // zero would disarm: "at once" is 1 ns from now.
        } else {
            spec.it_value.tv_sec = ms / 1000;
            spec.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
        }
    }
    return timerfd_settime(fd, 0, &spec, NULL);
}
