/* Convolution's filter gradient, dW[(t, c), oc] = sum_p x[src(p, t), c] * dy[p, oc]:
 * the double-precision reference, the few-channel path (patches packed into
 * the GEMM) and the register-tiled kernels. */
#include "conv_internal.h"
#include "ck_kernel_lists.h"

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


static void few_channel_backward_filter(ck_isa isa, const ck_conv_desc *d, const float *x, const float *dy, float *dw) {
    patch_ctx pc = {d, x, ck_conv_patch_deltas(d)};
    ck_gemm_args g = {0};
    g.m = taps_of(d) * d->in_channels; g.n = d->out_channels; g.k = d->batch * out_pixels(d);
    g.alpha = 1; g.beta = 0;
    g.b = dy; g.ldb = d->out_channels;
    g.c = dw; g.ldc = d->out_channels;
    g.user_pack_a = ck_conv_pack_patch_cols; g.user_pack_ctx = &pc;
    if (g.k == 0) for (int64_t i = 0; i < g.m * g.n; i++) dw[i] = 0.0f;
    else ck_gemm_custom_a(isa, &g);
}


/* ---- few input channels, 2-D: dW from the zero-padded images ----
 * dW's T*C rows are few (9 for a 3x3 kernel on one channel), so a block of
 * rows by 32 (AVX-512) or 16 (AVX2) output channels stays in registers while
 * every pixel of an image passes: per pixel one load of dy's row and one
 * broadcast per dW row, no bounds checks (padded_tap_offsets). Images go in
 * fixed chunks, each chunk's partial dW summed image by image, then the
 * chunks added in order: the same sums on any number of threads. */

enum { FEW_BF_CHUNK = 4 };

typedef struct few_bf_pass {
    const ck_conv_desc *d;
    const float *x, *dy;
    float *partials;      /* one dW per chunk */
    int64_t Hp, Wp, rows;  /* padded image; dW rows = T * C */
    int64_t roff[256];     /* each dW row's offset from a window's corner */
    int avx512;
} few_bf_pass;

#define FEW_BF_BLOCK(NAME, ATTR, VEC, LANES, ROWS, SET1, LOADU, FMADD, ZERO, STOREU)                                    \
    ATTR static void NAME(const float *xp, const int64_t *roff, int64_t ps, int64_t rowstep, const float *dy, int64_t OC,  \
                          int64_t OH, int64_t OW, float *out) {                                                          \
        VEC acc[ROWS][2];                                                                                                 \
        for (int i = 0; i < ROWS; i++) acc[i][0] = acc[i][1] = ZERO();                                                   \
        for (int64_t oy = 0; oy < OH; oy++) {                                                                             \
            const float *a = xp + oy * rowstep, *g = dy + oy * OW * OC;                                                   \
            for (int64_t ox = 0; ox < OW; ox++, a += ps, g += OC) {                                                       \
                VEC b0 = LOADU(g), b1 = LOADU(g + LANES);                                                                 \
                for (int i = 0; i < ROWS; i++) {                                                                          \
                    VEC v = SET1(a[roff[i]]);                                                                             \
                    acc[i][0] = FMADD(v, b0, acc[i][0]);                                                                  \
                    acc[i][1] = FMADD(v, b1, acc[i][1]);                                                                  \
                }                                                                                                         \
            }                                                                                                             \
        }                                                                                                                 \
        for (int i = 0; i < ROWS; i++) { STOREU(out + i * 2 * LANES, acc[i][0]); STOREU(out + i * 2 * LANES + LANES, acc[i][1]); } \
    }

FEW_BF_BLOCK(few_bf_block512, CK_AVX512, __m512, 16, 12, _mm512_set1_ps, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_setzero_ps, _mm512_storeu_ps)
FEW_BF_BLOCK(few_bf_block256, CK_AVX2, __m256, 8, 6, _mm256_set1_ps, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_setzero_ps, _mm256_storeu_ps)

static void few_bf_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const few_bf_pass *f = ctx;
    const ck_conv_desc *d = f->d;
    const int64_t C = d->in_channels, OC = d->out_channels, OH = d->out_size[0], OW = d->out_size[1];
    const int ROWS = f->avx512 ? 12 : 6, BLOCK = f->avx512 ? 32 : 16;
    float *xp = ck_thread_scratch(thread, (size_t)(f->Hp * f->Wp * C + ROWS * 2 * 16) * sizeof(float));
    if (!xp) return;
    float *tile = xp + f->Hp * f->Wp * C;
    const int64_t ps = d->stride[1] * C, rowstep = d->stride[0] * f->Wp * C;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *part = f->partials + chunk * f->rows * OC;
        memset(part, 0, (size_t)(f->rows * OC) * sizeof(float));
        int64_t n1 = (chunk + 1) * FEW_BF_CHUNK < d->batch ? (chunk + 1) * FEW_BF_CHUNK : d->batch;
        for (int64_t n = chunk * FEW_BF_CHUNK; n < n1; n++) {
            pad_image(d, f->x, n, f->Hp, f->Wp, xp);
            const float *g = f->dy + n * OH * OW * OC;
            for (int64_t r0 = 0; r0 < f->rows; r0 += ROWS) {
                int64_t roff[12];
                for (int i = 0; i < ROWS; i++) roff[i] = f->roff[r0 + i < f->rows ? r0 + i : f->rows - 1];
                for (int64_t oc0 = 0; oc0 < OC; oc0 += BLOCK) {
                    if (f->avx512) few_bf_block512(xp, roff, ps, rowstep, g + oc0, OC, OH, OW, tile);
                    else few_bf_block256(xp, roff, ps, rowstep, g + oc0, OC, OH, OW, tile);
                    for (int i = 0; i < ROWS && r0 + i < f->rows; i++)
                        for (int j = 0; j < BLOCK; j++) part[(r0 + i) * OC + oc0 + j] += tile[i * BLOCK + j];
                }
            }
        }
    }
}

/* Whether the register-blocked few-channel path applies at this ISA. */
static int few_bf_applies(const ck_conv_desc *d, int avx512) {
    return few_channel_direct(d) && d->out_channels % (avx512 ? 32 : 16) == 0 && taps_of(d) * d->in_channels <= 256 && d->batch > 0;
}

static void few_channel_filter_direct(const ck_conv_desc *d, const float *x, const float *dy, float *dw, int avx512) {
    few_bf_pass f;
    f.d = d; f.x = x; f.dy = dy; f.avx512 = avx512;
    padded_extent(d, &f.Hp, &f.Wp);
    f.rows = taps_of(d) * d->in_channels;
    int64_t koff[64];
    padded_tap_offsets(d, f.Wp, koff);
    for (int64_t r = 0; r < f.rows; r++) f.roff[r] = koff[r / d->in_channels] + r % d->in_channels;
    int64_t chunks = (d->batch + FEW_BF_CHUNK - 1) / FEW_BF_CHUNK, OC = d->out_channels;
    f.partials = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)(chunks * f.rows * OC) * sizeof(float));
    ck_parallel_for(chunks, 2 * d->batch * out_pixels(d) * f.rows * OC < (1 << 20), few_bf_task, &f);
    for (int64_t i = 0; i < f.rows * OC; i++) {
        float s = 0;
        for (int64_t c = 0; c < chunks; c++) s += f.partials[c * f.rows * OC + i];
        dw[i] = s;
    }
}

/* ---- backward filter: dW[(t, c), oc] = sum_p x[src(p, t), c] * dy[p, oc] ----
 *
 * No packing: for a tile of MR channels x NR output channels, the kernel
 * walks a block of pixels, broadcasting MR consecutive channels of each
 * pixel's source (through the per-tap offset table, or a zero row) against
 * NR channels of dy read in place. The tile lives in registers for a block
 * of KC pixels and in dW between blocks. A layer with pixels for two or more
 * chunks of about 8192 splits them: each chunk sums every tile into its own
 * partial dW, and the partials are added in chunk order (each thread reads
 * only its chunks' x and dy: 2 threads, cifar_cnn's first 32->32 layer
 * 247-276 -> 345-356 GFLOP/s); a smaller one splits the tiles, each summed
 * over all pixels. Either way the split is fixed by the layer, so every
 * element is summed in the same order on any number of threads. */

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
    _Pragma("clang loop unroll(full)") for (int r = 0; r < MR; r++) {  /* fixed indices: the tile stays in registers */
        if (r >= mr) break;
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

/* The filter-gradient micro-kernels by themselves (their own table rows). */
void ck_f32_conv_bf_ukr__ref(int MR, int NR, int64_t kc, const int64_t *offs, const float *x, const float *zero,
                             const float *dy, int64_t ldy, float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate) {
    (void)MR; (void)NR;
    for (int64_t r = 0; r < mr; r++)
        for (int64_t j = 0; j < nr; j++) {
            double acc = accumulate ? c[r * ldc + j] : 0.0;
            for (int64_t p = 0; p < kc; p++) {
                const float *a = offs[p] < 0 ? zero : x + offs[p];
                acc += (double)a[r] * (double)dy[p * ldy + j];
            }
            c[r * ldc + j] = (float)acc;
        }
}

ck_f32_conv_bf_ukr_fn ck_f32_conv_bf_ukr_kernel(ck_isa isa, int mr, int nr) {
#define CK_UKR_NAME(MR, NR) bf_##MR##x##NR
    CK_CONV_BF_UKRS(CK_UKR_CASE)
#undef CK_UKR_NAME
    return NULL;
}

/* Channel rows per AVX-512 tile: as many as fit (14) split evenly over the
 * tiles a group's channels need (32 channels: 3 tiles of 11, not 14+14+4),
 * at least 8. */
static int bf_avx512_rows(int64_t Cg) {
    for (int mr = 14; mr >= 8; mr--) if (Cg % mr == 0) return mr;  /* full tiles only, where a size divides */
    int64_t tiles = (Cg + 13) / 14, mr = (Cg + tiles - 1) / tiles;
    return mr < 8 ? 8 : (int)mr;
}

typedef struct bf_job {
    const ck_conv_desc *d;
    bf_ukr ukr;
    int mr, nr;
    int64_t kc;                 /* pixels per block (512: measured 1-3% ahead of 256, Zen 5) */
    const float *x, *dy, *zero;
    float *dw;
    int64_t P, C, OC, Cg, OCg, goff, ooff;
    int64_t ctiles, otiles;     /* tiles per tap along channels and output channels */
    int64_t chunks;             /* pixel chunks (whole kc blocks each), 0: tasks are tiles */
    float *partials;            /* [chunks][T * Cg][OCg] */
} bf_job;

/* Where pixels [p0, p0 + kc) read taps [t0, t1): offs[t * kc + q] floats
 * into x for pixel p0 + q, or -1 in the padding. Each task makes the table
 * for its own taps and pixel block as it goes (a whole layer's would be
 * megabytes, written by one thread); pixels walk once per 32 taps. */
static void bf_block_offsets(const ck_conv_desc *d, int64_t p0, int64_t kc, int64_t t0, int64_t t1, int64_t *offs) {
    const int64_t C = d->in_channels, *in = d->in_size;
    const pixel_walk first = walk_from(d, p0);
    for (int64_t ta = t0; ta < t1; ta += 32) {
        const int64_t tb = t1 - ta < 32 ? t1 : ta + 32;
        int64_t k[32][3];
        for (int64_t t = ta; t < tb; t++) tap_offset(d, t, k[t - ta]);
        pixel_walk w = first;
        for (int64_t q = 0; q < kc; q++, walk_next(d, &w)) {
            const int64_t b0 = w.o[0] * d->stride[0] - d->pad[0], b1 = w.o[1] * d->stride[1] - d->pad[1], b2 = w.o[2] * d->stride[2] - d->pad[2];
            for (int64_t t = ta; t < tb; t++) {
                const int64_t i0 = b0 + k[t - ta][0], i1 = b1 + k[t - ta][1], i2 = b2 + k[t - ta][2];
                const int inside = i0 >= 0 && i0 < in[0] && i1 >= 0 && i1 < in[1] && i2 >= 0 && i2 < in[2];
                offs[t * kc + q] = inside ? (((w.n * in[0] + i0) * in[1] + i1) * in[2] + i2) * C : -1;
            }
        }
    }
}

/* Tiles [t0, t1) summed over pixels [p_begin, p_end), a block of kc at a
 * time, into dW rows of `ld` floats from dst (the group's first column). */
static void bf_tiles(const bf_job *j, int64_t *offs, int64_t t0, int64_t t1, int64_t p_begin, int64_t p_end, float *dst, int64_t ld) {
    const int64_t per_tap = j->ctiles * j->otiles;  /* tiles run tap-major: offsets for these tiles' taps only */
    for (int64_t p0 = p_begin; p0 < p_end; p0 += j->kc) {
        int64_t kc = p_end - p0 < j->kc ? p_end - p0 : j->kc;
        bf_block_offsets(j->d, p0, kc, t0 / per_tap, (t1 - 1) / per_tap + 1, offs);
        for (int64_t tile = t0; tile < t1; tile++) {
            int64_t ot = tile % j->otiles, u = tile / j->otiles, ct = u % j->ctiles, t = u / j->ctiles;
            int64_t c0 = ct * j->mr, o0 = ot * j->nr;
            int64_t mr = j->Cg - c0 < j->mr ? j->Cg - c0 : j->mr, nr = j->OCg - o0 < j->nr ? j->OCg - o0 : j->nr;
            j->ukr(kc, offs + t * kc, j->x + j->goff + c0, j->zero, j->dy + p0 * j->OC + j->ooff + o0, j->OC,
                   dst + (t * j->Cg + c0) * ld + o0, ld, mr, nr, p0 > p_begin);
        }
    }
}

/* Tiles [begin, end), each summed over every pixel straight into dW. */
static void bf_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const bf_job *j = ctx;
    int64_t *offs = ck_thread_scratch(thread, (size_t)(taps_of(j->d) * j->kc) * sizeof(int64_t));
    if (offs) bf_tiles(j, offs, begin, end, 0, j->P, j->dw + j->ooff, j->OC);
}

/* Pixel chunks [begin, end): every tile summed over a chunk's pixels into
 * the chunk's own partial dW (a chunk's x and dy are read by one thread only). */
static void bf_chunk_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const bf_job *j = ctx;
    const int64_t T = taps_of(j->d);
    int64_t *offs = ck_thread_scratch(thread, (size_t)(T * j->kc) * sizeof(int64_t));
    if (!offs) return;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        const int64_t blocks = (j->P + j->kc - 1) / j->kc;  /* chunk c: blocks [c B / chunks, (c + 1) B / chunks) */
        const int64_t p_begin = chunk * blocks / j->chunks * j->kc, p_end_blocks = (chunk + 1) * blocks / j->chunks * j->kc;
        const int64_t p_end = p_end_blocks < j->P ? p_end_blocks : j->P;
        bf_tiles(j, offs, 0, T * j->ctiles * j->otiles, p_begin, p_end, j->partials + chunk * T * j->Cg * j->OCg, j->OCg);
    }
}

/* Chunks when the layer is split by pixels: about 8192 pixels each, the
 * kc blocks shared out as evenly as whole blocks allow (25088 pixels: 12,
 * 12, 12 and 13 blocks of 512, where equal rounded-up chunks gave the last
 * 10 blocks and two threads 26 and 23), if there are at least two and their
 * partial dWs fit in 8 MiB; else 0 (split by tiles). A function of the layer
 * alone, so the sums are the same on any number of threads; the partials
 * are added in chunk order. */
static int64_t bf_chunk_count(int64_t P, int64_t kc, int64_t dw_floats) {
    int64_t chunks = (P + 8191) / 8192, blocks = (P + kc - 1) / kc;
    if (chunks > blocks) chunks = blocks;
    if (chunks < 2 || chunks * dw_floats * (int64_t)sizeof(float) > (8 << 20)) return 0;
    return chunks;
}

static void backward_filter(ck_isa isa, const ck_conv_desc *d, const float *x, const float *dy, float *dw) {
    int64_t C = d->in_channels, OC = d->out_channels, G = d->groups, Cg = C / G, OCg = OC / G, T = taps_of(d);
    int64_t P = d->batch * out_pixels(d);
    int avx512 = isa == CK_ISA_AVX512;
    int MR = avx512 ? bf_avx512_rows(Cg) : 6, NR = avx512 ? 32 : 16;
    float *zero = ck_thread_scratch(CK_SCRATCH_EXTRA2, (size_t)(Cg + 32) * sizeof(float));
    memset(zero, 0, (size_t)(Cg + 32) * sizeof(float));
    for (int64_t g = 0; g < G; g++) {
        bf_job j = {d, avx512 ? bf_avx512_by_mr[MR - 8] : bf_6x16, MR, NR, 512, x, dy, zero, dw, P, C, OC, Cg, OCg, g * Cg, g * OCg,
                    (Cg + MR - 1) / MR, (OCg + NR - 1) / NR, 0, NULL};
        int64_t tiles = T * j.ctiles * j.otiles, serial = 2 * T * Cg * OCg * P < (1 << 20);
        if (P == 0) {
            for (int64_t t = 0; t < T * Cg; t++) for (int64_t o = 0; o < OCg; o++) dw[t * OC + g * OCg + o] = 0.0f;
            continue;
        }
        j.chunks = bf_chunk_count(P, j.kc, T * Cg * OCg);
        if (!j.chunks) { ck_parallel_for(tiles, serial, bf_task, &j); continue; }
        int64_t chunks = j.chunks, rows = T * Cg;
        j.partials = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)(chunks * rows * OCg) * sizeof(float));
        if (!j.partials) return;
        ck_parallel_for(chunks, serial, bf_chunk_task, &j);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < OCg; o++) {
                float sum = j.partials[r * OCg + o];
                for (int64_t c = 1; c < chunks; c++) sum += j.partials[(c * rows + r) * OCg + o];
                dw[r * OC + g * OCg + o] = sum;
            }
    }
}

static void ck_f32_conv_backward_filter__avx2(const ck_conv_desc *d, const float *x, const float *dy, float *dw) {
    if (few_bf_applies(d, 0)) few_channel_filter_direct(d, x, dy, dw, 0);
    else if (few_channels(d)) few_channel_backward_filter(CK_ISA_AVX2, d, x, dy, dw); else backward_filter(CK_ISA_AVX2, d, x, dy, dw);
}
static void ck_f32_conv_backward_filter__avx512(const ck_conv_desc *d, const float *x, const float *dy, float *dw) {
    if (few_bf_applies(d, 1)) few_channel_filter_direct(d, x, dy, dw, 1);
    else if (few_channels(d)) few_channel_backward_filter(CK_ISA_AVX512, d, x, dy, dw); else backward_filter(CK_ISA_AVX512, d, x, dy, dw);
}


ck_f32_conv_bf_fn ck_f32_conv_backward_filter_kernel(ck_isa isa) {
    return CK_PICK(isa, ck_f32_conv_backward_filter__ref, ck_f32_conv_backward_filter__avx2, ck_f32_conv_backward_filter__avx512);
}
