// See include/sundial_shim.h for why this exists (one owner of spawning and reaping).
#define _GNU_SOURCE
#include "sundial_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define SUNDIAL_CLONE_INTO_CGROUP 0x200000000ULL

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2), spelt out so older kernel headers
/// build too.
struct sundial_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

static volatile int sigchld_wake_fd = -1;

// MARK: - Spawning

/// The common path: posix_spawn (glibc uses clone(CLONE_VM|CLONE_VFORK), far cheaper than fork
/// for a large agent). It cannot set umask or credentials; those jobs take the fork path.
static int spawn_posix(const sundial_spawn_request *req, pid_t *pid, int *stage) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    int rc;
    *stage = SUNDIAL_STAGE_SPAWN;
    if ((rc = posix_spawnattr_init(&attr)) != 0) return rc;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        posix_spawnattr_destroy(&attr);
        return rc;
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, req->stdout_fd, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, req->stderr_fd, 2);
    if (rc == 0 && req->workdir != NULL) rc = posix_spawn_file_actions_addchdir_np(&fa, req->workdir);
#if defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 34)
    // Belt and braces: every agent descriptor should be close-on-exec, but a library that
    // forgot O_CLOEXEC must not leak a descriptor into jobs either.
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
#endif
    if (rc == 0) rc = posix_spawn(pid, req->path, &fa, &attr, req->argv, req->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc;
}

struct child_failure {
    int stage;
    int err;
};

/// Reports a failure from the forked child through the close-on-exec pipe and exits.
/// Async-signal-safe (write, _exit).
static void child_fail(int errfd, int stage) {
    struct child_failure f = {stage, errno};
    ssize_t unused = write(errfd, &f, sizeof f);
    (void)unused;
    _exit(127);
}

/// The fork path, for umask, user/group and a run's cgroup. After the child is created it calls
/// only async-signal-safe functions and allocates nothing: every argument was prepared before.
///
/// The child is created by a raw clone3 that glibc does not know about: with a cgroup,
/// CLONE_INTO_CGROUP, so it is born in the run's cgroup. On x86-64 it is also created the way
/// posix_spawn creates its children, CLONE_VM|CLONE_VFORK on a stack of its own (see
/// `sundial_clone3_vfork`): the agent's page tables are not copied (a fork of the agent cost
/// about 0.25 ms on this path, a quarter of its lateness over a C loop, issue 16) and the
/// calling thread waits until the child has exec'd or failed, as it waits for the error pipe
/// anyway. Either way glibc's thread list still names the agent's threads, so the child uses
/// raw system calls for credentials (glibc's setuid would try to signal those threads) and
/// nothing that takes a glibc lock or allocates. Where clone3 cannot do it (ENOSYS: kernel <
/// 5.3 or a seccomp filter; E2BIG/EINVAL: kernel < 5.7), the child is forked and, with a
/// cgroup, writes "0" to the cgroup's `cgroup.procs` (opened before) as its first act, still
/// before any job code runs.
static int clone3_disabled = 0;

void sundial_spawn_disable_clone3(int disabled) { __atomic_store_n(&clone3_disabled, disabled, __ATOMIC_RELAXED); }

#define SUNDIAL_CLONE_VM 0x100ULL
#define SUNDIAL_CLONE_VFORK 0x4000ULL

#if defined(__x86_64__) && !defined(__ILP32__)
/// `long sundial_clone3_vfork(struct sundial_clone_args *args, size_t size, int (*fn)(void *), void *arg)`:
/// clone3 whose child calls `fn(arg)` on the stack `args` names and exits with its result; the
/// parent gets the child's pid or -errno. Hand-written because the child of a CLONE_VM clone
/// cannot return through any C frame (it would run on the parent's frames), and glibc exports
/// no clone3 wrapper; this is glibc's own `__clone3` trampoline, minus the thread set-up.
/// `fn` and `arg` travel in rdx and r8, which the system call preserves.
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl sundial_clone3_vfork\n"
    ".hidden sundial_clone3_vfork\n"
    ".type sundial_clone3_vfork,@function\n"
    "sundial_clone3_vfork:\n"
    "    movq %rcx, %r8\n"
    "    movl $435, %eax\n"
    "    syscall\n"
    "    testq %rax, %rax\n"
    "    jz 1f\n"
    "    ret\n"
    "1:  xorl %ebp, %ebp\n"
    "    movq %r8, %rdi\n"
    "    callq *%rdx\n"
    "    movl %eax, %edi\n"
    "    movl $60, %eax\n"
    "    syscall\n"
    "    hlt\n"
    ".size sundial_clone3_vfork, .-sundial_clone3_vfork\n");
long sundial_clone3_vfork(struct sundial_clone_args *args, size_t size, int (*fn)(void *), void *arg)
    __attribute__((visibility("hidden")));
#define SUNDIAL_HAS_CLONE3_VFORK 1
/// The child's stack, on the calling thread's own stack (which waits, CLONE_VFORK, until the
/// child has exec'd), as musl's posix_spawn does. The child makes a handful of system calls.
#define SUNDIAL_CHILD_STACK 32768
#endif

/// The soft RLIMIT_NOFILE the agent started with, when `sundial_raise_open_files_limit` raised
/// it: every job gets it back before exec. Written once, before any thread exists.
static rlim_t original_open_files = 0;
static int open_files_raised = 0;

int sundial_open_files_raise_applies(void) {
#if defined(SUNDIAL_HAS_CLONE3_VFORK)
    // Only where every job can get the original back cheaply and completely: clone3 for the
    // vfork-like spawn (a NULL argument is EINVAL where it exists; ENOSYS without it or under
    // a seccomp filter, where spawns would fork the whole agent instead of posix_spawn), and
    // close_range with CLOSE_RANGE_CLOEXEC (Linux 5.11; before it the child marks descriptors
    // close-on-exec one by one, up to the limit this would raise to hundreds of thousands).
    // Both probes touch nothing: no process is made, and the range holds no descriptor.
    if (syscall(SYS_clone3, NULL, 0) != -1 || errno != EINVAL) return 0;
    if (syscall(SYS_close_range, ~0U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) return 0;
    return 1;
#else
    return 0;
#endif
}

int sundial_raise_open_files_limit(void) {
    if (!sundial_open_files_raise_applies()) return 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return errno;
    if (rl.rlim_cur >= rl.rlim_max) return 0;
    struct rlimit raised = {rl.rlim_max, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) return errno;
    original_open_files = rl.rlim_cur;
    open_files_raised = 1;
    return 0;
}

int sundial_original_open_files(struct rlimit *limit) {
    if (!open_files_raised || getrlimit(RLIMIT_NOFILE, limit) != 0) return 0;
    // The hard limit as it is now (an administrator may have lowered it since the start).
    if (original_open_files < limit->rlim_max) limit->rlim_cur = original_open_files;
    return 1;
}

/// What the child needs, prepared by the parent.
struct spawn_child_context {
    const sundial_spawn_request *req;
    int errfd;
    int procs_fd;
    long maxfd;
    /// The open-files limit the job gets, when the agent raised its own (`restore_open_files`).
    struct rlimit open_files;
    int restore_open_files;
};

/// The child, from its creation to execve. Never returns (exec, or `child_fail`'s `_exit`).
static int spawn_child(void *arg) {
    const struct spawn_child_context *c = arg;
    const sundial_spawn_request *req = c->req;
    int errfd = c->errfd;
    if (c->procs_fd >= 0) {
        if (write(c->procs_fd, "0", 1) != 1) child_fail(errfd, SUNDIAL_STAGE_CGROUP);
        close(c->procs_fd);
    }
    int nullfd = open("/dev/null", O_RDONLY);
    if (nullfd < 0) child_fail(errfd, SUNDIAL_STAGE_STDIO);
    if (nullfd != 0) {
        if (dup2(nullfd, 0) < 0) child_fail(errfd, SUNDIAL_STAGE_STDIO);
        close(nullfd);
    }
    if (dup2(req->stdout_fd, 1) < 0) child_fail(errfd, SUNDIAL_STAGE_STDIO);
    if (dup2(req->stderr_fd, 2) < 0) child_fail(errfd, SUNDIAL_STAGE_STDIO);
    // Drop the agent's descriptors now rather than at exec: a copy held by this child makes
    // another thread's exec of a file the agent has open for writing fail with ETXTBSY for
    // as long as the child lives before its exec (longer than posix_spawn's, with
    // copy-on-write faults). Linux 5.9+; otherwise they close at exec (below).
    if (errfd > 3) syscall(SYS_close_range, 3U, (unsigned)errfd - 1, 0U);
    syscall(SYS_close_range, (unsigned)errfd + 1, ~0U, 0U);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);  // EINVAL for internal ones: fine
    }
    if (setsid() < 0) child_fail(errfd, SUNDIAL_STAGE_SPAWN);
    // Raw system calls: the child has one thread whatever glibc believes (see above).
    if (req->gid >= 0) {
        if (syscall(SYS_setgroups, (size_t)req->ngroups, req->groups) != 0) child_fail(errfd, SUNDIAL_STAGE_CREDENTIALS);
        if (syscall(SYS_setresgid, (gid_t)req->gid, (gid_t)req->gid, (gid_t)req->gid) != 0) child_fail(errfd, SUNDIAL_STAGE_CREDENTIALS);
    }
    if (req->uid >= 0 && syscall(SYS_setresuid, (uid_t)req->uid, (uid_t)req->uid, (uid_t)req->uid) != 0)
        child_fail(errfd, SUNDIAL_STAGE_CREDENTIALS);
    // After dropping privileges, so the working directory is checked as the job's user.
    if (req->workdir != NULL && chdir(req->workdir) != 0) child_fail(errfd, SUNDIAL_STAGE_CHDIR);
    if (req->umask_value >= 0) umask((mode_t)req->umask_value);
    // The limit the agent was started with. A raw system call, as for the credentials.
    if (c->restore_open_files && syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &c->open_files, NULL) != 0)
        child_fail(errfd, SUNDIAL_STAGE_SPAWN);
    // Everything from 3 up closes at exec (the error pipe too, which is how the parent
    // learns that exec succeeded).
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (long fd = 3; fd < c->maxfd; fd++) fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(req->path, req->argv, req->envp);
    child_fail(errfd, SUNDIAL_STAGE_EXEC);
    return 127;
}

/// Children created by the CLONE_VM path so far (tests check that it is the one taken).
static long vfork_spawns = 0;

long sundial_spawn_vfork_count(void) { return __atomic_load_n(&vfork_spawns, __ATOMIC_RELAXED); }

static int spawn_fork(const sundial_spawn_request *req, pid_t *pid, int *stage) {
    int errpipe[2];
    *stage = SUNDIAL_STAGE_SPAWN;
    if (pipe2(errpipe, O_CLOEXEC) != 0) return errno;
    struct rlimit rl;
    struct spawn_child_context ctx = {req, errpipe[1], -1, 65536, {0, 0}, 0};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1048576)
        ctx.maxfd = (long)rl.rlim_cur;
    ctx.restore_open_files = sundial_original_open_files(&ctx.open_files);

    // Block every signal across the clone so the child cannot run an agent handler before it
    // has reset the dispositions (with CLONE_VM such a handler would run on the agent's memory).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t child = -1;
    int create_errno = 0;
    int use_clone3 = !__atomic_load_n(&clone3_disabled, __ATOMIC_RELAXED);
    int fallback = !use_clone3;
    if (use_clone3) {
        struct sundial_clone_args args;
        memset(&args, 0, sizeof args);
        args.exit_signal = SIGCHLD;
        if (req->cgroup_fd >= 0) {
            args.flags |= SUNDIAL_CLONE_INTO_CGROUP;
            args.cgroup = (uint64_t)req->cgroup_fd;
        }
#if defined(SUNDIAL_HAS_CLONE3_VFORK)
        _Alignas(16) char stack[SUNDIAL_CHILD_STACK];
        args.flags |= SUNDIAL_CLONE_VM | SUNDIAL_CLONE_VFORK;
        args.stack = (uint64_t)(uintptr_t)stack;
        args.stack_size = sizeof stack;
        long r = sundial_clone3_vfork(&args, sizeof args, spawn_child, &ctx);
        if (r >= 0) __atomic_add_fetch(&vfork_spawns, 1, __ATOMIC_RELAXED);
        if (r < 0) errno = (int)-r;
        child = r < 0 ? -1 : (pid_t)r;
#else
        child = (pid_t)syscall(SYS_clone3, &args, sizeof args);
        if (child == 0) spawn_child(&ctx);
#endif
        // EPERM: a seccomp filter that refuses clone3 outright (older container runtimes'
        // default profiles); without a cgroup, fork does the same job. With one, EPERM is the
        // cgroup refusing the child, reported as such.
        if (child < 0 && (errno == ENOSYS || errno == E2BIG || errno == EINVAL || (errno == EPERM && req->cgroup_fd < 0))) {
            fallback = 1;
        } else if (child < 0) {
            create_errno = errno;
            *stage = req->cgroup_fd >= 0 ? SUNDIAL_STAGE_CGROUP : SUNDIAL_STAGE_SPAWN;
        }
    }
    if (fallback) {
        if (req->cgroup_fd >= 0) {
            ctx.procs_fd = openat(req->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
            if (ctx.procs_fd >= 0) {
                child = fork();
            } else {
                create_errno = errno;
                *stage = SUNDIAL_STAGE_CGROUP;
            }
        } else {
            child = fork();
        }
        if (child == 0) spawn_child(&ctx);
    }
    int fork_errno = create_errno != 0 ? create_errno : errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(errpipe[1]);
    if (ctx.procs_fd >= 0) close(ctx.procs_fd);
    if (child < 0) {
        close(errpipe[0]);
        return fork_errno;
    }
    struct child_failure f;
    ssize_t n;
    do { n = read(errpipe[0], &f, sizeof f); } while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof f) {
        // The child never became the job: reap it here, by its pid only (no runner knows it,
        // and the orphan reaper reaps nothing while a spawn is in flight: ChildRegistry).
        int st;
        while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
        *stage = f.stage;
        return f.err != 0 ? f.err : EIO;
    }
    *pid = child;
    return 0;
}

int sundial_spawn(const sundial_spawn_request *req, pid_t *pid, int *stage) {
    // posix_spawn cannot give a job the agent's original open-files limit back.
    if (req->umask_value >= 0 || req->uid >= 0 || req->gid >= 0 || req->cgroup_fd >= 0 || open_files_raised)
        return spawn_fork(req, pid, stage);
    return spawn_posix(req, pid, stage);
}


int sundial_decode_status(int status, int *value) {
    if (WIFEXITED(status)) {
        *value = WEXITSTATUS(status);
        return 1;
    }
    if (WIFSIGNALED(status)) {
        *value = WTERMSIG(status);
        return 2;
    }
    *value = 0;
    return 0;
}

// MARK: - Spawn helpers

struct sundial_work_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;      ///< helpers sleep here, with no timeout
    pthread_cond_t done;      ///< the caller sleeps here until every item has returned
    int helpers;              ///< wanted
    int started;              ///< running (set once, by the first run)
    int attempted;
    int stop;                 ///< set by sundial_work_pool_destroy: helpers exit
    int exited;               ///< helpers that have exited
    char name[16];
    // The current run, under `lock`:
    uint32_t generation;
    sundial_work_fn fn;
    void *ctx;
    int count;
    int finished;
    /// (generation << 32) | next index. One word, so a helper that woke late for an older run
    /// can never claim an index of a newer one with the older run's `fn` and `ctx`.
    uint64_t claim;
};

static int claim_next(sundial_work_pool *p, uint32_t gen, int count) {
    uint64_t cur = __atomic_load_n(&p->claim, __ATOMIC_ACQUIRE);
    for (;;) {
        if ((uint32_t)(cur >> 32) != gen || (int)(uint32_t)cur >= count) return -1;
        if (__atomic_compare_exchange_n(&p->claim, &cur, cur + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return (int)(uint32_t)cur;
    }
}

static void *work_pool_helper(void *arg) {
    sundial_work_pool *p = arg;
    sundial_set_thread_name(p->name);
    uint32_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->generation == seen && !p->stop) pthread_cond_wait(&p->work, &p->lock);
        if (p->stop) {
            p->exited++;
            pthread_cond_broadcast(&p->done);
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        seen = p->generation;
        sundial_work_fn fn = p->fn;
        void *ctx = p->ctx;
        int count = p->count;
        pthread_mutex_unlock(&p->lock);
        int mine = 0;
        for (int i; (i = claim_next(p, seen, count)) >= 0; mine++) fn(ctx, i);
        pthread_mutex_lock(&p->lock);
        if (mine > 0) {
            // The run cannot have ended without these items, so `finished` is still this run's.
            p->finished += mine;
            if (p->finished == p->count) pthread_cond_signal(&p->done);
        }
    }
    return NULL;
}

sundial_work_pool *sundial_work_pool_create(int helpers, const char *name) {
    sundial_work_pool *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->helpers = helpers < 1 ? 1 : helpers;
    snprintf(p->name, sizeof p->name, "%s", name);
    return p;
}

void sundial_work_pool_destroy(sundial_work_pool *p) {
    if (p == NULL) return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    while (p->exited < p->started) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p);
}

int sundial_remove_sigchld_handler(int wake_fd) {
    if (sigchld_wake_fd != wake_fd) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    int rc = sigaction(SIGCHLD, &sa, NULL) == 0 ? 0 : errno;
    sigchld_wake_fd = -1;
    return rc;
}

/// Starts the helpers with every signal blocked: signals are the agent's threads' business, and
/// a helper is in the middle of posix_spawn/fork, where a handler must not run.
static void start_helpers(sundial_work_pool *p) {
    sigset_t all, old;
    sigfillset(&all);
    // Not the synchronous ones: a fault on a helper must still reach Swift's crash handler.
    sigdelset(&all, SIGSEGV); sigdelset(&all, SIGBUS); sigdelset(&all, SIGILL);
    sigdelset(&all, SIGFPE); sigdelset(&all, SIGTRAP); sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < p->helpers; i++) {
        pthread_t tid;
        if (pthread_create(&tid, NULL, work_pool_helper, p) != 0) break;
        pthread_detach(tid);
        p->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void sundial_work_pool_run(sundial_work_pool *p, int count, sundial_work_fn fn, void *ctx) {
    if (count <= 0) return;
    pthread_mutex_lock(&p->lock);
    if (++p->generation == 0) p->generation = 1;  // 0 is "no run yet" for a new helper
    uint32_t gen = p->generation;
    p->fn = fn;
    p->ctx = ctx;
    p->count = count;
    p->finished = 0;
    __atomic_store_n(&p->claim, (uint64_t)gen << 32, __ATOMIC_RELEASE);
    if (!p->attempted) {
        p->attempted = 1;
        start_helpers(p);
    }
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);

    int mine = 0;
    for (int i; (i = claim_next(p, gen, count)) >= 0; mine++) fn(ctx, i);

    pthread_mutex_lock(&p->lock);
    p->finished += mine;
    while (p->finished < count) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

int sundial_set_thread_name(const char *name) {
    char buf[16];
    snprintf(buf, sizeof buf, "%s", name);
    return pthread_setname_np(pthread_self(), buf);
}

int sundial_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

// MARK: - Descriptors

int sundial_output_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) return errno;
    int rc = sundial_set_nonblocking(fds[0], 1);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
    }
    return rc;
}

int sundial_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return errno;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags) == 0 ? 0 : errno;
}

int sundial_ensure_standard_fds(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n < 0) return errno;
        if (n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
    return 0;
}

int sundial_reserve_descriptor_table(int slots) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)slots > rl.rlim_cur) slots = (int)rl.rlim_cur;
    if (slots < 1) return -1;
    // The kernel sizes the table to hold the highest descriptor: make one there (the lowest
    // free number at or above it, so nothing open is touched) and close it; the table stays.
    int fd = fcntl(2, F_DUPFD_CLOEXEC, slots - 1);
    if (fd < 0) return -1;
    close(fd);
    return slots;
}

ssize_t sundial_write_line(int fd, const void *buf, size_t len, int prefix_newline) {
    if (!prefix_newline) return write(fd, buf, len);
    struct iovec iov[2] = {{(void *)"\n", 1}, {(void *)buf, len}};
    return writev(fd, iov, 2);
}

int sundial_grow_pipe(int fd, int bytes) {
    int size = fcntl(fd, F_GETPIPE_SZ);
    if (size >= 0) {
        if (bytes > size && fcntl(fd, F_SETPIPE_SZ, bytes) >= 0) size = fcntl(fd, F_GETPIPE_SZ);
        return size;
    }
    // A socket: systemd's StandardOutput=journal is a stream socket to journald, whose default
    // send buffer (net.core.wmem_default, ~208 KiB, of which about half is payload) holds some
    // 170 lines. SO_SNDBUFFORCE (root, CAP_NET_ADMIN) may pass net.core.wmem_max; SO_SNDBUF is
    // capped by it. The kernel doubles the value asked for its bookkeeping.
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -1;
    int have = 0;
    len = sizeof have;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &len) != 0) return -1;
    if (have < bytes * 2 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    }
    len = sizeof have;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &len) != 0) return -1;
    return have / 2;
}

int sundial_fd_is_stream(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    return (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) ? 1 : 0;
}

// MARK: - Event loop

int sundial_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int sundial_epoll_add_readable(int epfd, int fd, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

int sundial_epoll_remove(int epfd, int fd) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev) == 0 ? 0 : errno;
}

int sundial_epoll_watch(int epfd, int fd, uint64_t token, int readable, int writable) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
    ev.data.u64 = token;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
    if (errno != ENOENT) return errno;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

int sundial_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) tokens[i] = evs[i].data.u64;
    return n;
}

int sundial_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void sundial_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t unused = write(fd, &one, sizeof one);
    (void)unused;
}

void sundial_eventfd_drain(int fd) {
    uint64_t v;
    ssize_t unused = read(fd, &v, sizeof v);
    (void)unused;
}

static void on_sigchld(int sig) {
    (void)sig;
    int saved = errno;
    int fd = sigchld_wake_fd;
    if (fd >= 0) sundial_eventfd_signal(fd);
    errno = saved;
}

int sundial_install_sigchld_handler(int wake_fd) {
    sigchld_wake_fd = wake_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGCHLD, &sa, NULL) == 0 ? 0 : errno;
}

int sundial_sigchld_signalfd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

void sundial_signalfd_drain(int fd) {
    struct signalfd_siginfo info[8];
    while (read(fd, info, sizeof info) > 0) {}
}

int sundial_block_signals(const int *sigs, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, sigs[i]);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int sundial_signalfd(const int *sigs, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, sigs[i]);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int sundial_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n == (ssize_t)sizeof info) return (int)info.ssi_signo;
    if (n < 0 && errno == EAGAIN) return 0;
    return -1;
}

void sundial_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

int sundial_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : errno; }

int sundial_unset_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) == 0 ? 0 : errno; }

// MARK: - Clocks and measurements

int64_t sundial_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t sundial_monotonic_ms(void) { return sundial_monotonic_ns() / 1000000LL; }

long sundial_proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL) return -1;
    char line[256];
    size_t klen = strlen(key);
    long value = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            value = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}
