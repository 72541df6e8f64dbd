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

typedef struct few_bd_pass {
    const ck_conv_desc *d;
    const float *dy, *w;
    float *dx;
    int64_t Hq, Wq, PT, PL;  /* the padded planes, and where dy's row 0 / column 0 sit in them */
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

void ck_conv_few_backward_data(const ck_conv_desc *d, const float *dy, const float *w, float *dx, int avx512) {
    int64_t kh = (d->kernel[0] - 1) * d->dilation[0], kw = (d->kernel[1] - 1) * d->dilation[1];
    few_bd_pass f = {d, dy, w, dx, 0, 0, kh, kw};
    f.Hq = d->in_size[0] + d->pad[0] + kh + FEW_BD_ROWS;  /* rows past the last block read zeros */
    f.Wq = d->in_size[1] + d->pad[1] + kw;
    if (f.Hq < d->out_size[0] + kh) f.Hq = d->out_size[0] + kh;
    if (f.Wq < d->out_size[1] + kw) f.Wq = d->out_size[1] + kw;
    few_bd_job job = {&f, avx512};
    ck_parallel_for(d->batch, 2 * d->batch * out_pixels(d) * d->out_channels * taps_of(d) * d->in_channels < (1 << 20), few_bd_task, &job);
}
