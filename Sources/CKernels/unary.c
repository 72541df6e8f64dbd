/* Elementwise unary kernels, f32 -> f32: one `__ref` loop and one `__avx2`
 * loop per op. The AVX2 loops process 8 lanes at a time and finish the tail
 * with a masked load/store, so they never touch memory past n. */
#include "ck_internal.h"
#include "ck_kernel_lists.h"
#include "ck_threads.h"

#define SELU_ALPHA 1.67326324235437728481f
#define SELU_SCALE 1.05070098735548049342f

/* ---- reference: plain scalar loops over libm ---- */

static inline float ref_unary(ck_unary_op op, float x, const ck_unary_params *p) {
    switch (op) {
    case CK_UNARY_NEG: return -x;
    case CK_UNARY_EXP: return expf(x);
    case CK_UNARY_LOG: return logf(x);
    case CK_UNARY_SQRT: return sqrtf(x);
    case CK_UNARY_RSQRT: return 1.0f / sqrtf(x);
    case CK_UNARY_SQUARE: return x * x;
    case CK_UNARY_ABS: return fabsf(x);
    case CK_UNARY_SIGN: return x > 0 ? 1.0f : x < 0 ? -1.0f : x == 0 ? 0.0f : x;
    case CK_UNARY_ERF: return erff(x);
    case CK_UNARY_RELU: return x > 0 ? x : 0.0f;
    case CK_UNARY_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case CK_UNARY_TANH: return tanhf(x);
    case CK_UNARY_SOFTPLUS: return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
    case CK_UNARY_SOFTSIGN: return x / (1.0f + fabsf(x));
    case CK_UNARY_ELU: return x > 0 ? x : p->alpha * expm1f(x);
    case CK_UNARY_SELU: return SELU_SCALE * (x > 0 ? x : SELU_ALPHA * expm1f(x));
    case CK_UNARY_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case CK_UNARY_GELU_TANH: {
        float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    case CK_UNARY_SWISH: return x / (1.0f + expf(-x));
    case CK_UNARY_HARD_SIGMOID: {
        float r = x + 3.0f;
        r = r < 0 ? 0 : r > 6 ? 6 : r;
        return r / 6.0f;
    }
    case CK_UNARY_LEAKY_RELU: return x > 0 ? x : p->alpha * x;
    case CK_UNARY_COPY: return x;
    case CK_UNARY_COUNT: break;
    }
    return x;
}

#define REF_KERNEL(OP, name)                                                                  \
    static void ck_f32_##name##__ref(size_t n, const float *restrict x, float *restrict y,     \
                                     const ck_unary_params *p) {                              \
        for (size_t i = 0; i < n; i++) y[i] = ref_unary(OP, x[i], p);                          \
    }

/* ---- AVX2: one vector body per op ---- */

CK_AVX2 CK_INLINE __m256 avx2_unary(ck_unary_op op, __m256 x, const ck_unary_params *p) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    switch (op) {
    case CK_UNARY_NEG: return _mm256_xor_ps(x, sign);
    case CK_UNARY_EXP: return ck256_exp(x);
    case CK_UNARY_LOG: return ck256_log(x);
    case CK_UNARY_SQRT: return _mm256_sqrt_ps(x);
    case CK_UNARY_RSQRT: return _mm256_div_ps(one, _mm256_sqrt_ps(x));
    case CK_UNARY_SQUARE: return _mm256_mul_ps(x, x);
    case CK_UNARY_ABS: return _mm256_andnot_ps(sign, x);
    case CK_UNARY_SIGN: {
        __m256 pos = _mm256_and_ps(_mm256_cmp_ps(x, zero, _CMP_GT_OQ), one);
        __m256 neg = _mm256_and_ps(_mm256_cmp_ps(x, zero, _CMP_LT_OQ), one);
        __m256 s = _mm256_sub_ps(pos, neg);
        return _mm256_blendv_ps(s, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    }
    case CK_UNARY_ERF: return ck256_erf(x);
    case CK_UNARY_RELU: return _mm256_and_ps(x, _mm256_cmp_ps(x, zero, _CMP_GT_OQ));
    case CK_UNARY_SIGMOID: return ck256_sigmoid(x);
    case CK_UNARY_TANH: return ck256_tanh(x);
    case CK_UNARY_SOFTPLUS: {
        __m256 ax = _mm256_andnot_ps(sign, x);
        __m256 e = ck256_exp(_mm256_xor_ps(ax, sign));
        /* log1p(e) for e in (0, 1]: log(1+e) corrected by the rounding of 1+e */
        __m256 u = _mm256_add_ps(one, e);
        __m256 l = ck256_log(u);
        __m256 corr = _mm256_div_ps(_mm256_sub_ps(e, _mm256_sub_ps(u, one)), u);
        l = _mm256_add_ps(l, corr);
        return _mm256_add_ps(_mm256_max_ps(x, zero), l);
    }
    case CK_UNARY_SOFTSIGN:
        return _mm256_div_ps(x, _mm256_add_ps(one, _mm256_andnot_ps(sign, x)));
    case CK_UNARY_ELU:
    case CK_UNARY_SELU: {
        float alpha = op == CK_UNARY_ELU ? p->alpha : SELU_ALPHA;
        __m256 xn = _mm256_min_ps(x, zero);
        /* expm1 on (-inf, 0]: exp(x) - 1 except near zero, where a series is exact enough */
        __m256 em1 = _mm256_sub_ps(ck256_exp(xn), one);
        __m256 x2 = _mm256_mul_ps(xn, xn);
        __m256 ser = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_fmadd_ps(xn, _mm256_set1_ps(1.0f / 24), _mm256_set1_ps(1.0f / 6)), xn, _mm256_set1_ps(0.5f)), x2, xn);
        em1 = _mm256_blendv_ps(em1, ser, _mm256_cmp_ps(xn, _mm256_set1_ps(-0.0625f), _CMP_GT_OQ));
        __m256 neg = _mm256_mul_ps(_mm256_set1_ps(alpha), em1);
        __m256 y = _mm256_blendv_ps(neg, x, _mm256_cmp_ps(x, zero, _CMP_GT_OQ));
        y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        return op == CK_UNARY_SELU ? _mm256_mul_ps(y, _mm256_set1_ps(SELU_SCALE)) : y;
    }
    case CK_UNARY_GELU: {
        __m256 e = ck256_erf(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(one, e));
    }
    case CK_UNARY_GELU_TANH: {
        __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
        __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                                 _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(one, ck256_tanh(u)));
    }
    case CK_UNARY_SWISH: return _mm256_mul_ps(x, ck256_sigmoid(x));
    case CK_UNARY_HARD_SIGMOID: {
        __m256 r = _mm256_add_ps(x, _mm256_set1_ps(3.0f));
        r = _mm256_min_ps(_mm256_max_ps(r, zero), _mm256_set1_ps(6.0f));
        return _mm256_div_ps(r, _mm256_set1_ps(6.0f));
    }
    case CK_UNARY_LEAKY_RELU:
        return _mm256_blendv_ps(_mm256_mul_ps(x, _mm256_set1_ps(p->alpha)), x,
                                _mm256_cmp_ps(x, zero, _CMP_GT_OQ));
    case CK_UNARY_COPY:
    case CK_UNARY_COUNT: break;
    }
    return x;
}

#define AVX2_KERNEL(OP, name)                                                                 \
    CK_AVX2 static void ck_f32_##name##__avx2(size_t n, const float *restrict x,              \
                                              float *restrict y, const ck_unary_params *p) {  \
        size_t i = 0;                                                                         \
        for (; i + 8 <= n; i += 8) {                                                          \
            __m256 v = _mm256_loadu_ps(x + i);                                                \
            __m256 r = avx2_unary(OP, v, p);                                                  \
            if (OP == CK_UNARY_LOG && ck256_has_subnormal(v)) {                               \
                _mm256_storeu_ps(y + i, r);                                                   \
                for (size_t j = i; j < i + 8; j++) y[j] = logf(x[j]);                         \
                continue;                                                                     \
            }                                                                                 \
            _mm256_storeu_ps(y + i, r);                                                       \
        }                                                                                     \
        if (i < n) {                                                                          \
            __m256i m = ck256_tail_mask(n - i);                                               \
            __m256 v = _mm256_maskload_ps(x + i, m);                                          \
            __m256 r = avx2_unary(OP, v, p);                                                  \
            _mm256_maskstore_ps(y + i, m, r);                                                 \
            if (OP == CK_UNARY_LOG && ck256_has_subnormal(v))                                 \
                for (size_t j = i; j < n; j++) y[j] = logf(x[j]);                             \
        }                                                                                     \
    }

#define UNARY_OPS CK_UNARY_OPS

UNARY_OPS(REF_KERNEL)
UNARY_OPS(AVX2_KERNEL)

/* Large arrays: chunks across the pool (results do not depend on the split). */
typedef struct unary_job { ck_f32_unary_fn fn; size_t n; const float *x; float *y; const ck_unary_params *p; } unary_job;

static void unary_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const unary_job *j = ctx;
    size_t lo = (size_t)begin * CK_ELEMENTWISE_CHUNK, hi = (size_t)end * CK_ELEMENTWISE_CHUNK;
    if (hi > j->n) hi = j->n;
    j->fn(hi - lo, j->x + lo, j->y + lo, j->p);
}

static void unary_parallel(ck_f32_unary_fn fn, size_t n, const float *x, float *y, const ck_unary_params *p) {
    if (n < 2 * CK_ELEMENTWISE_CHUNK) { fn(n, x, y, p); return; }
    unary_job j = {fn, n, x, y, p};
    ck_parallel_for((int64_t)((n + CK_ELEMENTWISE_CHUNK - 1) / CK_ELEMENTWISE_CHUNK), 0, unary_task, &j);
}

#define AVX2_PARALLEL(OP, name)                                                                       \
    static void ck_f32_##name##__avx2_par(size_t n, const float *restrict x, float *restrict y,      \
                                          const ck_unary_params *p) {                                \
        unary_parallel(ck_f32_##name##__avx2, n, x, y, p);                                           \
    }
UNARY_OPS(AVX2_PARALLEL)

#define ENTRY_REF(OP, name) [OP] = ck_f32_##name##__ref,
#define ENTRY_AVX2(OP, name) [OP] = ck_f32_##name##__avx2_par,
#define ENTRY_NAME(OP, name) [OP] = #name,
static const ck_f32_unary_fn ref_table[CK_UNARY_COUNT] = {UNARY_OPS(ENTRY_REF)};
static const ck_f32_unary_fn avx2_table[CK_UNARY_COUNT] = {UNARY_OPS(ENTRY_AVX2)};
static const char *name_table[CK_UNARY_COUNT] = {UNARY_OPS(ENTRY_NAME)};

ck_f32_unary_fn ck_f32_unary_kernel(ck_unary_op op, ck_isa isa) {
    if ((unsigned)op >= CK_UNARY_COUNT) return NULL;
    return CK_PICK2(isa, ref_table[op], avx2_table[op]); /* AVX-512 machines run the AVX2 loops for elementwise work */
}

const char *ck_unary_op_name(ck_unary_op op) {
    return (unsigned)op < CK_UNARY_COUNT ? name_table[op] : "?";
}
