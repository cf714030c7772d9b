#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sundial_isolate.h"
#include "sundial_watcher.h"

extern char **environ;
// glibc 2.34+: fork without the atfork handlers, for a child that only makes system calls.
extern pid_t _Fork(void);

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void limit(int resource, uint64_t value) {
    if (value == 0) return;
    struct rlimit r = {.rlim_cur = value, .rlim_max = value};
    if (resource == RLIMIT_CPU) r.rlim_max = value + 1; // SIGXCPU first, SIGKILL a second later
    setrlimit(resource, &r);
}

void sundial_watcher_status(int fd, int32_t kind, int32_t value) {
    struct sundial_isolate_status s = {kind, value};
    while (write(fd, &s, sizeof s) < 0 && errno == EINTR) {}
}

_Noreturn void sundial_watcher_finish(pid_t child) {
    close(0);
    close(1);
    close(2);
    siginfo_t info;
    for (;;) {
        info.si_pid = 0;
        if (waitid(P_PID, child, &info, WEXITED) == 0) break;
        if (errno != EINTR) {
            sundial_watcher_status(3, 3, errno);
            _exit(127);
        }
    }
    sundial_watcher_status(3, info.si_code == CLD_EXITED ? 1 : 2, info.si_status);
    _exit(0);
}

/// Dies when the parent does; false if the parent is already gone.
static int tie_to_parent(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    return getppid() == parent;
}

static _Noreturn void run_child(const char *path, char *const argv[], char *const envp[],
                                const struct sundial_isolate_limits *limits, pid_t watcher) {
    if (!tie_to_parent(watcher)) _exit(127);
    for (int s = 1; s < NSIG; s++) {
        if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    fcntl(3, F_SETFD, FD_CLOEXEC); // the status descriptor: open only until exec succeeds
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    limit(RLIMIT_AS, limits->address_space_bytes);
    limit(RLIMIT_CPU, limits->cpu_seconds);
    limit(RLIMIT_STACK, limits->stack_bytes);
    limit(RLIMIT_NOFILE, limits->open_files);
    limit(RLIMIT_FSIZE, limits->file_size_bytes);
    execve(path, argv, envp ? envp : environ);
    sundial_watcher_status(3, 3, errno);
    _exit(127);
}

pid_t sundial_spawn_isolated(const char *path, char *const argv[], char *const envp[], int stdout_fd,
                             int stderr_fd, int status_fd, const struct sundial_isolate_limits *limits) {
    return sundial_spawn_isolated_input(path, argv, envp, -1, stdout_fd, stderr_fd, status_fd, limits);
}

pid_t sundial_spawn_isolated_input(const char *path, char *const argv[], char *const envp[], int stdin_fd,
                                   int stdout_fd, int stderr_fd, int status_fd,
                                   const struct sundial_isolate_limits *limits) {
    int input = stdin_fd >= 0 ? fcntl(stdin_fd, F_DUPFD_CLOEXEC, 0) : open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (input < 0) return -errno;
    pid_t parent = getpid();
    pid_t watcher = _Fork();
    if (watcher < 0) {
        int e = errno;
        close(input);
        return -e;
    }
    if (watcher > 0) {
        close(input);
        return watcher;
    }

    // The watcher. Signals stay blocked here (the caller's mask, all of them in the agent,
    // plus everything now): only SIGKILL, from the agent or PR_SET_PDEATHSIG, ends it.
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    if (!tie_to_parent(parent)) _exit(127);
    // 0, 1, 2 for the child, the status at 3, and nothing else: a copy of one of the agent's
    // descriptors (a job's pipe, a client's socket) kept open here would delay its EOF.
    int status = fcntl(status_fd, F_DUPFD_CLOEXEC, 10);
    if (status < 0 || dup2(input, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0 || dup2(status, 3) < 0) {
        if (status >= 0) sundial_watcher_status(status, 3, errno);
        _exit(127);
    }
    syscall(SYS_close_range, 4U, ~0U, 0U);
    pid_t self = getpid();
    pid_t child = _Fork();
    if (child == 0) run_child(path, argv, envp, limits, self);
    if (child < 0) {
        sundial_watcher_status(3, 3, errno);
        _exit(127);
    }
    sundial_watcher_finish(child);
}

int sundial_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int sundial_memfd_with(const void *bytes, size_t count) {
    int fd = memfd_create("sundial-request", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    const char *p = bytes;
    size_t done = 0;
    while (done < count) {
        ssize_t n = write(fd, p + done, count - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        done += (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}
