/* The AVX-512F micro-kernels: 14 x 32 (twenty-eight zmm accumulators) and,
 * for the transposed small-N path and 8-row blocking, R x 32 for R = 2 ... 12
 * from one template. The 14- and 8-row kernels hand a short last tile (fewer
 * rows than theirs) to the R-row kernel reading their wider panel, and also
 * come with the GEMM's common epilogue in their store step (`_bias_relu`:
 * + bias[j], then relu when asked), which saves the separate pass over each
 * finished tile; the bits are those of that pass (the sum stored, then the
 * bias added, then x > 0 ? x : +0). Their `_prefetch` entries
 * also fetch the lines the driver packs next while they compute. */
#include "gemm_internal.h"

/* The store step: y = alpha acc + beta C, then + bias, then relu. */
#define STORE512(ACC, ROWS)                                                                          \
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();         \
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);                        \
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;  \
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : zero;                                     \
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : zero;                                \
    _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++) { /* fixed indices: no spill */ \
        if (r >= mr) break;                                                                           \
        float *cr = c + r * ldc;                                                                      \
        __m512 y0 = _mm512_mul_ps(va, ACC[r][0]), y1 = _mm512_mul_ps(va, ACC[r][1]);                  \
        if (beta != 0.0f) {                                                                           \
            y0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), y0);                              \
            y1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), y1);                         \
        }                                                                                             \
        if (bias) { y0 = _mm512_add_ps(y0, bias0); y1 = _mm512_add_ps(y1, bias1); }                   \
        if (relu) {                                                                                   \
            y0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y0, zero, _CMP_GT_OQ), y0);                   \
            y1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y1, zero, _CMP_GT_OQ), y1);                   \
        }                                                                                             \
        _mm512_mask_storeu_ps(cr, m0, y0);                                                            \
        _mm512_mask_storeu_ps(cr + 16, m1, y1);                                                       \
    }

#define ROW512(r)                                                          \
    {                                                                      \
        __m512 av = _mm512_set1_ps(a[r]);                                  \
        acc##r##0 = _mm512_fmadd_ps(av, b0, acc##r##0);                    \
        acc##r##1 = _mm512_fmadd_ps(av, b1, acc##r##1);                    \
    }

/* The prefetch jobs' lines, spread evenly over a k loop: one line every
 * `step` steps, issued between chunks of the straight FMA loop (an `if`
 * inside that loop made clang spill the accumulators). */
typedef struct { const ck_gemm_prefetch *pf; int job; int64_t line, left, total, step; } pf_cursor;

static inline pf_cursor pf_start(const ck_gemm_prefetch *pf, int npf, int64_t kc) {
    pf_cursor q = {pf, 0, npf > 0 ? pf[0].first_line : 0, npf > 0 ? pf[0].lines : 0, 0, kc};
    for (int j = 0; j < npf; j++) q.total += pf[j].lines;
    if (q.total > 0) q.step = kc / q.total > 0 ? kc / q.total : 1;
    return q;
}

/* Issues the next line, if any, and returns where this chunk of steps from p ends. */
static inline int64_t pf_next(pf_cursor *q, int64_t p, int64_t kc) {
    if (q->total == 0) return kc;
    while (q->left == 0) { q->job++; q->line = q->pf[q->job].first_line; q->left = q->pf[q->job].lines; }
    const ck_gemm_prefetch *j = &q->pf[q->job];
    _mm_prefetch(j->base + q->line / j->lines_per_row * j->ld_bytes + q->line % j->lines_per_row * 64, _MM_HINT_T0);
    q->line++; q->left--; q->total--;
    return p + q->step < kc ? p + q->step : kc;
}

/* `as`: floats from one k-step of A's micro-panel to the next — MR for a
 * packed panel, lda for a transposed A read in place (gemm.c). */
CK_AVX512 CK_INLINE void ukr_14x32(int64_t kc, const float *restrict a, int64_t as, const float *restrict b, float *c, int64_t ldc,
                                   int64_t mr, int64_t nr, float alpha, float beta, const float *bias, int relu,
                                   const ck_gemm_prefetch *pf, int npf) {
    CK512_TILE_14x32_ACCUMULATORS;
    pf_cursor q = pf_start(pf, npf, kc);
    /* C rows are often 4 KiB apart (aliasing in L1): fetch them while the k loop runs. */
    for (int64_t r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc;) {
        int64_t end = pf_next(&q, p, kc);
        for (; p < end; p++) {
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
            _mm_prefetch((const char *)(a + as * 8), _MM_HINT_T0);
            ROW512(0) ROW512(1) ROW512(2) ROW512(3) ROW512(4) ROW512(5) ROW512(6)
            ROW512(7) ROW512(8) ROW512(9) ROW512(10) ROW512(11) ROW512(12) ROW512(13)
            a += as;
            b += 32;
        }
    }
    __m512 acc[14][2] = {{acc00, acc01}, {acc10, acc11}, {acc20, acc21}, {acc30, acc31}, {acc40, acc41},
                         {acc50, acc51}, {acc60, acc61}, {acc70, acc71}, {acc80, acc81}, {acc90, acc91},
                         {acc100, acc101}, {acc110, acc111}, {acc120, acc121}, {acc130, acc131}};
    STORE512(acc, 14)
}

/* Narrower tiles for the transposed small-N path, where the tile's rows are
 * C's few columns, and for the 8-row blocking: R rows x 32, from one
 * template (`as` as above). A 14- or 8-row kernel hands a short last tile
 * (m = 1024 leaves 2 rows after 73 tiles of 14) to the R-row one on its own
 * panel, so it costs a fraction of a full tile; the sums keep their order. */
#define UKR512_ROWS(R)                                                                                    \
    CK_AVX512 CK_INLINE void ukr_##R##_rows(int64_t kc, const float *restrict a, int64_t as, const float *restrict b, \
                                            float *c, int64_t ldc, int64_t mr, int64_t nr, float alpha,   \
                                            float beta, const float *bias, int relu, const ck_gemm_prefetch *pf, int npf) { \
        __m512 acc[R][2];                                                                                 \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                                  \
            acc[r][0] = _mm512_setzero_ps();                                                              \
            acc[r][1] = _mm512_setzero_ps();                                                              \
        }                                                                                                 \
        pf_cursor q = pf_start(pf, npf, kc);                                                              \
        for (int64_t p = 0; p < kc;) {                                                                    \
            for (int64_t end = pf_next(&q, p, kc); p < end; p++) {                                        \
                __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);                               \
                _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                          \
                    __m512 av = _mm512_set1_ps(a[r]);                                                     \
                    acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);                                       \
                    acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);                                       \
                }                                                                                         \
                a += as;                                                                                  \
                b += 32;                                                                                  \
            }                                                                                             \
        }                                                                                                 \
        STORE512(acc, R)                                                                                  \
    }
UKR512_ROWS(2) UKR512_ROWS(4) UKR512_ROWS(6) UKR512_ROWS(8) UKR512_ROWS(10) UKR512_ROWS(12)

#define UKR512_SMALL(R)                                                                                   \
    CK_AVX512 void ck_gemm_ukr_##R##x32(int64_t kc, const float *restrict a, const float *restrict b, float *c, \
                                       int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta) {      \
        ukr_##R##_rows(kc, a, R, b, c, ldc, mr, nr, alpha, beta, NULL, 0, NULL, 0);                       \
    }
UKR512_SMALL(2) UKR512_SMALL(4) UKR512_SMALL(6) UKR512_SMALL(10) UKR512_SMALL(12)

#define UKR512_PARAMS                                                                                     \
    int64_t kc, const float *restrict a, int64_t as, const float *restrict b, float *c, int64_t ldc, int64_t mr, \
        int64_t nr, float alpha, float beta, const float *bias, int relu
#define UKR512_ARGS kc, a, as, b, c, ldc, mr, nr, alpha, beta, bias, relu
/* A short tile (mr <= 12 rows): the narrowest even-row kernel that holds it. */
CK_AVX512 CK_INLINE void ukr_short(UKR512_PARAMS) {
    switch ((mr + 1) / 2) {
    case 1: ukr_2_rows(UKR512_ARGS, NULL, 0); return;
    case 2: ukr_4_rows(UKR512_ARGS, NULL, 0); return;
    case 3: ukr_6_rows(UKR512_ARGS, NULL, 0); return;
    case 4: ukr_8_rows(UKR512_ARGS, NULL, 0); return;
    case 5: ukr_10_rows(UKR512_ARGS, NULL, 0); return;
    default: ukr_12_rows(UKR512_ARGS, NULL, 0); return;
    }
}
CK_AVX512 CK_INLINE void ukr_14x32_any(UKR512_PARAMS, const ck_gemm_prefetch *pf, int npf) {
    if (mr < 13) ukr_short(UKR512_ARGS); else ukr_14x32(UKR512_ARGS, pf, npf);
}
CK_AVX512 CK_INLINE void ukr_8x32_any(UKR512_PARAMS, const ck_gemm_prefetch *pf, int npf) {
    if (mr < 7) ukr_short(UKR512_ARGS); else ukr_8_rows(UKR512_ARGS, pf, npf);
}
#undef UKR512_ARGS
#undef UKR512_PARAMS

/* The 14- and 8-row kernels' entry points: the table row's (A packed), the
 * one with bias and relu in its store step, and the general entry — A's
 * k-step `as` (a packed panel's MR, or a transposed A's lda, read in place),
 * also fetching lines of other matrices (`pf`) spread over the k loop: the
 * source of the B panel and of the A block the driver packs next, fetched
 * while this tile computes (gemm.c); a short tile's narrower kernel does not. */
#define UKR512_ENTRIES(MR)                                                                                      \
    CK_AVX512 void ck_gemm_ukr_##MR##x32(int64_t kc, const float *restrict a, const float *restrict b, float *c,  \
                                        int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta) {           \
        ukr_##MR##x32_any(kc, a, MR, b, c, ldc, mr, nr, alpha, beta, NULL, 0, NULL, 0);                         \
    }                                                                                                           \
    CK_AVX512 void ck_gemm_ukr_##MR##x32_bias_relu(int64_t kc, const float *restrict a, const float *restrict b,  \
                                                  float *c, int64_t ldc, int64_t mr, int64_t nr, float alpha,     \
                                                  float beta, const float *bias, int relu) {                      \
        ukr_##MR##x32_any(kc, a, MR, b, c, ldc, mr, nr, alpha, beta, bias, relu, NULL, 0);                      \
    }                                                                                                           \
    CK_AVX512 void ck_gemm_ukr_##MR##x32_prefetch(int64_t kc, const float *restrict a, int64_t as,               \
                                                 const float *restrict b, float *c, int64_t ldc, int64_t mr,      \
                                                 int64_t nr, float alpha, float beta, const float *bias, int relu, \
                                                 const ck_gemm_prefetch *pf, int npf) {                           \
        ukr_##MR##x32_any(kc, a, as, b, c, ldc, mr, nr, alpha, beta, bias, relu, pf, npf);                      \
    }
UKR512_ENTRIES(14) UKR512_ENTRIES(8)
