/* Reductions and softmax over a [outer, n, inner] view of a contiguous tensor.
 * Any set of adjacent reduced axes maps to that view; the lowering splits
 * non-adjacent axes into several calls. */
#include "ck_internal.h"
#include "ck_kernel_lists.h"
#include "ck_threads.h"

static inline float red_init(ck_reduce_op op) {
    return op == CK_REDUCE_SUM ? 0.0f : op == CK_REDUCE_MAX ? -INFINITY : INFINITY;
}
static inline float red_step(ck_reduce_op op, float acc, float v) {
    switch (op) {
    case CK_REDUCE_SUM: return acc + v;
    case CK_REDUCE_MAX: return (v > acc || v != v) ? v : acc;
    case CK_REDUCE_MIN: return (v < acc || v != v) ? v : acc;
    default: return acc;
    }
}

#define REF_RED(OP, name)                                                                     \
    static void ck_f32_reduce_##name##__ref(size_t outer, size_t n, size_t inner,             \
                                            const float *restrict x, float *restrict y) {     \
        for (size_t o = 0; o < outer; o++)                                                    \
            for (size_t i = 0; i < inner; i++) {                                              \
                float acc = red_init(OP);                                                     \
                for (size_t j = 0; j < n; j++) acc = red_step(OP, acc, x[(o * n + j) * inner + i]); \
                y[o * inner + i] = acc;                                                       \
            }                                                                                 \
    }

CK_AVX2 CK_INLINE __m256 red_vstep(ck_reduce_op op, __m256 acc, __m256 v) {
    switch (op) {
    case CK_REDUCE_SUM: return _mm256_add_ps(acc, v);
    /* NaN-propagating: take v where v > acc or v is NaN */
    case CK_REDUCE_MAX: return _mm256_blendv_ps(acc, v, _mm256_cmp_ps(v, acc, _CMP_NLE_UQ));
    case CK_REDUCE_MIN: return _mm256_blendv_ps(acc, v, _mm256_cmp_ps(v, acc, _CMP_NGE_UQ));
    default: return acc;
    }
}

/* Row o's columns [i0, i1) (inner > 1): each output element combines its
 * column top to bottom, 64 columns a pass (eight vector accumulators) so a
 * row's lines are read once, not once per 8 columns. */
CK_AVX2 CK_INLINE void red_columns(ck_reduce_op op, size_t n, size_t inner, const float *restrict xo, float *restrict yo,
                                   size_t i0, size_t i1) {
    size_t i = i0;
    for (; i + 64 <= i1; i += 64) {
        __m256 acc[8];
        _Pragma("clang loop unroll(full)") for (int q = 0; q < 8; q++) acc[q] = _mm256_set1_ps(red_init(op));
        for (size_t j = 0; j < n; j++)
            _Pragma("clang loop unroll(full)") for (int q = 0; q < 8; q++)
                acc[q] = red_vstep(op, acc[q], _mm256_loadu_ps(xo + j * inner + i + 8 * q));
        _Pragma("clang loop unroll(full)") for (int q = 0; q < 8; q++) _mm256_storeu_ps(yo + i + 8 * q, acc[q]);
    }
    for (; i + 8 <= i1; i += 8) {
        __m256 acc = _mm256_set1_ps(red_init(op));
        for (size_t j = 0; j < n; j++) acc = red_vstep(op, acc, _mm256_loadu_ps(xo + j * inner + i));
        _mm256_storeu_ps(yo + i, acc);
    }
    for (; i < i1; i++) {
        float acc = red_init(op);
        for (size_t j = 0; j < n; j++) acc = red_step(op, acc, xo[j * inner + i]);
        yo[i] = acc;
    }
}

/* One contiguous run (inner == 1): four vector accumulators, then lanes, then the tail. */
CK_AVX2 CK_INLINE float red_run(ck_reduce_op op, size_t n, const float *restrict xo) {
    __m256 a0 = _mm256_set1_ps(red_init(op)), a1 = a0, a2 = a0, a3 = a0;
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 = red_vstep(op, a0, _mm256_loadu_ps(xo + j));
        a1 = red_vstep(op, a1, _mm256_loadu_ps(xo + j + 8));
        a2 = red_vstep(op, a2, _mm256_loadu_ps(xo + j + 16));
        a3 = red_vstep(op, a3, _mm256_loadu_ps(xo + j + 24));
    }
    for (; j + 8 <= n; j += 8) a0 = red_vstep(op, a0, _mm256_loadu_ps(xo + j));
    a0 = red_vstep(op, red_vstep(op, a0, a1), red_vstep(op, a2, a3));
    float lanes[8];
    _mm256_storeu_ps(lanes, a0);
    float acc = red_init(op);
    for (int l = 0; l < 8; l++) acc = red_step(op, acc, lanes[l]);
    for (; j < n; j++) acc = red_step(op, acc, xo[j]);
    return acc;
}

/* Work split over outer rows and, when there are few of them, over column
 * chunks of whole cache lines; a thread computes whole output elements, so
 * the split never changes a bit. */
typedef struct reduce_job {
    size_t outer, n, inner, cols;  /* cols: columns per unit */
    const float *x;
    float *y;
} reduce_job;

static size_t reduce_units(reduce_job *j) {
    size_t per_row = 1;
    if (j->inner > 1) {
        size_t want = (size_t)(2 * ck_threads_get()), rows = j->outer ? j->outer : 1;
        per_row = rows >= want ? 1 : (want + rows - 1) / rows;
        size_t lines = (j->inner + 15) / 16;
        if (per_row > lines) per_row = lines;
    }
    j->cols = (j->inner + per_row - 1) / per_row;
    j->cols = (j->cols + 15) / 16 * 16;
    return j->outer * ((j->inner + j->cols - 1) / j->cols);
}

#define AVX2_RED(OP, name)                                                                    \
    CK_AVX2 static void reduce_##name##_task(void *ctx, int64_t begin, int64_t end, int thread) { \
        (void)thread;                                                                         \
        const reduce_job *j = ctx;                                                            \
        size_t chunks = (j->inner + j->cols - 1) / j->cols;                                   \
        for (int64_t u = begin; u < end; u++) {                                               \
            size_t o = (size_t)u / chunks, i0 = (size_t)u % chunks * j->cols;                 \
            size_t i1 = i0 + j->cols < j->inner ? i0 + j->cols : j->inner;                    \
            const float *xo = j->x + o * j->n * j->inner;                                     \
            if (j->inner == 1) j->y[o] = red_run(OP, j->n, xo);                               \
            else red_columns(OP, j->n, j->inner, xo, j->y + o * j->inner, i0, i1);            \
        }                                                                                     \
    }                                                                                         \
    static void ck_f32_reduce_##name##__avx2(size_t outer, size_t n, size_t inner,            \
                                             const float *restrict x, float *restrict y) {     \
        if (outer == 0 || inner == 0) return;                                                 \
        reduce_job j = {outer, n, inner, 1, x, y};                                            \
        size_t units = reduce_units(&j);                                                      \
        ck_parallel_for((int64_t)units, outer * n * inner < 2 * CK_ELEMENTWISE_CHUNK, reduce_##name##_task, &j); \
    }

CK_REDUCE_OPS(REF_RED)
CK_REDUCE_OPS(AVX2_RED)
#define RED_REF(OP, name) [OP] = ck_f32_reduce_##name##__ref,
#define RED_AVX2(OP, name) [OP] = ck_f32_reduce_##name##__avx2,
#define RED_NAME(OP, name) [OP] = #name,

ck_f32_reduce_fn ck_f32_reduce_kernel(ck_reduce_op op, ck_isa isa) {
    static const ck_f32_reduce_fn ref[CK_REDUCE_COUNT] = {CK_REDUCE_OPS(RED_REF)};
    static const ck_f32_reduce_fn avx2[CK_REDUCE_COUNT] = {CK_REDUCE_OPS(RED_AVX2)};
    if ((unsigned)op >= CK_REDUCE_COUNT) return NULL;
    return CK_PICK2(isa, ref[op], avx2[op]);
}

const char *ck_reduce_op_name(ck_reduce_op op) {
    static const char *names[CK_REDUCE_COUNT] = {CK_REDUCE_OPS(RED_NAME)};
    return (unsigned)op < CK_REDUCE_COUNT ? names[op] : "?";
}

/* ---- softmax ---- */

static void ck_f32_softmax__ref(size_t outer, size_t n, size_t inner, const float *restrict x,
                                float *restrict y, int log) {
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const float *xo = x + o * n * inner + i;
            float *yo = y + o * n * inner + i;
            float m = -INFINITY;
            for (size_t j = 0; j < n; j++) m = xo[j * inner] > m ? xo[j * inner] : m;
            float s = 0;
            for (size_t j = 0; j < n; j++) s += expf(xo[j * inner] - m);
            if (log) {
                float ls = logf(s);
                for (size_t j = 0; j < n; j++) yo[j * inner] = xo[j * inner] - m - ls;
            } else {
                for (size_t j = 0; j < n; j++) yo[j * inner] = expf(xo[j * inner] - m) / s;
            }
        }
}

CK_AVX2 static void softmax_rows(size_t outer, size_t n, size_t inner, const float *restrict x,
                                 float *restrict y, int log) {
    if (inner != 1) { /* strided axis: vectorize across `inner` */
        for (size_t o = 0; o < outer; o++) {
            const float *xo = x + o * n * inner;
            float *yo = y + o * n * inner;
            size_t i = 0;
            for (; i + 8 <= inner; i += 8) {
                __m256 m = _mm256_set1_ps(-INFINITY);
                for (size_t j = 0; j < n; j++) m = _mm256_max_ps(m, _mm256_loadu_ps(xo + j * inner + i));
                __m256 s = _mm256_setzero_ps();
                for (size_t j = 0; j < n; j++) {
                    __m256 e = ck256_exp(_mm256_sub_ps(_mm256_loadu_ps(xo + j * inner + i), m));
                    if (!log) _mm256_storeu_ps(yo + j * inner + i, e);
                    s = _mm256_add_ps(s, e);
                }
                if (log) {
                    __m256 sh = _mm256_add_ps(m, ck256_log(s));
                    for (size_t j = 0; j < n; j++)
                        _mm256_storeu_ps(yo + j * inner + i, _mm256_sub_ps(_mm256_loadu_ps(xo + j * inner + i), sh));
                } else {
                    __m256 r = _mm256_div_ps(_mm256_set1_ps(1.0f), s);
                    for (size_t j = 0; j < n; j++)
                        _mm256_storeu_ps(yo + j * inner + i, _mm256_mul_ps(_mm256_loadu_ps(yo + j * inner + i), r));
                }
            }
            if (i < inner) {
                /* remaining columns one by one through the reference on a 1-wide view */
                for (; i < inner; i++) {
                    float m = -INFINITY, s = 0;
                    for (size_t j = 0; j < n; j++) m = xo[j * inner + i] > m ? xo[j * inner + i] : m;
                    for (size_t j = 0; j < n; j++) s += expf(xo[j * inner + i] - m);
                    float ls = logf(s);
                    for (size_t j = 0; j < n; j++)
                        yo[j * inner + i] = log ? xo[j * inner + i] - m - ls : expf(xo[j * inner + i] - m) / s;
                }
            }
        }
        return;
    }
    for (size_t o = 0; o < outer; o++) {
        const float *xo = x + o * n;
        float *yo = y + o * n;
        size_t j = 0;
        __m256 vm = _mm256_set1_ps(-INFINITY);
        for (; j + 8 <= n; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(xo + j));
        float lanes[8];
        _mm256_storeu_ps(lanes, vm);
        float m = -INFINITY;
        for (int l = 0; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
        for (; j < n; j++) m = xo[j] > m ? xo[j] : m;
        __m256 bm = _mm256_set1_ps(m), vs = _mm256_setzero_ps();
        for (j = 0; j + 8 <= n; j += 8) {
            __m256 e = ck256_exp(_mm256_sub_ps(_mm256_loadu_ps(xo + j), bm));
            if (!log) _mm256_storeu_ps(yo + j, e);
            vs = _mm256_add_ps(vs, e);
        }
        if (j < n) {
            __m256i mask = ck256_tail_mask(n - j);
            __m256 e = ck256_exp(_mm256_sub_ps(_mm256_maskload_ps(xo + j, mask), bm));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
            if (!log) _mm256_maskstore_ps(yo + j, mask, e);
            vs = _mm256_add_ps(vs, e);
        }
        _mm256_storeu_ps(lanes, vs);
        float s = 0;
        for (int l = 0; l < 8; l++) s += lanes[l];
        if (log) {
            float sh = m + logf(s);
            __m256 bsh = _mm256_set1_ps(sh);
            for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(yo + j, _mm256_sub_ps(_mm256_loadu_ps(xo + j), bsh));
            for (; j < n; j++) yo[j] = xo[j] - sh;
        } else {
            __m256 r = _mm256_set1_ps(1.0f / s);
            for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(yo + j, _mm256_mul_ps(_mm256_loadu_ps(yo + j), r));
            for (; j < n; j++) yo[j] = yo[j] * (1.0f / s);
        }
    }
}

/* Outer rows split over the threads (each row whole in one task: the same bits). */
typedef struct softmax_job { size_t n, inner; const float *x; float *y; int log; } softmax_job;

static void softmax_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const softmax_job *j = ctx;
    size_t row = j->n * j->inner;
    softmax_rows((size_t)(end - begin), j->n, j->inner, j->x + (size_t)begin * row, j->y + (size_t)begin * row, j->log);
}

static void ck_f32_softmax__avx2(size_t outer, size_t n, size_t inner, const float *restrict x, float *restrict y, int log) {
    softmax_job j = {n, inner, x, y, log};
    ck_parallel_for((int64_t)outer, outer * n * inner < 2 * CK_ELEMENTWISE_CHUNK, softmax_task, &j);
}

ck_f32_softmax_fn ck_f32_softmax_kernel(ck_isa isa) {
    return CK_PICK2(isa, ck_f32_softmax__ref, ck_f32_softmax__avx2);
}

/* ---- argmax ---- */

static inline int better(float v, float best) { return v > best || (v != v && best == best); }

static void ck_f32_argmax__ref(size_t outer, size_t n, size_t inner, const float *restrict x, int32_t *restrict y) {
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            size_t arg = 0;
            float best = x[o * n * inner + i];
            for (size_t j = 1; j < n; j++) {
                float v = x[(o * n + j) * inner + i];
                if (better(v, best)) { best = v; arg = j; }
            }
            y[o * inner + i] = (int32_t)arg;
        }
}

/* Vectorized across `inner` (8 columns at a time); the strict comparison
 * keeps the first maximum, as the reference does. */
CK_AVX2 static void ck_f32_argmax__avx2(size_t outer, size_t n, size_t inner, const float *restrict x, int32_t *restrict y) {
    for (size_t o = 0; o < outer; o++) {
        const float *xo = x + o * n * inner;
        size_t i = 0;
        for (; i + 8 <= inner; i += 8) {
            __m256 best = _mm256_loadu_ps(xo + i);
            __m256i arg = _mm256_setzero_si256();
            for (size_t j = 1; j < n; j++) {
                __m256 v = _mm256_loadu_ps(xo + j * inner + i);
                __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ),
                                           _mm256_andnot_ps(_mm256_cmp_ps(best, best, _CMP_UNORD_Q), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
                best = _mm256_blendv_ps(best, v, take);
                arg = _mm256_blendv_epi8(arg, _mm256_set1_epi32((int)j), _mm256_castps_si256(take));
            }
            _mm256_storeu_si256((__m256i *)(y + o * inner + i), arg);
        }
        for (; i < inner; i++) {
            size_t a = 0;
            float b = xo[i];
            for (size_t j = 1; j < n; j++) if (better(xo[j * inner + i], b)) { b = xo[j * inner + i]; a = j; }
            y[o * inner + i] = (int32_t)a;
        }
    }
}

ck_f32_argmax_fn ck_f32_argmax_kernel(ck_isa isa) {
    return CK_PICK2(isa, ck_f32_argmax__ref, ck_f32_argmax__avx2);
}
