/* Convolution's data gradient with 1 to 4 input channels (a network's first
 * layer), 2-D, stride 1: the transposed, zero-padded dy planes and the
 * kernels that read them (see below). conv.c dispatches here. */
#include "conv_internal.h"

/* ---- few input channels, 2-D, stride 1: the data gradient ----
 * dx[iy, ix, c] = sum_t sum_oc dy[iy + pad - k_t, ix + pad - k_t, oc] * w[t, c, oc].
 * With 1 to 4 channels the sum is over output channels, so each image's dy
 * is transposed once into zero-padded planes dyT[oc][Hq][Wq], where every
 * tap of every input pixel is in bounds; a vector of consecutive input
 * pixels then gathers nothing: for each (tap, oc) one broadcast weight times
 * one contiguous load of dyT, for ROWS input rows at once. One task per image. */

/* Both data-gradient paths: the layer, its operands, and the zero-bordered
 * buffer dy is moved into (planes here, channels-last below): its height and
 * width, and where dy's row 0 / column 0 sit in it. */
typedef struct few_bd_pass {
    const ck_conv_desc *d;
    const float *dy, *w;
    float *dx;
    int64_t Hq, Wq, PT, PL;
} few_bd_pass;

int ck_conv_few_bd_applies(const ck_conv_desc *d) {
    return few_channel_direct(d) && d->stride[0] == 1 && d->stride[1] == 1;
}

#define FEW_BD_ROWS 8

/* dx for input rows [iy0, iy0 + rows) and columns [ix, ix + LANES), channel c, image-local. */
#define FEW_BD_KERNEL(NAME, ATTR, VEC, LANES, SET1, LOADU, FMADD, ZERO, STOREU)                                          \
    ATTR static void NAME(const few_bd_pass *f, const float *dyT, const int64_t *toff, int64_t iy0, int64_t rows,       \
                          int64_t ix, int64_t c, float *out /* [FEW_BD_ROWS][LANES] */) {                               \
        const ck_conv_desc *d = f->d;                                                                                   \
        const int64_t C = d->in_channels, OC = d->out_channels, plane = f->Hq * f->Wq;                                 \
        VEC acc[FEW_BD_ROWS];                                                                                           \
        int64_t ro[FEW_BD_ROWS]; /* rows past the block's last repeat it (computed, not stored): no branches */        \
        for (int r = 0; r < FEW_BD_ROWS; r++) { acc[r] = ZERO(); ro[r] = (r < rows ? r : rows - 1) * f->Wq; }          \
        for (int64_t t = 0; t < taps_of(d); t++) {                                                                      \
            const float *base = dyT + iy0 * f->Wq + ix + toff[t];                                                       \
            const float *wt = f->w + (t * C + c) * OC;                                                                  \
            for (int64_t oc = 0; oc < OC; oc++, base += plane) {                                                        \
                VEC v = SET1(wt[oc]);                                                                                   \
                for (int r = 0; r < FEW_BD_ROWS; r++) acc[r] = FMADD(v, LOADU(base + ro[r]), acc[r]);                  \
            }                                                                                                           \
        }                                                                                                               \
        for (int r = 0; r < FEW_BD_ROWS; r++) STOREU(out + r * LANES, acc[r]);                                          \
    }

FEW_BD_KERNEL(few_bd_512, CK_AVX512, __m512, 16, _mm512_set1_ps, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_setzero_ps, _mm512_storeu_ps)
FEW_BD_KERNEL(few_bd_256, CK_AVX2, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_setzero_ps, _mm256_storeu_ps)

typedef struct few_bd_job { const few_bd_pass *f; int avx512; } few_bd_job;

/* One image's dy [OH, OW, OC] into the planes, a row of pixels at a time. */
CK_AVX2 static void transpose_dy(const few_bd_pass *f, const float *g, float *dyT) {
    const ck_conv_desc *d = f->d;
    const int64_t OC = d->out_channels, OH = d->out_size[0], OW = d->out_size[1];
    for (int64_t oy = 0; oy < OH; oy++)
        ck256_transpose(g + oy * OW * OC, OC, OW, OC, dyT + (oy + f->PT) * f->Wq + f->PL, f->Hq * f->Wq);
}

static void few_bd_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const few_bd_job *job = ctx;
    const few_bd_pass *f = job->f;
    const ck_conv_desc *d = f->d;
    const int64_t C = d->in_channels, OC = d->out_channels, H = d->in_size[0], W = d->in_size[1], OH = d->out_size[0], OW = d->out_size[1];
    const int LANES = job->avx512 ? 16 : 8;
    /* the planes, room for the last vector's overrun, and one block of results */
    float *dyT = ck_thread_scratch(thread, (size_t)(OC * f->Hq * f->Wq + 2 * LANES + FEW_BD_ROWS * 16) * sizeof(float));
    if (!dyT) return;
    float *out = dyT + OC * f->Hq * f->Wq + 2 * LANES;
    int64_t toff[64];  /* each tap's offset in a plane from input pixel (0, 0) */
    for (int64_t t = 0; t < taps_of(d); t++) {
        int64_t k[3];
        tap_offset(d, t, k);
        toff[t] = (d->pad[0] - k[0] + f->PT) * f->Wq + d->pad[1] - k[1] + f->PL;
    }
    for (int64_t n = begin; n < end; n++) {
        memset(dyT, 0, (size_t)(OC * f->Hq * f->Wq + 2 * LANES) * sizeof(float));
        const float *g = f->dy + n * OH * OW * OC;
        transpose_dy(f, g, dyT);
        float *dx = f->dx + n * H * W * C;
        for (int64_t iy0 = 0; iy0 < H; iy0 += FEW_BD_ROWS) {
            int64_t rows = H - iy0 < FEW_BD_ROWS ? H - iy0 : FEW_BD_ROWS;
            for (int64_t ix = 0; ix < W; ix += LANES) {
                int64_t cols = W - ix < LANES ? W - ix : LANES;
                for (int64_t c = 0; c < C; c++) {
                    if (job->avx512) few_bd_512(f, dyT, toff, iy0, rows, ix, c, out); else few_bd_256(f, dyT, toff, iy0, rows, ix, c, out);
                    for (int64_t r = 0; r < rows; r++)
                        for (int64_t q = 0; q < cols; q++) dx[((iy0 + r) * W + ix + q) * C + c] = out[r * LANES + q];
                }
            }
        }
    }
}

/* ---- the same with output channels in vectors (AVX-512, out_channels 16, 32, 48 or 64) ----
 * dx[iy, ix, c] = sum_t sum_oc dy[iy + pad - k_t, ix + pad - k_t, oc] * w[t, c, oc]
 * keeps dy channels-last: for each input pixel and channel one accumulator
 * collects dy's 16-channel vectors times w's over every tap (the lanes hold
 * partial sums over oc), and the 16 accumulators of a group of G = 16 / C
 * pixels are summed across lanes together (ck512_sum16), which leaves the
 * group's dx — G pixels x C channels, contiguous — in one vector. Each
 * (tap, oc vector) loads C weight vectors and G dy vectors for G x C FMAs.
 * dy is copied row by row (no transpose) into a zero-bordered buffer so
 * every tap of every pixel is in bounds; the border is zeroed once per task.
 * Rows are copied as the input rows come to need them and fetched two rows
 * ahead, so the copy's memory reads can overlap the FMAs. One task per image. */

int ck_conv_few_bd_vector_applies(const ck_conv_desc *d) {
    return ck_conv_few_bd_applies(d) && d->out_channels % 16 == 0 && d->out_channels <= 64 && d->in_channels <= 4;
}

/* One tap of both kernels below, 16 output channels at a time: C weight
 * vectors, then G pixels' dy vectors (OC floats apart from src) times each.
 * The first two and last two pixels load under masks (all ones where the
 * whole group is inside dy, which the compiler turns into plain loads). */
#define FEW_BD_TAP(C, G, OC, src, wt, ml0, ml1, mr0, mr1)                                                       \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < OC; v += 16) {                                       \
        __m512 wc[C];                                                                                           \
        _Pragma("clang loop unroll(full)") for (int c = 0; c < C; c++) wc[c] = _mm512_loadu_ps((wt) + c * OC + v); \
        _Pragma("clang loop unroll(full)") for (int g = 0; g < G; g++) {                                        \
            const float *at = (src) + g * OC + v;                                                               \
            __m512 y = g == 0 ? _mm512_maskz_loadu_ps(ml0, at) : g == 1 ? _mm512_maskz_loadu_ps(ml1, at)        \
                     : g == G - 2 ? _mm512_maskz_loadu_ps(mr0, at) : g == G - 1 ? _mm512_maskz_loadu_ps(mr1, at) \
                     : _mm512_loadu_ps(at);                                                                     \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < C; c++)                                      \
                acc[g * C + c] = _mm512_fmadd_ps(y, wc[c], acc[g * C + c]);                                     \
        }                                                                                                       \
    }

/* One kernel per (C, OC / 16), so dy's pixel stride is a constant in every address. */
#define FEW_BDV_KERNEL(C, V)                                                                                        \
    CK_AVX512 static void few_bdv_##C##_##V(const float *px, const int64_t *toff, int64_t T, \
                                            const float *w, float *out, int64_t pixels) {                          \
        enum { G = 16 / C, OC = 16 * V };                                                                           \
        __m512 acc[16];                                                                                             \
        _Pragma("clang loop unroll(full)") for (int l = 0; l < 16; l++) acc[l] = _mm512_setzero_ps();              \
        for (int64_t t = 0; t < T; t++) {                                                                           \
            const float *src = px + toff[t], *wt = w + t * C * OC;                                                  \
            FEW_BD_TAP(C, G, OC, src, wt, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF)                                             \
        }                                                                                                           \
        _mm512_mask_storeu_ps(out, (__mmask16)((1u << (pixels * C)) - 1), ck512_sum16(acc, G * C)); \
    }
#define FEW_BDV_V(C) FEW_BDV_KERNEL(C, 1) FEW_BDV_KERNEL(C, 2) FEW_BDV_KERNEL(C, 3) FEW_BDV_KERNEL(C, 4)
FEW_BDV_V(1) FEW_BDV_V(2) FEW_BDV_V(3) FEW_BDV_V(4)

typedef void (*few_bdv_fn)(const float *, const int64_t *, int64_t, const float *, float *, int64_t);
#define FEW_BDV_ROW(C) {few_bdv_##C##_1, few_bdv_##C##_2, few_bdv_##C##_3, few_bdv_##C##_4}
static const few_bdv_fn few_bdv[4][4] = {FEW_BDV_ROW(1), FEW_BDV_ROW(2), FEW_BDV_ROW(3), FEW_BDV_ROW(4)};

/* n floats (a multiple of 16) by vector moves: short rows, where rep movsb's start-up shows. */
CK_AVX512 static void copy_row(const float *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
}

static void few_bdv_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const few_bd_pass *f = ctx;
    const ck_conv_desc *d = f->d;
    const int64_t C = d->in_channels, OC = d->out_channels, H = d->in_size[0], W = d->in_size[1], OH = d->out_size[0], OW = d->out_size[1];
    const int64_t G = 16 / C, T = taps_of(d);
    few_bdv_fn kernel = few_bdv[C - 1][OC / 16 - 1];
    float *dyp = ck_thread_scratch(thread, (size_t)(f->Hq * f->Wq * OC) * sizeof(float));
    if (!dyp) return;
    memset(dyp, 0, (size_t)(f->Hq * f->Wq * OC) * sizeof(float));
    int64_t toff[64];  /* each tap's offset in the buffer from an input pixel's own position */
    for (int64_t t = 0; t < T; t++) {
        int64_t k[3];
        tap_offset(d, t, k);
        toff[t] = ((d->pad[0] - k[0]) * f->Wq + d->pad[1] - k[1]) * OC;
    }
    const int64_t row_floats = OW * OC;
    for (int64_t n = begin; n < end; n++) {
        const float *g = f->dy + n * OH * OW * OC;
        float *dx = f->dx + n * H * W * C;
        /* dy's rows are copied as the input rows come to need them (row iy reads
         * up to dy row iy + pad), so the copy's memory reads overlap the FMAs */
        int64_t copied = 0;
        for (int64_t iy = 0; iy < H; iy++) {
            int64_t need = iy + d->pad[0] < OH - 1 ? iy + d->pad[0] : OH - 1;
            for (; copied <= need; copied++) {
                copy_row(g + copied * row_floats, dyp + ((copied + f->PT) * f->Wq + f->PL) * OC, row_floats);
                if (copied + 2 < OH) {  /* two rows ahead */
                    const char *ahead = (const char *)(g + (copied + 2) * row_floats);
                    for (int64_t l = 0; l < row_floats * (int64_t)sizeof(float); l += 64) _mm_prefetch(ahead + l, _MM_HINT_T0);
                }
            }
            const float *row = dyp + ((iy + f->PT) * f->Wq + f->PL) * OC;
            for (int64_t ix0 = 0; ix0 < W; ix0 += G)
                kernel(row + ix0 * OC, toff, T, f->w, dx + (iy * W + ix0) * C, W - ix0 < G ? W - ix0 : G);
        }
    }
}

/* ---- the same reading dy in place (no copy), when every group's edge is narrow ----
 * Groups start every G pixels and the last one ends at the row's end
 * (overlapping its neighbour: the shared pixels get the same bits, since a
 * lane's sum does not depend on its position). A group's pixels whose dy
 * column is outside the image can then only be its first or last EDGE ones;
 * those load under a mask (which reads nothing where it is zero), the rest
 * load plainly. Rows of dy outside the image skip their taps. */
enum { EDGE = 2 };

int ck_conv_few_bd_direct_applies(const ck_conv_desc *d) {
    int64_t reach = (d->kernel[1] - 1) * d->dilation[1], pad_r = d->out_size[1] - d->in_size[1] - d->pad[1] + reach;
    return ck_conv_few_bd_vector_applies(d) && d->in_size[1] >= 16 / d->in_channels && reach - d->pad[1] <= EDGE && reach - pad_r <= EDGE;
}

#define FEW_BDD_KERNEL(C, V)                                                                                        \
    CK_AVX512 static void few_bdd_##C##_##V(const ck_conv_desc *d, const float *dy, const float *w, int64_t iy,      \
                                            int64_t ix0, float *out) {                                              \
        enum { G = 16 / C, OC = 16 * V };                                                                           \
        const int64_t OH = d->out_size[0], OW = d->out_size[1], KH = d->kernel[0], KW = d->kernel[1];               \
        __m512 acc[16];                                                                                             \
        _Pragma("clang loop unroll(full)") for (int l = 0; l < 16; l++) acc[l] = _mm512_setzero_ps();              \
        for (int64_t kx = 0; kx < KW; kx++) {                                                                       \
            int64_t ox0 = ix0 + d->pad[1] - kx * d->dilation[1];                                                    \
            int64_t lo = ox0 < 0 ? -ox0 : 0, hi = OW - ox0 < G ? OW - ox0 : G;  /* lanes [lo, hi) in the image */   \
            __mmask16 ml0 = lo <= 0 ? 0xFFFF : 0, ml1 = lo <= 1 && hi > 1 ? 0xFFFF : 0;                            \
            __mmask16 mr0 = hi > G - 2 && lo <= G - 2 ? 0xFFFF : 0, mr1 = hi > G - 1 ? 0xFFFF : 0;                 \
            for (int64_t ky = 0; ky < KH; ky++) {                                                                   \
                int64_t oy = iy + d->pad[0] - ky * d->dilation[0];                                                  \
                if (oy < 0 || oy >= OH) continue;                                                                   \
                const float *src = dy + (oy * OW + ox0) * OC, *wt = w + (ky * KW + kx) * C * OC;                    \
                FEW_BD_TAP(C, G, OC, src, wt, ml0, ml1, mr0, mr1)                                                   \
            }                                                                                                       \
        }                                                                                                           \
        _mm512_mask_storeu_ps(out, (__mmask16)((1u << (G * C)) - 1), ck512_sum16(acc, G * C));                      \
    }
#define FEW_BDD_V(C) FEW_BDD_KERNEL(C, 1) FEW_BDD_KERNEL(C, 2) FEW_BDD_KERNEL(C, 3) FEW_BDD_KERNEL(C, 4)
FEW_BDD_V(1) FEW_BDD_V(2) FEW_BDD_V(3) FEW_BDD_V(4)

typedef void (*few_bdd_fn)(const ck_conv_desc *, const float *, const float *, int64_t, int64_t, float *);
#define FEW_BDD_ROW(C) {few_bdd_##C##_1, few_bdd_##C##_2, few_bdd_##C##_3, few_bdd_##C##_4}
static const few_bdd_fn few_bdd[4][4] = {FEW_BDD_ROW(1), FEW_BDD_ROW(2), FEW_BDD_ROW(3), FEW_BDD_ROW(4)};

static void few_bdd_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const few_bd_pass *f = ctx;
    const ck_conv_desc *d = f->d;
    const int64_t C = d->in_channels, OC = d->out_channels, H = d->in_size[0], W = d->in_size[1], OH = d->out_size[0], OW = d->out_size[1];
    const int64_t G = 16 / C;
    few_bdd_fn kernel = few_bdd[C - 1][OC / 16 - 1];
    for (int64_t n = begin; n < end; n++) {
        const float *g = f->dy + n * OH * OW * OC;
        float *dx = f->dx + n * H * W * C;
        for (int64_t iy = 0; iy < H; iy++)
            for (int64_t ix0 = 0; ix0 < W; ix0 += G) {
                int64_t at = ix0 + G <= W ? ix0 : W - G;  /* the last group ends at the row's end */
                kernel(d, g, f->w, iy, at, dx + (iy * W + at) * C);
            }
    }
}

static void few_backward_data_vector(const ck_conv_desc *d, const float *dy, const float *w, float *dx) {
    if (ck_conv_few_bd_direct_applies(d)) {
        few_bd_pass f = {d, dy, w, dx, 0, 0, 0, 0};
        ck_parallel_for(d->batch, 2 * d->batch * out_pixels(d) * d->out_channels * taps_of(d) * d->in_channels < (1 << 20), few_bdd_task, &f);
        return;
    }
    int64_t kh = (d->kernel[0] - 1) * d->dilation[0], kw = (d->kernel[1] - 1) * d->dilation[1];
    int64_t G = 16 / d->in_channels;
    few_bd_pass f = {d, dy, w, dx, 0, 0, 0, 0};
    /* input pixel (iy, ix) reads dy rows iy + pad - kh ... iy + pad, columns likewise (G more for a ragged last group) */
    f.PT = kh > d->pad[0] ? kh - d->pad[0] : 0;
    f.PL = kw > d->pad[1] ? kw - d->pad[1] : 0;
    int64_t rows = d->in_size[0] + d->pad[0], cols = d->in_size[1] + d->pad[1] + G;
    f.Hq = f.PT + (rows > d->out_size[0] ? rows : d->out_size[0]);
    f.Wq = f.PL + (cols > d->out_size[1] ? cols : d->out_size[1]);
    ck_parallel_for(d->batch, 2 * d->batch * out_pixels(d) * d->out_channels * taps_of(d) * d->in_channels < (1 << 20), few_bdv_task, &f);
}

void ck_conv_few_backward_data(const ck_conv_desc *d, const float *dy, const float *w, float *dx, int avx512) {
    if (avx512 && ck_conv_few_bd_vector_applies(d)) { few_backward_data_vector(d, dy, w, dx); return; }
    int64_t kh = (d->kernel[0] - 1) * d->dilation[0], kw = (d->kernel[1] - 1) * d->dilation[1];
    few_bd_pass f = {d, dy, w, dx, 0, 0, kh, kw};
    f.Hq = d->in_size[0] + d->pad[0] + kh + FEW_BD_ROWS;  /* rows past the last block read zeros */
    f.Wq = d->in_size[1] + d->pad[1] + kw;
    if (f.Hq < d->out_size[0] + kh) f.Hq = d->out_size[0] + kh;
    if (f.Wq < d->out_size[1] + kw) f.Wq = d->out_size[1] + kw;
    few_bd_job job = {&f, avx512};
    ck_parallel_for(d->batch, 2 * d->batch * out_pixels(d) * d->out_channels * taps_of(d) * d->in_channels < (1 << 20), few_bd_task, &job);
}
