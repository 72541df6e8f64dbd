/* The AVX-512F micro-kernels: 14 x 32 (twenty-eight zmm accumulators) and,
 * for the transposed small-N path and 8-row blocking, R x 32 for R = 2 ... 12
 * from one template. The 14- and 8-row kernels also come with the GEMM's
 * common epilogue in their store step (`_bias_relu`: + bias[j], then relu
 * when asked), which saves the separate pass over each finished tile; the
 * bits are those of that pass (the sum stored, then the bias added, then
 * x > 0 ? x : +0). */
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

CK_AVX512 CK_INLINE void ukr_14x32(int64_t kc, const float *restrict a, const float *restrict b, float *c, int64_t ldc,
                                   int64_t mr, int64_t nr, float alpha, float beta, const float *bias, int relu) {
    CK512_TILE_14x32_ACCUMULATORS;
    /* C rows are often 4 KiB apart (aliasing in L1): fetch them while the k loop runs. */
    for (int64_t r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        _mm_prefetch((const char *)(a + 14 * 8), _MM_HINT_T0);
        ROW512(0) ROW512(1) ROW512(2) ROW512(3) ROW512(4) ROW512(5) ROW512(6)
        ROW512(7) ROW512(8) ROW512(9) ROW512(10) ROW512(11) ROW512(12) ROW512(13)
        a += 14;
        b += 32;
    }
    __m512 acc[14][2] = {{acc00, acc01}, {acc10, acc11}, {acc20, acc21}, {acc30, acc31}, {acc40, acc41},
                         {acc50, acc51}, {acc60, acc61}, {acc70, acc71}, {acc80, acc81}, {acc90, acc91},
                         {acc100, acc101}, {acc110, acc111}, {acc120, acc121}, {acc130, acc131}};
    STORE512(acc, 14)
}

CK_AVX512 void ck_gemm_ukr_14x32(int64_t kc, const float *restrict a, const float *restrict b, float *c, int64_t ldc,
                                int64_t mr, int64_t nr, float alpha, float beta) {
    ukr_14x32(kc, a, b, c, ldc, mr, nr, alpha, beta, NULL, 0);
}

CK_AVX512 void ck_gemm_ukr_14x32_bias_relu(int64_t kc, const float *restrict a, const float *restrict b, float *c, int64_t ldc,
                                          int64_t mr, int64_t nr, float alpha, float beta, const float *bias, int relu) {
    ukr_14x32(kc, a, b, c, ldc, mr, nr, alpha, beta, bias, relu);
}

/* Narrower tiles for the transposed small-N path, where the tile's rows are
 * C's few columns, and for the 8-row blocking: R rows x 32, from one template. */
#define UKR512_SMALL(R)                                                                                   \
    CK_AVX512 CK_INLINE void ukr_##R##x32(int64_t kc, const float *restrict a, const float *restrict b, float *c, \
                                          int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta,   \
                                          const float *bias, int relu) {                                  \
        __m512 acc[R][2];                                                                                 \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                                  \
            acc[r][0] = _mm512_setzero_ps();                                                              \
            acc[r][1] = _mm512_setzero_ps();                                                              \
        }                                                                                                 \
        for (int64_t p = 0; p < kc; p++) {                                                                \
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);                                   \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                              \
                __m512 av = _mm512_set1_ps(a[r]);                                                         \
                acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);                                           \
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);                                           \
            }                                                                                             \
            a += R;                                                                                       \
            b += 32;                                                                                      \
        }                                                                                                 \
        STORE512(acc, R)                                                                                  \
    }                                                                                                     \
    CK_AVX512 void ck_gemm_ukr_##R##x32(int64_t kc, const float *restrict a, const float *restrict b, float *c, \
                                       int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta) {      \
        ukr_##R##x32(kc, a, b, c, ldc, mr, nr, alpha, beta, NULL, 0);                                     \
    }
UKR512_SMALL(2) UKR512_SMALL(4) UKR512_SMALL(6) UKR512_SMALL(8) UKR512_SMALL(10) UKR512_SMALL(12)

CK_AVX512 void ck_gemm_ukr_8x32_bias_relu(int64_t kc, const float *restrict a, const float *restrict b, float *c, int64_t ldc,
                                         int64_t mr, int64_t nr, float alpha, float beta, const float *bias, int relu) {
    ukr_8x32(kc, a, b, c, ldc, mr, nr, alpha, beta, bias, relu);
}
