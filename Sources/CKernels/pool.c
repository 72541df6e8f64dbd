/* Max and average pooling, channels-last, 1 to 3 spatial dimensions, any
 * strides and padding. The optimized versions vectorize across channels
 * (8 at a time) and split the batch across threads; windows and their
 * element order are the same as the reference's. */
#include "ck_internal.h"
#include "ck_threads.h"
#include <math.h>
#include <string.h>

static int64_t out_pixels_of(const ck_conv_desc *d) { return d->out_size[0] * d->out_size[1] * d->out_size[2]; }

typedef struct window {
    int64_t lo[3], hi[3];  /* input range per axis, clipped to the real input */
} window;

static inline window window_of(const ck_conv_desc *d, const int64_t o[3]) {
    window w;
    for (int a = 0; a < 3; a++) {
        int64_t start = o[a] * d->stride[a] - d->pad[a], end = start + d->kernel[a];
        w.lo[a] = start < 0 ? 0 : start;
        w.hi[a] = end > d->in_size[a] ? d->in_size[a] : end;
    }
    return w;
}

static inline int64_t count_of(const window *w) {
    int64_t c = 1;
    for (int a = 0; a < 3; a++) c *= (w->hi[a] > w->lo[a] ? w->hi[a] - w->lo[a] : 0);
    return c;
}

#define FOR_OUTPUT(d, n, o, oflat)                                                                \
    for (int64_t n = 0; n < (d)->batch; n++)                                                      \
        for (int64_t o##0 = 0; o##0 < (d)->out_size[0]; o##0++)                                   \
            for (int64_t o##1 = 0; o##1 < (d)->out_size[1]; o##1++)                               \
                for (int64_t o##2 = 0; o##2 < (d)->out_size[2]; o##2++)                           \
                    for (int64_t oflat = ((n * (d)->out_size[0] + o##0) * (d)->out_size[1] + o##1) * (d)->out_size[2] + o##2, \
                         once_##oflat = 1; once_##oflat; once_##oflat = 0)

#define IN_INDEX(d, n, i0, i1, i2) ((((n) * (d)->in_size[0] + (i0)) * (d)->in_size[1] + (i1)) * (d)->in_size[2] + (i2))

/* Flat index (times channels, plus c) of channel c's maximum in a window:
 * the first maximum, except that a NaN wins once seen; -1 for an empty window. */
static inline int64_t window_argmax(const ck_conv_desc *d, const float *x, int64_t n, const window *w, int64_t c) {
    const int64_t C = d->in_channels;
    float m = -INFINITY;
    int64_t arg = -1;
    for (int64_t i0 = w->lo[0]; i0 < w->hi[0]; i0++)
        for (int64_t i1 = w->lo[1]; i1 < w->hi[1]; i1++)
            for (int64_t i2 = w->lo[2]; i2 < w->hi[2]; i2++) {
                int64_t idx = IN_INDEX(d, n, i0, i1, i2) * C + c;
                if (arg < 0 || x[idx] > m || (x[idx] != x[idx] && m == m)) { m = x[idx]; arg = idx; }
            }
    return arg;
}

/* ---- reference ---- */

static void ck_f32_max_pool__ref(const ck_conv_desc *d, const float *x, float *y) {
    int64_t C = d->in_channels;
    FOR_OUTPUT(d, n, o, p) {
        int64_t oo[3] = {o0, o1, o2};
        window w = window_of(d, oo);
        for (int64_t c = 0; c < C; c++) {
            float m = -INFINITY;
            for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++)
                for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++)
                    for (int64_t i2 = w.lo[2]; i2 < w.hi[2]; i2++) {
                        float v = x[IN_INDEX(d, n, i0, i1, i2) * C + c];
                        if (v > m || v != v) m = v;
                    }
            y[p * C + c] = m;
        }
    }
}

static void ck_f32_avg_pool__ref(const ck_conv_desc *d, const float *x, float *y) {
    int64_t C = d->in_channels;
    FOR_OUTPUT(d, n, o, p) {
        int64_t oo[3] = {o0, o1, o2};
        window w = window_of(d, oo);
        float inv = 1.0f / (float)(count_of(&w) > 0 ? count_of(&w) : 1);
        for (int64_t c = 0; c < C; c++) {
            float s = 0;
            for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++)
                for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++)
                    for (int64_t i2 = w.lo[2]; i2 < w.hi[2]; i2++) s += x[IN_INDEX(d, n, i0, i1, i2) * C + c];
            y[p * C + c] = s * inv;
        }
    }
}

static void ck_f32_max_pool_backward__ref(const ck_conv_desc *d, const float *x, const float *dy, float *dx) {
    int64_t C = d->in_channels;
    memset(dx, 0, (size_t)(d->batch * d->in_size[0] * d->in_size[1] * d->in_size[2] * C) * sizeof(float));
    FOR_OUTPUT(d, n, o, p) {
        int64_t oo[3] = {o0, o1, o2};
        window w = window_of(d, oo);
        for (int64_t c = 0; c < C; c++) {
            int64_t arg = window_argmax(d, x, n, &w, c);
            if (arg >= 0) dx[arg] += dy[p * C + c];
        }
    }
}

static void ck_f32_avg_pool_backward__ref(const ck_conv_desc *d, const float *dy, float *dx) {
    int64_t C = d->in_channels;
    memset(dx, 0, (size_t)(d->batch * d->in_size[0] * d->in_size[1] * d->in_size[2] * C) * sizeof(float));
    FOR_OUTPUT(d, n, o, p) {
        int64_t oo[3] = {o0, o1, o2};
        window w = window_of(d, oo);
        float inv = 1.0f / (float)(count_of(&w) > 0 ? count_of(&w) : 1);
        for (int64_t c = 0; c < C; c++) {
            float g = dy[p * C + c] * inv;
            for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++)
                for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++)
                    for (int64_t i2 = w.lo[2]; i2 < w.hi[2]; i2++) dx[IN_INDEX(d, n, i0, i1, i2) * C + c] += g;
        }
    }
}

/* ---- AVX2: 8 channels at a time, batches split across threads ---- */

typedef struct pool_job { const ck_conv_desc *d; const float *x, *dy; float *y; int kind; } pool_job;

CK_AVX2 static void pool_rows(const pool_job *j, int64_t n) {
    const ck_conv_desc *d = j->d;
    int64_t C = d->in_channels;
    for (int64_t o0 = 0; o0 < d->out_size[0]; o0++)
        for (int64_t o1 = 0; o1 < d->out_size[1]; o1++)
            for (int64_t o2 = 0; o2 < d->out_size[2]; o2++) {
                int64_t oo[3] = {o0, o1, o2};
                int64_t p = ((n * d->out_size[0] + o0) * d->out_size[1] + o1) * d->out_size[2] + o2;
                window w = window_of(d, oo);
                int64_t cnt = count_of(&w);
                float inv = 1.0f / (float)(cnt > 0 ? cnt : 1);
                int64_t c = 0;
                for (; c + 8 <= C; c += 8) {
                    __m256 acc = j->kind == 0 ? _mm256_set1_ps(-INFINITY) : _mm256_setzero_ps();
                    for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++)
                        for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++)
                            for (int64_t i2 = w.lo[2]; i2 < w.hi[2]; i2++) {
                                __m256 v = _mm256_loadu_ps(j->x + IN_INDEX(d, n, i0, i1, i2) * C + c);
                                if (j->kind == 0) acc = _mm256_blendv_ps(acc, v, _mm256_or_ps(_mm256_cmp_ps(v, acc, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
                                else acc = _mm256_add_ps(acc, v);
                            }
                    if (j->kind == 1) acc = _mm256_mul_ps(acc, _mm256_set1_ps(inv));
                    _mm256_storeu_ps(j->y + p * C + c, acc);
                }
                for (; c < C; c++) {
                    float acc = j->kind == 0 ? -INFINITY : 0.0f;
                    for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++)
                        for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++)
                            for (int64_t i2 = w.lo[2]; i2 < w.hi[2]; i2++) {
                                float v = j->x[IN_INDEX(d, n, i0, i1, i2) * C + c];
                                if (j->kind == 0) { if (v > acc || v != v) acc = v; } else acc += v;
                            }
                    j->y[p * C + c] = j->kind == 1 ? acc * inv : acc;
                }
            }
}

static void pool_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    for (int64_t n = begin; n < end; n++) pool_rows(ctx, n);
}

/* 2-D max pooling (AVX-512), 16 channels at a time, each window walked by
 * row pointers: the same comparisons in the same order as pool_rows, so the
 * same bits; 2.5x pool_rows' speed on a 24x24x64 input on Zen 5. */
CK_AVX512 static void max_pool_rows_2d(const pool_job *j, int64_t n) {
    const ck_conv_desc *d = j->d;
    const int64_t C = d->in_channels, W = d->in_size[1];
    const float *xn = j->x + n * d->in_size[0] * W * C;
    float *yn = j->y + n * d->out_size[0] * d->out_size[1] * C;
    for (int64_t o0 = 0; o0 < d->out_size[0]; o0++)
        for (int64_t o1 = 0; o1 < d->out_size[1]; o1++) {
            int64_t oo[3] = {o0, o1, 0};
            window w = window_of(d, oo);
            float *out = yn + (o0 * d->out_size[1] + o1) * C;
            for (int64_t c = 0; c < C; c += 16) {
                __m512 acc = _mm512_set1_ps(-INFINITY);
                for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++) {
                    const float *row = xn + (i0 * W + w.lo[1]) * C + c;
                    for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++, row += C) {
                        __m512 v = _mm512_loadu_ps(row);
                        __mmask16 take = _mm512_cmp_ps_mask(v, acc, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                        acc = _mm512_mask_blend_ps(take, acc, v);
                    }
                }
                _mm512_storeu_ps(out + c, acc);
            }
        }
}

/* The common 2x2, stride-2, unpadded window (every window whole): the four
 * pixels compared in the generic walk's order (row by row), 16 or 8
 * channels at a time, the rest one by one; the same bits. */

/* Channels [c, C) of one window, one at a time: pixels p0, p0 + C (row 0) and p1, p1 + C (row 1). */
static inline void max4_channels(const float *p0, const float *p1, int64_t C, int64_t c, float *out) {
    for (; c < C; c++) {
        const float v[4] = {p0[c], p0[C + c], p1[c], p1[C + c]};
        float acc = -INFINITY;
        for (int k = 0; k < 4; k++) if (v[k] > acc || v[k] != v[k]) acc = v[k];
        out[c] = acc;
    }
}
CK_AVX512 static void max_pool_2x2_row_512(const float *r0, const float *r1, int64_t ow, int64_t C, float *out) {
    for (int64_t o1 = 0; o1 < ow; o1++, out += C) {
        const float *p0 = r0 + 2 * o1 * C, *p1 = r1 + 2 * o1 * C;
        int64_t c = 0;
        for (; c + 16 <= C; c += 16) {
            const float *src[4] = {p0 + c, p0 + C + c, p1 + c, p1 + C + c};
            __m512 acc = _mm512_set1_ps(-INFINITY);
            for (int k = 0; k < 4; k++) {
                __m512 v = _mm512_loadu_ps(src[k]);
                __mmask16 take = _mm512_cmp_ps_mask(v, acc, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                acc = _mm512_mask_blend_ps(take, acc, v);
            }
            _mm512_storeu_ps(out + c, acc);
        }
        max4_channels(p0, p1, C, c, out);
    }
}

CK_AVX2 static void max_pool_2x2_row_256(const float *r0, const float *r1, int64_t ow, int64_t C, float *out) {
    for (int64_t o1 = 0; o1 < ow; o1++, out += C) {
        const float *p0 = r0 + 2 * o1 * C, *p1 = r1 + 2 * o1 * C;
        int64_t c = 0;
        for (; c + 8 <= C; c += 8) {
            const float *src[4] = {p0 + c, p0 + C + c, p1 + c, p1 + C + c};
            __m256 acc = _mm256_set1_ps(-INFINITY);
            for (int k = 0; k < 4; k++) {
                __m256 v = _mm256_loadu_ps(src[k]);
                __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, acc, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
                acc = _mm256_blendv_ps(acc, v, take);
            }
            _mm256_storeu_ps(out + c, acc);
        }
        max4_channels(p0, p1, C, c, out);
    }
}

static void max_pool_2x2_row_ref(const float *r0, const float *r1, int64_t ow, int64_t C, float *out) {
    for (int64_t o1 = 0; o1 < ow; o1++, out += C) max4_channels(r0 + 2 * o1 * C, r1 + 2 * o1 * C, C, 0, out);
}

void ck_max_pool_2x2_row(ck_isa isa, const float *r0, const float *r1, int64_t out_pixels, int64_t C, float *out) {
    CK_PICK(isa, max_pool_2x2_row_ref, max_pool_2x2_row_256, max_pool_2x2_row_512)(r0, r1, out_pixels, C, out);
}

/* The next input row pair fetched ahead while a row is pooled. */
CK_AVX512 static void max_pool_2x2_2d(const pool_job *j, int64_t n) {
    const ck_conv_desc *d = j->d;
    const int64_t C = d->in_channels, W = d->in_size[1], OH = d->out_size[0], OW = d->out_size[1];
    const float *xn = j->x + n * d->in_size[0] * W * C;
    float *yn = j->y + n * OH * OW * C;
    for (int64_t o0 = 0; o0 < OH; o0++) {
        const float *r0 = xn + 2 * o0 * W * C, *r1 = r0 + W * C;
        if (o0 + 1 < OH)
            for (int64_t l = 0; l < 2 * W * C; l += 16) _mm_prefetch((const char *)(r0 + 2 * W * C + l), _MM_HINT_T0);
        max_pool_2x2_row_512(r0, r1, OW, C, yn + o0 * OW * C);
    }
}

static void max_pool_2x2_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    for (int64_t n = begin; n < end; n++) max_pool_2x2_2d(ctx, n);
}

static void max_pool_2d_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    for (int64_t n = begin; n < end; n++) max_pool_rows_2d(ctx, n);
}

static void ck_f32_max_pool__avx2(const ck_conv_desc *d, const float *x, float *y) {
    pool_job j = {d, x, NULL, y, 0};
    ck_parallel_for(d->batch, d->batch * out_pixels_of(d) * d->in_channels < (1 << 16), pool_task, &j);
}
/* 2-D with a multiple of 16 channels; other shapes take the AVX2 walk. */
static void ck_f32_max_pool__avx512(const ck_conv_desc *d, const float *x, float *y) {
    pool_job j = {d, x, NULL, y, 0};
    int fast = d->rank <= 2 && d->in_size[2] == 1 && d->kernel[2] == 1 && d->in_channels % 16 == 0;
    int two = fast && d->rank == 2 && d->kernel[0] == 2 && d->kernel[1] == 2 && d->stride[0] == 2 && d->stride[1] == 2 &&
              d->pad[0] == 0 && d->pad[1] == 0 && d->out_size[0] * 2 <= d->in_size[0] && d->out_size[1] * 2 <= d->in_size[1];
    ck_parallel_for(d->batch, d->batch * out_pixels_of(d) * d->in_channels < (1 << 16),
                    two ? max_pool_2x2_task : fast ? max_pool_2d_task : pool_task, &j);
}
static void ck_f32_avg_pool__avx2(const ck_conv_desc *d, const float *x, float *y) {
    pool_job j = {d, x, NULL, y, 1};
    ck_parallel_for(d->batch, d->batch * out_pixels_of(d) * d->in_channels < (1 << 16), pool_task, &j);
}

/* Backward: each batch item's dx is written by one thread, in the reference's order. */

/* ---- max-pool backward with relu's gradient, in place ----
 * dx = (x > 0 ? max_pool_backward(x, dy) : 0) for windows that do not
 * overlap (stride >= pool on every axis): relu's gradient taken from its
 * output x, which max pooling read. Each window's x is read before any of
 * its dx is written, and positions outside every window are zeroed without
 * touching the others, so dx may be x's own storage. Values are the unfused
 * pair's: 0 + dy at the kept maximum, +0 elsewhere. */

/* Whether input position i along axis a lies in some window. */
static inline int covered(const ck_conv_desc *d, int a, int64_t i) {
    int64_t t = i + d->pad[a], o = t / d->stride[a];
    return o < d->out_size[a] && t - o * d->stride[a] < d->kernel[a];
}

static void zero_uncovered(const ck_conv_desc *d, float *dx) {
    const int64_t C = d->in_channels;
    for (int64_t i0 = 0; i0 < d->in_size[0]; i0++)
        for (int64_t i1 = 0; i1 < d->in_size[1]; i1++)
            for (int64_t i2 = 0; i2 < d->in_size[2]; i2++)
                if (!covered(d, 0, i0) || !covered(d, 1, i1) || !covered(d, 2, i2)) memset(dx + IN_INDEX(d, 0, i0, i1, i2) * C, 0, (size_t)C * sizeof(float));
}

/* Channel c of one window with relu's gradient: the reference's argmax, then every position written. */
static inline void relu_window_channel(const ck_conv_desc *d, const float *x, float g, const window *w, int64_t c, float *dx) {
    int64_t arg = window_argmax(d, x, 0, w, c);
    float keep = arg >= 0 && x[arg] > 0 ? 0.0f + g : 0.0f;
    for (int64_t i0 = w->lo[0]; i0 < w->hi[0]; i0++)
        for (int64_t i1 = w->lo[1]; i1 < w->hi[1]; i1++)
            for (int64_t i2 = w->lo[2]; i2 < w->hi[2]; i2++) {
                int64_t idx = IN_INDEX(d, 0, i0, i1, i2) * d->in_channels + c;
                dx[idx] = idx == arg ? keep : 0.0f;
            }
}

static void max_pool_bwd_relu_item__ref(const ck_conv_desc *d, const float *x, const float *dy, float *dx) {
    const int64_t C = d->in_channels;
    zero_uncovered(d, dx);
    FOR_OUTPUT(d, n, o, p) {
        (void)n;
        int64_t oo[3] = {o0, o1, o2};
        window w = window_of(d, oo);
        for (int64_t c = 0; c < C; c++) relu_window_channel(d, x, dy[p * C + c], &w, c, dx);
    }
}

/* Max-pool backward for one batch item, 8 channels at a time: the argmax of
 * each window is tracked per lane with the reference's rule (first maximum;
 * a NaN wins once seen), then dy is added at the argmax and 0 elsewhere, in
 * the reference's output order, so dx is bitwise the reference's. With
 * `relu`, relu's gradient too, written over the window (see above). */
CK_AVX2 static void max_pool_bwd_item(const ck_conv_desc *d, const float *x, const float *dy, float *dx, int relu) {
    const int64_t C = d->in_channels;
    if (relu) zero_uncovered(d, dx);
    else memset(dx, 0, (size_t)(d->in_size[0] * d->in_size[1] * d->in_size[2] * C) * sizeof(float));
    for (int64_t o0 = 0; o0 < d->out_size[0]; o0++)
        for (int64_t o1 = 0; o1 < d->out_size[1]; o1++)
            for (int64_t o2 = 0; o2 < d->out_size[2]; o2++) {
                int64_t oo[3] = {o0, o1, o2};
                const int64_t p = (o0 * d->out_size[1] + o1) * d->out_size[2] + o2;
                window w = window_of(d, oo);
                if (count_of(&w) == 0) continue;
                int64_t c = 0;
                for (; c + 8 <= C; c += 8) {
                    __m256 m = _mm256_setzero_ps();
                    __m256i arg = _mm256_setzero_si256();
                    int32_t k = 0;
                    for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++)
                        for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++)
                            for (int64_t i2 = w.lo[2]; i2 < w.hi[2]; i2++, k++) {
                                __m256 v = _mm256_loadu_ps(x + IN_INDEX(d, 0, i0, i1, i2) * C + c);
                                if (k == 0) { m = v; continue; }
                                __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ),
                                                           _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(m, m, _CMP_ORD_Q)));
                                m = _mm256_blendv_ps(m, v, take);
                                arg = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(arg), _mm256_castsi256_ps(_mm256_set1_epi32(k)), take));
                            }
                    __m256 g = _mm256_loadu_ps(dy + p * C + c);
                    /* relu: 0 + dy where the maximum is positive (NaN compares false), +0 elsewhere */
                    if (relu) g = _mm256_add_ps(_mm256_setzero_ps(), _mm256_and_ps(_mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ), g));
                    k = 0;
                    for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++)
                        for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++)
                            for (int64_t i2 = w.lo[2]; i2 < w.hi[2]; i2++, k++) {
                                __m256 hit = _mm256_castsi256_ps(_mm256_cmpeq_epi32(arg, _mm256_set1_epi32(k)));
                                float *q = dx + IN_INDEX(d, 0, i0, i1, i2) * C + c;
                                _mm256_storeu_ps(q, relu ? _mm256_and_ps(hit, g) : _mm256_add_ps(_mm256_loadu_ps(q), _mm256_and_ps(hit, g)));
                            }
                }
                for (; c < C; c++) {
                    if (relu) relu_window_channel(d, x, dy[p * C + c], &w, c, dx);
                    else dx[window_argmax(d, x, 0, &w, c)] += dy[p * C + c];
                }
            }
}

/* The same for 2-D windows and a multiple of 16 channels at AVX-512, each
 * window walked by row pointers (max_pool_rows_2d's layout): the same
 * comparisons in the same order, so the same bits. */
CK_AVX512 static void max_pool_bwd_item_2d(const ck_conv_desc *d, const float *x, const float *dy, float *dx, int relu) {
    const int64_t C = d->in_channels, W = d->in_size[1];
    if (relu) zero_uncovered(d, dx);
    else memset(dx, 0, (size_t)(d->in_size[0] * W * C) * sizeof(float));
    for (int64_t o0 = 0; o0 < d->out_size[0]; o0++)
        for (int64_t o1 = 0; o1 < d->out_size[1]; o1++) {
            int64_t oo[3] = {o0, o1, 0};
            window w = window_of(d, oo);
            if (count_of(&w) == 0) continue;
            const float *g = dy + (o0 * d->out_size[1] + o1) * C;
            for (int64_t c = 0; c < C; c += 16) {
                __m512 m = _mm512_setzero_ps();
                __m512i arg = _mm512_setzero_si512();
                int32_t k = 0;
                for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++) {
                    const float *row = x + (i0 * W + w.lo[1]) * C + c;
                    for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++, row += C, k++) {
                        __m512 v = _mm512_loadu_ps(row);
                        if (k == 0) { m = v; continue; }
                        __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ)
                                         | (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q));
                        m = _mm512_mask_blend_ps(take, m, v);
                        arg = _mm512_mask_blend_epi32(take, arg, _mm512_set1_epi32(k));
                    }
                }
                __m512 gv = _mm512_loadu_ps(g + c);
                /* relu: 0 + dy where the maximum is positive (NaN compares false), +0 elsewhere */
                if (relu) gv = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ), gv));
                k = 0;
                for (int64_t i0 = w.lo[0]; i0 < w.hi[0]; i0++) {
                    float *q = dx + (i0 * W + w.lo[1]) * C + c;
                    for (int64_t i1 = w.lo[1]; i1 < w.hi[1]; i1++, q += C, k++) {
                        __mmask16 hit = _mm512_cmpeq_epi32_mask(arg, _mm512_set1_epi32(k));
                        _mm512_storeu_ps(q, relu ? _mm512_maskz_mov_ps(hit, gv) : _mm512_add_ps(_mm512_loadu_ps(q), _mm512_maskz_mov_ps(hit, gv)));
                    }
                }
            }
        }
}

typedef enum { BWD_MAX, BWD_MAX_RELU, BWD_MAX_RELU_REF, BWD_AVG, BWD_MAX_512, BWD_MAX_RELU_512 } bwd_kind;
typedef struct pool_bwd_job { const ck_conv_desc *d; const float *x, *dy; float *dx; bwd_kind kind; } pool_bwd_job;

static void pool_bwd_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const pool_bwd_job *j = ctx;
    ck_conv_desc one = *j->d;
    one.batch = 1;
    int64_t inN = j->d->in_size[0] * j->d->in_size[1] * j->d->in_size[2] * j->d->in_channels;
    int64_t outN = j->d->out_size[0] * j->d->out_size[1] * j->d->out_size[2] * j->d->in_channels;
    for (int64_t n = begin; n < end; n++) {
        const float *x = j->x ? j->x + n * inN : NULL, *dy = j->dy + n * outN;
        float *dx = j->dx + n * inN;
        switch (j->kind) {
        case BWD_MAX: max_pool_bwd_item(&one, x, dy, dx, 0); break;
        case BWD_MAX_RELU: max_pool_bwd_item(&one, x, dy, dx, 1); break;
        case BWD_MAX_RELU_REF: max_pool_bwd_relu_item__ref(&one, x, dy, dx); break;
        case BWD_AVG: ck_f32_avg_pool_backward__ref(&one, dy, dx); break;
        case BWD_MAX_512: max_pool_bwd_item_2d(&one, x, dy, dx, 0); break;
        case BWD_MAX_RELU_512: max_pool_bwd_item_2d(&one, x, dy, dx, 1); break;
        }
    }
}

static void pool_backward(const ck_conv_desc *d, const float *x, const float *dy, float *dx, bwd_kind kind) {
    pool_bwd_job j = {d, x, dy, dx, kind};
    if (kind == BWD_MAX_RELU_REF) pool_bwd_task(&j, 0, d->batch, 0);
    else ck_parallel_for(d->batch, 0, pool_bwd_task, &j);
}

static void ck_f32_max_pool_backward__avx2(const ck_conv_desc *d, const float *x, const float *dy, float *dx) { pool_backward(d, x, dy, dx, BWD_MAX); }
static int pool_2d_by_16(const ck_conv_desc *d) { return d->rank <= 2 && d->in_size[2] == 1 && d->kernel[2] == 1 && d->in_channels % 16 == 0; }
static void ck_f32_max_pool_backward__avx512(const ck_conv_desc *d, const float *x, const float *dy, float *dx) {
    pool_backward(d, x, dy, dx, pool_2d_by_16(d) ? BWD_MAX_512 : BWD_MAX);
}
static void ck_f32_max_pool_backward_relu__avx512(const ck_conv_desc *d, const float *x, const float *dy, float *dx) {
    pool_backward(d, x, dy, dx, pool_2d_by_16(d) ? BWD_MAX_RELU_512 : BWD_MAX_RELU);
}
static void ck_f32_avg_pool_backward__avx2(const ck_conv_desc *d, const float *dy, float *dx) { pool_backward(d, NULL, dy, dx, BWD_AVG); }
static void ck_f32_max_pool_backward_relu__ref(const ck_conv_desc *d, const float *x, const float *dy, float *dx) {
    pool_backward(d, x, dy, dx, BWD_MAX_RELU_REF);
}
static void ck_f32_max_pool_backward_relu__avx2(const ck_conv_desc *d, const float *x, const float *dy, float *dx) {
    pool_backward(d, x, dy, dx, BWD_MAX_RELU);
}

int ck_pool_windows_overlap(const ck_conv_desc *d) {
    for (int a = 0; a < 3; a++) if (d->stride[a] < d->kernel[a]) return 1;
    return 0;
}

ck_f32_max_pool_bwd_fn ck_f32_max_pool_backward_relu_kernel(ck_isa isa) {
    return CK_PICK(isa, ck_f32_max_pool_backward_relu__ref, ck_f32_max_pool_backward_relu__avx2, ck_f32_max_pool_backward_relu__avx512);
}

ck_f32_pool_fn ck_f32_max_pool_kernel(ck_isa isa) {
    return CK_PICK(isa, ck_f32_max_pool__ref, ck_f32_max_pool__avx2, ck_f32_max_pool__avx512);
}
ck_f32_pool_fn ck_f32_avg_pool_kernel(ck_isa isa) { return CK_PICK2(isa, ck_f32_avg_pool__ref, ck_f32_avg_pool__avx2); }
ck_f32_max_pool_bwd_fn ck_f32_max_pool_backward_kernel(ck_isa isa) {
    return CK_PICK(isa, ck_f32_max_pool_backward__ref, ck_f32_max_pool_backward__avx2, ck_f32_max_pool_backward__avx512);
}
ck_f32_avg_pool_bwd_fn ck_f32_avg_pool_backward_kernel(ck_isa isa) { return CK_PICK2(isa, ck_f32_avg_pool_backward__ref, ck_f32_avg_pool_backward__avx2); }
