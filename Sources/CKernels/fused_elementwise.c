/* A chain of elementwise ops, fused: the fusion pass turns a tree of unary
 * and binary f32 ops over one output shape into a small program, which this
 * kernel interprets one tile at a time, so every intermediate lives in a
 * tile-sized buffer in cache instead of a full tensor in memory. Each
 * instruction runs the op's own vectorized kernel over the tile, so results
 * are those of the unfused ops. Operands are a fused input (whole, a single
 * value, or a trailing block repeated: a bias row) or an earlier result.
 * Tiles are split over the pool; a tile's arithmetic does not depend on the
 * thread. */
#include "ck_internal.h"
#include "ck_threads.h"
#include <string.h>

/* Elements per tile: every intermediate of a tile stays in L1 (a 20-op
 * optimizer program runs 2x faster at 128 than at 1024 on Zen 5). A multiple
 * of every vector width, so tiles split elements exactly as whole-tensor
 * kernels do. */
#define TILE 128

int64_t ck_fused_tile(void) { return TILE; }

typedef struct fused_job {
    const ck_fused_program *p;
    uint64_t counter;
    int64_t n;
    const float *const *inputs;
    const int64_t *counts;
    float *out;
    ck_isa isa;
} fused_job;

/* An input of `c` elements read for elements [start, start + len) of an
 * n-element result: whole, one value (stride 0), or a trailing block
 * repeated (this tile's part gathered into `spill`). */
static const float *input_operand(const float *x, int64_t c, int64_t n, int64_t start, int64_t len, float *spill, size_t *stride) {
    if (c == n) { *stride = 1; return x + start; }
    if (c == 1) { *stride = 0; return x; }
    int64_t k = start % c;
    for (int64_t i = 0; i < len; i++) { spill[i] = x[k]; if (++k == c) k = 0; }
    *stride = 1;
    return spill;
}

/* Operand `(kind, index)` for elements [start, start + len): a pointer and stride. */
static const float *operand(const fused_job *j, int kind, int index, int64_t start, int64_t len, float *temps, float *spill,
                            size_t *stride) {
    if (kind == 1) { *stride = 1; return temps + (size_t)index * TILE; }
    return input_operand(j->inputs[index], j->counts[index], j->n, start, len, spill, stride);
}

static void fused_tiles(void *ctx, int64_t begin, int64_t end, int thread) {
    const fused_job *j = ctx;
    const ck_fused_program *p = j->p;
    float *temps = ck_thread_scratch(thread, (size_t)(p->count + 3) * TILE * sizeof(float));
    if (!temps) return;
    float *spillA = temps + (size_t)p->count * TILE, *spillB = spillA + TILE, *spillC = spillB + TILE;
    for (int64_t t = begin; t < end; t++) {
        int64_t start = t * TILE, len = j->n - start < TILE ? j->n - start : TILE;
        for (int i = 0; i < p->count; i++) {
            const ck_fused_instr *in = &p->instrs[i];
            float *y = i == p->count - 1 ? j->out + start : temps + (size_t)i * TILE;
            if (in->binary == 3) {
                uint64_t seed = (uint64_t)(uint32_t)in->a_index | (uint64_t)(uint32_t)in->b_index << 32;
                /* c_index: the shard; its draw starts c_index results in */
                uint64_t first = (uint64_t)start + (uint64_t)(uint32_t)in->c_index * (uint64_t)j->n;
                ck_f32_random_at((ck_random_dist)in->op, j->isa, seed, j->counter, first, (size_t)len, in->alpha, 0, y);
                continue;
            }
            size_t sa, sb;
            const float *a = operand(j, in->a_kind, in->a_index, start, len, temps, spillA, &sa);
            if (in->binary == 2) {
                size_t sc;
                const float *b = operand(j, in->b_kind, in->b_index, start, len, temps, spillB, &sb);
                const float *c = operand(j, in->c_kind, in->c_index, start, len, temps, spillC, &sc);
                ck_x32_select_kernel(1, j->isa)((size_t)len, a, sa, (const uint32_t *)b, sb, (const uint32_t *)c, sc, (uint32_t *)y);
            } else if (in->binary) {
                const float *b = operand(j, in->b_kind, in->b_index, start, len, temps, spillB, &sb);
                ck_f32_binary_kernel((ck_binary_op)in->op, j->isa)((size_t)len, a, sa, b, sb, y);
            } else {
                if (sa == 0) { for (int64_t k = 0; k < len; k++) spillA[k] = a[0]; a = spillA; }
                ck_unary_params prm = {in->alpha, 0};
                ck_f32_unary_kernel((ck_unary_op)in->op, j->isa)((size_t)len, a, y, &prm);
            }
        }
    }
}

size_t ck_f32_fused_elementwise_scratch_bytes(const ck_fused_program *p) { return (size_t)(p->count + 3) * TILE * sizeof(float); }

void ck_f32_fused_elementwise(ck_isa isa, const ck_fused_program *p, uint64_t counter, int64_t n, const float *const *inputs,
                              const int64_t *counts, float *out) {
    if (n <= 0 || p->count <= 0) return;
    fused_job j = {p, counter, n, inputs, counts, out, isa == CK_ISA_REF ? CK_ISA_REF : CK_ISA_AVX2};
    int64_t tiles = (n + TILE - 1) / TILE;
    ck_parallel_for(tiles, n < 2 * CK_ELEMENTWISE_CHUNK, fused_tiles, &j);
}

/* ---- fused updates: many jobs, each ending in stores, in one call ---- */

typedef struct update_run {
    const ck_fused_update *u;
    ck_isa isa;
    int32_t max_count;
} update_run;

/* An operand of job `jb` over elements [start, start + len). */
static const float *update_operand(const update_run *r, const ck_update_job *jb, int kind, int index, int64_t start, int64_t len,
                                   float *temps, float *spill, size_t *stride) {
    const ck_fused_update *u = r->u;
    if (kind == 1) {
        if (u->uniform[jb->first + index]) { *stride = 0; return u->uniform_values + jb->first + index; }
        *stride = 1;
        return temps + (size_t)index * TILE;
    }
    return input_operand(u->inputs[index], u->counts[index], jb->n, start, len, spill, stride);
}

/* One instruction over `len` elements into y. */
static void update_apply(const update_run *r, const ck_update_job *jb, const ck_fused_instr *in, int64_t start, int64_t len,
                         float *temps, float *spillA, float *spillB, float *spillC, float *y) {
    size_t sa, sb;
    const float *a = update_operand(r, jb, in->a_kind, in->a_index, start, len, temps, spillA, &sa);
    if (in->binary == 2) {
        size_t sc;
        const float *b = update_operand(r, jb, in->b_kind, in->b_index, start, len, temps, spillB, &sb);
        const float *c = update_operand(r, jb, in->c_kind, in->c_index, start, len, temps, spillC, &sc);
        ck_x32_select_kernel(1, r->isa)((size_t)len, a, sa, (const uint32_t *)b, sb, (const uint32_t *)c, sc, (uint32_t *)y);
    } else if (in->binary) {
        const float *b = update_operand(r, jb, in->b_kind, in->b_index, start, len, temps, spillB, &sb);
        ck_f32_binary_kernel((ck_binary_op)in->op, r->isa)((size_t)len, a, sa, b, sb, y);
    } else {
        if (sa == 0 && len > 1) { for (int64_t k = 0; k < len; k++) spillA[k] = a[0]; a = spillA; }
        ck_unary_params prm = {in->alpha, 0};
        ck_f32_unary_kernel((ck_unary_op)in->op, r->isa)((size_t)len, a, y, &prm);
    }
}

static void update_tiles(void *ctx, int64_t begin, int64_t end, int thread) {
    const update_run *r = ctx;
    const ck_fused_update *u = r->u;
    float *temps = ck_thread_scratch(thread, (size_t)(r->max_count + 3) * TILE * sizeof(float));
    if (!temps) return;
    float *spillA = temps + (size_t)r->max_count * TILE, *spillB = spillA + TILE, *spillC = spillB + TILE;
    int32_t j = 0;
    for (int64_t t = begin; t < end; t++) {
        while (u->tile_start[j + 1] <= t) j++;
        const ck_update_job *jb = &u->job[j];
        int64_t start = (t - u->tile_start[j]) * TILE, len = jb->n - start < TILE ? jb->n - start : TILE;
        for (int32_t i = 0; i < jb->count; i++) {
            if (u->uniform[jb->first + i]) continue;
            update_apply(r, jb, &u->instrs[jb->first + i], start, len, temps, spillA, spillB, spillC, temps + (size_t)i * TILE);
        }
        for (int32_t s = 0; s < jb->store_count; s++) {
            const ck_update_store *st = &u->stores[jb->store_first + s];
            size_t stride;
            const float *v = update_operand(r, jb, st->kind, st->index, start, len, temps, spillA, &stride);
            float *dst = u->inputs[st->target] + start;
            if (stride == 0) { for (int64_t k = 0; k < len; k++) dst[k] = v[0]; }
            else if (v != dst) memmove(dst, v, (size_t)len * sizeof(float));
        }
    }
}

/* Sum of squares of one block, in a fixed order for its ISA. */
static double sum_squares__ref(const float *x, int64_t n) {
    float s = 0;
    for (int64_t k = 0; k < n; k++) s += x[k] * x[k];
    return s;
}

CK_AVX2 static double sum_squares__avx2(const float *x, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) { __m256 v = _mm256_loadu_ps(x + k); acc = _mm256_fmadd_ps(v, v, acc); }
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    float s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; k < n; k++) s += x[k] * x[k];
    return s;
}

static void reduce_tiles(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const update_run *r = ctx;
    const ck_fused_update *u = r->u;
    int32_t q = 0;
    for (int64_t t = begin; t < end; t++) {
        while (u->reduce_start[q + 1] <= t) q++;
        int32_t in = u->reduce_inputs[q];
        int64_t start = (t - u->reduce_start[q]) * TILE, len = u->counts[in] - start < TILE ? u->counts[in] - start : TILE;
        const float *x = u->inputs[in] + start;
        u->partials[t] = r->isa == CK_ISA_REF ? sum_squares__ref(x, len) : sum_squares__avx2(x, len);
    }
}

void ck_f32_fused_update(ck_isa isa, const ck_fused_update *u) {
    update_run r = {u, isa == CK_ISA_REF ? CK_ISA_REF : CK_ISA_AVX2, 0};
    /* 0: sums of squares, block partials on the pool, then added in order */
    if (u->reductions > 0) {
        int64_t elements = 0;
        u->reduce_start[0] = 0;
        for (int32_t q = 0; q < u->reductions; q++) {
            int64_t n = u->counts[u->reduce_inputs[q]];
            elements += n;
            u->reduce_start[q + 1] = u->reduce_start[q] + (n + TILE - 1) / TILE;
        }
        int64_t tiles = u->reduce_start[u->reductions];
        if (tiles > 0) ck_parallel_for(tiles, elements < 2 * CK_ELEMENTWISE_CHUNK, reduce_tiles, &r);
        for (int32_t q = 0; q < u->reductions; q++) {
            double s = 0;
            for (int64_t t = u->reduce_start[q]; t < u->reduce_start[q + 1]; t++) s += u->partials[t];
            u->inputs[u->reduce_first + q][0] = (float)s;
        }
    }
    /* 1: values computed once per job (learning-rate factors, the step count), before any store */
    for (int32_t j = 0; j < u->jobs; j++) {
        const ck_update_job *jb = &u->job[j];
        if (jb->count > r.max_count) r.max_count = jb->count;
        for (int32_t i = 0; i < jb->count; i++) {
            const ck_fused_instr *in = &u->instrs[jb->first + i];
            int ua = in->a_kind == 0 ? u->counts[in->a_index] == 1 : u->uniform[jb->first + in->a_index];
            int ub = !in->binary || (in->b_kind == 0 ? u->counts[in->b_index] == 1 : u->uniform[jb->first + in->b_index]);
            if (in->binary == 2) ub = ub && (in->c_kind == 0 ? u->counts[in->c_index] == 1 : u->uniform[jb->first + in->c_index]);
            u->uniform[jb->first + i] = (uint8_t)(ua && ub);
            if (ua && ub) update_apply(&r, jb, in, 0, 1, NULL, NULL, NULL, NULL, u->uniform_values + jb->first + i);
        }
    }
    /* 2: every job's tiles of more than one element, on the pool */
    u->tile_start[0] = 0;
    for (int32_t j = 0; j < u->jobs; j++) {
        int64_t n = u->job[j].n;
        u->tile_start[j + 1] = u->tile_start[j] + (n > 1 ? (n + TILE - 1) / TILE : 0);
    }
    int64_t tiles = u->tile_start[u->jobs], total = 0;
    for (int32_t j = 0; j < u->jobs; j++) total += u->job[j].n;
    if (tiles > 0) ck_parallel_for(tiles, total < 2 * CK_ELEMENTWISE_CHUNK, update_tiles, &r);
    /* 3: stores into single values (the step counter) last */
    for (int32_t j = 0; j < u->jobs; j++) {
        const ck_update_job *jb = &u->job[j];
        if (jb->n != 1) continue;
        for (int32_t s = 0; s < jb->store_count; s++) {
            const ck_update_store *st = &u->stores[jb->store_first + s];
            float v = st->kind == 0 ? u->inputs[st->index][0] : u->uniform_values[jb->first + st->index];
            u->inputs[st->target][0] = v;
        }
    }
}
