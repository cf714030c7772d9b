// Sundial's global executor for Swift concurrency: a small pool of pthreads that sleep on a
// condition variable, with no timeout, whenever there is nothing to run.
//
// Why not the default: on Linux, Swift concurrency's global executor is libdispatch's root
// queues, and once their thread pool exists, libdispatch's workqueue monitor
// (swift-corelibs-libdispatch, src/event/workqueue.c) wakes the process once a second forever,
// with no way to turn it off. An agent on a battery-powered or oversold box that should wake
// once an hour when idle (issue 5) cannot afford that. SwiftNIO can take over the global
// executor the same way (`NIOSingletons`), but pulling an event-loop library into the agent for
// that alone would cost more memory than this file.
//
// How: the Swift runtime exports hooks (`swift_task_enqueueGlobal_hook` and its delayed and
// deadline variants, declared in the runtime's ConcurrencyHooks.def) that replace the global
// enqueue for the whole process. (Swift 6.3's `Task.sleep` does not go through the delay hooks:
// it schedules on the default executor's libdispatch timers directly, so the agent naps with
// SundialRuntime's `Nap` instead. The delay hooks are kept for the runtime paths that use them.) The hooks receive the runtime's job pointer and we run it with
// `swift_job_run` on the generic executor, exactly as the default executor does. Main-actor
// jobs are not touched (the agent never uses the main actor; its main thread is parked).
//
// Threads are created lazily, up to `max_threads`. One idle thread at most waits with a timeout
// (the "timekeeper", until the earliest delayed job); the others wait without one.
#define _GNU_SOURCE
#include "sundial_executor.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SWIFTCC __attribute__((swiftcall))

typedef struct {
    const void *identity;
    uintptr_t implementation;
} sundial_serial_executor_ref;

// From the Swift runtime (libswift_Concurrency).
extern SWIFTCC void swift_job_run(void *job, sundial_serial_executor_ref executor);

typedef SWIFTCC void (*enqueue_original_t)(void *job);
typedef SWIFTCC void (*delay_original_t)(unsigned long long delay_ns, void *job);
typedef SWIFTCC void (*deadline_original_t)(long long sec, long long nsec, long long tsec,
                                            long long tnsec, int clock, void *job);
extern SWIFTCC void (*swift_task_enqueueGlobal_hook)(void *job, enqueue_original_t original);
extern SWIFTCC void (*swift_task_enqueueGlobalWithDelay_hook)(unsigned long long delay_ns, void *job,
                                                              delay_original_t original);
extern SWIFTCC void (*swift_task_enqueueGlobalWithDeadline_hook)(long long sec, long long nsec,
                                                                 long long tsec, long long tnsec,
                                                                 int clock, void *job,
                                                                 deadline_original_t original);

// The runtime's clock ids (swift_clock_id): continuous = CLOCK_BOOTTIME, suspending =
// CLOCK_MONOTONIC on Linux (stdlib/public/Concurrency/Clock.cpp); newer runtimes add wall = 3.
enum { SWIFT_CLOCK_CONTINUOUS = 1, SWIFT_CLOCK_SUSPENDING = 2, SWIFT_CLOCK_WALL = 3 };

typedef struct {
    uint64_t deadline_ns;  // CLOCK_MONOTONIC
    uint64_t seq;          // FIFO among equal deadlines
    void *job;
} delayed_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work;   // idle workers
    pthread_cond_t timer;  // the timekeeper
    int max_threads, threads, idle, timekeeper;
    // Ready jobs: a ring buffer that doubles when full (bounded by what the program enqueues).
    void **ring;
    size_t ring_cap, ring_head, ring_count;
    // Delayed jobs: a binary min-heap on (deadline, seq).
    delayed_t *heap;
    size_t heap_cap, heap_count;
    uint64_t seq;
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

static atomic_int installed;

static uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int ring_push(void *job) {
    if (pool.ring_count == pool.ring_cap) {
        size_t cap = pool.ring_cap ? pool.ring_cap * 2 : 256;
        void **bigger = malloc(cap * sizeof(void *));
        if (!bigger) return ENOMEM;
        for (size_t i = 0; i < pool.ring_count; i++)
            bigger[i] = pool.ring[(pool.ring_head + i) % pool.ring_cap];
        free(pool.ring);
        pool.ring = bigger;
        pool.ring_cap = cap;
        pool.ring_head = 0;
    }
    pool.ring[(pool.ring_head + pool.ring_count) % pool.ring_cap] = job;
    pool.ring_count++;
    return 0;
}

static void *ring_pop(void) {
    void *job = pool.ring[pool.ring_head];
    pool.ring_head = (pool.ring_head + 1) % pool.ring_cap;
    pool.ring_count--;
    return job;
}

static int before(const delayed_t *a, const delayed_t *b) {
    return a->deadline_ns < b->deadline_ns || (a->deadline_ns == b->deadline_ns && a->seq < b->seq);
}

static int heap_push(uint64_t deadline_ns, void *job) {
    if (pool.heap_count == pool.heap_cap) {
        size_t cap = pool.heap_cap ? pool.heap_cap * 2 : 64;
        delayed_t *bigger = realloc(pool.heap, cap * sizeof(delayed_t));
        if (!bigger) return ENOMEM;
        pool.heap = bigger;
        pool.heap_cap = cap;
    }
    size_t i = pool.heap_count++;
    pool.heap[i] = (delayed_t){deadline_ns, pool.seq++, job};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&pool.heap[i], &pool.heap[parent])) break;
        delayed_t t = pool.heap[i];
        pool.heap[i] = pool.heap[parent];
        pool.heap[parent] = t;
        i = parent;
    }
    return 0;
}

static void *heap_pop(void) {
    void *job = pool.heap[0].job;
    pool.heap[0] = pool.heap[--pool.heap_count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < pool.heap_count && before(&pool.heap[l], &pool.heap[m])) m = l;
        if (r < pool.heap_count && before(&pool.heap[r], &pool.heap[m])) m = r;
        if (m == i) break;
        delayed_t t = pool.heap[i];
        pool.heap[i] = pool.heap[m];
        pool.heap[m] = t;
        i = m;
    }
    return job;
}

static void *worker(void *arg);

/// Starts a worker; called with the lock held. Returns 0 or an errno value.
static int spawn_worker_locked(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    // The platform's default stack size (RLIMIT_STACK, 8 MiB on Debian), not a smaller one:
    // jobs are async function fragments whose frames mostly live on the task's heap, but a
    // synchronous call made from a job (a parser, a deep recursion in a library) runs on this
    // stack, and a 1 MiB stack once let a 3 KB job file overflow it (issue 13). Only touched
    // pages count towards memory.
    // Workers take no asynchronous signals, as libdispatch's workers do: the agent handles
    // signals on its own thread, and a stray SIGTERM must not land on a pool thread.
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV); sigdelset(&all, SIGBUS); sigdelset(&all, SIGILL);
    sigdelset(&all, SIGFPE); sigdelset(&all, SIGTRAP); sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, worker, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0) pool.threads++;
    return rc;
}

/// After new work arrived (lock held): wake someone to take it, or start a thread.
static int wake_for_ready_locked(void) {
    if (pool.idle > 0) {
        pthread_cond_signal(&pool.work);
        return 0;
    }
    if (pool.threads < pool.max_threads) {
        int rc = spawn_worker_locked();
        if (rc == 0) return 0;
        if (pool.threads == 0) return rc;  // nobody at all to run it
        // No new thread: fall through, so that a timekeeper asleep until a far deadline
        // takes the job rather than leave it waiting.
    }
    if (pool.timekeeper) pthread_cond_signal(&pool.timer);
    return 0;  // every thread is busy: one of them takes the job when it loops
}

static void *worker(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "sundial-exec");
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        if (pool.heap_count > 0) {
            uint64_t now = clock_ns(CLOCK_MONOTONIC);
            while (pool.heap_count > 0 && pool.heap[0].deadline_ns <= now) {
                if (ring_push(pool.heap[0].job) != 0) break;  // out of memory: retry next loop
                heap_pop();
            }
        }
        if (pool.ring_count > 0) {
            void *job = ring_pop();
            if (pool.ring_count > 0) wake_for_ready_locked();
            // If this was the timekeeper, hand the role to an idle worker while the job runs, so
            // that a long job does not hold up the delayed ones behind it.
            else if (pool.heap_count > 0 && !pool.timekeeper && pool.idle > 0) pthread_cond_signal(&pool.work);
            pthread_mutex_unlock(&pool.lock);
            swift_job_run(job, (sundial_serial_executor_ref){0, 0});
            pthread_mutex_lock(&pool.lock);
            continue;
        }
        if (pool.heap_count > 0 && !pool.timekeeper) {
            pool.timekeeper = 1;
            uint64_t d = pool.heap[0].deadline_ns;
            struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
            pthread_cond_timedwait(&pool.timer, &pool.lock, &ts);
            pool.timekeeper = 0;
        } else {
            pool.idle++;
            pthread_cond_wait(&pool.work, &pool.lock);
            pool.idle--;
        }
    }
    return NULL;
}

static SWIFTCC void enqueue_hook(void *job, enqueue_original_t original) {
    pthread_mutex_lock(&pool.lock);
    int rc = ring_push(job);
    if (rc == 0) rc = wake_for_ready_locked();
    pthread_mutex_unlock(&pool.lock);
    // No memory for the queue or no thread at all: let the runtime's own executor run it
    // rather than lose it.
    if (rc != 0) original(job);
}

/// Queues `job` for `deadline_ns`. Returns 0, or an errno value when it could not be queued
/// (no memory, or no thread at all): the caller hands it to the runtime's own executor then.
static int enqueue_at(uint64_t deadline_ns, void *job) {
    pthread_mutex_lock(&pool.lock);
    int rc = 0;
    if (pool.threads == 0) rc = spawn_worker_locked();  // someone must be there to wait
    if (rc == 0) rc = heap_push(deadline_ns, job);
    if (rc == 0 && pool.heap[0].job == job) {
        // A new earliest deadline: the timekeeper must re-arm, or an idle worker become one.
        if (pool.timekeeper) pthread_cond_signal(&pool.timer);
        else if (pool.idle > 0) pthread_cond_signal(&pool.work);
        else if (pool.threads < pool.max_threads) spawn_worker_locked();
        // else every thread is busy: the first to loop back becomes the timekeeper.
    }
    pthread_mutex_unlock(&pool.lock);
    return rc;
}

/// Nanoseconds, saturating instead of wrapping.
static uint64_t saturating_ns(long long sec, long long nsec) {
    if (sec < 0) return 0;
    uint64_t ns;
    if (__builtin_mul_overflow((uint64_t)sec, 1000000000ull, &ns)) return UINT64_MAX;
    uint64_t extra = nsec < 0 ? 0 : (uint64_t)nsec;
    return ns > UINT64_MAX - extra ? UINT64_MAX : ns + extra;
}

static SWIFTCC void delay_hook(unsigned long long delay_ns, void *job, delay_original_t original) {
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    uint64_t d = delay_ns > UINT64_MAX - now ? UINT64_MAX : now + delay_ns;
    if (enqueue_at(d, job) != 0) original(delay_ns, job);
}

static SWIFTCC void deadline_hook(long long sec, long long nsec, long long tsec, long long tnsec,
                                  int clock, void *job, deadline_original_t original) {
    (void)tsec; (void)tnsec;
    // Convert the deadline on the task's clock into CLOCK_MONOTONIC, which the condition
    // variable waits on (a later step of the wall clock, or a suspend, is not followed).
    clockid_t id = clock == SWIFT_CLOCK_CONTINUOUS ? CLOCK_BOOTTIME
                 : clock == SWIFT_CLOCK_WALL ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    uint64_t now_c = clock_ns(id);
    uint64_t target = saturating_ns(sec, nsec);
    uint64_t remaining = target > now_c ? target - now_c : 0;
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    if (enqueue_at(remaining > UINT64_MAX - now ? UINT64_MAX : now + remaining, job) != 0)
        original(sec, nsec, tsec, tnsec, clock, job);
}

int sundial_executor_install(int max_threads) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&installed, &expected, 1)) return EALREADY;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool.work, &attr);
    pthread_cond_init(&pool.timer, &attr);
    pthread_condattr_destroy(&attr);
    pool.max_threads = max_threads < 1 ? 1 : max_threads;
    swift_task_enqueueGlobal_hook = enqueue_hook;
    swift_task_enqueueGlobalWithDelay_hook = delay_hook;
    swift_task_enqueueGlobalWithDeadline_hook = deadline_hook;
    return 0;
}


