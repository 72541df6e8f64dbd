/* SGEMM: C = alpha * op(A) op(B) + beta * C, row-major — the driver: cache
 * blocking, threading, the ISA entry points. The reference is in
 * gemm_ref.c, packing in gemm_pack.c, the micro-kernels in gemm_ukr_avx2.c
 * and gemm_ukr_avx512.c, the unpacked narrow and short paths in
 * gemm_small.c (all behind gemm_internal.h).
 *
 * BLIS structure: B is packed into KC x NR micro-panels, A into MR x KC
 * micro-panels, and a register-blocked micro-kernel updates one MR x NR tile
 * of C, handling partial tiles itself. The NC/KC/MC loops only choose what is
 * packed; they are shared by every ISA (gemm_impl describes one).
 *
 *   AVX2+FMA:  6 x 16 tile, twelve ymm accumulators
 *   AVX-512F: 14 x 32 tile, twenty-eight zmm accumulators
 *
 * Threads split C into column (or row) ranges; the K loop is never split, so
 * each element is summed in the same order on any number of threads and the
 * results are bitwise identical. */
#include "gemm_internal.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared blocking ---- */

typedef ck_f32_gemm_ukr_fn ukr_fn;

typedef struct gemm_impl {
    int mr, nr, kc, mc, nc;
    ukr_fn ukr;
    ck_gemm_ukr_epi_fn ukr_epi;  /* the kernel with bias and relu in its store step, or NULL */
    ck_gemm_ukr_pf_fn ukr_pf;    /* the kernel's general entry (A's k-step, prefetching), or NULL */
} gemm_impl;

/* Whether the last K block's tiles take the epilogue in the kernel's store
 * step: bias and/or relu only (the common Dense layer), as ck_gemm_epilogue's
 * one-pass case, whose bits they are. */
static int epilogue_in_store(const gemm_impl *im, const ck_gemm_args *g) {
    return im->ukr_epi && !g->residual && !g->accumulate_into && (g->bias || g->activation == 1 + CK_UNARY_RELU) &&
           (g->activation == 0 || g->activation == 1 + CK_UNARY_RELU);
}

/* A's block holds up to MC + MC/4 rows (a short last block joins the one before), rounded up to MR. */
static int64_t a_block_rows(const gemm_impl *im) { return (im->mc + im->mc / 4 + im->mr - 1) / im->mr * im->mr; }
static size_t impl_scratch_floats(const gemm_impl *im) { return (size_t)a_block_rows(im) * im->kc + (size_t)im->kc * im->nc; }

/* The epilogue on one finished tile of C (rows i0.., columns j0..). */
void ck_gemm_epilogue(const ck_gemm_args *g, int64_t i0, int64_t mr, int64_t j0, int64_t nr) {
    static _Atomic int cached = -1;  /* racing first calls store the same value */
    int isa = atomic_load_explicit(&cached, memory_order_relaxed);
    if (isa < 0) {
        isa = ck_best_isa();  /* KERAS_ISA's cap included */
        atomic_store_explicit(&cached, isa, memory_order_relaxed);
    }
    int relu = g->activation == 1 + CK_UNARY_RELU;
    if (isa != CK_ISA_REF && !g->residual && !g->accumulate_into && (relu || g->activation == 0)) {
        ck_bias_relu_tile((ck_isa)isa, g->c + i0 * g->ldc + j0, g->ldc, mr, nr, g->bias ? g->bias + j0 : NULL, relu);
        return;
    }
    ck_f32_unary_fn act = g->activation > 0 ? ck_f32_unary_kernel((ck_unary_op)(g->activation - 1), ck_cpu_has_avx2_fma() ? CK_ISA_AVX2 : CK_ISA_REF) : NULL;
    ck_f32_binary_fn add = ck_f32_binary_kernel(CK_BINARY_ADD, ck_cpu_has_avx2_fma() ? CK_ISA_AVX2 : CK_ISA_REF);
    for (int64_t r = 0; r < mr; r++) {
        float *row = g->c + (i0 + r) * g->ldc + j0;
        if (g->bias) add((size_t)nr, row, 1, g->bias + j0, 1, row);
        if (g->residual) add((size_t)nr, row, 1, g->residual + (i0 + r) * g->ld_residual + j0, 1, row);
        if (act) act((size_t)nr, row, row, &g->act_params);
        if (g->accumulate_into) { float *d = g->accumulate_into + (i0 + r) * g->ld_accumulate + j0; add((size_t)nr, d, 1, row, 1, d); }
    }
}


/* The rows of A's block starting at row ic: MC, or all the rest when a
 * short last block would follow (it joins this one: one pass less over B's
 * block in L3; m = 1024 gives 126 + 16 rows). */
static int64_t block_rows(const gemm_impl *im, int64_t ic, int64_t m1) {
    int64_t mc = m1 - ic < im->mc ? m1 - ic : im->mc;
    return m1 - ic - mc <= im->mc / 4 ? m1 - ic : mc;
}

/* The cache lines of rows r0.. (nrows) x columns c0.. (ncols) of a row-major
 * matrix (or, transposed, of its columns), for a kernel to prefetch. */
static ck_gemm_prefetch region_lines(const float *x, int64_t ld, int trans, int64_t r0, int64_t nrows, int64_t c0, int64_t ncols) {
    if (trans) { int64_t t = r0; r0 = c0; c0 = t; t = nrows; nrows = ncols; ncols = t; }
    const char *base = (const char *)(x + r0 * ld + c0);
    int64_t lines_per_row = (ncols * 4 + 63) / 64 + 1;  /* + 1: rows need not start on a line */
    return (ck_gemm_prefetch){base, ld * 4, lines_per_row, 0, nrows * lines_per_row};
}

/* Share `i` of a job cut into shares of `per` lines. */
static ck_gemm_prefetch share(ck_gemm_prefetch job, int64_t i, int64_t per) {
    int64_t first = i * per, left = job.lines - first;
    job.first_line = first;
    job.lines = left <= 0 ? 0 : left < per ? left : per;
    return job;
}

/* C[m0:m1, n0:n1] with private packing buffers pa (a_block_rows x KC) and pb (KC x NC);
 * A's micro-panels come from `packa` (a matrix, or patches gathered by a convolution). */
static void gemm_blocked(const gemm_impl *im, const ck_gemm_args *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                         float *pa, float *pb, ck_pack_a_fn packa, const void *actx) {
    const int in_store = epilogue_in_store(im, g);
    /* With the prefetching kernel, a row-major B is packed panel by panel as
     * the first row block reaches it, and the source lines of B's next panel
     * and of A's next block are prefetched by the kernels computing now: the
     * packing then reads cache, not memory (see docs/kernels.md). */
    const int lazy_b = im->ukr_pf && !g->packed_b && !g->trans_b;
    /* A transposed (stored K x M) already holds each micro-panel's k-steps
     * as MR consecutive floats, lda apart: the kernels read it in place
     * instead of packing it, when every tile reads only rows of A (a short
     * last tile rounds its rows up to even) */
    const int direct_a = im->ukr_pf && packa == ck_gemm_pack_a && g->trans_a && g->m % im->mr % 2 == 0;
    const int prefetch_a = im->ukr_pf && packa == ck_gemm_pack_a && !direct_a;
    for (int64_t jc = n0; jc < n1; jc += im->nc) {
        int64_t nc = n1 - jc < im->nc ? n1 - jc : im->nc;
        for (int64_t pc = 0; pc < g->k; pc += im->kc) {
            int64_t kc = g->k - pc < im->kc ? g->k - pc : im->kc;
            float beta = pc == 0 ? g->beta : 1.0f;
            const int last_k = pc + kc == g->k, epi_now = last_k && in_store;
            const float *pbk = pb;
            if (g->packed_b) pbk = g->packed_b + pc * ((g->n + im->nr - 1) / im->nr * im->nr) + jc * kc;  /* ck_f32_gemm_pack_b's layout */
            else if (!lazy_b) ck_gemm_pack_b(im->nr, g, pc, kc, jc, nc, pb);
            for (int64_t ic = m0, mc; ic < m1; ic += mc) {
                mc = block_rows(im, ic, m1);
                const float *pa_block = pa;
                const int64_t as = direct_a ? g->lda : im->mr;
                if (direct_a) pa_block = g->a + pc * g->lda + ic;
                else packa(actx, ic, mc, pc, kc, im->mr, pa);
                const int first_block = lazy_b && ic == m0;
                const int64_t tiles = (mc + im->mr - 1) / im->mr, panels = (nc + im->nr - 1) / im->nr;
                const int64_t b_rows_per_tile = (kc + tiles - 1) / tiles;
                ck_gemm_prefetch next_a = {0};  /* A's next block, spread over this block's kernel calls */
                if (prefetch_a && ic + mc < m1) next_a = region_lines(g->a, g->lda, g->trans_a, ic + mc, block_rows(im, ic + mc, m1), pc, kc);
                const int64_t a_lines_per_call = (next_a.lines + tiles * panels - 1) / (tiles * panels);
                for (int64_t jr = 0; jr < nc; jr += im->nr) {
                    int64_t nr = nc - jr < im->nr ? nc - jr : im->nr;
                    const float *panel = pbk + jr * kc;
                    if (first_block) ck_gemm_pack_b(im->nr, g, pc, kc, jc + jr, nr, pb + jr * kc);
                    ck_gemm_prefetch next_b = {0};  /* B's next panel, spread over this panel's tiles */
                    if (first_block && jr + im->nr < nc) next_b = region_lines(g->b, g->ldb, 0, pc, kc, jc + jr + im->nr, im->nr);
                    const float *bias = epi_now && g->bias ? g->bias + jc + jr : NULL;
                    const int relu = epi_now && g->activation == 1 + CK_UNARY_RELU;
                    for (int64_t ir = 0; ir < mc; ir += im->mr) {
                        int64_t mr = mc - ir < im->mr ? mc - ir : im->mr;
                        float *ct = g->c + (ic + ir) * g->ldc + jc + jr;
                        ck_gemm_prefetch pf[2] = {share(next_b, ir / im->mr, b_rows_per_tile * next_b.lines_per_row),
                                                  share(next_a, jr / im->nr * tiles + ir / im->mr, a_lines_per_call)};
                        const float *at = direct_a ? pa_block + ir : pa_block + ir * kc;
                        if (im->ukr_pf) {  /* the general entry does everything the two below do */
                            im->ukr_pf(kc, at, as, panel, ct, g->ldc, mr, nr, g->alpha, beta, bias, relu, pf, 2);
                        } else if (epi_now) {
                            im->ukr_epi(kc, at, panel, ct, g->ldc, mr, nr, g->alpha, beta, bias, relu);
                        } else {
                            im->ukr(kc, at, panel, ct, g->ldc, mr, nr, g->alpha, beta);
                        }
                        if (last_k && !epi_now && ck_gemm_has_epilogue(g)) ck_gemm_epilogue(g, ic + ir, mr, jc + jr, nr);
                    }
                }
            }
        }
    }
}

static void scale_c(const ck_gemm_args *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    for (int64_t i = m0; i < m1; i++)
        for (int64_t j = n0; j < n1; j++) {
            float *c = &g->c[i * g->ldc + j];
            *c = g->beta == 0.0f ? 0.0f : g->beta * *c;
        }
}

typedef struct gemm_job {
    const gemm_impl *im;
    const ck_gemm_args *g;
    ck_pack_a_fn packa;
    const void *actx;
    int split_n;     /* 1: tasks are NR-column groups; 0: MR-row groups */
    int64_t unit;    /* columns or rows per task */
} gemm_job;

static void gemm_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const gemm_job *job = ctx;
    const ck_gemm_args *g = job->g;
    int64_t lo = begin * job->unit, hi = end * job->unit;
    int64_t m0 = 0, m1 = g->m, n0 = 0, n1 = g->n;
    if (job->split_n) { n0 = lo; n1 = hi < g->n ? hi : g->n; } else { m0 = lo; m1 = hi < g->m ? hi : g->m; }
    if (m0 >= m1 || n0 >= n1) return;
    if (g->k <= 0) {
        scale_c(g, m0, m1, n0, n1);
        if (ck_gemm_has_epilogue(g)) ck_gemm_epilogue(g, m0, m1 - m0, n0, n1 - n0);
        return;
    }
    float *pa = ck_thread_scratch(thread, impl_scratch_floats(job->im) * sizeof(float));
    gemm_blocked(job->im, g, m0, m1, n0, n1, pa, pa + (size_t)a_block_rows(job->im) * job->im->kc, job->packa, job->actx);
}

/* Splits C between threads: by columns when there are enough NR groups,
 * else by rows. Which thread computes an element never changes its value.
 * A C narrower than half a tile (n = 10 classes, say) is computed as
 * C^T = op(B)^T op(A)^T so that full tiles run over its long side. */
static void gemm_run(const gemm_impl *im, const ck_gemm_args *g);

static gemm_impl impl_avx512_small[7];
static gemm_impl impl_avx512;

/* The tile for the transposed problem, whose rows are C's n columns. */
static const gemm_impl *transposed_impl(const gemm_impl *im, int64_t n) {
    if (im != &impl_avx512) return im;
    int64_t r = (n + 1) / 2;  /* 1..7 -> rows 2, 4, ..., 14 */
    return &impl_avx512_small[r < 1 ? 0 : r > 7 ? 6 : r - 1];
}

static void gemm_transposed(const gemm_impl *im, const ck_gemm_args *g) {
    im = transposed_impl(im, g->n);
    float *t = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)g->m * g->n * sizeof(float));
    ck_gemm_args h = *g;
    h.user_pack_a = NULL;
    h.bias = NULL; h.residual = NULL; h.activation = 0; h.accumulate_into = NULL;
    h.packed_b = NULL;  /* B becomes A here; a packing of B does not apply */
    h.m = g->n; h.n = g->m;
    h.a = g->b; h.lda = g->ldb; h.trans_a = !g->trans_b;
    h.b = g->a; h.ldb = g->lda; h.trans_b = !g->trans_a;
    h.c = t; h.ldc = g->m; h.alpha = 1; h.beta = 0;
    gemm_run(im, &h);
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            float *c = &g->c[i * g->ldc + j];
            float v = g->alpha * t[j * g->m + i];
            *c = g->beta == 0.0f ? v : v + g->beta * *c;
        }
    if (ck_gemm_has_epilogue(g)) ck_gemm_epilogue(g, 0, g->m, 0, g->n);
}

static void gemm_run(const gemm_impl *im, const ck_gemm_args *g) {
    if (g->m <= 0 || g->n <= 0) return;
    if (!g->user_pack_a && g->n < im->nr && g->n <= 14 && g->m >= 2 * im->nr && g->k > 0) { gemm_transposed(im, g); return; }
    gemm_job job = {im, g, g->a ? ck_gemm_pack_a : NULL, g, 1, im->nr};
    if (g->user_pack_a) { job.packa = g->user_pack_a; job.actx = g->user_pack_ctx; }
    int64_t ncols = (g->n + im->nr - 1) / im->nr, nrows = (g->m + im->mr - 1) / im->mr;
    int threads = ck_threads_get();
    int64_t tasks = ncols;
    if (ncols < 2 * threads && nrows > ncols) { job.split_n = 0; job.unit = im->mr; tasks = nrows; }
    int64_t flops = 2 * g->m * g->n * (g->k > 0 ? g->k : 1);
    ck_parallel_for(tasks, flops < (1 << 20) ? 1 : 0, gemm_task, &job);
}

/* MC, KC and NC are set from the core's caches at first use (see "blocking" below). */
static gemm_impl impl_avx2 = {6, 16, 0, 0, 0, ck_gemm_ukr_6x16};

static gemm_impl impl_avx512 = {14, 32, 0, 0, 0, ck_gemm_ukr_14x32, ck_gemm_ukr_14x32_bias_relu, ck_gemm_ukr_14x32_prefetch};

/* MC = MR: the transposed problem has at most 14 rows. */
static gemm_impl impl_avx512_small[7] = {
    {2, 32, 0, 2, 0, ck_gemm_ukr_2x32},   {4, 32, 0, 4, 0, ck_gemm_ukr_4x32},   {6, 32, 0, 6, 0, ck_gemm_ukr_6x32},   {8, 32, 0, 8, 0, ck_gemm_ukr_8x32},
    {10, 32, 0, 10, 0, ck_gemm_ukr_10x32}, {12, 32, 0, 12, 0, ck_gemm_ukr_12x32}, {14, 32, 0, 14, 0, ck_gemm_ukr_14x32},
};

/* 8 x 32 tiles with the 14-row kernel's blocking: for row counts that 14
 * leaves a mostly empty last tile of (batches of 32, 64, 128: 8 divides them). */
static gemm_impl impl_avx512_8rows = {8, 32, 0, 0, 0, ck_gemm_ukr_8x32, ck_gemm_ukr_8x32_bias_relu, ck_gemm_ukr_8x32_prefetch};

/* ---- the micro-kernels by themselves (their own table rows; tests and keras-bench call them) ---- */

ck_f32_gemm_ukr_fn ck_f32_gemm_ukr_kernel(ck_isa isa, int mr, int nr) {
#define CK_UKR_NAME(MR, NR) ck_gemm_ukr_##MR##x##NR
    CK_GEMM_UKRS(CK_UKR_CASE)
#undef CK_UKR_NAME
    return NULL;
}

/* ---- blocking ----
 * MC, KC and NC follow the core's data caches (ck_cpu_describe), BLIS's
 * analytical rule: a KC x NR micro-panel of B stays in L1 while the MR x KC
 * micro-panels of A stream past it, the MC x KC block of A stays in L2, and
 * the KC x NC block of B in this thread's share of L3. docs/kernels.md gives
 * the numbers per core; KERAS_GEMM_BLOCKING=MC,KC,NC overrides them for
 * experiments, ck_gemm_set_blocking for `keras-bench --tune`. */

static int tile_rows(ck_isa isa) { return isa == CK_ISA_AVX512 ? 14 : 6; }
static int tile_cols(ck_isa isa) { return isa == CK_ISA_AVX512 ? 32 : 16; }

static int64_t round_down(int64_t v, int64_t m) { return v / m * m; }
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

ck_gemm_blocking ck_gemm_blocking_for(ck_isa isa, const ck_cpu_info *cpu) {
    int64_t mr = tile_rows(isa), nr = tile_cols(isa);
    int64_t l1 = cpu->l1d_bytes > 0 ? cpu->l1d_bytes : 32 * 1024;
    /* an L2 shared by SMT siblings counts half per thread */
    int64_t l2 = cpu->l2_bytes > 0 ? cpu->l2_bytes / (cpu->l2_shared_by > 1 ? 2 : 1) : 512 * 1024;
    int64_t l3 = cpu->l3_bytes > 0 ? cpu->l3_bytes / (cpu->l3_shared_by > 1 ? cpu->l3_shared_by / 2 : 1) : 2 * 1024 * 1024;
    int amd = strcmp(cpu->vendor, "AuthenticAMD") == 0 || strcmp(cpu->vendor, "HygonGenuine") == 0;
    ck_gemm_blocking b;
    /* KC: on Zen cores the L2 feeds B's micro-panel at the FMA rate, so KC
     * is long, each C tile loaded and stored once per KC steps: 1024 where a
     * thread has 1 MiB of L2 (A's block below still 126 rows), else 512;
     * elsewhere (Intel server cores) B's micro-panel is kept in half of L1,
     * the other half holding A's micro-panel as it streams */
    b.kc = amd ? (l2 >= 1024 * 1024 ? 1024 : 512) : (int)clamp64(round_down(l1 / 2 / (nr * 4), 16), 128, 512);
    /* MC: A's block in half of L2 (B's KC x NC block passes through the rest) */
    b.mc = (int)clamp64(round_down(l2 / 2 / (b.kc * 4), mr), mr, 1020 / mr * mr);
    /* NC: B's block in half of this thread's share of L3, at most 8 MiB (the packing scratch) */
    b.nc = (int)clamp64(round_down(l3 / 2 / (b.kc * 4), nr), 4 * nr, round_down((2 << 20) / b.kc, nr));
    return b;
}

static ck_gemm_blocking current[3];
static pthread_once_t blocking_once = PTHREAD_ONCE_INIT;

/* Writes a blocking into every implementation of the ISA (rounded to its tiles). */
static void apply_blocking(ck_isa isa, ck_gemm_blocking b) {
    current[isa] = b;
    if (isa == CK_ISA_AVX2) {
        impl_avx2.kc = b.kc; impl_avx2.mc = (int)round_down(b.mc, 6); impl_avx2.nc = b.nc;
        return;
    }
    impl_avx512.kc = b.kc; impl_avx512.mc = (int)round_down(b.mc, 14); impl_avx512.nc = b.nc;
    impl_avx512_8rows.kc = b.kc; impl_avx512_8rows.mc = (int)round_down(b.mc, 8); impl_avx512_8rows.nc = b.nc;
    for (int i = 0; i < 7; i++) { impl_avx512_small[i].kc = b.kc; impl_avx512_small[i].nc = b.nc; }
}

int ck_gemm_parse_blocking(const char *text, ck_gemm_blocking *out) {
    long v[3];
    char tail;
    if (!text || sscanf(text, "%ld,%ld,%ld%c", &v[0], &v[1], &v[2], &tail) != 3) return -1;
    if (v[0] < 1 || v[0] > 4096 || v[1] < 8 || v[1] > 4096 || v[2] < 1 || v[2] > 65536) return -1;
    out->mc = (int)v[0]; out->kc = (int)v[1]; out->nc = (int)v[2];
    return 0;
}

static int valid_for(ck_isa isa, ck_gemm_blocking b) {
    return b.mc >= tile_rows(isa) && b.mc <= 4096 && b.kc >= 8 && b.kc <= 4096 && b.kc % 8 == 0 &&
           b.nc >= tile_cols(isa) && b.nc <= 65536 && b.nc % tile_cols(isa) == 0;
}

static void init_blocking(void) {
    ck_cpu_info cpu;
    ck_cpu_describe(&cpu);
    ck_gemm_blocking override;
    int have = ck_gemm_parse_blocking(getenv("KERAS_GEMM_BLOCKING"), &override) == 0;
    for (ck_isa isa = CK_ISA_AVX2; isa <= CK_ISA_AVX512; isa++) {
        ck_gemm_blocking b = ck_gemm_blocking_for(isa, &cpu);
        if (have) {
            ck_gemm_blocking o = override;
            o.nc = (int)round_down(o.nc, tile_cols(isa));
            o.kc = (int)round_down(o.kc, 8);
            if (valid_for(isa, o)) b = o;
        }
        apply_blocking(isa, b);
    }
}
static void ensure_blocking(void) { pthread_once(&blocking_once, init_blocking); }

ck_gemm_blocking ck_gemm_get_blocking(ck_isa isa) {
    ensure_blocking();
    if (isa != CK_ISA_AVX2 && isa != CK_ISA_AVX512) return (ck_gemm_blocking){1, 1, 1};
    return current[isa];
}

int ck_gemm_set_blocking(ck_isa isa, ck_gemm_blocking b) {
    ensure_blocking();
    if ((isa != CK_ISA_AVX2 && isa != CK_ISA_AVX512) || !valid_for(isa, b)) return -1;
    apply_blocking(isa, b);
    return 0;
}

/* GEMM with a caller-supplied A packer (alpha 1, B not transposed), for
 * convolutions whose A is gathered on the fly. */

void ck_gemm_custom_a(ck_isa isa, const ck_gemm_args *args) {
    ensure_blocking();
    const gemm_impl *im = isa == CK_ISA_AVX512 ? &impl_avx512 : &impl_avx2;
    gemm_run(im, args);
}


static void ck_f32_gemm__avx2(const ck_gemm_args *g, void *workspace) {
    ensure_blocking();
    (void)workspace;
    if (ck_gemm_is_short(g)) ck_gemm_short(g);
    else gemm_run(&impl_avx2, g);
}

/* The 8-row tile when it wastes clearly fewer rows than the 14-row one. */
static const gemm_impl *avx512_impl_for_rows(int64_t m) {
    int64_t t14 = (m + 13) / 14, t8 = (m + 7) / 8;
    double fill14 = (double)m / (double)(14 * t14), fill8 = (double)m / (double)(8 * t8);
    return fill8 > fill14 + 0.05 ? &impl_avx512_8rows : &impl_avx512;
}

static void ck_f32_gemm__avx512(const ck_gemm_args *g, void *workspace) {
    ensure_blocking();
    (void)workspace;
    if (ck_gemm_is_short(g)) ck_gemm_short(g);
    else if (!g->user_pack_a && g->n >= 1 && g->n <= 14 && g->m >= 32 && g->k >= 16) ck_gemm_narrow(g);
    else gemm_run(avx512_impl_for_rows(g->m), g);
}

/* The whole of B in pack_b's panels, K block after K block: block pc holds
 * kc x round_up(n, NR) floats starting at pc * round_up(n, NR). The 14- and
 * 8-row AVX-512 tiles share NR and KC, so one packing serves both. */
size_t ck_f32_gemm_packed_b_floats(int64_t k, int64_t n) { return (size_t)(k * ((n + 31) / 32 * 32)); }

void ck_f32_gemm_pack_b(ck_isa isa, const ck_gemm_args *g, float *dst) {
    ensure_blocking();
    if (isa == CK_ISA_REF) return;  /* the reference reads b */
    const gemm_impl *im = isa == CK_ISA_AVX512 ? &impl_avx512 : &impl_avx2;
    int64_t npad = (g->n + im->nr - 1) / im->nr * im->nr;
    for (int64_t pc = 0; pc < g->k; pc += im->kc) {
        int64_t kc = g->k - pc < im->kc ? g->k - pc : im->kc;
        ck_gemm_pack_b(im->nr, g, pc, kc, 0, g->n, dst + pc * npad);
    }
}

ck_f32_gemm_fn ck_f32_gemm_kernel(ck_isa isa) {
    switch (isa) {
    case CK_ISA_REF: return ck_f32_gemm__ref;
    case CK_ISA_AVX2: return ck_f32_gemm__avx2;
    case CK_ISA_AVX512: return ck_f32_gemm__avx512;
    }
    return ck_f32_gemm__ref;
}

/* Packing buffers now come from the thread pool's per-thread scratch. */
size_t ck_f32_gemm_workspace_bytes(ck_isa isa) { (void)isa; return 0; }

size_t ck_f32_gemm_scratch_bytes(ck_isa isa) {
    ensure_blocking();
    return isa == CK_ISA_AVX512 ? impl_scratch_floats(&impl_avx512) * sizeof(float)
         : isa == CK_ISA_AVX2 ? impl_scratch_floats(&impl_avx2) * sizeof(float) : 0;
}

void ck_f32_gemm_tile_for_rows(ck_isa isa, int64_t m, int *mr, int *nr, int *kc) {
    ensure_blocking();
    if (isa != CK_ISA_AVX512) { ck_f32_gemm_tile(isa, mr, nr, kc); return; }
    const gemm_impl *im = avx512_impl_for_rows(m);
    *mr = im->mr; *nr = im->nr; *kc = im->kc;
}

void ck_f32_gemm_tile(ck_isa isa, int *mr, int *nr, int *kc) {
    ensure_blocking();
    const gemm_impl *im = isa == CK_ISA_AVX512 ? &impl_avx512 : &impl_avx2;
    if (isa == CK_ISA_REF) { *mr = 1; *nr = 1; *kc = 1; return; }
    *mr = im->mr; *nr = im->nr; *kc = im->kc;
}
