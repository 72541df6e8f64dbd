/* SGEMM shapes that skip the blocked kernel's packing (gemm.c calls them):
 * AVX-512 narrow outputs (n <= 14) and short A (m <= 4). */
#include "gemm_internal.h"
#include <string.h>

/* ---- AVX-512 narrow outputs (n <= 14): no packing of the large operand ----
 *
 * A not transposed: C[i, j] = dot(A[i, :], Bt[j, :]) with Bt = op(B)^T made
 * contiguous once (n x K, small); two rows of A against every column, 16
 * lanes of K at a time, each accumulator reduced once at the end.
 * A transposed: 32 consecutive rows of C per step, read straight from A's
 * rows (contiguous along M), with op(B)[k, j] broadcast. */

typedef struct narrow_job { const ck_gemm_args *g; const float *bt; } narrow_job;

/* One kernel per column count N, so the accumulators stay in registers. */
#define NARROW_DOT(N)                                                                                       \
    CK_AVX512 static void narrow_dot_##N(const ck_gemm_args *g, const float *bt, int64_t i0, int64_t rows) {  \
        int64_t K = g->k;                                                                                   \
        __m512 acc0[N], acc1[N];                                                                            \
        _Pragma("clang loop unroll(full)") for (int j = 0; j < N; j++) {                                    \
            acc0[j] = _mm512_setzero_ps();                                                                  \
            acc1[j] = _mm512_setzero_ps();                                                                  \
        }                                                                                                   \
        const float *a0 = g->a + i0 * g->lda, *a1 = g->a + (i0 + (rows > 1 ? 1 : 0)) * g->lda;            \
        int64_t k = 0;                                                                                      \
        for (; k + 16 <= K; k += 16) {                                                                      \
            __m512 x0 = _mm512_loadu_ps(a0 + k), x1 = _mm512_loadu_ps(a1 + k);                              \
            _Pragma("clang loop unroll(full)") for (int j = 0; j < N; j++) {                                \
                __m512 b = _mm512_loadu_ps(bt + j * K + k);                                                 \
                acc0[j] = _mm512_fmadd_ps(x0, b, acc0[j]);                                                  \
                acc1[j] = _mm512_fmadd_ps(x1, b, acc1[j]);                                                  \
            }                                                                                               \
        }                                                                                                   \
        if (k < K) {                                                                                        \
            __mmask16 m = (__mmask16)((1u << (K - k)) - 1);                                                 \
            __m512 x0 = _mm512_maskz_loadu_ps(m, a0 + k), x1 = _mm512_maskz_loadu_ps(m, a1 + k);            \
            _Pragma("clang loop unroll(full)") for (int j = 0; j < N; j++) {                                \
                __m512 b = _mm512_maskz_loadu_ps(m, bt + j * K + k);                                        \
                acc0[j] = _mm512_fmadd_ps(x0, b, acc0[j]);                                                  \
                acc1[j] = _mm512_fmadd_ps(x1, b, acc1[j]);                                                  \
            }                                                                                               \
        }                                                                                                   \
        __m512 s0 = ck512_sum16(acc0, N), s1 = ck512_sum16(acc1, N), va = _mm512_set1_ps(g->alpha);             \
        __mmask16 m = (__mmask16)((1u << N) - 1);                                                           \
        float *c0 = g->c + i0 * g->ldc;                                                                     \
        s0 = _mm512_mul_ps(va, s0);                                                                         \
        if (g->beta != 0.0f) s0 = _mm512_fmadd_ps(_mm512_set1_ps(g->beta), _mm512_maskz_loadu_ps(m, c0), s0); \
        _mm512_mask_storeu_ps(c0, m, s0);                                                                   \
        if (rows > 1) {                                                                                     \
            float *c1 = c0 + g->ldc;                                                                        \
            s1 = _mm512_mul_ps(va, s1);                                                                     \
            if (g->beta != 0.0f) s1 = _mm512_fmadd_ps(_mm512_set1_ps(g->beta), _mm512_maskz_loadu_ps(m, c1), s1); \
            _mm512_mask_storeu_ps(c1, m, s1);                                                               \
        }                                                                                                   \
    }

#define NARROW_COLS(N)                                                                                      \
    CK_AVX512 static void narrow_cols_##N(const ck_gemm_args *g, int64_t i0, int64_t rows) {                 \
        int64_t K = g->k;                                                                                   \
        __m512 acc0[N], acc1[N];                                                                            \
        _Pragma("clang loop unroll(full)") for (int j = 0; j < N; j++) {                                    \
            acc0[j] = _mm512_setzero_ps();                                                                  \
            acc1[j] = _mm512_setzero_ps();                                                                  \
        }                                                                                                   \
        __mmask16 m0 = rows >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rows) - 1);                     \
        __mmask16 m1 = rows >= 32 ? (__mmask16)0xFFFF : rows > 16 ? (__mmask16)((1u << (rows - 16)) - 1) : (__mmask16)0; \
        int64_t bs = g->trans_b ? 1 : g->ldb, bj = g->trans_b ? g->ldb : 1;                                 \
        for (int64_t k = 0; k < K; k++) {                                                                   \
            const float *arow = g->a + k * g->lda + i0;                                                     \
            const float *brow = g->b + k * bs;                                                              \
            __m512 x0 = _mm512_maskz_loadu_ps(m0, arow), x1 = _mm512_maskz_loadu_ps(m1, arow + 16);         \
            _Pragma("clang loop unroll(full)") for (int j = 0; j < N; j++) {                                \
                __m512 b = _mm512_set1_ps(brow[j * bj]);                                                    \
                acc0[j] = _mm512_fmadd_ps(x0, b, acc0[j]);                                                  \
                acc1[j] = _mm512_fmadd_ps(x1, b, acc1[j]);                                                  \
            }                                                                                               \
        }                                                                                                   \
        float col[32];                                                                                      \
        for (int j = 0; j < N; j++) {                                                                       \
            _mm512_storeu_ps(col, acc0[j]);                                                                 \
            _mm512_storeu_ps(col + 16, acc1[j]);                                                            \
            for (int64_t r = 0; r < rows; r++) {                                                            \
                float *c = g->c + (i0 + r) * g->ldc + j;                                                    \
                float v = g->alpha * col[r];                                                                \
                *c = g->beta == 0.0f ? v : v + g->beta * *c;                                                \
            }                                                                                               \
        }                                                                                                   \
    }

#define NARROW_ALL(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14)
NARROW_ALL(NARROW_DOT)
NARROW_ALL(NARROW_COLS)

typedef void (*narrow_dot_fn)(const ck_gemm_args *, const float *, int64_t, int64_t);
typedef void (*narrow_cols_fn)(const ck_gemm_args *, int64_t, int64_t);
#define DOT_ENTRY(N) narrow_dot_##N,
#define COLS_ENTRY(N) narrow_cols_##N,
static const narrow_dot_fn narrow_dot[14] = {NARROW_ALL(DOT_ENTRY)};
static const narrow_cols_fn narrow_cols[14] = {NARROW_ALL(COLS_ENTRY)};

static void narrow_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const narrow_job *j = ctx;
    const ck_gemm_args *g = j->g;
    int64_t step = g->trans_a ? 32 : 2;
    for (int64_t t = begin; t < end; t++) {
        int64_t i0 = t * step, rows = g->m - i0 < step ? g->m - i0 : step;
        if (g->trans_a) narrow_cols[g->n - 1](g, i0, rows); else narrow_dot[g->n - 1](g, j->bt, i0, rows);
        if (ck_gemm_has_epilogue(g)) ck_gemm_epilogue(g, i0, rows, 0, g->n);
    }
}

CK_AVX512 void ck_gemm_narrow(const ck_gemm_args *g) {
    const float *bt = NULL;
    if (!g->trans_a) {
        if (g->trans_b) {
            bt = g->b;  /* already [n, K] with rows contiguous... when ldb == K */
            if (g->ldb != g->k) bt = NULL;
        }
        if (!bt) {
            float *t = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)g->n * g->k * sizeof(float));
            if (g->trans_b)
                for (int64_t j = 0; j < g->n; j++) memcpy(t + j * g->k, g->b + j * g->ldb, (size_t)g->k * sizeof(float));
            else
                ck256_transpose(g->b, g->ldb, g->k, g->n, t, g->k);  /* [K, n] -> [n, K] */
            bt = t;
        }
    }
    narrow_job job = {g, bt};
    int64_t step = g->trans_a ? 32 : 2;
    ck_parallel_for((g->m + step - 1) / step, 2 * g->m * g->n * g->k < (1 << 21), narrow_task, &job);
}

/* ---- short A (m <= 4): one pass over B, no packing ----
 *
 * A handful of rows (one-sample prediction, a Dense layer at batch 1) makes
 * packing B cost more than the product: B would be read, written and read
 * again. Here B is streamed once. Each task owns SHORT_COLS columns of C and
 * sums over K in order, so the result does not depend on the thread count.
 * B's bytes, not the FMAs, set the time, so the threads split B from 128K
 * FLOPs (a 128 x 512 recurrent kernel, 256 KB): each core then reads half
 * of it from its own L2, which pays for the wait at the end of the step. */
#define SHORT_M 4
#define SHORT_COLS 256

CK_AVX2 static void short_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const ck_gemm_args *g = ctx;
    const int64_t m = g->m, k = g->k;
    for (int64_t t = begin; t < end; t++) {
        const int64_t j0 = t * SHORT_COLS, w = g->n - j0 < SHORT_COLS ? g->n - j0 : SHORT_COLS;
        float acc[SHORT_M][SHORT_COLS] __attribute__((aligned(32)));
        if (!g->trans_b) {
            /* B is K x N: acc[i, :] += A[i, p] * B[p, j0:j0+w] */
            for (int64_t i = 0; i < m; i++) for (int64_t j = 0; j < w; j++) acc[i][j] = 0.0f;
            const int64_t wv = w & ~(int64_t)7;
            for (int64_t p = 0; p < k; p++) {
                const float *brow = g->b + p * g->ldb + j0;
                for (int64_t i = 0; i < m; i++) {
                    const float a = g->trans_a ? g->a[p * g->lda + i] : g->a[i * g->lda + p];
                    const __m256 av = _mm256_set1_ps(a);
                    float *ar = acc[i];
                    for (int64_t j = 0; j < wv; j += 8)
                        _mm256_store_ps(ar + j, _mm256_fmadd_ps(av, _mm256_loadu_ps(brow + j), _mm256_load_ps(ar + j)));
                    for (int64_t j = wv; j < w; j++) ar[j] = fmaf(a, brow[j], ar[j]);
                }
            }
        } else {
            /* B is N x K: acc[i, j] = dot(A[i, :], B[j, :]) in a fixed lane order */
            for (int64_t j = 0; j < w; j++) {
                const float *brow = g->b + (j0 + j) * g->ldb;
                for (int64_t i = 0; i < m; i++) {
                    float sum;
                    if (!g->trans_a) {
                        const float *arow = g->a + i * g->lda;
                        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
                        int64_t p = 0;
                        for (; p + 16 <= k; p += 16) {
                            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(arow + p), _mm256_loadu_ps(brow + p), s0);
                            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(arow + p + 8), _mm256_loadu_ps(brow + p + 8), s1);
                        }
                        float lanes[8] __attribute__((aligned(32)));
                        _mm256_store_ps(lanes, _mm256_add_ps(s0, s1));
                        sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
                        for (; p < k; p++) sum = fmaf(arow[p], brow[p], sum);
                    } else {
                        sum = 0.0f;
                        for (int64_t p = 0; p < k; p++) sum = fmaf(g->a[p * g->lda + i], brow[p], sum);
                    }
                    acc[i][j] = sum;
                }
            }
        }
        for (int64_t i = 0; i < m; i++) {
            float *c = g->c + i * g->ldc + j0;
            if (g->beta == 0.0f) for (int64_t j = 0; j < w; j++) c[j] = g->alpha * acc[i][j];
            else for (int64_t j = 0; j < w; j++) c[j] = g->alpha * acc[i][j] + g->beta * c[j];
        }
        if (ck_gemm_has_epilogue(g)) ck_gemm_epilogue(g, 0, m, j0, w);
    }
}

int ck_gemm_is_short(const ck_gemm_args *g) { return !g->user_pack_a && g->m >= 1 && g->m <= SHORT_M && g->n >= 1 && g->k > 0; }

void ck_gemm_short(const ck_gemm_args *g) {
    ck_parallel_for((g->n + SHORT_COLS - 1) / SHORT_COLS, 2 * g->m * g->n * g->k < (1 << 17), short_task, (void *)g);
}

/* Packing scratch is per pool thread, so callers on different OS threads take turns. */
