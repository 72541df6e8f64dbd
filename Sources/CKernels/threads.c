/* A small persistent thread pool. ck_parallel_for splits [0, tasks) into
 * one contiguous range per thread (a static partition); kernels make every
 * task's result independent of which thread runs it, so results are bitwise
 * the same on 1 or N threads. The calling thread works as thread 0.
 *
 * No kernel holds a lock: the pool runs one job at a time, and a caller that
 * finds it taken (a second plan running on another thread) runs its tasks
 * itself, in order, which gives the same bits. Scratch is owned by threads:
 * slot 0 and the EXTRA slots belong to the calling OS thread (thread-local),
 * slots 1.. to the pool's workers, touched only inside the job that owns the
 * pool. */
#define _GNU_SOURCE
#include "ck_threads.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CK_MAX_THREADS 64

typedef struct {
    void *ptr;
    size_t size;
} scratch_t;

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    pthread_cond_t start;
    int workers;            /* worker threads created (threads 1..workers) */
    atomic_int active;      /* threads used by parallel_for, including the caller */
    atomic_ulong generation; /* bumped (release) after a job's fields are set */
    int sleepers;            /* workers blocked on `start` (under mu) */
    ck_task_fn fn;
    void *ctx;
    int64_t tasks;
    int job_threads;
    atomic_int remaining;
    scratch_t scratch[CK_MAX_THREADS]; /* workers' slots (1..); 0 is unused: callers own theirs */
    atomic_flag busy;                  /* set while a caller's job owns the pool */
} pool = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 1, 0, 0, NULL, NULL, 0, 1, 0, {{0}},
          ATOMIC_FLAG_INIT};

/* A calling thread's own slots: thread 0's, CK_SCRATCH_EXTRA's and
 * CK_SCRATCH_EXTRA2's, freed when the thread exits. */
typedef struct { scratch_t slot[3]; } caller_scratch;
static _Thread_local caller_scratch *mine = NULL;
static pthread_key_t caller_key;
static pthread_once_t caller_key_once = PTHREAD_ONCE_INIT;

static void free_caller_scratch(void *p) {
    caller_scratch *c = p;
    for (int i = 0; i < 3; i++) free(c->slot[i].ptr);
    free(c);
}
static void make_caller_key(void) { pthread_key_create(&caller_key, free_caller_scratch); }

/* Set while a thread runs a task, so a kernel called from inside a task
 * (a GEMM epilogue's elementwise kernel, say) runs its loop inline on that
 * thread instead of waiting for the pool. The inline call gets the same
 * thread index, hence the same scratch, as the task around it: only kernels
 * that take no per-thread scratch (elementwise ones) may be called there. */
static _Thread_local int in_task = 0, task_thread = 0;

static void run_chunk(int t, int threads) {
    int64_t lo = pool.tasks * t / threads, hi = pool.tasks * (t + 1) / threads;
    if (lo < hi) {
        in_task = 1;
        task_thread = t;
        pool.fn(pool.ctx, lo, hi, t);
        in_task = 0;
    }
}

/* A worker spins briefly for the next job before sleeping: a training step
 * is a long run of short kernels, and waking a sleeping thread costs more
 * than many of them take. */
#define CK_SPIN_ITERATIONS 20000

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned long seen = 0;
    for (;;) {
        for (int i = 0; i < CK_SPIN_ITERATIONS; i++) {
            if (atomic_load_explicit(&pool.generation, memory_order_acquire) != seen) break;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        /* The job's fields and its generation are read together under mu. */
        pthread_mutex_lock(&pool.mu);
        if (atomic_load_explicit(&pool.generation, memory_order_relaxed) == seen) {
            pool.sleepers++;
            while (atomic_load_explicit(&pool.generation, memory_order_relaxed) == seen) pthread_cond_wait(&pool.start, &pool.mu);
            pool.sleepers--;
        }
        seen = atomic_load_explicit(&pool.generation, memory_order_relaxed);
        int threads = pool.job_threads;
        pthread_mutex_unlock(&pool.mu);
        if (id < threads) {
            run_chunk(id, threads);
            atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_acq_rel);
        }
    }
    return NULL;
}

static int default_threads(void) {
    const char *env = getenv("KERAS_NUM_THREADS");
    if (env) {
        int n = atoi(env);
        if (n >= 1) return n > CK_MAX_THREADS ? CK_MAX_THREADS : n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > CK_MAX_THREADS ? CK_MAX_THREADS : (int)n;
}

static void ensure_workers(int threads) {
    while (pool.workers < threads - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &attr, worker, (void *)(intptr_t)(pool.workers + 1)) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        pool.workers++;
    }
}

static void init_once(void) {
    atomic_store(&pool.active, default_threads());
}

int ck_threads_get(void) {
    pthread_once(&pool.once, init_once);
    return atomic_load(&pool.active);
}

/* A job already running keeps the count it started with. */
int ck_threads_set(int n) {
    pthread_once(&pool.once, init_once);
    if (n < 1 || n > CK_MAX_THREADS) return -1;
    return atomic_exchange(&pool.active, n);
}

int ck_threads_max(void) { return CK_MAX_THREADS; }

void ck_parallel_for(int64_t tasks, int serial, ck_task_fn fn, void *ctx) {
    if (tasks <= 0) return;
    if (in_task) { fn(ctx, 0, tasks, task_thread); return; }
    int threads = ck_threads_get();
    if (serial || threads <= 1 || tasks == 1) { fn(ctx, 0, tasks, 0); return; }
    if (threads > tasks) threads = (int)tasks;
    if (atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) {
        /* Another caller's job has the pool: run every task here, in order. */
        in_task = 1;
        task_thread = 0;
        fn(ctx, 0, tasks, 0);
        in_task = 0;
        return;
    }
    ensure_workers(threads);
    if (pool.workers < threads - 1) threads = pool.workers + 1;
    pthread_mutex_lock(&pool.mu);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.tasks = tasks;
    pool.job_threads = threads;
    atomic_store(&pool.remaining, threads - 1);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    if (pool.sleepers > 0) pthread_cond_broadcast(&pool.start);
    pthread_mutex_unlock(&pool.mu);
    run_chunk(0, threads);
    int spins = 0;
    while (atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0) {
        if (++spins > 1000) sched_yield();
    }
    atomic_flag_clear_explicit(&pool.busy, memory_order_release);
}

void *ck_thread_scratch(int thread, size_t bytes) {
    scratch_t *s;
    if (thread >= 1 && thread < CK_MAX_THREADS) s = &pool.scratch[thread];
    else {
        if (!mine) {
            pthread_once(&caller_key_once, make_caller_key);
            mine = calloc(1, sizeof *mine);
            if (!mine) return NULL;
            pthread_setspecific(caller_key, mine);
        }
        s = &mine->slot[thread == 0 ? 0 : thread == CK_SCRATCH_EXTRA ? 1 : 2];
    }
    if (s->size < bytes) {
        free(s->ptr);
        size_t size = (bytes + 63) / 64 * 64;
        s->ptr = aligned_alloc(64, size);
        s->size = s->ptr ? size : 0;
    }
    return s->ptr;
}


