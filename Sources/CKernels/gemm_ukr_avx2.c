/* The AVX2 + FMA micro-kernel: 6 x 16, twelve ymm accumulators. */
#include "gemm_internal.h"

CK_AVX2 void ck_gemm_ukr_6x16(int64_t kc, const float *restrict a, const float *restrict b, float *c, int64_t ldc,
                             int64_t mr, int64_t nr, float alpha, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 8), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 a0 = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(a0, b0, c00); c01 = _mm256_fmadd_ps(a0, b1, c01);
        a0 = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(a0, b0, c10); c11 = _mm256_fmadd_ps(a0, b1, c11);
        a0 = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(a0, b0, c20); c21 = _mm256_fmadd_ps(a0, b1, c21);
        a0 = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(a0, b0, c30); c31 = _mm256_fmadd_ps(a0, b1, c31);
        a0 = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(a0, b0, c40); c41 = _mm256_fmadd_ps(a0, b1, c41);
        a0 = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(a0, b0, c50); c51 = _mm256_fmadd_ps(a0, b1, c51);
        a += 6;
        b += 16;
    }
    __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (mr == 6 && nr == 16) {
        for (int r = 0; r < 6; r++) {
            float *cr = c + r * ldc;
            __m256 y0 = _mm256_mul_ps(va, acc[r][0]), y1 = _mm256_mul_ps(va, acc[r][1]);
            if (beta != 0.0f) {
                y0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), y0);
                y1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), y1);
            }
            _mm256_storeu_ps(cr, y0);
            _mm256_storeu_ps(cr + 8, y1);
        }
        return;
    }
    float tile[6 * 16];
    for (int r = 0; r < 6; r++) {
        _mm256_storeu_ps(tile + r * 16, acc[r][0]);
        _mm256_storeu_ps(tile + r * 16 + 8, acc[r][1]);
    }
    for (int64_t r = 0; r < mr; r++)
        for (int64_t j = 0; j < nr; j++) {
            float *cc = c + r * ldc + j;
            *cc = beta != 0.0f ? alpha * tile[r * 16 + j] + beta * *cc : alpha * tile[r * 16 + j];
        }
}
