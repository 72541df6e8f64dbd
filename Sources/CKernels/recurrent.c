/* LSTM cell, the pointwise part after the GEMMs. z holds the pre-activations
 * of one step in Keras's gate order i, f, c, o: [rows, 4*units]. Two ops, so
 * that each IR value has one result:
 *   op 0 (cell state): c = sigmoid(z_f) * c_prev + sigmoid(z_i) * tanh(z_c)
 *   op 1 (hidden):     h = sigmoid(z_o) * tanh(c)
 * `state` is c_prev for op 0 and c for op 1. One pass over z replaces the
 * slices, three activations and four products of the unfused graph. */
#include "ck_internal.h"

static inline float ref_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static void ck_f32_lstm_cell_state__ref(int64_t rows, int64_t units, const float *restrict z,
                                        const float *restrict c_prev, float *restrict c) {
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * 4 * units;
        for (int64_t j = 0; j < units; j++) {
            float i = ref_sigmoid(zr[j]), f = ref_sigmoid(zr[units + j]), g = tanhf(zr[2 * units + j]);
            c[r * units + j] = f * c_prev[r * units + j] + i * g;
        }
    }
}

static void ck_f32_lstm_hidden__ref(int64_t rows, int64_t units, const float *restrict z,
                                    const float *restrict c, float *restrict h) {
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * 4 * units;
        for (int64_t j = 0; j < units; j++) h[r * units + j] = ref_sigmoid(zr[3 * units + j]) * tanhf(c[r * units + j]);
    }
}

CK_AVX2 static void ck_f32_lstm_cell_state__avx2(int64_t rows, int64_t units, const float *restrict z,
                                                 const float *restrict c_prev, float *restrict c) {
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * 4 * units;
        const float *cp = c_prev + r * units;
        float *cr = c + r * units;
        int64_t j = 0;
        for (; j + 8 <= units; j += 8) {
            __m256 i = ck256_sigmoid(_mm256_loadu_ps(zr + j));
            __m256 f = ck256_sigmoid(_mm256_loadu_ps(zr + units + j));
            __m256 g = ck256_tanh(_mm256_loadu_ps(zr + 2 * units + j));
            _mm256_storeu_ps(cr + j, _mm256_fmadd_ps(f, _mm256_loadu_ps(cp + j), _mm256_mul_ps(i, g)));
        }
        if (j < units) {
            __m256i m = ck256_tail_mask((size_t)(units - j));
            __m256 i = ck256_sigmoid(_mm256_maskload_ps(zr + j, m));
            __m256 f = ck256_sigmoid(_mm256_maskload_ps(zr + units + j, m));
            __m256 g = ck256_tanh(_mm256_maskload_ps(zr + 2 * units + j, m));
            _mm256_maskstore_ps(cr + j, m, _mm256_fmadd_ps(f, _mm256_maskload_ps(cp + j, m), _mm256_mul_ps(i, g)));
        }
    }
}

CK_AVX2 static void ck_f32_lstm_hidden__avx2(int64_t rows, int64_t units, const float *restrict z,
                                             const float *restrict c, float *restrict h) {
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * 4 * units + 3 * units;
        const float *cr = c + r * units;
        float *hr = h + r * units;
        int64_t j = 0;
        for (; j + 8 <= units; j += 8)
            _mm256_storeu_ps(hr + j, _mm256_mul_ps(ck256_sigmoid(_mm256_loadu_ps(zr + j)), ck256_tanh(_mm256_loadu_ps(cr + j))));
        if (j < units) {
            __m256i m = ck256_tail_mask((size_t)(units - j));
            _mm256_maskstore_ps(hr + j, m, _mm256_mul_ps(ck256_sigmoid(_mm256_maskload_ps(zr + j, m)),
                                                         ck256_tanh(_mm256_maskload_ps(cr + j, m))));
        }
    }
}

ck_f32_lstm_fn ck_f32_lstm_kernel(int op, ck_isa isa) {
    if (op == 0) return CK_PICK2(isa, ck_f32_lstm_cell_state__ref, ck_f32_lstm_cell_state__avx2);
    if (op == 1) return CK_PICK2(isa, ck_f32_lstm_hidden__ref, ck_f32_lstm_hidden__avx2);
    return NULL;
}
