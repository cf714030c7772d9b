#ifndef SUNDIAL_MEMORY_SHIM_H
#define SUNDIAL_MEMORY_SHIM_H
#include <stdint.h>

/// Gives back memory the agent touched while starting or reloading and will not need while it
/// waits: free heap pages (`malloc_trim`) and the page-table entries of loaded objects'
/// executable, non-writable segments (`madvise(MADV_DONTNEED)`). The code stays in the page
/// cache; a later call into it costs a minor fault. Data, RELRO and any segment holding private
/// pages are never touched. Returns the bytes of code released, or -1 with errno set.
int64_t sundial_release_idle_memory(void);

/// Maps again, ahead of use, the code pages `sundial_release_idle_memory` released: the same
/// segments are populated from the page cache (`MADV_POPULATE_READ`, Linux 5.14; on older
/// kernels one byte per 64 KiB is read, which the kernel's fault-around turns into the same).
/// The agent calls it shortly before a job is due after a long sleep, so that the launch does
/// not pay hundreds of page faults. Returns the bytes populated, or -1 with errno set.
int64_t sundial_prefault_code(void);
#endif
