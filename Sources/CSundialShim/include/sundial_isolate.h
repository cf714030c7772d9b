#ifndef SUNDIAL_ISOLATE_H
#define SUNDIAL_ISOLATE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// Resource limits applied to an isolated child before it executes (0: leave as inherited).
struct sundial_isolate_limits {
    uint64_t address_space_bytes; ///< RLIMIT_AS
    uint64_t cpu_seconds;         ///< RLIMIT_CPU (SIGXCPU at the soft limit, SIGKILL one second later)
    uint64_t stack_bytes;         ///< RLIMIT_STACK
    uint64_t open_files;          ///< RLIMIT_NOFILE
    uint64_t file_size_bytes;     ///< RLIMIT_FSIZE
};

/// What an isolated child's watcher reports on the status descriptor: 8 bytes, written at once.
struct sundial_isolate_status {
    int32_t kind;  ///< 1 exited (value: code), 2 killed (value: signal), 3 could not execute (value: errno)
    int32_t value;
};

/// Runs `path` as an isolated child and reports how it ended on `status_fd`.
///
/// Two processes: a watcher, forked from this one, which forks the child and waits for it,
/// then writes one `sundial_isolate_status` record to `status_fd` and exits. Why a watcher: the
/// agent's job runner is a subreaper that reaps every child with `waitpid(-1)`, so a child's
/// exit status cannot be relied on to reach the code that started it; the watcher's record
/// can. The end of `status_fd` (EOF) says the watcher is gone; while it is open, the watcher
/// is alive, so killing the returned pid is safe (no reuse). Killing the watcher kills the
/// child (PR_SET_PDEATHSIG), and both die with the thread that called this.
///
/// The child: `stdout_fd` and `stderr_fd` as its fds 1 and 2, /dev/null as 0, nothing else
/// open, an empty signal mask and default dispositions, no core dumps, `limits` in force from
/// its first instruction. `envp` NULL: this process's environment.
///
/// Between the fork and exec only system calls run (no allocation, no locks: other threads of
/// this process may hold them). Returns the watcher's pid, or -errno.
pid_t sundial_spawn_isolated(const char *path, char *const argv[], char *const envp[], int stdout_fd,
                             int stderr_fd, int status_fd, const struct sundial_isolate_limits *limits);

/// `sundial_spawn_isolated` with `stdin_fd` as the child's standard input (-1: /dev/null), for a
/// child that takes its request there (the webhook child: headers may carry a token, which an
/// argument would show in /proc/PID/cmdline to every user of the box).
pid_t sundial_spawn_isolated_input(const char *path, char *const argv[], char *const envp[], int stdin_fd,
                                   int stdout_fd, int stderr_fd, int status_fd,
                                   const struct sundial_isolate_limits *limits);

/// A close-on-exec memory file holding `count` bytes, positioned at its start: a request for a
/// child's standard input that needs no writer while the child runs (a pipe would block once
/// its 64 KiB are full). Returns the descriptor, or -errno.
int sundial_memfd_with(const void *bytes, size_t count);

/// pipe2(fds, O_CLOEXEC): close-on-exec from birth, so a job launched by another thread at that
/// moment cannot inherit either end. Returns 0 or -1 (errno).
int sundial_pipe_cloexec(int fds[2]);

#endif
