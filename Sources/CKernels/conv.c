/* Convolution, channels-last, 1 to 3 spatial dimensions, with strides,
 * dilation, explicit padding and groups (depthwise = groups == channels).
 *
 * Forward and backward-data are indirect GEMMs: for a tile of MR output
 * pixels, a table of MR row pointers per kernel tap points into the input
 * (or at a zero row for padding), and the micro-kernel broadcasts A straight
 * from those rows against pre-packed weight panels: no im2col buffer, no
 * packing of A. Backward-filter is a GEMM over pixels whose A micro-panels
 * are gathered from the input patches on the fly. Work is split over output
 * rows only, so every element is summed in the same order on any number of
 * threads. */
#include "ck_internal.h"
#include "ck_threads.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- geometry ---- */

static int64_t taps_of(const ck_conv_desc *d) { return d->kernel[0] * d->kernel[1] * d->kernel[2]; }
static int64_t in_pixels(const ck_conv_desc *d) { return d->in_size[0] * d->in_size[1] * d->in_size[2]; }
static int64_t out_pixels(const ck_conv_desc *d) { return d->out_size[0] * d->out_size[1] * d->out_size[2]; }

/* Input pixel (flat, including batch) for output pixel p and tap t, or -1 in the padding. */
static inline int64_t forward_source(const ck_conv_desc *d, int64_t p, int64_t t) {
    int64_t o2 = p % d->out_size[2], q = p / d->out_size[2];
    int64_t o1 = q % d->out_size[1]; q /= d->out_size[1];
    int64_t o0 = q % d->out_size[0], n = q / d->out_size[0];
    int64_t k2 = t % d->kernel[2], u = t / d->kernel[2];
    int64_t k1 = u % d->kernel[1], k0 = u / d->kernel[1];
    int64_t i0 = o0 * d->stride[0] + k0 * d->dilation[0] - d->pad[0];
    int64_t i1 = o1 * d->stride[1] + k1 * d->dilation[1] - d->pad[1];
    int64_t i2 = o2 * d->stride[2] + k2 * d->dilation[2] - d->pad[2];
    if (i0 < 0 || i0 >= d->in_size[0] || i1 < 0 || i1 >= d->in_size[1] || i2 < 0 || i2 >= d->in_size[2]) return -1;
    return ((n * d->in_size[0] + i0) * d->in_size[1] + i1) * d->in_size[2] + i2;
}

/* Output pixel that input pixel i receives from through tap t, or -1. */
static inline int64_t backward_source(const ck_conv_desc *d, int64_t i, int64_t t) {
    int64_t i2 = i % d->in_size[2], q = i / d->in_size[2];
    int64_t i1 = q % d->in_size[1]; q /= d->in_size[1];
    int64_t i0 = q % d->in_size[0], n = q / d->in_size[0];
    int64_t k2 = t % d->kernel[2], u = t / d->kernel[2];
    int64_t k1 = u % d->kernel[1], k0 = u / d->kernel[1];
    int64_t a0 = i0 + d->pad[0] - k0 * d->dilation[0], a1 = i1 + d->pad[1] - k1 * d->dilation[1], a2 = i2 + d->pad[2] - k2 * d->dilation[2];
    if (a0 < 0 || a1 < 0 || a2 < 0 || a0 % d->stride[0] || a1 % d->stride[1] || a2 % d->stride[2]) return -1;
    a0 /= d->stride[0]; a1 /= d->stride[1]; a2 /= d->stride[2];
    if (a0 >= d->out_size[0] || a1 >= d->out_size[1] || a2 >= d->out_size[2]) return -1;
    return ((n * d->out_size[0] + a0) * d->out_size[1] + a1) * d->out_size[2] + a2;
}

/* ---- the forward epilogue: bias, residual and activation on rows [p0, p0 + rows), columns [c0, c0 + cols) ---- */

static int has_conv_epilogue(const ck_conv_desc *d) { return d->bias || d->residual || d->activation > 0; }

static void conv_epilogue(const ck_conv_desc *d, ck_isa isa, float *y, int64_t p0, int64_t rows, int64_t c0, int64_t cols) {
    int64_t OC = d->out_channels;
    ck_f32_unary_fn act = d->activation > 0 ? ck_f32_unary_kernel((ck_unary_op)(d->activation - 1), isa) : NULL;
    ck_f32_binary_fn add = ck_f32_binary_kernel(CK_BINARY_ADD, isa);
    for (int64_t r = p0; r < p0 + rows; r++) {
        float *row = y + r * OC + c0;
        if (d->bias) add((size_t)cols, row, 1, d->bias + c0, 1, row);
        if (d->residual) add((size_t)cols, row, 1, d->residual + r * OC + c0, 1, row);
        if (act) act((size_t)cols, row, row, &d->act_params);
    }
}

/* ---- reference: direct loops, double accumulation ---- */

static void ck_f32_conv_forward__ref(const ck_conv_desc *d, const float *x, const float *w, float *y) {
    int64_t C = d->in_channels, OC = d->out_channels, G = d->groups, Cg = C / G, OCg = OC / G, T = taps_of(d);
    int64_t P = d->batch * out_pixels(d);
    for (int64_t p = 0; p < P; p++)
        for (int64_t oc = 0; oc < OC; oc++) {
            int64_t g = oc / OCg;
            double acc = 0;
            for (int64_t t = 0; t < T; t++) {
                int64_t src = forward_source(d, p, t);
                if (src < 0) continue;
                for (int64_t c = 0; c < Cg; c++) acc += (double)x[src * C + g * Cg + c] * (double)w[(t * Cg + c) * OC + oc];
            }
            y[p * OC + oc] = (float)acc;
        }
    if (has_conv_epilogue(d)) conv_epilogue(d, CK_ISA_REF, y, 0, P, 0, OC);
}

static void ck_f32_conv_backward_data__ref(const ck_conv_desc *d, const float *dy, const float *w, float *dx) {
    int64_t C = d->in_channels, OC = d->out_channels, G = d->groups, Cg = C / G, OCg = OC / G, T = taps_of(d);
    int64_t Pin = d->batch * in_pixels(d);
    for (int64_t i = 0; i < Pin; i++)
        for (int64_t c = 0; c < C; c++) {
            int64_t g = c / Cg, cg = c % Cg;
            double acc = 0;
            for (int64_t t = 0; t < T; t++) {
                int64_t o = backward_source(d, i, t);
                if (o < 0) continue;
                for (int64_t oc = 0; oc < OCg; oc++)
                    acc += (double)dy[o * OC + g * OCg + oc] * (double)w[(t * Cg + cg) * OC + g * OCg + oc];
            }
            dx[i * C + c] = (float)acc;
        }
}

static void ck_f32_conv_backward_filter__ref(const ck_conv_desc *d, const float *x, const float *dy, float *dw) {
    int64_t C = d->in_channels, OC = d->out_channels, G = d->groups, Cg = C / G, OCg = OC / G, T = taps_of(d);
    int64_t P = d->batch * out_pixels(d);
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t oc = 0; oc < OC; oc++) {
                int64_t g = oc / OCg;
                double acc = 0;
                for (int64_t p = 0; p < P; p++) {
                    int64_t src = forward_source(d, p, t);
                    if (src >= 0) acc += (double)x[src * C + g * Cg + c] * (double)dy[p * OC + oc];
                }
                dw[(t * Cg + c) * OC + oc] = (float)acc;
            }
}

/* ---- indirect GEMM micro-kernels: C[MR x NR] = sum_t sum_k A_t[r][k] * W[t][k][:] ---- */

typedef void (*igemm_ukr)(int64_t taps, int64_t kc, const float *const *ind, const float *w, float *c, int64_t ldc,
                          int64_t mr, int64_t nr);

CK_AVX2 static void igemm_6x16(int64_t taps, int64_t kc, const float *const *ind, const float *w, float *c, int64_t ldc,
                               int64_t mr, int64_t nr) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t t = 0; t < taps; t++) {
        const float *a0 = ind[t * 6 + 0], *a1 = ind[t * 6 + 1], *a2 = ind[t * 6 + 2];
        const float *a3 = ind[t * 6 + 3], *a4 = ind[t * 6 + 4], *a5 = ind[t * 6 + 5];
        for (int64_t k = 0; k < kc; k++) {
            __m256 b0 = _mm256_load_ps(w), b1 = _mm256_load_ps(w + 8);
            __m256 v = _mm256_broadcast_ss(a0 + k);
            c00 = _mm256_fmadd_ps(v, b0, c00); c01 = _mm256_fmadd_ps(v, b1, c01);
            v = _mm256_broadcast_ss(a1 + k);
            c10 = _mm256_fmadd_ps(v, b0, c10); c11 = _mm256_fmadd_ps(v, b1, c11);
            v = _mm256_broadcast_ss(a2 + k);
            c20 = _mm256_fmadd_ps(v, b0, c20); c21 = _mm256_fmadd_ps(v, b1, c21);
            v = _mm256_broadcast_ss(a3 + k);
            c30 = _mm256_fmadd_ps(v, b0, c30); c31 = _mm256_fmadd_ps(v, b1, c31);
            v = _mm256_broadcast_ss(a4 + k);
            c40 = _mm256_fmadd_ps(v, b0, c40); c41 = _mm256_fmadd_ps(v, b1, c41);
            v = _mm256_broadcast_ss(a5 + k);
            c50 = _mm256_fmadd_ps(v, b0, c50); c51 = _mm256_fmadd_ps(v, b1, c51);
            w += 16;
        }
    }
    __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (nr == 16) {
        for (int64_t r = 0; r < mr; r++) {
            _mm256_storeu_ps(c + r * ldc, acc[r][0]);
            _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
        }
        return;
    }
    __m256i m0 = ck256_tail_mask(nr >= 8 ? 8 : (size_t)nr), m1 = ck256_tail_mask(nr > 8 ? (size_t)(nr - 8) : 0);
    for (int64_t r = 0; r < mr; r++) {
        _mm256_maskstore_ps(c + r * ldc, m0, acc[r][0]);
        _mm256_maskstore_ps(c + r * ldc + 8, m1, acc[r][1]);
    }
}

#define IROW512(r)                                                        \
    {                                                                     \
        __m512 v = _mm512_set1_ps(a##r[k]);                               \
        acc##r##0 = _mm512_fmadd_ps(v, b0, acc##r##0);                    \
        acc##r##1 = _mm512_fmadd_ps(v, b1, acc##r##1);                    \
    }

CK_AVX512 static void igemm_14x32(int64_t taps, int64_t kc, const float *const *ind, const float *w, float *c,
                                  int64_t ldc, int64_t mr, int64_t nr) {
    __m512 z = _mm512_setzero_ps();
    __m512 acc00 = z, acc01 = z, acc10 = z, acc11 = z, acc20 = z, acc21 = z, acc30 = z, acc31 = z;
    __m512 acc40 = z, acc41 = z, acc50 = z, acc51 = z, acc60 = z, acc61 = z, acc70 = z, acc71 = z;
    __m512 acc80 = z, acc81 = z, acc90 = z, acc91 = z, acc100 = z, acc101 = z, acc110 = z, acc111 = z;
    __m512 acc120 = z, acc121 = z, acc130 = z, acc131 = z;
    for (int64_t t = 0; t < taps; t++) {
        const float *const *row = ind + t * 14;
        const float *a0 = row[0], *a1 = row[1], *a2 = row[2], *a3 = row[3], *a4 = row[4], *a5 = row[5], *a6 = row[6];
        const float *a7 = row[7], *a8 = row[8], *a9 = row[9], *a10 = row[10], *a11 = row[11], *a12 = row[12], *a13 = row[13];
        for (int64_t k = 0; k < kc; k++) {
            __m512 b0 = _mm512_load_ps(w), b1 = _mm512_load_ps(w + 16);
            IROW512(0) IROW512(1) IROW512(2) IROW512(3) IROW512(4) IROW512(5) IROW512(6)
            IROW512(7) IROW512(8) IROW512(9) IROW512(10) IROW512(11) IROW512(12) IROW512(13)
            w += 32;
        }
    }
    __m512 acc[14][2] = {{acc00, acc01}, {acc10, acc11}, {acc20, acc21}, {acc30, acc31}, {acc40, acc41},
                         {acc50, acc51}, {acc60, acc61}, {acc70, acc71}, {acc80, acc81}, {acc90, acc91},
                         {acc100, acc101}, {acc110, acc111}, {acc120, acc121}, {acc130, acc131}};
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : (__mmask16)0;
    for (int64_t r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);
    }
}

typedef struct igemm_impl {
    int mr, nr;
    igemm_ukr ukr;
} igemm_impl;

static const igemm_impl igemm_avx2 = {6, 16, igemm_6x16};
static const igemm_impl igemm_avx512 = {14, 32, igemm_14x32};

/* Weight panels: packed[block][row][NR] where row runs over `rows` (tap-major)
 * and column j of block b is element(row, b * NR + j) (0 past `cols`). */
typedef float (*elem_fn)(const void *ctx, int64_t row, int64_t col);

static void pack_panels(const void *ctx, elem_fn elem, int64_t rows, int64_t cols, int NR, float *dst) {
    for (int64_t b0 = 0; b0 < cols; b0 += NR)
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t j = 0; j < NR; j++) dst[j] = b0 + j < cols ? elem(ctx, r, b0 + j) : 0.0f;
            dst += NR;
        }
}

/* ---- few input channels: patches packed straight into GEMM micro-panels ----
 *
 * With one to four input channels (a network's first layer) each tap holds
 * only C floats, so the indirect kernels spend their time on the pointer
 * table, and backward-filter's channel tile (MR rows) is mostly empty. Here
 * the GEMM's own blocked kernel runs with an A packer that gathers patch
 * values (padding as zeros) directly into its micro-panels:
 *   forward:         Y[p, oc]      = sum_(t,c) patch[p, (t,c)] * W[(t,c), oc]
 *   backward-filter: dW[(t,c), oc] = sum_p     patch[p, (t,c)] * dY[p, oc]
 * Pixel coordinates are decomposed once per pixel, never per element. */
#define FEW_CHANNELS 4

typedef struct patch_ctx {
    const ck_conv_desc *d;
    const float *x;
    const int64_t *delta;  /* per (tap, channel): offset from a window's first element, for windows inside the input */
} patch_ctx;

/* An output pixel as coordinates, advanced one pixel at a time (no division per pixel). */
typedef struct pixel_walk { int64_t n, o[3]; } pixel_walk;

static inline pixel_walk walk_from(const ck_conv_desc *d, int64_t p) {
    pixel_walk w;
    w.o[2] = p % d->out_size[2]; p /= d->out_size[2];
    w.o[1] = p % d->out_size[1]; p /= d->out_size[1];
    w.o[0] = p % d->out_size[0]; w.n = p / d->out_size[0];
    return w;
}

static inline void walk_next(const ck_conv_desc *d, pixel_walk *w) {
    if (++w->o[2] == d->out_size[2]) { w->o[2] = 0; if (++w->o[1] == d->out_size[1]) { w->o[1] = 0; if (++w->o[0] == d->out_size[0]) { w->o[0] = 0; w->n++; } } }
}

/* The window's first input coordinate per axis; returns the first element's
 * flat index when the whole window lies inside the input, else -1. */
static inline int64_t window_start(const ck_conv_desc *d, const pixel_walk *w, int64_t b[3]) {
    int inside = 1;
    for (int a = 0; a < 3; a++) {
        b[a] = w->o[a] * d->stride[a] - d->pad[a];
        inside &= b[a] >= 0 && b[a] + (d->kernel[a] - 1) * d->dilation[a] < d->in_size[a];
    }
    return inside ? (((w->n * d->in_size[0] + b[0]) * d->in_size[1] + b[1]) * d->in_size[2] + b[2]) * d->in_channels : -1;
}

/* The tap's offset per axis (kernel position times dilation). */
static inline void tap_offset(const ck_conv_desc *d, int64_t t, int64_t k[3]) {
    int64_t k2 = t % d->kernel[2], u = t / d->kernel[2];
    k[0] = (u / d->kernel[1]) * d->dilation[0];
    k[1] = (u % d->kernel[1]) * d->dilation[1];
    k[2] = k2 * d->dilation[2];
}

/* One patch element of a window that may reach into the padding. */
static inline float patch_value(const ck_conv_desc *d, const float *x, int64_t n, const int64_t b[3], int64_t tc) {
    int64_t k[3], C = d->in_channels;
    tap_offset(d, tc / C, k);
    int64_t i0 = b[0] + k[0], i1 = b[1] + k[1], i2 = b[2] + k[2];
    if (i0 < 0 || i0 >= d->in_size[0] || i1 < 0 || i1 >= d->in_size[1] || i2 < 0 || i2 >= d->in_size[2]) return 0.0f;
    return x[(((n * d->in_size[0] + i0) * d->in_size[1] + i1) * d->in_size[2] + i2) * C + tc % C];
}

/* A = patches (rows: output pixels, columns: (tap, channel)). */
static void pack_patch_rows(const void *ctx, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int MR, float *dst) {
    const patch_ctx *pc = ctx;
    const ck_conv_desc *d = pc->d;
    const int64_t *delta = pc->delta + k0;
    pixel_walk w = walk_from(d, i0);
    for (int64_t ir = 0; ir < mc; ir += MR, dst += (int64_t)MR * kc) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        for (int64_t r = 0; r < MR; r++) {
            if (r >= mr) { for (int64_t q = 0; q < kc; q++) dst[q * MR + r] = 0.0f; continue; }
            int64_t b[3], first = window_start(d, &w, b);
            if (first >= 0) {
                const float *base = pc->x + first;
                for (int64_t q = 0; q < kc; q++) dst[q * MR + r] = base[delta[q]];
            } else {
                for (int64_t q = 0; q < kc; q++) dst[q * MR + r] = patch_value(d, pc->x, w.n, b, k0 + q);
            }
            walk_next(d, &w);
        }
    }
}

/* A = patches transposed (rows: (tap, channel), columns: output pixels). */
static void pack_patch_cols(const void *ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int MR, float *dst) {
    const patch_ctx *pc = ctx;
    const ck_conv_desc *d = pc->d;
    for (int64_t ir = 0; ir < mc; ir += MR, dst += (int64_t)MR * kc) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        const int64_t *delta = pc->delta + i0 + ir;
        pixel_walk w = walk_from(d, p0);
        for (int64_t q = 0; q < kc; q++, walk_next(d, &w)) {
            float *col = dst + q * MR;
            int64_t b[3], first = window_start(d, &w, b);
            if (first >= 0) {
                const float *base = pc->x + first;
                for (int64_t r = 0; r < mr; r++) col[r] = base[delta[r]];
            } else {
                for (int64_t r = 0; r < mr; r++) col[r] = patch_value(d, pc->x, w.n, b, i0 + ir + r);
            }
            for (int64_t r = mr; r < MR; r++) col[r] = 0.0f;
        }
    }
}

/* Offsets of every (tap, channel) from a window's first element. */
static const int64_t *patch_deltas(const ck_conv_desc *d) {
    int64_t T = taps_of(d), C = d->in_channels;
    int64_t *delta = ck_thread_scratch(CK_SCRATCH_EXTRA2, (size_t)(T * C) * sizeof(int64_t));
    for (int64_t t = 0; t < T; t++) {
        int64_t k[3];
        tap_offset(d, t, k);
        for (int64_t c = 0; c < C; c++) delta[t * C + c] = ((k[0] * d->in_size[1] + k[1]) * d->in_size[2] + k[2]) * C + c;
    }
    return delta;
}

static int few_channels(const ck_conv_desc *d) { return d->groups == 1 && d->in_channels <= FEW_CHANNELS; }

typedef struct conv_pass {
    const ck_conv_desc *d;
    const igemm_impl *im;
    const float *src;   /* rows the indirection points into */
    int64_t src_ld;     /* floats per source pixel */
    int64_t src_off;    /* channel offset (group) in a source pixel */
    int64_t kc;         /* channels per tap */
    const float *panels;
    int64_t cols;       /* output columns this group writes */
    float *dst;
    int64_t dst_ld, dst_off;
    int64_t rows;       /* output pixels */
    int backward;       /* 0: forward_source, 1: backward_source */
    const float *zero;
} conv_pass;

static void conv_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const conv_pass *cp = ctx;
    const ck_conv_desc *d = cp->d;
    int MR = cp->im->mr, NR = cp->im->nr;
    int64_t T = taps_of(d);
    const float **ind = ck_thread_scratch(thread, (size_t)T * MR * sizeof(float *));
    /* Forward tables without a division per entry: tap offsets once, pixels walked. */
    enum { MAX_WALK_TAPS = 64 };
    int walk = !cp->backward && T <= MAX_WALK_TAPS;
    int walk_back = cp->backward && T <= MAX_WALK_TAPS && d->stride[0] == 1 && d->stride[1] == 1 && d->stride[2] == 1;
    int64_t koff[MAX_WALK_TAPS][3], dpix[MAX_WALK_TAPS];
    if (walk || walk_back)
        for (int64_t t = 0; t < T; t++) {
            tap_offset(d, t, koff[t]);
            const int64_t *sz = walk ? d->in_size : d->out_size;  /* the walked-into tensor's pixel strides */
            dpix[t] = (koff[t][0] * sz[1] + koff[t][1]) * sz[2] + koff[t][2];
        }
    for (int64_t tile = begin; tile < end; tile++) {
        int64_t p0 = tile * MR, mr = cp->rows - p0 < MR ? cp->rows - p0 : MR;
        if (walk) {
            pixel_walk w = walk_from(d, p0);
            for (int r = 0; r < MR; r++) {
                if (r >= mr) { for (int64_t t = 0; t < T; t++) ind[t * MR + r] = ind[t * MR]; continue; }
                int64_t b[3];
                if (window_start(d, &w, b) >= 0) {
                    int64_t pix = ((w.n * d->in_size[0] + b[0]) * d->in_size[1] + b[1]) * d->in_size[2] + b[2];
                    const float *base = cp->src + pix * cp->src_ld + cp->src_off;
                    for (int64_t t = 0; t < T; t++) ind[t * MR + r] = base + dpix[t] * cp->src_ld;
                } else {
                    for (int64_t t = 0; t < T; t++) {
                        int64_t i0 = b[0] + koff[t][0], i1 = b[1] + koff[t][1], i2 = b[2] + koff[t][2];
                        int inside = i0 >= 0 && i0 < d->in_size[0] && i1 >= 0 && i1 < d->in_size[1] && i2 >= 0 && i2 < d->in_size[2];
                        ind[t * MR + r] = inside ? cp->src + (((w.n * d->in_size[0] + i0) * d->in_size[1] + i1) * d->in_size[2] + i2) * cp->src_ld + cp->src_off
                                                 : cp->zero;
                    }
                }
                walk_next(d, &w);
            }
        } else if (walk_back) {
            /* stride 1: input pixel i receives from output pixel i + pad - k_t * dilation */
            int64_t q = p0, i[3], n;
            i[2] = q % d->in_size[2]; q /= d->in_size[2];
            i[1] = q % d->in_size[1]; q /= d->in_size[1];
            i[0] = q % d->in_size[0]; n = q / d->in_size[0];
            for (int r = 0; r < MR; r++) {
                if (r >= mr) { for (int64_t t = 0; t < T; t++) ind[t * MR + r] = ind[t * MR]; continue; }
                int64_t a[3];
                int inside = 1;
                for (int x = 0; x < 3; x++) {
                    a[x] = i[x] + d->pad[x];  /* the tap-0 source; tap t subtracts koff[t] */
                    inside &= a[x] - (d->kernel[x] - 1) * d->dilation[x] >= 0 && a[x] < d->out_size[x];
                }
                if (inside) {
                    const float *base = cp->src + (((n * d->out_size[0] + a[0]) * d->out_size[1] + a[1]) * d->out_size[2] + a[2]) * cp->src_ld + cp->src_off;
                    for (int64_t t = 0; t < T; t++) ind[t * MR + r] = base - dpix[t] * cp->src_ld;
                } else {
                    for (int64_t t = 0; t < T; t++) {
                        int64_t a0 = a[0] - koff[t][0], a1 = a[1] - koff[t][1], a2 = a[2] - koff[t][2];
                        int ok = a0 >= 0 && a0 < d->out_size[0] && a1 >= 0 && a1 < d->out_size[1] && a2 >= 0 && a2 < d->out_size[2];
                        ind[t * MR + r] = ok ? cp->src + (((n * d->out_size[0] + a0) * d->out_size[1] + a1) * d->out_size[2] + a2) * cp->src_ld + cp->src_off
                                             : cp->zero;
                    }
                }
                if (++i[2] == d->in_size[2]) { i[2] = 0; if (++i[1] == d->in_size[1]) { i[1] = 0; if (++i[0] == d->in_size[0]) { i[0] = 0; n++; } } }
            }
        } else {
            for (int64_t t = 0; t < T; t++)
                for (int r = 0; r < MR; r++) {
                    int64_t p = p0 + (r < mr ? r : 0);
                    int64_t s = cp->backward ? backward_source(d, p, t) : forward_source(d, p, t);
                    ind[t * MR + r] = s < 0 ? cp->zero : cp->src + s * cp->src_ld + cp->src_off;
                }
        }
        for (int64_t j = 0; j < cp->cols; j += NR) {
            int64_t nr = cp->cols - j < NR ? cp->cols - j : NR;
            cp->im->ukr(T, cp->kc, ind, cp->panels + j * T * cp->kc, cp->dst + p0 * cp->dst_ld + cp->dst_off + j, cp->dst_ld, mr, nr);
        }
        if (!cp->backward && has_conv_epilogue(d)) conv_epilogue(d, CK_ISA_AVX2, cp->dst, p0, mr, cp->dst_off, cp->cols);
    }
}

typedef struct weight_view { const float *w; int64_t Cg, OC, off, tapsTimesCg; int transposed; int64_t OCg; } weight_view;

/* forward: row (t, c), column oc -> w[(t*Cg + c)*OC + off + oc] */
static float w_forward(const void *ctx, int64_t row, int64_t col) {
    const weight_view *v = ctx;
    return v->w[row * v->OC + v->off + col];
}
/* backward data: row (t, oc), column c -> w[(t*Cg + c)*OC + off + oc] */
static float w_backward(const void *ctx, int64_t row, int64_t col) {
    const weight_view *v = ctx;
    int64_t t = row / v->OCg, oc = row % v->OCg;
    return v->w[(t * v->Cg + col) * v->OC + v->off + oc];
}


static pthread_mutex_t conv_mu;  /* defined below */

static void few_channel_forward(ck_isa isa, const ck_conv_desc *d, const float *x, const float *w, float *y) {
    pthread_mutex_lock(&conv_mu);
    patch_ctx pc = {d, x, patch_deltas(d)};
    ck_gemm_args g = {0};
    g.m = d->batch * out_pixels(d); g.n = d->out_channels; g.k = taps_of(d) * d->in_channels;
    g.alpha = 1; g.beta = 0;
    g.b = w; g.ldb = d->out_channels;
    g.c = y; g.ldc = d->out_channels;
    g.user_pack_a = pack_patch_rows; g.user_pack_ctx = &pc;
    g.bias = d->bias; g.residual = d->residual; g.ld_residual = d->out_channels;
    g.activation = d->activation; g.act_params = d->act_params;
    ck_gemm_custom_a(isa, &g);
    pthread_mutex_unlock(&conv_mu);
}

static void few_channel_backward_filter(ck_isa isa, const ck_conv_desc *d, const float *x, const float *dy, float *dw) {
    pthread_mutex_lock(&conv_mu);
    patch_ctx pc = {d, x, patch_deltas(d)};
    ck_gemm_args g = {0};
    g.m = taps_of(d) * d->in_channels; g.n = d->out_channels; g.k = d->batch * out_pixels(d);
    g.alpha = 1; g.beta = 0;
    g.b = dy; g.ldb = d->out_channels;
    g.c = dw; g.ldc = d->out_channels;
    g.user_pack_a = pack_patch_cols; g.user_pack_ctx = &pc;
    if (g.k == 0) for (int64_t i = 0; i < g.m * g.n; i++) dw[i] = 0.0f;
    else ck_gemm_custom_a(isa, &g);
    pthread_mutex_unlock(&conv_mu);
}

static pthread_mutex_t conv_mu = PTHREAD_MUTEX_INITIALIZER;

static void run_igemm(const igemm_impl *im, const ck_conv_desc *d, int backward, const float *src, const float *w, float *dst) {
    int64_t C = d->in_channels, OC = d->out_channels, G = d->groups, Cg = C / G, OCg = OC / G, T = taps_of(d);
    int64_t rows = d->batch * (backward ? in_pixels(d) : out_pixels(d));
    int64_t kc = backward ? OCg : Cg, cols = backward ? Cg : OCg;
    int64_t blocks = (cols + im->nr - 1) / im->nr;
    pthread_mutex_lock(&conv_mu);
    float *panels = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)blocks * im->nr * T * kc * sizeof(float));
    float *zero = ck_thread_scratch(CK_SCRATCH_EXTRA2, (size_t)(kc + 16) * sizeof(float));
    memset(zero, 0, (size_t)(kc + 16) * sizeof(float));
    for (int64_t g = 0; g < G; g++) {
        weight_view v = {w, Cg, OC, g * OCg, T * Cg, backward, OCg};
        pack_panels(&v, backward ? w_backward : w_forward, T * kc, cols, im->nr, panels);
        conv_pass cp = {d, im, src, backward ? OC : C, backward ? g * OCg : g * Cg, kc, panels, cols,
                        dst, backward ? C : OC, backward ? g * Cg : g * OCg, rows, backward, zero};
        int64_t tiles = (rows + im->mr - 1) / im->mr;
        int64_t flops = 2 * rows * cols * T * kc;
        ck_parallel_for(tiles, flops < (1 << 20), conv_task, &cp);
    }
    pthread_mutex_unlock(&conv_mu);
}

static void ck_f32_conv_forward__avx2(const ck_conv_desc *d, const float *x, const float *w, float *y) {
    if (few_channels(d)) few_channel_forward(CK_ISA_AVX2, d, x, w, y); else run_igemm(&igemm_avx2, d, 0, x, w, y);
}
static void ck_f32_conv_forward__avx512(const ck_conv_desc *d, const float *x, const float *w, float *y) {
    if (few_channels(d)) few_channel_forward(CK_ISA_AVX512, d, x, w, y); else run_igemm(&igemm_avx512, d, 0, x, w, y);
}
static void ck_f32_conv_backward_data__avx2(const ck_conv_desc *d, const float *dy, const float *w, float *dx) { run_igemm(&igemm_avx2, d, 1, dy, w, dx); }
static void ck_f32_conv_backward_data__avx512(const ck_conv_desc *d, const float *dy, const float *w, float *dx) { run_igemm(&igemm_avx512, d, 1, dy, w, dx); }

/* ---- backward filter: dW[(t, c), oc] = sum_p x[src(p, t), c] * dy[p, oc] ----
 *
 * No packing: for a tile of MR channels x NR output channels, the kernel
 * walks a block of pixels, broadcasting MR consecutive channels of each
 * pixel's source (through the per-tap offset table, or a zero row) against
 * NR channels of dy read in place. The tile lives in registers for a block
 * of KC pixels and in dW between blocks; threads own fixed tiles, so every
 * element is summed over pixels in the same order on any number of threads. */

typedef void (*bf_ukr)(int64_t kc, const int64_t *offs, const float *x, const float *zero, const float *dy, int64_t ldy,
                       float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate);

CK_AVX2 static void bf_6x16(int64_t kc, const int64_t *offs, const float *x, const float *zero, const float *dy, int64_t ldy,
                            float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate) {
    __m256 acc[6][2];
    for (int r = 0; r < 6; r++) { acc[r][0] = _mm256_setzero_ps(); acc[r][1] = _mm256_setzero_ps(); }
    __m256i m0 = ck256_tail_mask(nr >= 8 ? 8 : (size_t)nr), m1 = ck256_tail_mask(nr > 8 ? (size_t)(nr - 8) : 0);
    int full = nr == 16;
    int r1 = mr > 1, r2 = mr > 2 ? 2 : 0, r3 = mr > 3 ? 3 : 0, r4 = mr > 4 ? 4 : 0, r5 = mr > 5 ? 5 : 0;
    for (int64_t p = 0; p < kc; p++) {
        const float *a = offs[p] < 0 ? zero : x + offs[p];
        const float *b = dy + p * ldy;
        __m256 b0 = full ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
        __m256 b1 = full ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1);
        __m256 v = _mm256_broadcast_ss(a);
        acc[0][0] = _mm256_fmadd_ps(v, b0, acc[0][0]); acc[0][1] = _mm256_fmadd_ps(v, b1, acc[0][1]);
        v = _mm256_broadcast_ss(a + r1);
        acc[1][0] = _mm256_fmadd_ps(v, b0, acc[1][0]); acc[1][1] = _mm256_fmadd_ps(v, b1, acc[1][1]);
        v = _mm256_broadcast_ss(a + r2);
        acc[2][0] = _mm256_fmadd_ps(v, b0, acc[2][0]); acc[2][1] = _mm256_fmadd_ps(v, b1, acc[2][1]);
        v = _mm256_broadcast_ss(a + r3);
        acc[3][0] = _mm256_fmadd_ps(v, b0, acc[3][0]); acc[3][1] = _mm256_fmadd_ps(v, b1, acc[3][1]);
        v = _mm256_broadcast_ss(a + r4);
        acc[4][0] = _mm256_fmadd_ps(v, b0, acc[4][0]); acc[4][1] = _mm256_fmadd_ps(v, b1, acc[4][1]);
        v = _mm256_broadcast_ss(a + r5);
        acc[5][0] = _mm256_fmadd_ps(v, b0, acc[5][0]); acc[5][1] = _mm256_fmadd_ps(v, b1, acc[5][1]);
    }
    for (int64_t r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        __m256 y0 = acc[r][0], y1 = acc[r][1];
        if (accumulate) {
            y0 = _mm256_add_ps(y0, _mm256_maskload_ps(cr, m0));
            y1 = _mm256_add_ps(y1, _mm256_maskload_ps(cr + 8, m1));
        }
        _mm256_maskstore_ps(cr, m0, y0);
        _mm256_maskstore_ps(cr + 8, m1, y1);
    }
}

/* MR channels x 32 output channels, MR a compile-time constant after
 * inlining (8 to 14), so the accumulators stay in registers; rows past mr
 * (a partial tile) repeat row 0 and are not stored. */
CK_AVX512 static inline __attribute__((always_inline)) void bf_avx512_tile(const int MR, int64_t kc, const int64_t *offs, const float *x,
                                                                          const float *zero, const float *dy, int64_t ldy, float *c,
                                                                          int64_t ldc, int64_t mr, int64_t nr, int accumulate) {
    __m512 acc[14][2];
    for (int r = 0; r < MR; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : (__mmask16)0;
    if (mr == MR) {
        /* full tiles: constant offsets, so the loads fold into the broadcasts */
        for (int64_t p = 0; p < kc; p++) {
            const float *a = offs[p] < 0 ? zero : x + offs[p];
            const float *b = dy + p * ldy;
            __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
            _Pragma("clang loop unroll(full)") for (int r = 0; r < MR; r++) {
                __m512 v = _mm512_set1_ps(a[r]);
                acc[r][0] = _mm512_fmadd_ps(v, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(v, b1, acc[r][1]);
            }
        }
    } else {
        int idx[14];
        for (int r = 0; r < MR; r++) idx[r] = r < mr ? r : 0;
        for (int64_t p = 0; p < kc; p++) {
            const float *a = offs[p] < 0 ? zero : x + offs[p];
            const float *b = dy + p * ldy;
            __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
            _Pragma("clang loop unroll(full)") for (int r = 0; r < MR; r++) {
                __m512 v = _mm512_set1_ps(a[idx[r]]);
                acc[r][0] = _mm512_fmadd_ps(v, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(v, b1, acc[r][1]);
            }
        }
    }
    for (int64_t r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        __m512 y0 = acc[r][0], y1 = acc[r][1];
        if (accumulate) {
            y0 = _mm512_add_ps(y0, _mm512_maskz_loadu_ps(m0, cr));
            y1 = _mm512_add_ps(y1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, y0);
        _mm512_mask_storeu_ps(cr + 16, m1, y1);
    }
}

#define BF_AVX512(M)                                                                                                        \
    CK_AVX512 static void bf_##M##x32(int64_t kc, const int64_t *offs, const float *x, const float *zero, const float *dy,    \
                                      int64_t ldy, float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate) {          \
        bf_avx512_tile(M, kc, offs, x, zero, dy, ldy, c, ldc, mr, nr, accumulate);                                           \
    }
BF_AVX512(8) BF_AVX512(9) BF_AVX512(10) BF_AVX512(11) BF_AVX512(12) BF_AVX512(13) BF_AVX512(14)
static const bf_ukr bf_avx512_by_mr[7] = {bf_8x32, bf_9x32, bf_10x32, bf_11x32, bf_12x32, bf_13x32, bf_14x32};

/* Channel rows per AVX-512 tile: as many as fit (14) split evenly over the
 * tiles a group's channels need (32 channels: 3 tiles of 11, not 14+14+4),
 * at least 8. */
static int bf_avx512_rows(int64_t Cg) {
    int64_t tiles = (Cg + 13) / 14, mr = (Cg + tiles - 1) / tiles;
    return mr < 8 ? 8 : (int)mr;
}

typedef struct bf_job {
    const ck_conv_desc *d;
    bf_ukr ukr;
    int mr, nr;
    int64_t kc;                 /* pixels per block */
    const int64_t *offsets;     /* [T][P] */
    const float *x, *dy, *zero;
    float *dw;
    int64_t P, C, OC, Cg, OCg, goff, ooff;
    int64_t ctiles, otiles;     /* tiles per tap along channels and output channels */
} bf_job;

static void bf_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const bf_job *j = ctx;
    for (int64_t p0 = 0; p0 < j->P; p0 += j->kc) {
        int64_t kc = j->P - p0 < j->kc ? j->P - p0 : j->kc;
        for (int64_t tile = begin; tile < end; tile++) {
            int64_t ot = tile % j->otiles, u = tile / j->otiles, ct = u % j->ctiles, t = u / j->ctiles;
            int64_t c0 = ct * j->mr, o0 = ot * j->nr;
            int64_t mr = j->Cg - c0 < j->mr ? j->Cg - c0 : j->mr, nr = j->OCg - o0 < j->nr ? j->OCg - o0 : j->nr;
            j->ukr(kc, j->offsets + t * j->P + p0, j->x + j->goff + c0, j->zero, j->dy + p0 * j->OC + j->ooff + o0, j->OC,
                   j->dw + (t * j->Cg + c0) * j->OC + j->ooff + o0, j->OC, mr, nr, p0 > 0);
        }
    }
}

static void backward_filter(ck_isa isa, const ck_conv_desc *d, const float *x, const float *dy, float *dw) {
    int64_t C = d->in_channels, OC = d->out_channels, G = d->groups, Cg = C / G, OCg = OC / G, T = taps_of(d);
    int64_t P = d->batch * out_pixels(d);
    int avx512 = isa == CK_ISA_AVX512;
    int MR = avx512 ? bf_avx512_rows(Cg) : 6, NR = avx512 ? 32 : 16;
    pthread_mutex_lock(&conv_mu);
    float *zero = ck_thread_scratch(CK_SCRATCH_EXTRA2, (size_t)(Cg + 32) * sizeof(float));
    memset(zero, 0, (size_t)(Cg + 32) * sizeof(float));
    int64_t *offsets = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)T * P * sizeof(int64_t));
    /* Walk the output pixels instead of dividing per element. */
    for (int64_t t = 0; t < T; t++) {
        int64_t k[3];
        tap_offset(d, t, k);
        pixel_walk w = {0, {0, 0, 0}};
        for (int64_t p = 0; p < P; p++, walk_next(d, &w)) {
            int64_t i0 = w.o[0] * d->stride[0] + k[0] - d->pad[0];
            int64_t i1 = w.o[1] * d->stride[1] + k[1] - d->pad[1];
            int64_t i2 = w.o[2] * d->stride[2] + k[2] - d->pad[2];
            int inside = i0 >= 0 && i0 < d->in_size[0] && i1 >= 0 && i1 < d->in_size[1] && i2 >= 0 && i2 < d->in_size[2];
            offsets[t * P + p] = inside ? (((w.n * d->in_size[0] + i0) * d->in_size[1] + i1) * d->in_size[2] + i2) * C : -1;
        }
    }
    for (int64_t g = 0; g < G; g++) {
        bf_job j = {d, avx512 ? bf_avx512_by_mr[MR - 8] : bf_6x16, MR, NR, 256, offsets, x, dy, zero, dw, P, C, OC, Cg, OCg, g * Cg, g * OCg,
                    (Cg + MR - 1) / MR, (OCg + NR - 1) / NR};
        int64_t tiles = T * j.ctiles * j.otiles;
        if (P == 0) {
            for (int64_t t = 0; t < T * Cg; t++) for (int64_t o = 0; o < OCg; o++) dw[t * OC + g * OCg + o] = 0.0f;
            continue;
        }
        ck_parallel_for(tiles, 2 * T * Cg * OCg * P < (1 << 20), bf_task, &j);
    }
    pthread_mutex_unlock(&conv_mu);
}

static void ck_f32_conv_backward_filter__avx2(const ck_conv_desc *d, const float *x, const float *dy, float *dw) {
    if (few_channels(d)) few_channel_backward_filter(CK_ISA_AVX2, d, x, dy, dw); else backward_filter(CK_ISA_AVX2, d, x, dy, dw);
}
static void ck_f32_conv_backward_filter__avx512(const ck_conv_desc *d, const float *x, const float *dy, float *dw) {
    if (few_channels(d)) few_channel_backward_filter(CK_ISA_AVX512, d, x, dy, dw); else backward_filter(CK_ISA_AVX512, d, x, dy, dw);
}

ck_f32_conv_fn ck_f32_conv_forward_kernel(ck_isa isa) {
    return isa == CK_ISA_REF ? ck_f32_conv_forward__ref : isa == CK_ISA_AVX512 ? ck_f32_conv_forward__avx512 : ck_f32_conv_forward__avx2;
}
ck_f32_conv_bd_fn ck_f32_conv_backward_data_kernel(ck_isa isa) {
    return isa == CK_ISA_REF ? ck_f32_conv_backward_data__ref : isa == CK_ISA_AVX512 ? ck_f32_conv_backward_data__avx512 : ck_f32_conv_backward_data__avx2;
}
ck_f32_conv_bf_fn ck_f32_conv_backward_filter_kernel(ck_isa isa) {
    return isa == CK_ISA_REF ? ck_f32_conv_backward_filter__ref : isa == CK_ISA_AVX512 ? ck_f32_conv_backward_filter__avx512 : ck_f32_conv_backward_filter__avx2;
}
