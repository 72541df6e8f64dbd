/* Row gather (embedding lookup) and its transpose, scatter-add. */
#include "ck_internal.h"

static int64_t ck_f32_gather_rows__ref(size_t nidx, const int32_t *restrict idx, const float *restrict table,
                                       size_t rows, size_t width, float *restrict out) {
    int64_t bad = 0;
    for (size_t i = 0; i < nidx; i++) {
        int32_t r = idx[i];
        float *o = out + i * width;
        if (r < 0 || (size_t)r >= rows) {
            bad++;
            for (size_t j = 0; j < width; j++) o[j] = 0.0f;
            continue;
        }
        for (size_t j = 0; j < width; j++) o[j] = table[(size_t)r * width + j];
    }
    return bad;
}

CK_AVX2 static int64_t ck_f32_gather_rows__avx2(size_t nidx, const int32_t *restrict idx,
                                                const float *restrict table, size_t rows, size_t width,
                                                float *restrict out) {
    int64_t bad = 0;
    /* Rows are scattered through a table that may be far larger than the
     * caches (an embedding): fetch the row GATHER_AHEAD indices ahead. */
    enum { GATHER_AHEAD = 8 };
    for (size_t i = 0; i < nidx; i++) {
        if (i + GATHER_AHEAD < nidx) {
            int32_t ra = idx[i + GATHER_AHEAD];
            if (ra >= 0 && (size_t)ra < rows)
                for (size_t b = 0; b < width * sizeof(float); b += 64) _mm_prefetch((const char *)(table + (size_t)ra * width) + b, _MM_HINT_T0);
        }
        int32_t r = idx[i];
        float *o = out + i * width;
        size_t j = 0;
        if (r < 0 || (size_t)r >= rows) {
            bad++;
            for (; j + 8 <= width; j += 8) _mm256_storeu_ps(o + j, _mm256_setzero_ps());
            for (; j < width; j++) o[j] = 0.0f;
            continue;
        }
        const float *t = table + (size_t)r * width;
        for (; j + 8 <= width; j += 8) _mm256_storeu_ps(o + j, _mm256_loadu_ps(t + j));
        for (; j < width; j++) o[j] = t[j];
    }
    return bad;
}

static int64_t ck_f32_scatter_add_rows__ref(size_t nidx, const int32_t *restrict idx, const float *restrict upd,
                                            size_t rows, size_t width, float *restrict out) {
    int64_t bad = 0;
    for (size_t k = 0; k < rows * width; k++) out[k] = 0.0f;
    for (size_t i = 0; i < nidx; i++) {
        int32_t r = idx[i];
        if (r < 0 || (size_t)r >= rows) { bad++; continue; }
        for (size_t j = 0; j < width; j++) out[(size_t)r * width + j] += upd[i * width + j];
    }
    return bad;
}

CK_AVX2 static int64_t ck_f32_scatter_add_rows__avx2(size_t nidx, const int32_t *restrict idx,
                                                     const float *restrict upd, size_t rows, size_t width,
                                                     float *restrict out) {
    int64_t bad = 0;
    size_t total = rows * width, k = 0;
    for (; k + 8 <= total; k += 8) _mm256_storeu_ps(out + k, _mm256_setzero_ps());
    for (; k < total; k++) out[k] = 0.0f;
    for (size_t i = 0; i < nidx; i++) {
        int32_t r = idx[i];
        if (r < 0 || (size_t)r >= rows) { bad++; continue; }
        float *o = out + (size_t)r * width;
        const float *u = upd + i * width;
        size_t j = 0;
        for (; j + 8 <= width; j += 8) _mm256_storeu_ps(o + j, _mm256_add_ps(_mm256_loadu_ps(o + j), _mm256_loadu_ps(u + j)));
        for (; j < width; j++) o[j] += u[j];
    }
    return bad;
}

ck_f32_gather_fn ck_f32_gather_kernel(ck_isa isa) {
    return CK_PICK2(isa, ck_f32_gather_rows__ref, ck_f32_gather_rows__avx2);
}
ck_f32_scatter_add_fn ck_f32_scatter_add_kernel(ck_isa isa) {
    return CK_PICK2(isa, ck_f32_scatter_add_rows__ref, ck_f32_scatter_add_rows__avx2);
}
