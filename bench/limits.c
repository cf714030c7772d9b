/* The machine's physical limits for bench/run, in plain C (no scheduler in the way):
 *   limits forkloop N                 fork+execv("/bin/true")+waitpid N times; prints launches/s
 *   limits sleeplat N                 N clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME) wake-ups at
 *                                     random targets 2-12 ms ahead; prints each lateness in ns
 *   limits startup N STAMP FILE       N times: read CLOCK_REALTIME, fork, exec STAMP i FILE, wait;
 *                                     prints "i t0" (the stamp's own line minus t0 is its start-up cost)
 *   limits burst T N STAMP FILE [COUNT]
 *                                     sleeps until T (CLOCK_REALTIME, seconds since the epoch,
 *                                     fractional), then fork+execs STAMP i FILE N times without
 *                                     waiting, then reaps them: the best a scheduler can do for
 *                                     N jobs due at the same instant on this machine; with COUNT,
 *                                     the same at T+1, T+2, ... (COUNT bursts, a second apart) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec to_ts(long long ns) {
    struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };
    return ts;
}

static void sleep_until(long long target_ns) {
    struct timespec ts = to_ts(target_ns);
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static pid_t spawn(char *const argv[]) {
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: see the comment at the top of limits.c\n"); return 2; }
    const char *mode = argv[1];
    if (strcmp(mode, "forkloop") == 0) {
        int n = atoi(argv[2]);
        char *args[] = { "/bin/true", NULL };
        long long t0 = now_ns(CLOCK_MONOTONIC);
        for (int i = 0; i < n; i++) {
            pid_t pid = spawn(args);
            if (pid < 0) { perror("fork"); return 1; }
            int status;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "/bin/true failed\n"); return 1; }
        }
        double secs = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
        printf("%.1f\n", n / secs);
    } else if (strcmp(mode, "sleeplat") == 0) {
        int n = atoi(argv[2]);
        srand((unsigned)now_ns(CLOCK_MONOTONIC));
        for (int i = 0; i < n; i++) {
            long long target = now_ns(CLOCK_REALTIME) + 2000000LL + rand() % 10000000LL;
            sleep_until(target);
            printf("%lld\n", now_ns(CLOCK_REALTIME) - target);
        }
    } else if (strcmp(mode, "startup") == 0 && argc >= 5) {
        int n = atoi(argv[2]);
        for (int i = 0; i < n; i++) {
            char id[32];
            snprintf(id, sizeof id, "%d", i);
            char *args[] = { argv[3], id, argv[4], NULL };
            long long t0 = now_ns(CLOCK_REALTIME);
            pid_t pid = spawn(args);
            if (pid < 0) { perror("fork"); return 1; }
            waitpid(pid, NULL, 0);
            printf("%d %lld.%09lld\n", i, t0 / 1000000000LL, t0 % 1000000000LL);
        }
    } else if (strcmp(mode, "burst") == 0 && argc >= 6) {
        long long target = (long long)(atof(argv[2]) * 1e9 + 0.5);
        int n = atoi(argv[3]);
        int count = argc >= 7 ? atoi(argv[6]) : 1;
        for (int k = 0; k < count; k++, target += 1000000000LL) {
            sleep_until(target);
            for (int i = 0; i < n; i++) {
                char id[32];
                snprintf(id, sizeof id, "%d", i);
                char *args[] = { argv[4], id, argv[5], NULL };
                if (spawn(args) < 0) { perror("fork"); return 1; }
            }
            while (wait(NULL) > 0 || errno == EINTR) {}
        }
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
