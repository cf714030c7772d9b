#ifndef SUNDIAL_MEMORY_SHIM_H
#define SUNDIAL_MEMORY_SHIM_H
#include <stdint.h>

/// Gives back memory the agent touched while starting or reloading and will not need while it
/// waits: free heap pages (`malloc_trim`) and the page-table mappings of executable code read from
/// files (`madvise(MADV_DONTNEED)` on every `r-xp` file mapping). The code stays in the page
/// cache; a later call into it costs a minor fault. Writable and relocated (RELRO) mappings are
/// never touched. Returns the bytes of code mappings released, or -1 with errno set.
int64_t sundial_release_idle_memory(void);
#endif
