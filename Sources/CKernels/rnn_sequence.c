/* Whole-sequence recurrent layers (SimpleRNN, LSTM, GRU both ways): the
 * forward pass and its backward through time, each one call. The input
 * projection of every step arrives precomputed (one GEMM in the graph); per
 * step there is one GEMM on the state, then one pass of the cell's pointwise
 * body over the batch rows, which adds the step's input.
 * The backward pass recomputes every step's pre-activations with one large
 * GEMM, then walks the steps in reverse: the cell's backward body, then one
 * GEMM carrying dh to the previous step. A masked row (mask == 0) carries its
 * states (and their cotangents) through the step unchanged.
 *
 * The pointwise bodies live in rnn_cells.h, compiled twice: scalar (the
 * `__ref` twin), AVX2 and AVX-512. An ISA of CK_ISA_REF runs the scalar bodies
 * and the reference GEMM; the others run their widest bodies (narrower ones,
 * then scalar, for the last lanes) and that ISA's GEMM. The batch rows are
 * split over the thread pool in fixed groups (RNN_ROWS), each walking every
 * step; each row is computed the same way on any thread, so results do not
 * depend on the thread count. */
#include "ck_internal.h"

typedef struct rnn_row {
    int64_t units;
    const float *z;        /* pre-activations [gates*units] (recurrent part only for GRU reset_after) */
    const float *x;        /* GRU reset_after: the input projection */
    const float *hp, *cp;  /* states before the step */
    float *h, *c;          /* forward: states after the step */
    float *rh;             /* GRU reset_before: r * h_prev */
    const float *hs, *cs;  /* backward: the states the forward step produced */
    float *dh, *dc;        /* backward: in, the states' cotangents; out, the part carried past the GEMM */
    float *dz, *drec;      /* backward: pre-activation cotangents, input side and (GRU reset_after) recurrent side */
    const float *t;        /* backward, GRU reset_before: the cotangent of rh */
} rnn_row;

typedef int64_t (*rnn_body)(const rnn_row *a, int64_t j);

/* ---- the scalar twin ---- */
#define ATTR
#define V float
#define LANES 1
#define FN(name) name##__ref
#define LD(p) (*(p))
#define ST(p, v) (*(p) = (v))
#define SET1(x) (x)
#define ADD(a, b) ((a) + (b))
#define SUB(a, b) ((a) - (b))
#define MUL(a, b) ((a) * (b))
#define SIG(x) (1.0f / (1.0f + expf(-(x))))
#define TANH(x) tanhf(x)
#include "rnn_cells.h"

/* ---- AVX2 ---- */
#define ATTR CK_AVX2
#define V __m256
#define LANES 8
#define FN(name) name##__avx2
#define LD(p) _mm256_loadu_ps(p)
#define ST(p, v) _mm256_storeu_ps((p), (v))
#define SET1(x) _mm256_set1_ps(x)
#define ADD(a, b) _mm256_add_ps((a), (b))
#define SUB(a, b) _mm256_sub_ps((a), (b))
#define MUL(a, b) _mm256_mul_ps((a), (b))
#define SIG(x) ck256_sigmoid(x)
#define TANH(x) ck256_tanh(x)
#include "rnn_cells.h"

/* ---- AVX-512 ---- */
#define ATTR CK_AVX512
#define V __m512
#define LANES 16
#define FN(name) name##__avx512
#define LD(p) _mm512_loadu_ps(p)
#define ST(p, v) _mm512_storeu_ps((p), (v))
#define SET1(x) _mm512_set1_ps(x)
#define ADD(a, b) _mm512_add_ps((a), (b))
#define SUB(a, b) _mm512_sub_ps((a), (b))
#define MUL(a, b) _mm512_mul_ps((a), (b))
#define SIG(x) ck512_sigmoid(x)
#define TANH(x) ck512_tanh(x)
#include "rnn_cells.h"

/* One body over a row: sixteen lanes at a time (AVX-512), then eight, the rest one at a time. */
typedef struct { rnn_body ref, avx2, avx512; } rnn_bodies;
#define BODIES(name) ((rnn_bodies){name##_row__ref, name##_row__avx2, name##_row__avx512})

static void run_row(rnn_bodies b, ck_isa isa, const rnn_row *a) {
    int64_t j = 0;
    if (isa == CK_ISA_AVX512) j = b.avx512(a, j);
    if (isa != CK_ISA_REF) j = b.avx2(a, j);
    b.ref(a, j);
}

int64_t ck_rnn_gates(int32_t cell) { return cell == CK_RNN_LSTM ? 4 : cell == CK_RNN_SIMPLE ? 1 : 3; }
int64_t ck_rnn_state_width(int32_t cell) { return cell == CK_RNN_LSTM ? 2 : 1; }
int64_t ck_rnn_grad_width(int32_t cell) {
    int64_t g = ck_rnn_gates(cell);
    return cell == CK_RNN_GRU ? 2 * g + 1 : cell == CK_RNN_GRU_RESET_BEFORE ? g + 2 : g + 1;
}

static int rnn_valid(const ck_rnn_desc *d) {
    return d->cell >= CK_RNN_SIMPLE && d->cell <= CK_RNN_GRU_RESET_BEFORE && d->batch >= 0 && d->time >= 0 && d->units > 0;
}

size_t ck_f32_rnn_forward_workspace_bytes(const ck_rnn_desc *d) {
    if (!rnn_valid(d)) return 0;
    /* z and r*h per step, then the recurrent kernel packed once for every step's GEMM */
    return (size_t)(d->batch * d->units * (ck_rnn_gates(d->cell) + 1) + 16) * sizeof(float)
           + ck_f32_gemm_packed_b_floats(d->units, ck_rnn_gates(d->cell) * d->units) * sizeof(float);
}

size_t ck_f32_rnn_backward_workspace_bytes(const ck_rnn_desc *d) {
    if (!rnn_valid(d)) return 0;
    int64_t rows = d->batch * d->time, n = d->units, g = ck_rnn_gates(d->cell);
    /* ... then the recurrent kernel's transpose packed once for every step's dh product */
    return (size_t)(rows * n * (g + 2) + 3 * d->batch * n + 16) * sizeof(float) + ck_f32_gemm_packed_b_floats(g * n, n) * sizeof(float);
}

/* C[m x n] = A op(B) + beta C, op(B) = B or (with `tb`) its transpose. */
static void gemm(ck_f32_gemm_fn fn, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                 int tb, float beta, float *c, int64_t ldc) {
    ck_gemm_args g;
    memset(&g, 0, sizeof g);
    g.trans_b = tb;
    g.m = m; g.n = n; g.k = k; g.alpha = 1; g.beta = beta;
    g.a = a; g.lda = lda; g.b = b; g.ldb = ldb; g.c = c; g.ldc = ldc;
    fn(&g, NULL);
}

/* C[m x n] = A op(B) + beta C with B also given packed (ck_f32_gemm_pack_b) for the paths that pack. */
static void gemm_packed(ck_f32_gemm_fn fn, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                        int tb, const float *packed, float beta, float *c, int64_t ldc) {
    ck_gemm_args g;
    memset(&g, 0, sizeof g);
    g.trans_b = tb;
    g.m = m; g.n = n; g.k = k; g.alpha = 1; g.beta = beta;
    g.a = a; g.lda = lda; g.b = b; g.ldb = ldb; g.c = c; g.ldc = ldc;
    g.packed_b = packed;
    fn(&g, NULL);
}

static int row_on(const ck_rnn_desc *d, const float *mask, int64_t b, int64_t t) {
    return mask == NULL || mask[b * d->time + t] != 0.0f;
}

/* One step's pointwise pass, one batch row per call of `row`; the rows are
 * split over the thread pool (small steps run inline). */
typedef struct rnn_job {
    const ck_rnn_desc *d;
    ck_isa isa;
    int64_t k, t, n, gn, S, W;
    const float *xp, *h0, *c0, *mask, *hp, *states, *dstates;
    int64_t ldh;
    float *z, *rh, *out, *grad, *hprev, *dh, *dc, *tt;
    void (*row)(const struct rnn_job *j, int64_t b);
} rnn_job;

static void rows_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const rnn_job *j = ctx;
    for (int64_t b = begin; b < end; b++) j->row(j, b);
}

static void run_rows(rnn_job *j, int64_t rows) {
    ck_parallel_for(rows, rows * j->gn < 4096, rows_task, j);
}

static void forward_reset_row(const rnn_job *j, int64_t b) {
    rnn_row a = {.units = j->n, .z = j->z + b * j->gn, .hp = j->hp + b * j->ldh, .rh = j->rh + b * j->n};
    run_row(BODIES(gru_rb_reset), j->isa, &a);
}

static void forward_row(const rnn_job *j, int64_t b) {
    const int64_t n = j->n, T = j->d->time;
    rnn_row a = {.units = n, .z = j->z + b * j->gn, .x = j->xp + (b * T + j->t) * j->gn, .hp = j->hp + b * j->ldh};
    a.h = j->out + (b * T + j->k) * j->S * n;
    if (j->S == 2) { a.cp = j->k == 0 ? j->c0 + b * n : a.hp + n; a.c = a.h + n; }
    if (!row_on(j->d, j->mask, b, j->t)) {
        memcpy(a.h, a.hp, (size_t)n * sizeof(float));
        if (j->S == 2) memcpy(a.c, a.cp, (size_t)n * sizeof(float));
        return;
    }
    switch (j->d->cell) {
    case CK_RNN_SIMPLE: run_row(BODIES(simple_forward), j->isa, &a); break;
    case CK_RNN_LSTM: run_row(BODIES(lstm_forward), j->isa, &a); break;
    case CK_RNN_GRU: run_row(BODIES(gru_forward), j->isa, &a); break;
    case CK_RNN_GRU_RESET_BEFORE: run_row(BODIES(gru_rb_forward), j->isa, &a); break;
    }
}

/* Batch rows per task of the walk through the steps, forward and backward.
 * A row's states (and their cotangents) depend on no other row, so each task
 * walks the whole sequence for its rows: no barrier between steps, and one
 * GEMM of this many rows per step. Fixed, not derived from the thread count,
 * so every row is computed the same way on any number of threads. */
#define RNN_ROWS 16

typedef struct rnn_walk_ctx {
    rnn_job j;  /* the fields every step shares */
    ck_f32_gemm_fn fn;
    const float *u, *rb, *packed;
    int64_t ldg;
    void (*rows)(const struct rnn_walk_ctx *w, int64_t b0, int64_t b1);  /* rows [b0, b1) through every step */
} rnn_walk_ctx;

static void walk_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const rnn_walk_ctx *w = ctx;
    for (int64_t c = begin; c < end; c++) {
        int64_t b0 = c * RNN_ROWS, b1 = b0 + RNN_ROWS;
        w->rows(w, b0, b1 < w->j.d->batch ? b1 : w->j.d->batch);
    }
}

/* Every group of rows, one pool task each (a single group's GEMMs use the threads instead). */
static void walk_groups(const rnn_walk_ctx *w) {
    ck_parallel_for((w->j.d->batch + RNN_ROWS - 1) / RNN_ROWS, 0, walk_task, (void *)w);
}

/* Rows [b0, b1) through every step. */
static void forward_rows(const rnn_walk_ctx *f, int64_t b0, int64_t b1) {
    const ck_rnn_desc *d = f->j.d;
    const int64_t T = d->time, n = f->j.n, gn = f->j.gn, S = f->j.S, lds = T * S * n, rows = b1 - b0;
    rnn_job j = f->j;
    for (int64_t k = 0; k < T; k++) {
        const int64_t t = d->go_backwards ? T - 1 - k : k;
        j.k = k; j.t = t;
        j.hp = k == 0 ? j.h0 : j.out + (k - 1) * S * n;
        j.ldh = k == 0 ? n : lds;
        const float *hp = j.hp + b0 * j.ldh;
        float *z = j.z + b0 * gn;
        /* SimpleRNN and LSTM: z is the state's product alone, and the cell
         * adds the step's input as it reads z. The GRUs' z starts as the
         * recurrent bias or the step's input, and the GEMM accumulates onto it. */
        if (d->cell == CK_RNN_GRU || d->cell == CK_RNN_GRU_RESET_BEFORE)
            for (int64_t b = b0; b < b1; b++)
                memcpy(j.z + b * gn, d->cell == CK_RNN_GRU ? f->rb : j.xp + (b * T + t) * gn, (size_t)gn * sizeof(float));
        switch (d->cell) {
        case CK_RNN_SIMPLE:
        case CK_RNN_LSTM: gemm_packed(f->fn, rows, gn, n, hp, j.ldh, f->u, gn, 0, f->packed, 0, z, gn); break;
        case CK_RNN_GRU: gemm_packed(f->fn, rows, gn, n, hp, j.ldh, f->u, gn, 0, f->packed, 1, z, gn); break;
        case CK_RNN_GRU_RESET_BEFORE:
            gemm(f->fn, rows, 2 * n, n, hp, j.ldh, f->u, gn, 0, 1, z, gn);
            for (int64_t b = b0; b < b1; b++) forward_reset_row(&j, b);
            gemm(f->fn, rows, n, n, j.rh + b0 * n, n, f->u + 2 * n, gn, 0, 1, z + 2 * n, gn);
            break;
        }
        for (int64_t b = b0; b < b1; b++) forward_row(&j, b);
    }
}

void ck_f32_rnn_forward(ck_isa isa, const ck_rnn_desc *d, const float *xp, const float *u, const float *rb,
                        const float *h0, const float *c0, const float *mask, float *states, void *workspace) {
    if (!rnn_valid(d)) return;
    const int64_t B = d->batch, n = d->units, G = ck_rnn_gates(d->cell), S = ck_rnn_state_width(d->cell);
    const int64_t gn = G * n;
    rnn_walk_ctx f = {.j = {.d = d, .isa = isa, .n = n, .gn = gn, .S = S, .xp = xp, .h0 = h0, .c0 = c0, .mask = mask, .out = states},
                         .fn = ck_f32_gemm_kernel(isa), .u = u, .rb = rb};
    f.j.z = workspace; f.j.rh = f.j.z + B * gn;
    /* The recurrent kernel, packed once: every step's product reads the same panels. */
    float *packed_u = (float *)(((uintptr_t)(f.j.rh + B * n) + 63) & ~(uintptr_t)63);  /* 64-byte aligned, within the slack */
    ck_gemm_args pu;
    memset(&pu, 0, sizeof pu);
    pu.k = n; pu.n = gn; pu.b = u; pu.ldb = gn;
    ck_f32_gemm_pack_b(isa, &pu, packed_u);
    f.packed = packed_u;
    f.rows = forward_rows;
    walk_groups(&f);
}

/* Backward, before the walk: row (b, t) of hprev (and of grad's state
 * section) gets the state the step at time t read. */
static void gather_row(const rnn_job *j, int64_t b) {
    const int64_t n = j->n, T = j->d->time, lds = T * j->S * n;
    for (int64_t t = 0; t < T; t++) {
        const int64_t k = j->d->go_backwards ? T - 1 - t : t;
        const float *src = k == 0 ? j->h0 + b * n : j->states + b * lds + (k - 1) * j->S * n;
        memcpy(j->hprev + (b * T + t) * n, src, (size_t)n * sizeof(float));
        memcpy(j->grad + (b * (T + 1) + t) * j->W + j->gn, src, (size_t)n * sizeof(float));
    }
}

/* GRU reset_before: r h for every (b, t), into the workspace and grad. */
static void backward_reset_row(const rnn_job *j, int64_t b) {
    const int64_t n = j->n, T = j->d->time;
    for (int64_t t = 0; t < T; t++) {
        const int64_t r = b * T + t;
        rnn_row a = {.units = n, .z = j->z + r * j->gn, .hp = j->hprev + r * n, .rh = j->rh + r * n};
        run_row(BODIES(gru_rb_reset), j->isa, &a);
        memcpy(j->grad + (b * (T + 1) + t) * j->W + j->gn + n, a.rh, (size_t)n * sizeof(float));
    }
}

static void backward_row(const rnn_job *j, int64_t b) {
    const int64_t n = j->n, T = j->d->time, S = j->S, k = j->k, t = j->t, r = b * T + t;
    const float *ds = j->dstates + (b * T + k) * S * n;
    float *dh = j->dh + b * n, *dc = j->dc + b * n;
    for (int64_t i = 0; i < n; i++) dh[i] += ds[i];
    if (S == 2) for (int64_t i = 0; i < n; i++) dc[i] += ds[n + i];
    rnn_row a = {.units = n, .z = j->z + r * j->gn, .x = j->xp + r * j->gn, .hp = j->hprev + r * n, .dh = dh, .dc = dc};
    a.hs = j->states + (b * T + k) * S * n; a.cs = a.hs + n;
    if (S == 2) a.cp = k == 0 ? j->c0 + b * n : a.hs - S * n + n;
    a.dz = j->grad + (b * (T + 1) + t) * j->W;
    a.drec = a.dz + j->gn + n;
    if (!row_on(j->d, j->mask, b, t)) {
        memset(a.dz, 0, (size_t)j->gn * sizeof(float));
        if (j->d->cell == CK_RNN_GRU) memset(a.drec, 0, (size_t)j->gn * sizeof(float));
        return;
    }
    switch (j->d->cell) {
    case CK_RNN_SIMPLE: run_row(BODIES(simple_backward), j->isa, &a); break;
    case CK_RNN_LSTM: run_row(BODIES(lstm_backward), j->isa, &a); break;
    case CK_RNN_GRU: run_row(BODIES(gru_backward), j->isa, &a); break;
    case CK_RNN_GRU_RESET_BEFORE: run_row(BODIES(gru_rb_backward), j->isa, &a); break;
    }
}

static void backward_reset_step_row(const rnn_job *j, int64_t b) {
    const int64_t n = j->n, T = j->d->time, r = b * T + j->t;
    if (!row_on(j->d, j->mask, b, j->t)) return;
    rnn_row a = {.units = n, .z = j->z + r * j->gn, .hp = j->hprev + r * n, .t = j->tt + b * n,
                 .dh = j->dh + b * n, .dz = j->grad + (b * (T + 1) + j->t) * j->W};
    run_row(BODIES(gru_rb_backward_reset), j->isa, &a);
}

/* Rows [b0, b1) backward through every step, last to first. */
static void backward_rows(const rnn_walk_ctx *w, int64_t b0, int64_t b1) {
    const ck_rnn_desc *d = w->j.d;
    const int64_t T = d->time, n = w->j.n, gn = w->j.gn, W = w->j.W, ldg = w->ldg, rows = b1 - b0;
    rnn_job j = w->j;
    float *dh = j.dh + b0 * n;
    for (int64_t k = T - 1; k >= 0; k--) {
        const int64_t t = d->go_backwards ? T - 1 - k : k;
        j.k = k; j.t = t;
        for (int64_t b = b0; b < b1; b++) backward_row(&j, b);
        const float *dzt = j.grad + b0 * ldg + t * W;
        switch (d->cell) {
        case CK_RNN_SIMPLE:
        case CK_RNN_LSTM: gemm_packed(w->fn, rows, n, gn, dzt, ldg, w->u, gn, 1, w->packed, 1, dh, n); break;
        case CK_RNN_GRU: gemm_packed(w->fn, rows, n, gn, dzt + gn + n, ldg, w->u, gn, 1, w->packed, 1, dh, n); break;
        case CK_RNN_GRU_RESET_BEFORE:
            gemm(w->fn, rows, n, n, dzt + 2 * n, ldg, w->u + 2 * n, gn, 1, 0, j.tt + b0 * n, n);
            for (int64_t b = b0; b < b1; b++) backward_reset_step_row(&j, b);
            gemm(w->fn, rows, n, 2 * n, dzt, ldg, w->u, gn, 1, 1, dh, n);
            break;
        }
    }
}

void ck_f32_rnn_backward(ck_isa isa, const ck_rnn_desc *d, const float *xp, const float *u, const float *rb,
                         const float *h0, const float *c0, const float *mask, const float *states,
                         const float *dstates, float *grad, void *workspace) {
    if (!rnn_valid(d)) return;
    const int64_t B = d->batch, T = d->time, n = d->units, G = ck_rnn_gates(d->cell), S = ck_rnn_state_width(d->cell);
    const int64_t gn = G * n, W = ck_rnn_grad_width(d->cell) * n, ldg = (T + 1) * W;
    ck_f32_gemm_fn fn = ck_f32_gemm_kernel(isa);
    rnn_job j = {.d = d, .isa = isa, .n = n, .gn = gn, .S = S, .W = W, .xp = xp, .h0 = h0, .c0 = c0, .mask = mask,
                 .states = states, .dstates = dstates, .grad = grad};
    j.hprev = workspace; j.z = j.hprev + B * T * n; j.rh = j.z + B * T * gn;
    j.dh = j.rh + B * T * n; j.dc = j.dh + B * n; j.tt = j.dc + B * n;
    /* U's transpose (gn -> n), packed once: every step's dh product reads the same panels. */
    float *packed_ut = (float *)(((uintptr_t)(j.tt + B * n) + 63) & ~(uintptr_t)63);
    ck_gemm_args pu;
    memset(&pu, 0, sizeof pu);
    pu.trans_b = 1; pu.k = gn; pu.n = n; pu.b = u; pu.ldb = gn;
    ck_f32_gemm_pack_b(isa, &pu, packed_ut);
    j.row = gather_row;
    run_rows(&j, B);
    /* Every step's pre-activations at once, accumulated onto the inputs (or the recurrent bias). */
    if (d->cell == CK_RNN_GRU)
        for (int64_t r = 0; r < B * T; r++) memcpy(j.z + r * gn, rb, (size_t)gn * sizeof(float));
    else
        memcpy(j.z, xp, (size_t)(B * T * gn) * sizeof(float));
    switch (d->cell) {
    case CK_RNN_SIMPLE:
    case CK_RNN_LSTM:
    case CK_RNN_GRU: gemm(fn, B * T, gn, n, j.hprev, n, u, gn, 0, 1, j.z, gn); break;
    case CK_RNN_GRU_RESET_BEFORE:
        gemm(fn, B * T, 2 * n, n, j.hprev, n, u, gn, 0, 1, j.z, gn);
        j.row = backward_reset_row;
        run_rows(&j, B);
        gemm(fn, B * T, n, n, j.rh, n, u + 2 * n, gn, 0, 1, j.z + 2 * n, gn);
        break;
    }
    memset(j.dh, 0, (size_t)(B * n) * sizeof(float));
    memset(j.dc, 0, (size_t)(B * n) * sizeof(float));
    rnn_walk_ctx w = {.j = j, .fn = fn, .u = u, .packed = packed_ut, .ldg = ldg, .rows = backward_rows};
    walk_groups(&w);
    /* The last row: dh0 and dc0. */
    for (int64_t b = 0; b < B; b++) {
        float *last = grad + b * ldg + T * W;
        memset(last, 0, (size_t)W * sizeof(float));
        memcpy(last, j.dh + b * n, (size_t)n * sizeof(float));
        if (S == 2) memcpy(last + n, j.dc + b * n, (size_t)n * sizeof(float));
    }
}
