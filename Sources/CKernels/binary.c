/* Elementwise binary kernels with broadcasting, and select.
 *
 * The innermost loop takes each operand with stride 0 (broadcast) or 1
 * (contiguous); ck_*_nd walks the outer dimensions. Comparisons write 1 or 0
 * in the operands' dtype. */
#include "ck_internal.h"
#include "ck_kernel_lists.h"
#include "ck_threads.h"

/* ---- f32 reference ---- */

static inline float ref_f32(ck_binary_op op, float a, float b) {
    switch (op) {
    case CK_BINARY_ADD: return a + b;
    case CK_BINARY_SUB: return a - b;
    case CK_BINARY_MUL: return a * b;
    case CK_BINARY_DIV: return a / b;
    case CK_BINARY_MAX: return a != a ? a : (a >= b ? a : b);
    case CK_BINARY_MIN: return a != a ? a : (a <= b ? a : b);
    case CK_BINARY_POW: return powf(a, b);
    case CK_BINARY_EQ: return a == b ? 1.0f : 0.0f;
    case CK_BINARY_NE: return a != b ? 1.0f : 0.0f;
    case CK_BINARY_LT: return a < b ? 1.0f : 0.0f;
    case CK_BINARY_LE: return a <= b ? 1.0f : 0.0f;
    case CK_BINARY_GT: return a > b ? 1.0f : 0.0f;
    case CK_BINARY_GE: return a >= b ? 1.0f : 0.0f;
    case CK_BINARY_COUNT: break;
    }
    return 0;
}

static inline int32_t ref_i32(ck_binary_op op, int32_t a, int32_t b) {
    switch (op) {
    case CK_BINARY_ADD: return (int32_t)((uint32_t)a + (uint32_t)b);
    case CK_BINARY_SUB: return (int32_t)((uint32_t)a - (uint32_t)b);
    case CK_BINARY_MUL: return (int32_t)((uint32_t)a * (uint32_t)b);
    case CK_BINARY_MAX: return a >= b ? a : b;
    case CK_BINARY_MIN: return a <= b ? a : b;
    case CK_BINARY_EQ: return a == b;
    case CK_BINARY_NE: return a != b;
    case CK_BINARY_LT: return a < b;
    case CK_BINARY_LE: return a <= b;
    case CK_BINARY_GT: return a > b;
    case CK_BINARY_GE: return a >= b;
    default: break;
    }
    return 0;
}

#define REF_F32(OP, name)                                                                     \
    static void ck_f32_##name##__ref(size_t n, const float *a, size_t sa, const float *b,      \
                                     size_t sb, float *y) {                                   \
        for (size_t i = 0; i < n; i++) y[i] = ref_f32(OP, a[i * sa], b[i * sb]);               \
    }
#define REF_I32(OP, name)                                                                     \
    static void ck_i32_##name##__ref(size_t n, const int32_t *a, size_t sa, const int32_t *b,  \
                                     size_t sb, int32_t *y) {                                 \
        for (size_t i = 0; i < n; i++) y[i] = ref_i32(OP, a[i * sa], b[i * sb]);               \
    }

/* ---- f32 AVX2 ---- */

CK_AVX2 CK_INLINE __m256 avx2_f32(ck_binary_op op, __m256 a, __m256 b) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (op) {
    case CK_BINARY_ADD: return _mm256_add_ps(a, b);
    case CK_BINARY_SUB: return _mm256_sub_ps(a, b);
    case CK_BINARY_MUL: return _mm256_mul_ps(a, b);
    case CK_BINARY_DIV: return _mm256_div_ps(a, b);
    case CK_BINARY_MAX: { /* a if a >= b or a is NaN, else b (matches the reference) */
        __m256 keep = _mm256_cmp_ps(a, b, _CMP_NLT_UQ);
        return _mm256_blendv_ps(b, a, keep);
    }
    case CK_BINARY_MIN: {
        __m256 keep = _mm256_cmp_ps(a, b, _CMP_NGT_UQ);
        return _mm256_blendv_ps(b, a, keep);
    }
    case CK_BINARY_EQ: return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ), one);
    case CK_BINARY_NE: return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_NEQ_UQ), one);
    case CK_BINARY_LT: return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_LT_OQ), one);
    case CK_BINARY_LE: return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_LE_OQ), one);
    case CK_BINARY_GT: return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ), one);
    case CK_BINARY_GE: return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_GE_OQ), one);
    default: break;
    }
    return a;
}

/* pow has no cheap exact vector form: exp(b*log a) loses accuracy for large
 * results, so the AVX2 kernel vectorizes the common cases (b == 2, b == 0.5,
 * b == 1) and falls back to powf per element otherwise. */
CK_AVX2 static void ck_f32_vpow__avx2(size_t n, const float *a, size_t sa, const float *b,
                                      size_t sb, float *y) {
    if (sb == 0 && (b[0] == 2.0f || b[0] == 1.0f)) {
        size_t i = 0;
        if (sa == 1) {
            for (; i + 8 <= n; i += 8) {
                __m256 v = _mm256_loadu_ps(a + i);
                _mm256_storeu_ps(y + i, b[0] == 2.0f ? _mm256_mul_ps(v, v) : v);
            }
        }
        for (; i < n; i++) y[i] = powf(a[i * sa], b[0]);
        return;
    }
    for (size_t i = 0; i < n; i++) y[i] = powf(a[i * sa], b[i * sb]);
}

#define AVX2_F32(OP, name)                                                                    \
    CK_AVX2 static void ck_f32_##name##__avx2(size_t n, const float *a, size_t sa,            \
                                              const float *b, size_t sb, float *y) {          \
        size_t i = 0;                                                                         \
        if (sa && sb) {                                                                       \
            for (; i + 8 <= n; i += 8)                                                        \
                _mm256_storeu_ps(y + i, avx2_f32(OP, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))); \
        } else if (sa) {                                                                      \
            __m256 vb = _mm256_set1_ps(b[0]);                                                 \
            for (; i + 8 <= n; i += 8)                                                        \
                _mm256_storeu_ps(y + i, avx2_f32(OP, _mm256_loadu_ps(a + i), vb));            \
        } else if (sb) {                                                                      \
            __m256 va = _mm256_set1_ps(a[0]);                                                 \
            for (; i + 8 <= n; i += 8)                                                        \
                _mm256_storeu_ps(y + i, avx2_f32(OP, va, _mm256_loadu_ps(b + i)));            \
        }                                                                                     \
        if (i < n) {                                                                          \
            __m256i m = ck256_tail_mask(n - i < 8 ? n - i : 8);                               \
            for (; i < n; i += 8) {                                                           \
                size_t rem = n - i;                                                           \
                if (rem < 8) m = ck256_tail_mask(rem);                                        \
                __m256 va = sa ? _mm256_maskload_ps(a + i, m) : _mm256_set1_ps(a[0]);         \
                __m256 vb = sb ? _mm256_maskload_ps(b + i, m) : _mm256_set1_ps(b[0]);         \
                _mm256_maskstore_ps(y + i, m, avx2_f32(OP, va, vb));                          \
            }                                                                                 \
        }                                                                                     \
    }

/* ---- i32 AVX2 ---- */

CK_AVX2 CK_INLINE __m256i avx2_i32(ck_binary_op op, __m256i a, __m256i b) {
    const __m256i one = _mm256_set1_epi32(1);
    switch (op) {
    case CK_BINARY_ADD: return _mm256_add_epi32(a, b);
    case CK_BINARY_SUB: return _mm256_sub_epi32(a, b);
    case CK_BINARY_MUL: return _mm256_mullo_epi32(a, b);
    case CK_BINARY_MAX: return _mm256_max_epi32(a, b);
    case CK_BINARY_MIN: return _mm256_min_epi32(a, b);
    case CK_BINARY_EQ: return _mm256_and_si256(_mm256_cmpeq_epi32(a, b), one);
    case CK_BINARY_NE: return _mm256_andnot_si256(_mm256_cmpeq_epi32(a, b), one);
    case CK_BINARY_LT: return _mm256_and_si256(_mm256_cmpgt_epi32(b, a), one);
    case CK_BINARY_LE: return _mm256_andnot_si256(_mm256_cmpgt_epi32(a, b), one);
    case CK_BINARY_GT: return _mm256_and_si256(_mm256_cmpgt_epi32(a, b), one);
    case CK_BINARY_GE: return _mm256_andnot_si256(_mm256_cmpgt_epi32(b, a), one);
    default: break;
    }
    return a;
}

#define AVX2_I32(OP, name)                                                                    \
    CK_AVX2 static void ck_i32_##name##__avx2(size_t n, const int32_t *a, size_t sa,          \
                                              const int32_t *b, size_t sb, int32_t *y) {      \
        size_t i = 0;                                                                         \
        for (; i + 8 <= n; i += 8) {                                                          \
            __m256i va = sa ? _mm256_loadu_si256((const __m256i *)(a + i)) : _mm256_set1_epi32(a[0]); \
            __m256i vb = sb ? _mm256_loadu_si256((const __m256i *)(b + i)) : _mm256_set1_epi32(b[0]); \
            _mm256_storeu_si256((__m256i *)(y + i), avx2_i32(OP, va, vb));                    \
        }                                                                                     \
        for (; i < n; i++) y[i] = ref_i32(OP, a[i * sa], b[i * sb]);                           \
    }

#define F32_OPS CK_BINARY_F32_SIMPLE_OPS
#define I32_OPS CK_BINARY_I32_OPS

F32_OPS(REF_F32)
REF_F32(CK_BINARY_POW, vpow)
F32_OPS(AVX2_F32)
I32_OPS(REF_I32)
I32_OPS(AVX2_I32)

#define E_F32_REF(OP, name) [OP] = ck_f32_##name##__ref,
#define E_F32_AVX2(OP, name) [OP] = ck_f32_##name##__avx2,
#define E_I32_REF(OP, name) [OP] = ck_i32_##name##__ref,
#define E_I32_AVX2(OP, name) [OP] = ck_i32_##name##__avx2,
/* Large arrays: chunks across the pool (results do not depend on the split). */
typedef struct binary_job { ck_f32_binary_fn fn; size_t n, sa, sb; const float *a, *b; float *y; } binary_job;

static void binary_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const binary_job *j = ctx;
    size_t lo = (size_t)begin * CK_ELEMENTWISE_CHUNK, hi = (size_t)end * CK_ELEMENTWISE_CHUNK;
    if (hi > j->n) hi = j->n;
    j->fn(hi - lo, j->a + lo * j->sa, j->sa, j->b + lo * j->sb, j->sb, j->y + lo);
}

static void binary_parallel(ck_f32_binary_fn fn, size_t n, const float *a, size_t sa, const float *b, size_t sb, float *y) {
    if (n < 2 * CK_ELEMENTWISE_CHUNK) { fn(n, a, sa, b, sb, y); return; }
    binary_job j = {fn, n, sa, sb, a, b, y};
    ck_parallel_for((int64_t)((n + CK_ELEMENTWISE_CHUNK - 1) / CK_ELEMENTWISE_CHUNK), 0, binary_task, &j);
}

#define AVX2_F32_PARALLEL(OP, name)                                                                   \
    static void ck_f32_##name##__avx2_par(size_t n, const float *a, size_t sa, const float *b,       \
                                          size_t sb, float *y) {                                     \
        binary_parallel(ck_f32_##name##__avx2, n, a, sa, b, sb, y);                                  \
    }
F32_OPS(AVX2_F32_PARALLEL)
AVX2_F32_PARALLEL(CK_BINARY_POW, vpow)
#undef E_F32_AVX2
#define E_F32_AVX2(OP, name) [OP] = ck_f32_##name##__avx2_par,

static const ck_f32_binary_fn f32_ref[CK_BINARY_COUNT] = {F32_OPS(E_F32_REF)[CK_BINARY_POW] = ck_f32_vpow__ref};
static const ck_f32_binary_fn f32_avx2[CK_BINARY_COUNT] = {F32_OPS(E_F32_AVX2)[CK_BINARY_POW] = ck_f32_vpow__avx2_par};
static const ck_i32_binary_fn i32_ref[CK_BINARY_COUNT] = {I32_OPS(E_I32_REF)};
static const ck_i32_binary_fn i32_avx2[CK_BINARY_COUNT] = {I32_OPS(E_I32_AVX2)};

ck_f32_binary_fn ck_f32_binary_kernel(ck_binary_op op, ck_isa isa) {
    if ((unsigned)op >= CK_BINARY_COUNT) return NULL;
    return CK_PICK2(isa, f32_ref[op], f32_avx2[op]);
}

ck_i32_binary_fn ck_i32_binary_kernel(ck_binary_op op, ck_isa isa) {
    if ((unsigned)op >= CK_BINARY_COUNT) return NULL;
    return CK_PICK2(isa, i32_ref[op], i32_avx2[op]);
}

const char *ck_binary_op_name(ck_binary_op op) {
#define BINARY_NAME(OP, name) [OP] = #name,
    static const char *names[CK_BINARY_COUNT] = {CK_BINARY_F32_OPS(BINARY_NAME)};
    return (unsigned)op < CK_BINARY_COUNT ? names[op] : "?";
}

/* ---- N-d walkers: odometer over all but the last dimension ---- */

#define ND_WALK(BODY)                                                                         \
    int r = d->rank;                                                                          \
    if (r == 0) { int64_t oa = 0, ob = 0, oc = 0, inner = 1, ia = 0, ib = 0, ic = 0; BODY; return; } \
    int64_t inner = d->shape[r - 1];                                                          \
    int64_t ia = d->stride_a[r - 1], ib = d->stride_b[r - 1], ic = d->stride_c[r - 1];        \
    int64_t idx[CK_MAX_RANK] = {0};                                                           \
    int64_t outer = 1;                                                                        \
    for (int k = 0; k < r - 1; k++) outer *= d->shape[k];                                     \
    if (inner == 0) return;                                                                   \
    int64_t oa = 0, ob = 0, oc = 0;                                                           \
    for (int64_t o = 0; o < outer; o++) {                                                     \
        BODY;                                                                                 \
        for (int k = r - 2; k >= 0; k--) {                                                    \
            idx[k]++;                                                                         \
            oa += d->stride_a[k]; ob += d->stride_b[k]; oc += d->stride_c[k];                 \
            if (idx[k] < d->shape[k]) break;                                                  \
            oa -= d->stride_a[k] * idx[k]; ob -= d->stride_b[k] * idx[k]; oc -= d->stride_c[k] * idx[k]; \
            idx[k] = 0;                                                                       \
        }                                                                                     \
    }

/* For binary ops: a and b are inputs (stride_a, stride_b); the output is
 * contiguous and walks stride_c. */
void ck_f32_binary_nd(ck_f32_binary_fn fn, const ck_nd3 *d, const float *a, const float *b,
                      float *y) {
    (void)0;
    ND_WALK(fn((size_t)inner, a + oa, (size_t)ia, b + ob, (size_t)ib, y + oc); (void)ic)
}

void ck_i32_binary_nd(ck_i32_binary_fn fn, const ck_nd3 *d, const int32_t *a, const int32_t *b,
                      int32_t *y) {
    ND_WALK(fn((size_t)inner, a + oa, (size_t)ia, b + ob, (size_t)ib, y + oc); (void)ic)
}

/* ---- select ---- */

static void ck_x32_select_f32__ref(size_t n, const void *cond, size_t sc, const uint32_t *a,
                                   size_t sa, const uint32_t *b, size_t sb, uint32_t *y) {
    const float *c = (const float *)cond;
    for (size_t i = 0; i < n; i++) y[i] = c[i * sc] != 0.0f ? a[i * sa] : b[i * sb];
}
static void ck_x32_select_i32__ref(size_t n, const void *cond, size_t sc, const uint32_t *a,
                                   size_t sa, const uint32_t *b, size_t sb, uint32_t *y) {
    const int32_t *c = (const int32_t *)cond;
    for (size_t i = 0; i < n; i++) y[i] = c[i * sc] != 0 ? a[i * sa] : b[i * sb];
}

#define SELECT_AVX2(name, IS_F32)                                                             \
    CK_AVX2 static void ck_x32_select_##name##__avx2(size_t n, const void *cond, size_t sc,   \
                                                     const uint32_t *a, size_t sa,            \
                                                     const uint32_t *b, size_t sb, uint32_t *y) { \
        size_t i = 0;                                                                         \
        for (; i + 8 <= n; i += 8) {                                                          \
            __m256i m;                                                                        \
            if (IS_F32) {                                                                     \
                __m256 c = sc ? _mm256_loadu_ps((const float *)cond + i) : _mm256_set1_ps(((const float *)cond)[0]); \
                m = _mm256_castps_si256(_mm256_cmp_ps(c, _mm256_setzero_ps(), _CMP_NEQ_UQ));  \
            } else {                                                                          \
                __m256i c = sc ? _mm256_loadu_si256((const __m256i *)((const int32_t *)cond + i)) : _mm256_set1_epi32(((const int32_t *)cond)[0]); \
                m = _mm256_xor_si256(_mm256_cmpeq_epi32(c, _mm256_setzero_si256()), _mm256_set1_epi32(-1)); \
            }                                                                                 \
            __m256i va = sa ? _mm256_loadu_si256((const __m256i *)(a + i)) : _mm256_set1_epi32((int)a[0]); \
            __m256i vb = sb ? _mm256_loadu_si256((const __m256i *)(b + i)) : _mm256_set1_epi32((int)b[0]); \
            _mm256_storeu_si256((__m256i *)(y + i), _mm256_blendv_epi8(vb, va, m));           \
        }                                                                                     \
        if (i < n) ck_x32_select_##name##__ref(n - i, IS_F32 ? (const void *)((const float *)cond + i * sc) \
                                                                : (const void *)((const int32_t *)cond + i * sc), \
                                               sc, a + i * sa, sa, b + i * sb, sb, y + i);    \
    }
SELECT_AVX2(f32, 1)
SELECT_AVX2(i32, 0)

ck_x32_select_fn ck_x32_select_kernel(int cond_is_f32, ck_isa isa) {
    if (isa == CK_ISA_REF) return cond_is_f32 ? ck_x32_select_f32__ref : ck_x32_select_i32__ref;
    return cond_is_f32 ? ck_x32_select_f32__avx2 : ck_x32_select_i32__avx2;
}

/* Select has three inputs: strides for cond, a, b live in stride_a/b/c; the
 * output is contiguous, so its offset is the odometer's linear position. */
void ck_x32_select_nd(ck_x32_select_fn fn, const ck_nd3 *d, const void *cond, const uint32_t *a,
                      const uint32_t *b, uint32_t *y) {
    const uint32_t *c = (const uint32_t *)cond; /* 32-bit either way */
    int r = d->rank;
    if (r == 0) { fn(1, c, 0, a, 0, b, 0, y); return; }
    int64_t inner = d->shape[r - 1];
    if (inner == 0) return;
    int64_t outer = 1;
    for (int k = 0; k < r - 1; k++) outer *= d->shape[k];
    int64_t idx[CK_MAX_RANK] = {0};
    int64_t oc = 0, oa = 0, ob = 0;
    for (int64_t o = 0; o < outer; o++) {
        fn((size_t)inner, c + oc, (size_t)d->stride_a[r - 1], a + oa, (size_t)d->stride_b[r - 1],
           b + ob, (size_t)d->stride_c[r - 1], y + o * inner);
        for (int k = r - 2; k >= 0; k--) {
            idx[k]++;
            oc += d->stride_a[k]; oa += d->stride_b[k]; ob += d->stride_c[k];
            if (idx[k] < d->shape[k]) break;
            oc -= d->stride_a[k] * idx[k]; oa -= d->stride_b[k] * idx[k]; ob -= d->stride_c[k] * idx[k];
            idx[k] = 0;
        }
    }
}
