// See memory_shim.h. Why: the agent's resident set after loading a configuration is mostly
// code pages of the (static) binary that only loading used: the YAML parser, schema validator,
// SQLite migrations, argument parsing. The kernel maps file pages around each fault in 64 KiB
// blocks (fault-around), so a sparse walk through 20 MB of code leaves ~15 MB mapped for the
// life of the process. An idle scheduler needs almost none of it (docs/benchmarks.md, "How
// issue 5's figures were reached", has the page-by-page breakdown that led here).
//
// Which ranges: the executable, non-writable PT_LOAD segments of the objects the dynamic loader
// has loaded, found with dl_iterate_phdr and released inside its callback, where the loader's
// lock keeps them from being unmapped or replaced meanwhile. (Ranges read from /proc/self/maps
// could belong to something else by the time madvise runs: a library being mapped by dlopen
// shows its whole span with the first segment's permissions for a moment.) A segment any of
// whose mappings holds private pages (text relocations, a debugger's breakpoint, a uprobe;
// counted by /proc/self/smaps as Anonymous or Swap) is left alone.
#define _GNU_SOURCE
#include "memory_shim.h"
#include <errno.h>
#include <link.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define MAX_DIRTY 256

/// Mappings with private pages, from /proc/self/smaps: [start, end) pairs.
typedef struct {
    unsigned long start[MAX_DIRTY], end[MAX_DIRTY];
    int count;
    int overflow;  // more than MAX_DIRTY: release nothing (be safe)
} dirty_set;

static void add_dirty(dirty_set *d, unsigned long start, unsigned long end) {
    if (d->count == MAX_DIRTY) { d->overflow = 1; return; }
    d->start[d->count] = start;
    d->end[d->count] = end;
    d->count++;
}

static int read_dirty(dirty_set *d) {
    d->count = 0;
    d->overflow = 0;
    FILE *smaps = fopen("/proc/self/smaps", "re");
    if (!smaps) return -1;
    char line[4096];
    unsigned long start = 0, end = 0;
    int dirty = 0, have = 0;
    while (fgets(line, sizeof line, smaps)) {
        unsigned long s, e, kb;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            if (have && dirty) add_dirty(d, start, end);
            start = s; end = e; dirty = 0; have = 1;
            continue;
        }
        // Anonymous counts the copied (COW) pages of a private file mapping, Swap those swapped
        // out. Not Private_Dirty: it also counts page-cache pages the file's writer has not
        // written back yet (a binary just installed), which MADV_DONTNEED loses nothing of.
        if ((sscanf(line, "Anonymous: %lu kB", &kb) == 1 || sscanf(line, "Swap: %lu kB", &kb) == 1) && kb > 0)
            dirty = 1;
    }
    if (have && dirty) add_dirty(d, start, end);
    fclose(smaps);
    return 0;
}

typedef struct {
    const dirty_set *dirty;
    int populate;      // 0: release, 1: populate
    int64_t bytes;
} walk_ctx;

static int overlaps_dirty(const dirty_set *d, unsigned long s, unsigned long e) {
    if (d->overflow) return 1;
    for (int i = 0; i < d->count; i++)
        if (s < d->end[i] && d->start[i] < e) return 1;
    return 0;
}

static int each_object(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    walk_ctx *ctx = arg;
    // The vDSO is the kernel's, not a file's: never touched.
    if (info->dlpi_addr == (ElfW(Addr))getauxval(AT_SYSINFO_EHDR)) return 0;
    unsigned long page = (unsigned long)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || (ph->p_flags & PF_W)) continue;
        unsigned long s = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        unsigned long e = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        if (e <= s) continue;
        if (!ctx->populate) {
            if (ctx->dirty && overlaps_dirty(ctx->dirty, s, e)) continue;
            if (madvise((void *)s, e - s, MADV_DONTNEED) == 0) ctx->bytes += (int64_t)(e - s);
        } else {
            if (madvise((void *)s, e - s, MADV_POPULATE_READ) != 0) {
                // Only a kernel without MADV_POPULATE_READ (before 5.14) gets the touch
                // fallback (fault-around maps 64 KiB per fault); any other error means the
                // range is not plain readable memory, so leave it.
                if (errno != EINVAL) continue;
                for (unsigned long a = s; a < e; a += 65536) (void)*(volatile const char *)a;
            }
            ctx->bytes += (int64_t)(e - s);
        }
    }
    return 0;
}

int64_t sundial_release_idle_memory(void) {
    malloc_trim(0);
    dirty_set dirty;
    if (read_dirty(&dirty) != 0) return -1;
    walk_ctx ctx = {&dirty, 0, 0};
    dl_iterate_phdr(each_object, &ctx);
    return ctx.bytes;
}

int64_t sundial_prefault_code(void) {
    walk_ctx ctx = {NULL, 1, 0};
    dl_iterate_phdr(each_object, &ctx);
    return ctx.bytes;
}
