/* Convolution internals shared by conv.c (forward, backward data, the
 * few-channel patch path) and conv_filter.c (backward filter): geometry,
 * pixel walks, patch packing and the lock on the shared scratch. */
#ifndef CK_CONV_INTERNAL_H
#define CK_CONV_INTERNAL_H

#include "ck_internal.h"
#include "ck_threads.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- geometry ---- */

static inline int64_t taps_of(const ck_conv_desc *d) { return d->kernel[0] * d->kernel[1] * d->kernel[2]; }
static inline int64_t in_pixels(const ck_conv_desc *d) { return d->in_size[0] * d->in_size[1] * d->in_size[2]; }
static inline int64_t out_pixels(const ck_conv_desc *d) { return d->out_size[0] * d->out_size[1] * d->out_size[2]; }

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


/* A = patches (rows: output pixels, columns: (tap, channel)) and its transpose, as GEMM packers. */
void ck_conv_pack_patch_rows(const void *ctx, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int MR, float *dst);
void ck_conv_pack_patch_cols(const void *ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int MR, float *dst);
/* Offsets of every (tap, channel) from a window's first element (in the shared extra scratch). */
const int64_t *ck_conv_patch_deltas(const ck_conv_desc *d);

static inline int few_channels(const ck_conv_desc *d) { return d->groups == 1 && d->in_channels <= FEW_CHANNELS; }

/* ---- few input channels, 2-D: a zero-padded copy of each image ----
 * In the copy every tap of every output pixel is in bounds, so tap t of
 * output pixel (oy, ox) is at ((oy * sy) * Wp + ox * sx) * C + koff[t]. */
static inline int few_channel_direct(const ck_conv_desc *d) {
    return few_channels(d) && d->rank == 2 && d->in_size[2] == 1 && d->out_size[2] == 1 && d->kernel[2] == 1 && taps_of(d) <= 64;
}

/* The padded image's rows and columns: what the windows reach. */
static inline void padded_extent(const ck_conv_desc *d, int64_t *Hp, int64_t *Wp) {
    *Hp = (d->out_size[0] - 1) * d->stride[0] + (d->kernel[0] - 1) * d->dilation[0] + 1;
    *Wp = (d->out_size[1] - 1) * d->stride[1] + (d->kernel[1] - 1) * d->dilation[1] + 1;
}

/* Each tap's offset in the padded image from a window's corner, in floats. */
static inline void padded_tap_offsets(const ck_conv_desc *d, int64_t Wp, int64_t *koff) {
    for (int64_t t = 0; t < taps_of(d); t++) {
        int64_t k[3];
        tap_offset(d, t, k);
        koff[t] = (k[0] * Wp + k[1]) * d->in_channels;
    }
}

/* Image n of x copied into xp [Hp, Wp, C] with zeros around it. */
static inline void pad_image(const ck_conv_desc *d, const float *x, int64_t n, int64_t Hp, int64_t Wp, float *xp) {
    const int64_t C = d->in_channels, H = d->in_size[0], W = d->in_size[1], top = d->pad[0], left = d->pad[1];
    memset(xp, 0, (size_t)(Hp * Wp * C) * sizeof(float));
    int64_t cols = W < Wp - left ? W : Wp - left;  /* input columns the windows reach */
    for (int64_t i = 0; i < H && top + i < Hp && cols > 0; i++)
        memcpy(xp + ((top + i) * Wp + left) * C, x + (n * H + i) * W * C, (size_t)(cols * C) * sizeof(float));
}

/* The few-channel data gradient (conv_data_few.c): whether it applies, and it. */
int ck_conv_few_bd_applies(const ck_conv_desc *d);
void ck_conv_few_backward_data(const ck_conv_desc *d, const float *dy, const float *w, float *dx, int avx512);

/* ---- the indirect micro-kernels (conv_ukr.c) ---- */
typedef void (*igemm_ukr)(int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w, float *c, int64_t ldc,
                          int64_t mr, int64_t nr, int accumulate);
typedef void (*igemm_epi_ukr)(int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w, float *c,
                              int64_t ldc, int64_t mr, int64_t nr, int accumulate, const float *bias, int relu);
CK_AVX2 void ck_igemm_6x16(int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w, float *c, int64_t ldc,
                           int64_t mr, int64_t nr, int accumulate);
CK_AVX512 void ck_igemm_12x32(int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w, float *c, int64_t ldc,
                              int64_t mr, int64_t nr, int accumulate);
CK_AVX512 void ck_igemm_14x32(int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w, float *c, int64_t ldc,
                              int64_t mr, int64_t nr, int accumulate);
CK_AVX512 void ck_igemm_14x32_bias_relu(int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w, float *c,
                                        int64_t ldc, int64_t mr, int64_t nr, int accumulate, const float *bias, int relu);

#endif
