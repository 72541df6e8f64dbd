/* Collectives: the allreduce a data-parallel step averages its gradients
 * with. The processes belong to the runtime (MPI, loaded at run time), so
 * the kernel copies its input and hands the result to the hook the runtime
 * registered; with none (a single process) the mean is the input itself.
 * The hook is process-wide: one job, one group of processes. */
#include "ck_internal.h"
#include <stdatomic.h>
#include <string.h>

typedef struct allreduce_hook_slot { ck_allreduce_hook hook; void *context; } allreduce_hook_slot;
static _Atomic(allreduce_hook_slot *) current_hook;
static allreduce_hook_slot slots[2];  /* set alternately, so a reader never sees a half-written pair */
static atomic_int next_slot;

void ck_set_allreduce_hook(ck_allreduce_hook hook, void *context) {
    if (!hook) { atomic_store(&current_hook, NULL); return; }
    allreduce_hook_slot *s = &slots[atomic_fetch_add(&next_slot, 1) & 1];
    s->hook = hook;
    s->context = context;
    atomic_store(&current_hook, s);
}

static int64_t allreduce_mean(size_t n, const float *x, float *y) {
    if (x != y && n) memmove(y, x, n * sizeof(float));
    allreduce_hook_slot *s = atomic_load(&current_hook);
    return s && n ? s->hook(s->context, y, (int64_t)n) : 0;
}

/* The reference and the vector kernel are one function: a copy and a call. */
static int64_t ck_f32_allreduce_mean__ref(size_t n, const float *x, float *y) { return allreduce_mean(n, x, y); }
static int64_t ck_f32_allreduce_mean__avx2(size_t n, const float *x, float *y) { return allreduce_mean(n, x, y); }

ck_f32_allreduce_mean_fn ck_f32_allreduce_mean_kernel(ck_isa isa) {
    return CK_PICK2(isa, ck_f32_allreduce_mean__ref, ck_f32_allreduce_mean__avx2);
}
