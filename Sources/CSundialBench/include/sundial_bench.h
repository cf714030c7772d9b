// CSundialBench: the C baselines `sundial-bench` compares Sundial with. Kept out of
// CSundialShim so that no benchmark code is linked into the shipped binary.
#ifndef SUNDIAL_BENCH_H
#define SUNDIAL_BENCH_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif


/// Runs `path` `n` times serially with plain fork+execve+waitpid (`use_posix_spawn` = 0) or
/// posix_spawn+waitpid (1): the physical limit the runner is compared with. Waits by pid, so it
/// may run beside a `ProcessRunner` (which reaps only its own children). Returns 0 or an errno value.
int sundial_bench_spawn_loop(const char *path, int n, int use_posix_spawn);

/// Starts `path` `n` times as fast as possible, without waiting in between (fork+execve, or
/// posix_spawn), stores in `*elapsed_ns` the time from the first call until the last pid was
/// known, then reaps them all: the best a scheduler can do for `n` jobs due at once (as
/// bench/limits.c `burst`). Reaps with wait(2), any child: must not run while a runner of this
/// process has children (it would take their statuses). Returns 0 or an errno value.
int sundial_bench_spawn_burst(const char *path, int n, int use_posix_spawn, int64_t *elapsed_ns);

#ifdef __cplusplus
}
#endif

#endif
