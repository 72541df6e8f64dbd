/* Data movement over 32-bit elements: strided N-d copy (transpose, slice,
 * broadcast, concat, pad all lower to it), fill, and f32 <-> i32 casts. */
#include "ck_internal.h"
#include <limits.h>

/* ---- strided copy ---- */

typedef void (*row_fn)(int64_t n, const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds);

static void row_ref(int64_t n, const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds) {
    for (int64_t i = 0; i < n; i++) dst[i * ds] = src[i * ss];
}

CK_AVX2 static void row_avx2(int64_t n, const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds) {
    int64_t i = 0;
    if (ds == 1 && ss == 1) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_si256((__m256i *)(dst + i), _mm256_loadu_si256((const __m256i *)(src + i)));
    } else if (ds == 1 && ss == 0) {
        __m256i v = _mm256_set1_epi32((int)src[0]);
        for (; i + 8 <= n; i += 8) _mm256_storeu_si256((__m256i *)(dst + i), v);
    } else if (ds == 1 && ss > 0 && ss < (INT32_MAX / 8)) {
        __m256i off = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)ss));
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_si256((__m256i *)(dst + i),
                                _mm256_i32gather_epi32((const int *)(src + i * ss), off, 4));
    }
    for (; i < n; i++) dst[i * ds] = src[i * ss];
}

static void copy_nd(row_fn row, const ck_copy_desc *d, const uint32_t *src, uint32_t *dst) {
    int r = d->rank;
    if (r == 0) { dst[0] = src[0]; return; }
    int64_t inner = d->shape[r - 1];
    int64_t outer = 1;
    for (int k = 0; k < r - 1; k++) outer *= d->shape[k];
    if (inner == 0 || outer == 0) return;
    int64_t idx[CK_MAX_RANK] = {0};
    int64_t os = 0, od = 0;
    for (int64_t o = 0; o < outer; o++) {
        row(inner, src + os, d->src_stride[r - 1], dst + od, d->dst_stride[r - 1]);
        for (int k = r - 2; k >= 0; k--) {
            idx[k]++;
            os += d->src_stride[k]; od += d->dst_stride[k];
            if (idx[k] < d->shape[k]) break;
            os -= d->src_stride[k] * idx[k]; od -= d->dst_stride[k] * idx[k];
            idx[k] = 0;
        }
    }
}

static void ck_x32_copy_nd__ref(const ck_copy_desc *d, const uint32_t *src, uint32_t *dst) {
    copy_nd(row_ref, d, src, dst);
}
static void ck_x32_copy_nd__avx2(const ck_copy_desc *d, const uint32_t *src, uint32_t *dst) {
    copy_nd(row_avx2, d, src, dst);
}

ck_x32_copy_fn ck_x32_copy_kernel(ck_isa isa) {
    return CK_PICK2(isa, ck_x32_copy_nd__ref, ck_x32_copy_nd__avx2);
}

/* ---- fill ---- */

static void ck_x32_fill__ref(size_t n, uint32_t value, uint32_t *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = value;
}

CK_AVX2 static void ck_x32_fill__avx2(size_t n, uint32_t value, uint32_t *dst) {
    __m256i v = _mm256_set1_epi32((int)value);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_si256((__m256i *)(dst + i), v);
    for (; i < n; i++) dst[i] = value;
}

ck_x32_fill_fn ck_x32_fill_kernel(ck_isa isa) {
    return CK_PICK2(isa, ck_x32_fill__ref, ck_x32_fill__avx2);
}

/* ---- casts ---- */

/* Truncating, saturating; NaN becomes INT32_MIN (x86's "integer indefinite"),
 * so a NaN id is out of range for every gather instead of silently id 0. */
static inline int32_t f32_to_i32(float x) {
    if (x != x) return INT32_MIN;
    if (x >= 2147483647.0f) return INT32_MAX;
    if (x <= -2147483648.0f) return INT32_MIN;
    return (int32_t)x;
}

static void ck_cast_f32_i32__ref(size_t n, const void *x, void *y) {
    const float *a = x;
    int32_t *b = y;
    for (size_t i = 0; i < n; i++) b[i] = f32_to_i32(a[i]);
}
static void ck_cast_i32_f32__ref(size_t n, const void *x, void *y) {
    const int32_t *a = x;
    float *b = y;
    for (size_t i = 0; i < n; i++) b[i] = (float)a[i];
}

CK_AVX2 static void ck_cast_f32_i32__avx2(size_t n, const void *x, void *y) {
    const float *a = x;
    int32_t *b = y;
    size_t i = 0;
    const __m256 hi = _mm256_set1_ps(2147483647.0f), lo = _mm256_set1_ps(-2147483648.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(a + i);
        __m256i r = _mm256_cvttps_epi32(v);
        r = _mm256_blendv_epi8(r, _mm256_set1_epi32(INT32_MAX), _mm256_castps_si256(_mm256_cmp_ps(v, hi, _CMP_GE_OQ)));
        r = _mm256_blendv_epi8(r, _mm256_set1_epi32(INT32_MIN), _mm256_castps_si256(_mm256_cmp_ps(v, lo, _CMP_LE_OQ)));
        r = _mm256_blendv_epi8(r, _mm256_set1_epi32(INT32_MIN), _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
        _mm256_storeu_si256((__m256i *)(b + i), r);
    }
    for (; i < n; i++) b[i] = f32_to_i32(a[i]);
}
CK_AVX2 static void ck_cast_i32_f32__avx2(size_t n, const void *x, void *y) {
    const int32_t *a = x;
    float *b = y;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(b + i, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(a + i))));
    for (; i < n; i++) b[i] = (float)a[i];
}

ck_cast_fn ck_cast_kernel(int to_i32, ck_isa isa) {
    if (isa == CK_ISA_REF) return to_i32 ? ck_cast_f32_i32__ref : ck_cast_i32_f32__ref;
    return to_i32 ? ck_cast_f32_i32__avx2 : ck_cast_i32_f32__avx2;
}
