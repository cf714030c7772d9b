#ifndef SUNDIAL_EXECUTOR_H
#define SUNDIAL_EXECUTOR_H
#include <stdint.h>

/// Replaces Swift concurrency's global executor for this process with a small pool of
/// `max_threads` (at least 1) pthreads that block with no timeout when there is no work.
///
/// Must be called before the first task is created. Returns 0, or an errno value if it was
/// already installed. See executor.c for why Sundial does not use the default (Dispatch) one.
int sundial_executor_install(int max_threads);

#endif
