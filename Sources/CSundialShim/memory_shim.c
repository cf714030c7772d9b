// See memory_shim.h. Why: the agent's resident set after loading a configuration is mostly
// code pages of the (static) binary that only loading used: the YAML parser, schema validator,
// SQLite migrations, argument parsing. The kernel maps file pages around each fault in 64 KiB
// blocks (fault-around), so a sparse walk through 20 MB of code leaves ~15 MB mapped for the
// life of the process. An idle scheduler needs almost none of it (docs/benchmarks.md, "Idle
// RSS", has the page-by-page breakdown that led here).
#define _GNU_SOURCE
#include "memory_shim.h"
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static int64_t release_range(unsigned long start, unsigned long end) {
    return madvise((void *)start, end - start, MADV_DONTNEED) == 0 ? (int64_t)(end - start) : 0;
}

int64_t sundial_release_idle_memory(void) {
    malloc_trim(0);
    // smaps rather than maps: it says whether a mapping holds private (copied) pages, which
    // MADV_DONTNEED would throw away. Code never should, but a library with text relocations
    // would; such a mapping is skipped.
    FILE *smaps = fopen("/proc/self/smaps", "re");
    if (!smaps) return -1;
    char line[4096];
    int64_t released = 0;
    unsigned long start = 0, end = 0;
    int candidate = 0;
    while (fgets(line, sizeof line, smaps)) {
        unsigned long s, e;
        char perms[8];
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &s, &e, perms, &path_at) >= 3 && strchr(line, '-') < strchr(line, ' ')) {
            // A new mapping. Only read-only executable file mappings: never written, so
            // dropping their page-table entries loses nothing (the next access maps the same
            // page-cache page again). Not anonymous memory, not [vdso], not data or RELRO.
            start = s;
            end = e;
            candidate = strcmp(perms, "r-xp") == 0 && path_at > 0 && line[path_at] == '/';
            continue;
        }
        unsigned long kb;
        if (candidate && sscanf(line, "Anonymous: %lu kB", &kb) == 1) {
            if (kb == 0) released += release_range(start, end);
            candidate = 0;
        }
    }
    fclose(smaps);
    return released;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

int64_t sundial_prefault_code(void) {
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps) return -1;
    char line[4096];
    int64_t populated = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long start, end;
        char perms[8];
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &path_at) < 3) continue;
        if (strcmp(perms, "r-xp") != 0 || path_at == 0 || line[path_at] != '/') continue;
        if (madvise((void *)start, end - start, MADV_POPULATE_READ) != 0) {
            // Older kernel: touch it instead (fault-around maps 64 KiB per fault).
            for (unsigned long a = start; a < end; a += 65536) (void)*(volatile const char *)a;
        }
        populated += (int64_t)(end - start);
    }
    fclose(maps);
    return populated;
}
