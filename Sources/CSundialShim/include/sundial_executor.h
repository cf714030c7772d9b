#ifndef SUNDIAL_EXECUTOR_H
#define SUNDIAL_EXECUTOR_H
#include <stdint.h>

/// Replaces Swift concurrency's global executor for this process with a small pool of
/// `max_threads` (at least 1) pthreads that block with no timeout when there is no work.
///
/// Must be called before the first task is created. Returns 0, or an errno value if it was
/// already installed. See executor.c for why Sundial does not use the default (Dispatch) one.
int sundial_executor_install(int max_threads);

/// Whether `sundial_executor_install` has run in this process.
int sundial_executor_installed(void);

/// Jobs run so far by the pool (for tests and the benchmark).
uint64_t sundial_executor_jobs_run(void);
#endif
