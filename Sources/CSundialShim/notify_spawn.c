#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sundial_notify_spawn.h"
#include "sundial_isolate.h"
#include "sundial_shim.h"
#include "sundial_watcher.h"

extern pid_t _Fork(void);


pid_t sundial_spawn_notify(const char *path, char *const argv[], char *const envp[], int stdin_fd, int stdout_fd,
                           int status_fd) {
    pid_t parent = getpid();
    pid_t watcher = _Fork();
    if (watcher < 0) return -errno;
    if (watcher > 0) return watcher;

    // The watcher: every signal blocked, dies with the agent, holds 0-3 and nothing else.
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int status = fcntl(status_fd, F_DUPFD_CLOEXEC, 10);
    if (status < 0 || dup2(stdin_fd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stdout_fd, 2) < 0 || dup2(status, 3) < 0) {
        if (status >= 0) sundial_watcher_status(status, 3, errno);
        _exit(127);
    }
    syscall(SYS_close_range, 4U, ~0U, 0U);
    // The open-files limit the agent was started with, as every job gets.
    struct rlimit open_files;
    int restore_open_files = sundial_original_open_files(&open_files);
    pid_t self = getpid();
    pid_t child = _Fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self) _exit(127);
        for (int s = 1; s < NSIG; s++) {
            if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        fcntl(3, F_SETFD, FD_CLOEXEC);
        if (restore_open_files && setrlimit(RLIMIT_NOFILE, &open_files) != 0) {
            sundial_watcher_status(3, 3, errno);
            _exit(127);
        }
        execve(path, argv, envp);
        sundial_watcher_status(3, 3, errno);
        _exit(127);
    }
    if (child < 0) {
        sundial_watcher_status(3, 3, errno);
        _exit(127);
    }
    sundial_watcher_finish(child);
}
