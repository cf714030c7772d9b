// Wall-clock timers for the agent's main loop. Glibc's Swift module does not expose
// <sys/timerfd.h>, and TFD_TIMER_CANCEL_ON_SET is how Linux tells a sleeper that the wall
// clock was stepped (the same mechanism systemd uses for calendar timers).
#define _GNU_SOURCE
#include "sundial_timer.h"
#include <sys/timerfd.h>
#include <errno.h>
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

static int64_t now_ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int64_t sundial_hold_until_ms(int64_t unix_ms, int64_t cap_ms) {
    const int64_t target = unix_ms * 1000000LL, cap = cap_ms * 1000000LL;
    const int64_t start = now_ns(CLOCK_MONOTONIC);
    // Twice at most: the second pass covers a wall clock slewed (not stepped) behind the
    // monotonic one during the first, so the caller never goes on before `unix_ms`.
    for (int pass = 0; pass < 2; pass++) {
        const int64_t remaining = target - now_ns(CLOCK_REALTIME);
        const int64_t mono = now_ns(CLOCK_MONOTONIC);
        if (remaining <= 0 || mono - start + remaining > cap) break;
        const int64_t until = mono + remaining;
        struct timespec t = {.tv_sec = until / 1000000000LL, .tv_nsec = until % 1000000000LL};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {}
    }
    return now_ns(CLOCK_MONOTONIC) - start;
}
