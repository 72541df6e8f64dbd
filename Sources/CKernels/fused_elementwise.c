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

#define TILE 1024

typedef struct fused_job {
    const ck_fused_program *p;
    int64_t n;
    const float *const *inputs;
    const int64_t *counts;
    float *out;
    ck_isa isa;
} fused_job;

/* Operand `(kind, index)` for elements [start, start + len): a pointer and stride. */
static const float *operand(const fused_job *j, int kind, int index, int64_t start, int64_t len, float *temps, float *spill,
                            size_t *stride) {
    if (kind == 1) { *stride = 1; return temps + (size_t)index * TILE; }
    const float *x = j->inputs[index];
    int64_t c = j->counts[index];
    if (c == j->n) { *stride = 1; return x + start; }
    if (c == 1) { *stride = 0; return x; }
    /* A trailing block repeated over the output: gather this tile's part. */
    int64_t k = start % c;
    for (int64_t i = 0; i < len; i++) { spill[i] = x[k]; if (++k == c) k = 0; }
    *stride = 1;
    return spill;
}

static void fused_tiles(void *ctx, int64_t begin, int64_t end, int thread) {
    const fused_job *j = ctx;
    const ck_fused_program *p = j->p;
    float *temps = ck_thread_scratch(thread, (size_t)(p->count + 2) * TILE * sizeof(float));
    if (!temps) return;
    float *spillA = temps + (size_t)p->count * TILE, *spillB = spillA + TILE;
    for (int64_t t = begin; t < end; t++) {
        int64_t start = t * TILE, len = j->n - start < TILE ? j->n - start : TILE;
        for (int i = 0; i < p->count; i++) {
            const ck_fused_instr *in = &p->instrs[i];
            float *y = i == p->count - 1 ? j->out + start : temps + (size_t)i * TILE;
            size_t sa, sb;
            const float *a = operand(j, in->a_kind, in->a_index, start, len, temps, spillA, &sa);
            if (in->binary) {
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

size_t ck_f32_fused_elementwise_scratch_bytes(const ck_fused_program *p) { return (size_t)(p->count + 2) * TILE * sizeof(float); }

void ck_f32_fused_elementwise(ck_isa isa, const ck_fused_program *p, int64_t n, const float *const *inputs, const int64_t *counts,
                              float *out) {
    if (n <= 0 || p->count <= 0) return;
    fused_job j = {p, n, inputs, counts, out, isa == CK_ISA_REF ? CK_ISA_REF : CK_ISA_AVX2};
    int64_t tiles = (n + TILE - 1) / TILE;
    ck_parallel_for(tiles, n < 2 * CK_ELEMENTWISE_CHUNK, fused_tiles, &j);
}
