/* A finished tile's bias and relu in one pass, for the GEMM's and the
 * convolutions' epilogues (the common case: no residual, relu or no
 * activation): y + bias rounded once, then relu as the vector kernel
 * computes it (x > 0 ? x : +0, NaN to 0), so the bits equal those of the
 * separate add and relu kernels, without a call per row. */
#include "ck_internal.h"

CK_AVX2 static void bias_relu_256(float *y, int64_t ld, int64_t rows, int64_t cols, const float *bias, int relu) {
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        float *row = y + r * ld;
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m256 v = _mm256_loadu_ps(row + c);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
            if (relu) v = _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
            _mm256_storeu_ps(row + c, v);
        }
        for (; c < cols; c++) {
            float v = row[c];
            if (bias) v = v + bias[c];
            if (relu) v = v > 0 ? v : 0.0f;
            row[c] = v;
        }
    }
}

/* A full 32-column tile (the AVX-512 GEMM's and convolutions' width): the
 * bias's two vectors loaded once, no masks, no tests per vector. */
CK_AVX512 CK_INLINE void bias_relu_512x32(float *y, int64_t ld, int64_t rows, const float *bias, int relu) {
    const __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps(), b1 = bias ? _mm512_loadu_ps(bias + 16) : b0;
    const __m512 zero = _mm512_setzero_ps();
    if (relu) {
        for (int64_t r = 0; r < rows; r++) {
            float *row = y + r * ld;
            __m512 v0 = _mm512_add_ps(_mm512_loadu_ps(row), b0), v1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), b1);
            _mm512_storeu_ps(row, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v0, zero, _CMP_GT_OQ), v0));
            _mm512_storeu_ps(row + 16, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v1, zero, _CMP_GT_OQ), v1));
        }
    } else {
        for (int64_t r = 0; r < rows; r++) {
            float *row = y + r * ld;
            _mm512_storeu_ps(row, _mm512_add_ps(_mm512_loadu_ps(row), b0));
            _mm512_storeu_ps(row + 16, _mm512_add_ps(_mm512_loadu_ps(row + 16), b1));
        }
    }
}

CK_AVX512 static void bias_relu_512(float *y, int64_t ld, int64_t rows, int64_t cols, const float *bias, int relu) {
    if (cols == 32 && (bias || relu)) { bias_relu_512x32(y, ld, rows, bias, relu); return; }
    for (int64_t r = 0; r < rows; r++) {
        float *row = y + r * ld;
        for (int64_t c = 0; c < cols; c += 16) {
            __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(m, row + c);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c));
            if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v);
            _mm512_mask_storeu_ps(row + c, m, v);
        }
    }
}

void ck_bias_relu_tile(ck_isa isa, float *y, int64_t ld, int64_t rows, int64_t cols, const float *bias, int relu) {
    CK_PICK(isa, bias_relu_256, bias_relu_256, bias_relu_512)(y, ld, rows, cols, bias, relu);
}
