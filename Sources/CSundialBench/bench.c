// See include/sundial_bench.h.
#include "sundial_bench.h"
#include <errno.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}


int sundial_bench_spawn_loop(const char *path, int n, int use_posix_spawn) {
    char *argv[] = {(char *)path, NULL};
    char *envp[] = {NULL};
    for (int i = 0; i < n; i++) {
        pid_t pid;
        if (use_posix_spawn) {
            int rc = posix_spawn(&pid, path, NULL, NULL, argv, envp);
            if (rc != 0) return rc;
        } else {
            pid = fork();
            if (pid < 0) return errno;
            if (pid == 0) {
                execve(path, argv, envp);
                _exit(127);
            }
        }
        int st;
        while (waitpid(pid, &st, 0) < 0) {
            if (errno != EINTR) return errno;
        }
    }
    return 0;
}

int sundial_bench_spawn_burst(const char *path, int n, int use_posix_spawn, int64_t *elapsed_ns) {
    char *argv[] = {(char *)path, NULL};
    char *envp[] = {NULL};
    int started = 0, rc = 0;
    int64_t t0 = monotonic_ns();
    for (; started < n; started++) {
        pid_t pid;
        if (use_posix_spawn) {
            rc = posix_spawn(&pid, path, NULL, NULL, argv, envp);
            if (rc != 0) break;
        } else {
            pid = fork();
            if (pid < 0) {
                rc = errno;
                break;
            }
            if (pid == 0) {
                execve(path, argv, envp);
                _exit(127);
            }
        }
    }
    *elapsed_ns = monotonic_ns() - t0;
    for (int i = 0; i < started; i++) {
        int st;
        while (wait(&st) < 0) {
            if (errno != EINTR) return rc != 0 ? rc : errno;
        }
    }
    return rc;
}
