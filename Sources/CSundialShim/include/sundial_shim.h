// CSundialShim: the few Linux system calls and macros Swift's Glibc module does not expose
// (or exposes awkwardly: packed `struct epoll_event`, `W*` status macros, signal handlers).
//
// Why a hand-written spawner instead of swift-subprocess: each runner reaps its own children
// through a pidfd per child, and in `sundial run` the agent is also a child subreaper whose
// orphan reaper must never take a runner's child (ChildRegistry); a library that spawns and
// waits on its own cannot take part in that bookkeeping. So Sundial owns spawning:
// `posix_spawn` for the common case, and a careful fork+exec path (async-signal-safe after fork)
// only when a job needs `umask`, `user`, `group` or a cgroup, which `posix_spawn` cannot do.
#ifndef SUNDIAL_SHIM_H
#define SUNDIAL_SHIM_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>


// MARK: - Spawning

/// Where a launch failed, so the caller can give a precise reason.
enum sundial_spawn_stage {
    SUNDIAL_STAGE_SPAWN = 0,        ///< posix_spawn/fork itself, or unknown (posix_spawn path)
    SUNDIAL_STAGE_STDIO = 1,        ///< opening /dev/null or dup2 onto 0/1/2
    SUNDIAL_STAGE_CHDIR = 2,        ///< entering the working directory
    SUNDIAL_STAGE_CREDENTIALS = 3,  ///< setgroups/setgid/setuid
    SUNDIAL_STAGE_EXEC = 4,         ///< execve
    SUNDIAL_STAGE_CGROUP = 5,       ///< creating the child in its cgroup (clone3, cgroup.procs)
};

/// Everything needed to start one job. All memory is prepared by the caller before the call:
/// the fork path allocates nothing after `fork()`.
typedef struct sundial_spawn_request {
    const char *path;          ///< absolute (or workdir-relative) executable path; no PATH search
    char *const *argv;         ///< NULL-terminated
    char *const *envp;         ///< NULL-terminated
    const char *workdir;       ///< NULL: inherit the agent's
    int stdout_fd;             ///< becomes fd 1 in the child
    int stderr_fd;             ///< becomes fd 2 in the child
    int umask_value;           ///< -1: inherit
    int64_t uid;               ///< -1: unchanged
    int64_t gid;               ///< -1: unchanged
    const gid_t *groups;       ///< supplementary groups, used when gid >= 0
    int ngroups;
    /// -1: no cgroup (the child starts in the agent's). Else a directory descriptor of the run's
    /// cgroup: the child is *created* in it (clone3 with CLONE_INTO_CGROUP, Linux 5.7+), or, where
    /// clone3 cannot do that, forked and moved by writing "0" to the cgroup's `cgroup.procs`
    /// before it runs any job code. Either way no job process ever runs outside the cgroup, so
    /// nothing it forks can escape (writing the pid from the parent after spawning would race
    /// with the child's first fork). Forces the fork-like path: posix_spawn cannot do either.
    int cgroup_fd;
} sundial_spawn_request;

/// Starts `req` in a new session (so its pid is also its process-group id), stdin on /dev/null,
/// signal mask empty and every disposition default, every other descriptor closed.
/// Returns 0 and sets `*pid`, or returns an errno value and sets `*stage`.
int sundial_spawn(const sundial_spawn_request *req, pid_t *pid, int *stage);

/// Tests: 1 makes the cgroup path behave as on a kernel without clone3 (fork, then the child
/// writes itself into `cgroup.procs`), so that fallback is exercised on a new kernel too.
void sundial_spawn_disable_clone3(int disabled);

/// Children created so far by the CLONE_VM|CLONE_VFORK path (x86-64 with clone3; 0 elsewhere):
/// tests check that the cheap path is the one taken.
long sundial_spawn_vfork_count(void);

/// Decodes a wait status: 1 exited (`*value` = code), 2 killed (`*value` = signal), 0 other.
int sundial_decode_status(int status, int *value);

// MARK: - Descriptors

/// A pipe with both ends close-on-exec and the read end (`fds[0]`) non-blocking. The write end
/// stays blocking: it becomes a job's stdout, and programs do not expect EAGAIN there.
/// Returns 0 or an errno value.
int sundial_output_pipe(int fds[2]);

/// Sets or clears O_NONBLOCK. Returns 0 or an errno value.
int sundial_set_nonblocking(int fd, int on);

/// Opens /dev/null on 0, 1, 2 if any of them is closed, so a later pipe never lands on a
/// standard descriptor (call once at start-up). Returns 0 or an errno value.
int sundial_ensure_standard_fds(void);

/// Raises the soft RLIMIT_NOFILE to the hard limit, as Go's runtime does; every job that
/// `sundial_spawn` starts from then on, and every notification command, gets the original soft
/// limit back before its exec (a program that uses select() fails past 1,024 descriptors).
/// Only where that costs a job nothing: x86-64 with clone3 (jobs are then spawned by the
/// vfork-like clone3; posix_spawn cannot set a limit, and the other path forks the whole agent)
/// and close_range with CLOSE_RANGE_CLOEXEC (Linux 5.11). Elsewhere the limit is left as it is.
/// Call while the process has one thread. Returns 0 or an errno value.
int sundial_raise_open_files_limit(void);

/// 1 when `sundial_raise_open_files_limit` raises the limit on this machine (the build and the
/// kernel have what it needs, as above), 0 when it leaves it. Probes only: safe at any time.
int sundial_open_files_raise_applies(void);

/// When the agent raised its open-files limit: sets `*limit` to what a child gets (the original
/// soft limit, the current hard one) and returns 1; otherwise returns 0.
int sundial_original_open_files(struct rlimit *limit);

/// Grows the process's descriptor table to hold `slots` entries (lowered to the soft
/// RLIMIT_NOFILE) and returns that number, or -1; the kernel may round the table up. Call
/// while the process has one thread: growing a table that several threads share waits for an
/// RCU grace period, with every thread that opens a descriptor meanwhile asleep (see
/// AgentSignals.prepareProcess).
int sundial_reserve_descriptor_table(int slots);

/// Writes `len` bytes with one write(2), preceded by a single "\n" when `prefix_newline` is set
/// (writev, so still one system call). Returns bytes written (including the prefix) or -1/errno.
ssize_t sundial_write_line(int fd, const void *buf, size_t len, int prefix_newline);

/// Grows the pipe or FIFO `fd` to hold at least `bytes` (F_SETPIPE_SZ; never shrinks it, and
/// gives up quietly at the system's limit), or a socket's send buffer (SO_SNDBUFFORCE, else
/// SO_SNDBUF up to net.core.wmem_max: journald's stream under systemd). Returns the capacity
/// now (a socket's payload part), or -1 if `fd` is neither. `bytes` 0 only reads it.
int sundial_grow_pipe(int fd, int bytes);

/// 1 when `fd` is a pipe or a socket (writes may block), 0 otherwise, -1 on error.
int sundial_fd_is_stream(int fd);

// MARK: - Event loop (epoll, eventfd, signals)

int sundial_epoll_create(void);
/// Registers `fd` for reading (level-triggered) with an opaque `token`. Returns 0 or errno.
int sundial_epoll_add_readable(int epfd, int fd, uint64_t token);
int sundial_epoll_remove(int epfd, int fd);
/// Watches `fd` in `epfd` for readability and/or writability (level-triggered), adding it when
/// it is not in the set yet and changing its events when it is; `token` comes back with each
/// event. Returns 0 or an errno value.
int sundial_epoll_watch(int epfd, int fd, uint64_t token, int readable, int writable);
/// Waits up to `timeout_ms` (-1 forever); fills `tokens` and returns how many, 0 on timeout,
/// -1/errno on error (EINTR is retried by the caller).
int sundial_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms);

/// A non-blocking, close-on-exec eventfd, or -1/errno.
int sundial_eventfd(void);
/// Increments the eventfd (wakes the loop). Async-signal-safe.
void sundial_eventfd_signal(int fd);
/// Resets the eventfd to zero.
void sundial_eventfd_drain(int fd);

/// Installs a SIGCHLD handler that signals `wake_fd` (an eventfd), so the reaper wakes whichever
/// thread the kernel delivers SIGCHLD to. Returns 0 or errno.
int sundial_install_sigchld_handler(int wake_fd);
/// Restores SIGCHLD's default disposition if the handler above signals `wake_fd` (before that
/// eventfd is closed). Returns 0 or errno.
int sundial_remove_sigchld_handler(int wake_fd);
/// A non-blocking signalfd for SIGCHLD, after blocking SIGCHLD in the calling thread. Used with
/// the handler above: when the agent blocks SIGCHLD in every thread, the signal stays pending for
/// the process and this descriptor reports it instead. Returns the fd or -1/errno.
int sundial_sigchld_signalfd(void);
/// Reads and discards everything pending on a signalfd.
void sundial_signalfd_drain(int fd);

/// Blocks `sigs` in the calling thread (call before any other thread starts, so every thread
/// inherits the mask). Returns 0 or errno.
int sundial_block_signals(const int *sigs, int count);
/// A non-blocking signalfd for `sigs` (which must be blocked). Returns the fd or -1/errno.
int sundial_signalfd(const int *sigs, int count);
/// Reads one signal from a signalfd: its number, 0 if none pending, -1/errno on error.
int sundial_signalfd_read(int fd);
/// Ignores SIGPIPE, so writing to a closed pipe returns EPIPE instead of killing the agent.
void sundial_ignore_sigpipe(void);

/// Marks the calling process a child subreaper: orphaned descendants re-parent to it (instead
/// of init), so it can reap them. Returns 0 or errno.
int sundial_set_child_subreaper(void);
/// Ends the above (a stopped orphan-reaping runner). Returns 0 or errno.
int sundial_unset_child_subreaper(void);

// MARK: - Clocks and measurements

/// CLOCK_MONOTONIC in milliseconds.
int64_t sundial_monotonic_ms(void);
/// CLOCK_MONOTONIC in nanoseconds.
int64_t sundial_monotonic_ns(void);
/// A `kB` value from /proc/self/status (e.g. "VmHWM", "VmRSS"), or -1.
long sundial_proc_status_kb(const char *key);

// MARK: - Spawn helpers (parallel spawning of a burst)

/// A small, fixed set of helper threads that, with the calling thread, run `fn(ctx, i)` for
/// every `i` in `0..<count` (see `sundial_work_pool_run`). The runner uses it to spawn a burst of
/// processes from two threads: posix_spawn blocks its caller until the child has exec'd, and a
/// second thread overlaps that wait with the next spawn.
///
/// Why in C: a condition variable (to sleep with no timeout when idle) and a packed 64-bit
/// claim word are simplest here; Swift's `Synchronization` has no condition variable.
typedef struct sundial_work_pool sundial_work_pool;
typedef void (*sundial_work_fn)(void *ctx, int index);

/// A pool with `helpers` helper threads (at least 1), named `name` (15 bytes at most). No thread
/// is created until the first `sundial_work_pool_run`. Returns NULL if out of memory.
sundial_work_pool *sundial_work_pool_create(int helpers, const char *name);

/// Runs `fn(ctx, i)` once for every `i` in `0..<count`, on the calling thread and the helpers
/// (each takes the next index from a shared counter, so uneven items balance), and returns when
/// all have returned. Only one thread may call it at a time. If the helpers cannot be started,
/// the calling thread runs every item itself. `fn` must touch only item `i`'s state.
void sundial_work_pool_run(sundial_work_pool *pool, int count, sundial_work_fn fn, void *ctx);

/// Stops the helpers (waiting for them to exit) and frees the pool. Not during a run. NULL: nothing.
void sundial_work_pool_destroy(sundial_work_pool *pool);

/// Names the calling thread (Linux keeps 15 bytes). Returns 0 or an errno value.
int sundial_set_thread_name(const char *name);

/// Online processors (at least 1).
int sundial_cpu_count(void);


#endif
