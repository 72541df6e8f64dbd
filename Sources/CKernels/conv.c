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
 * threads. The filter gradient is in conv_filter.c. */
#include "conv_internal.h"

/* ---- the forward epilogue: bias, residual and activation on rows [p0, p0 + rows), columns [c0, c0 + cols) ---- */

static int has_conv_epilogue(const ck_conv_desc *d) { return d->bias || d->residual || d->activation > 0; }

static void conv_epilogue(const ck_conv_desc *d, ck_isa isa, float *y, int64_t p0, int64_t rows, int64_t c0, int64_t cols) {
    int64_t OC = d->out_channels;
    int relu = d->activation == 1 + CK_UNARY_RELU;
    if (isa != CK_ISA_REF && !d->residual && (relu || d->activation == 0)) {
        ck_bias_relu_tile(isa, y + p0 * OC + c0, OC, rows, cols, d->bias ? d->bias + c0 : NULL, relu);
        return;
    }
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

/* Output pixel p, channel oc, before the epilogue. */
static float ref_conv_value(const ck_conv_desc *d, const float *x, const float *w, int64_t p, int64_t oc) {
    int64_t C = d->in_channels, OC = d->out_channels, G = d->groups, Cg = C / G, OCg = OC / G, T = taps_of(d), g = oc / OCg;
    double acc = 0;
    for (int64_t t = 0; t < T; t++) {
        int64_t src = forward_source(d, p, t);
        if (src < 0) continue;
        for (int64_t c = 0; c < Cg; c++) acc += (double)x[src * C + g * Cg + c] * (double)w[(t * Cg + c) * OC + oc];
    }
    return (float)acc;
}

/* The fused pooling, directly: each window's four outputs with their
 * epilogue (one element at a time, as the row kernels compute it), then
 * the maximum in the pooling kernel's order. */
static void ref_conv_pool(const ck_conv_desc *d, const float *x, const float *w, float *y) {
    const int64_t OC = d->out_channels, OH = d->out_size[0], OW = d->out_size[1], PH = OH / 2, PW = OW / 2;
    ck_f32_unary_fn act = d->activation > 0 ? ck_f32_unary_kernel((ck_unary_op)(d->activation - 1), CK_ISA_REF) : NULL;
    for (int64_t n = 0; n < d->batch; n++)
        for (int64_t py = 0; py < PH; py++)
            for (int64_t px = 0; px < PW; px++)
                for (int64_t oc = 0; oc < OC; oc++) {
                    float m = -INFINITY;
                    for (int k = 0; k < 4; k++) {
                        int64_t p = (n * OH + 2 * py + k / 2) * OW + 2 * px + k % 2;
                        float v = ref_conv_value(d, x, w, p, oc);
                        if (d->bias) v = v + d->bias[oc];
                        if (d->residual) v = v + d->residual[p * OC + oc];
                        if (act) act(1, &v, &v, &d->act_params);
                        if (v > m || v != v) m = v;
                    }
                    y[((n * PH + py) * PW + px) * OC + oc] = m;
                }
}

static void ck_f32_conv_forward__ref(const ck_conv_desc *d, const float *x, const float *w, float *y) {
    if (d->max_pool_2x2) { ref_conv_pool(d, x, w, y); return; }
    int64_t OC = d->out_channels, P = d->batch * out_pixels(d);
    for (int64_t p = 0; p < P; p++)
        for (int64_t oc = 0; oc < OC; oc++) y[p * OC + oc] = ref_conv_value(d, x, w, p, oc);
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


typedef struct igemm_impl {
    int mr, nr;
    igemm_ukr ukr;
    ck_isa isa;  /* of the kernel, for the epilogue after it */
} igemm_impl;

static const igemm_impl igemm_avx2 = {6, 16, ck_igemm_6x16, CK_ISA_AVX2};
static const igemm_impl igemm_avx512 = {12, 32, ck_igemm_12x32, CK_ISA_AVX512};
static const igemm_impl igemm_avx512_rows14 = {14, 32, ck_igemm_14x32, CK_ISA_AVX512};

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


/* A = patches (rows: output pixels, columns: (tap, channel)). */
void ck_conv_pack_patch_rows(const void *ctx, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int MR, float *dst) {
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
void ck_conv_pack_patch_cols(const void *ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int MR, float *dst) {
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
const int64_t *ck_conv_patch_deltas(const ck_conv_desc *d) {
    int64_t T = taps_of(d), C = d->in_channels;
    int64_t *delta = ck_thread_scratch(CK_SCRATCH_EXTRA2, (size_t)(T * C) * sizeof(int64_t));
    for (int64_t t = 0; t < T; t++) {
        int64_t k[3];
        tap_offset(d, t, k);
        for (int64_t c = 0; c < C; c++) delta[t * C + c] = ((k[0] * d->in_size[1] + k[1]) * d->in_size[2] + k[2]) * C + c;
    }
    return delta;
}


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
    int64_t rows;       /* output pixels: the end of the pixels this pass writes */
    int backward;       /* 0: forward_source, 1: backward_source */
    const float *zero;
    int64_t first;      /* the pixel tile 0 starts at */
    int64_t dst_first;  /* the pixel dst's first row holds */
} conv_pass;

static size_t table_bytes(const conv_pass *cp) {
    return ((size_t)(taps_of(cp->d) * cp->im->mr) * sizeof(float *) + 63) / 64 * 64;
}

/* How a pass's tiles find their rows: tap offsets computed once, so that
 * building a table costs no division per entry. */
enum { MAX_WALK_TAPS = 64 };
typedef struct tile_walk {
    int walk, walk_back;      /* forward / stride-1 backward tables by walking pixels */
    int line, back_line;      /* the innermost axis with more than one pixel: output, input */
    int64_t line_step, back_step;  /* floats between consecutive rows of a fixed-stride tile */
    int64_t koff[MAX_WALK_TAPS][3], dpix[MAX_WALK_TAPS];
} tile_walk;

static void tile_walk_init(const conv_pass *cp, tile_walk *tw) {
    const ck_conv_desc *d = cp->d;
    const int64_t T = taps_of(d);
    tw->walk = !cp->backward && T <= MAX_WALK_TAPS;
    tw->walk_back = cp->backward && T <= MAX_WALK_TAPS && d->stride[0] == 1 && d->stride[1] == 1 && d->stride[2] == 1;
    /* The data gradient runs its taps last to first, so that, as in the
     * forward pass, a tile reads the dy line it is first to touch at its
     * last taps (first to last: 82% -> 92-96% of peak for 64->64 56x56 b8
     * on Zen 5, whose prefetchers then have the line on its way). */
    if (tw->walk || tw->walk_back)
        for (int64_t t = 0; t < T; t++) {
            tap_offset(d, cp->backward ? T - 1 - t : t, tw->koff[t]);
            const int64_t *sz = tw->walk ? d->in_size : d->out_size;  /* the walked-into tensor's pixel strides */
            tw->dpix[t] = (tw->koff[t][0] * sz[1] + tw->koff[t][1]) * sz[2] + tw->koff[t][2];
        }
    /* A full forward tile along one output line whose windows all lie inside
     * the input reads its rows at a fixed stride: the kernel takes each tap's
     * first row and that stride (`ps`), so the table needs T entries, not T x MR. */
    tw->line = d->out_size[2] > 1 ? 2 : d->out_size[1] > 1 ? 1 : 0;
    tw->line_step = d->stride[tw->line] * cp->src_ld;
    for (int a = tw->line + 1; a < 3; a++) tw->line_step *= d->in_size[a];
    /* The same for the data gradient's tiles of input pixels (stride 1:
     * consecutive input pixels along a line read consecutive output pixels). */
    tw->back_line = d->in_size[2] > 1 ? 2 : d->in_size[1] > 1 ? 1 : 0;
    tw->back_step = cp->src_ld;
    for (int a = tw->back_line + 1; a < 3; a++) tw->back_step *= d->out_size[a];
}

/* The table of the tile of `mr` pixels from p0; returns its pixel stride (0: a row pointer each). */
static int64_t tile_table(const conv_pass *cp, const tile_walk *tw, int64_t p0, int64_t mr, const float **ind) {
    const ck_conv_desc *d = cp->d;
    const int MR = cp->im->mr;
    const int64_t T = taps_of(d);
    if (tw->walk && mr == MR) {
        pixel_walk w = walk_from(d, p0), last = w;
        last.o[tw->line] += MR - 1;
        int64_t b[3], bl[3];
        if (last.o[tw->line] < d->out_size[tw->line] && window_start(d, &w, b) >= 0 && window_start(d, &last, bl) >= 0) {
            int64_t pix = ((w.n * d->in_size[0] + b[0]) * d->in_size[1] + b[1]) * d->in_size[2] + b[2];
            const float *base = cp->src + pix * cp->src_ld + cp->src_off;
            for (int64_t t = 0; t < T; t++) ind[t * MR] = base + tw->dpix[t] * cp->src_ld;
            return tw->line_step;
        }
    }
    if (tw->walk) {
        pixel_walk w = walk_from(d, p0);
        for (int r = 0; r < MR; r++) {
            if (r >= mr) { for (int64_t t = 0; t < T; t++) ind[t * MR + r] = ind[t * MR]; continue; }
            int64_t b[3];
            if (window_start(d, &w, b) >= 0) {
                int64_t pix = ((w.n * d->in_size[0] + b[0]) * d->in_size[1] + b[1]) * d->in_size[2] + b[2];
                const float *base = cp->src + pix * cp->src_ld + cp->src_off;
                for (int64_t t = 0; t < T; t++) ind[t * MR + r] = base + tw->dpix[t] * cp->src_ld;
            } else {
                for (int64_t t = 0; t < T; t++) {
                    int64_t i0 = b[0] + tw->koff[t][0], i1 = b[1] + tw->koff[t][1], i2 = b[2] + tw->koff[t][2];
                    int inside = i0 >= 0 && i0 < d->in_size[0] && i1 >= 0 && i1 < d->in_size[1] && i2 >= 0 && i2 < d->in_size[2];
                    ind[t * MR + r] = inside ? cp->src + (((w.n * d->in_size[0] + i0) * d->in_size[1] + i1) * d->in_size[2] + i2) * cp->src_ld + cp->src_off
                                             : cp->zero;
                }
            }
            walk_next(d, &w);
        }
    } else if (tw->walk_back) {
        /* stride 1: input pixel i receives from output pixel i + pad - k_t * dilation */
        int64_t q = p0, i[3], n;
        i[2] = q % d->in_size[2]; q /= d->in_size[2];
        i[1] = q % d->in_size[1]; q /= d->in_size[1];
        i[0] = q % d->in_size[0]; n = q / d->in_size[0];
        if (mr == MR && i[tw->back_line] + MR <= d->in_size[tw->back_line]) {
            /* a full tile along one input line, every tap inside: fixed-stride rows, as forward */
            int inside = 1;
            for (int x = 0; x < 3; x++) {
                int64_t a0 = i[x] + d->pad[x], a1 = a0 + (x == tw->back_line ? MR - 1 : 0);
                inside &= a0 - (d->kernel[x] - 1) * d->dilation[x] >= 0 && a1 < d->out_size[x];
            }
            if (inside) {
                const float *base = cp->src + (((n * d->out_size[0] + i[0] + d->pad[0]) * d->out_size[1] + i[1] + d->pad[1]) * d->out_size[2]
                                               + i[2] + d->pad[2]) * cp->src_ld + cp->src_off;
                for (int64_t t = 0; t < T; t++) ind[t * MR] = base - tw->dpix[t] * cp->src_ld;
                return tw->back_step;
            }
        }
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
                for (int64_t t = 0; t < T; t++) ind[t * MR + r] = base - tw->dpix[t] * cp->src_ld;
            } else {
                for (int64_t t = 0; t < T; t++) {
                    int64_t a0 = a[0] - tw->koff[t][0], a1 = a[1] - tw->koff[t][1], a2 = a[2] - tw->koff[t][2];
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
                int64_t s = cp->backward ? backward_source(d, p, T - 1 - t) : forward_source(d, p, t);
                ind[t * MR + r] = s < 0 ? cp->zero : cp->src + s * cp->src_ld + cp->src_off;
            }
    }
    return 0;
}

/* Tiles [begin, end) of MR pixels from cp->first, with a `table` of table_bytes(cp).
 * Each tile runs all its taps in one kernel call per column block: its rows
 * stay in L1 across the blocks while the weight panel streams from L2 (taps
 * in L1-sized groups, each group's product added to the tile, measured
 * 3-10% slower on Zen 5 from 64 to 256 channels). */
static void conv_tiles(const conv_pass *cp, int64_t begin, int64_t end, const float **ind) {
    const ck_conv_desc *d = cp->d;
    const int MR = cp->im->mr, NR = cp->im->nr;
    const int64_t T = taps_of(d);
    tile_walk tw;
    tile_walk_init(cp, &tw);
    for (int64_t tile = begin; tile < end; tile++) {
        const int64_t p0 = cp->first + tile * MR, mr = cp->rows - p0 < MR ? cp->rows - p0 : MR;
        const int64_t ps = tile_table(cp, &tw, p0, mr, ind);
        float *c = cp->dst + (p0 - cp->dst_first) * cp->dst_ld + cp->dst_off;
        for (int64_t j = 0; j < cp->cols; j += NR)
            cp->im->ukr(T, cp->kc, ind, ps, cp->panels + j * T * cp->kc, c + j, cp->dst_ld, mr, cp->cols - j < NR ? cp->cols - j : NR, 0);
        if (!cp->backward && has_conv_epilogue(d))  /* a residual only where dst_first is 0 (no pooling) */
            conv_epilogue(d, cp->im->isa, cp->dst, p0 - cp->dst_first, mr, cp->dst_off, cp->cols);
    }
}

static void conv_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const conv_pass *cp = ctx;
    conv_tiles(cp, begin, end, ck_thread_scratch(thread, table_bytes(cp)));
}

typedef struct weight_view { const float *w; int64_t Cg, OC, off, tapsTimesCg; int transposed; int64_t OCg, taps; } weight_view;

/* forward: row (t, c), column oc -> w[(t*Cg + c)*OC + off + oc] */
static float w_forward(const void *ctx, int64_t row, int64_t col) {
    const weight_view *v = ctx;
    return v->w[row * v->OC + v->off + col];
}
/* backward data: row (t, oc), column c -> w[((T-1-t)*Cg + c)*OC + off + oc] (taps last to first, see tile_walk_init) */
static float w_backward(const void *ctx, int64_t row, int64_t col) {
    const weight_view *v = ctx;
    int64_t t = v->taps - 1 - row / v->OCg, oc = row % v->OCg;
    return v->w[(t * v->Cg + col) * v->OC + v->off + oc];
}




/* Few channels, other ranks: a GEMM whose A panels are gathered from the patches. */
static void few_channel_gemm(ck_isa isa, const ck_conv_desc *d, const float *x, const float *w, float *y) {
    patch_ctx pc = {d, x, ck_conv_patch_deltas(d)};
    ck_gemm_args g = {0};
    g.m = d->batch * out_pixels(d); g.n = d->out_channels; g.k = taps_of(d) * d->in_channels;
    g.alpha = 1; g.beta = 0;
    g.b = w; g.ldb = d->out_channels;
    g.c = y; g.ldc = d->out_channels;
    g.user_pack_a = ck_conv_pack_patch_rows; g.user_pack_ctx = &pc;
    g.bias = d->bias; g.residual = d->residual; g.ld_residual = d->out_channels;
    g.activation = d->activation; g.act_params = d->act_params;
    ck_gemm_custom_a(isa, &g);
}

/* ---- few input channels (first layers), 2-D ----
 * With 1 to 4 channels a tap is 1 to 4 multiply-adds per output channel, so
 * building a pointer per (pixel, tap), as run_igemm does, costs more than the
 * arithmetic. Instead each image is copied once into a zero-padded buffer,
 * where every tap of every output pixel is in bounds; a tile of MR pixels
 * along one output row then reads tap t at one base plus r times the pixel
 * stride, a table built with one add per entry and no bounds checks. Each
 * image is one task, so every element is summed in the same order on any
 * number of threads. */


typedef struct few_pass {
    const ck_conv_desc *d;
    const igemm_impl *im;
    igemm_epi_ukr epi;  /* the kernel with bias and relu in its store step, when it applies */
    const float *x, *panels;
    float *y;
    int64_t Hp, Wp;  /* the padded image */
} few_pass;

static void few_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const few_pass *f = ctx;
    const ck_conv_desc *d = f->d;
    const int MR = f->im->mr, NR = f->im->nr;
    const int64_t C = d->in_channels, OC = d->out_channels, T = taps_of(d), OH = d->out_size[0], OW = d->out_size[1];
    size_t table = ((size_t)T * MR * sizeof(float *) + 63) / 64 * 64;
    /* the image, then room for rows past a row's last pixel, which the kernel reads and discards */
    char *scratch = ck_thread_scratch(thread, table + (size_t)(f->Hp * f->Wp * C + MR * d->stride[1] * C) * sizeof(float));
    if (!scratch) return;
    const float **ind = (const float **)scratch;
    float *xp = (float *)(scratch + table);
    const int64_t ps = d->stride[1] * C;
    int64_t koff[64];
    padded_tap_offsets(d, f->Wp, koff);
    for (int64_t n = begin; n < end; n++) {
        pad_image(d, f->x, n, f->Hp, f->Wp, xp);
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox0 = 0; ox0 < OW; ox0 += MR) {
                int64_t mr = OW - ox0 < MR ? OW - ox0 : MR;
                const float *corner = xp + (oy * d->stride[0] * f->Wp + ox0 * d->stride[1]) * C;
                for (int64_t t = 0; t < T; t++) ind[t * MR] = corner + koff[t];
                int64_t p0 = (n * OH + oy) * OW + ox0;
                for (int64_t j = 0; j < OC; j += NR) {
                    int64_t nr = OC - j < NR ? OC - j : NR;
                    if (f->epi) f->epi(T, C, ind, ps, f->panels + j * T * C, f->y + p0 * OC + j, OC, mr, nr, 0,
                                       d->bias ? d->bias + j : NULL, d->activation == 1 + CK_UNARY_RELU);
                    else f->im->ukr(T, C, ind, ps, f->panels + j * T * C, f->y + p0 * OC + j, OC, mr, nr, 0);
                }
                if (has_conv_epilogue(d) && !f->epi) conv_epilogue(d, f->im->isa, f->y, p0, mr, 0, OC);
            }
    }
}

static void run_igemm(const igemm_impl *im, const ck_conv_desc *d, int backward, const float *src, const float *w, float *dst) {
    int64_t C = d->in_channels, OC = d->out_channels, G = d->groups, Cg = C / G, OCg = OC / G, T = taps_of(d);
    int64_t rows = d->batch * (backward ? in_pixels(d) : out_pixels(d));
    int64_t kc = backward ? OCg : Cg, cols = backward ? Cg : OCg;
    int64_t blocks = (cols + im->nr - 1) / im->nr;
    float *panels = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)blocks * im->nr * T * kc * sizeof(float));
    float *zero = ck_thread_scratch(CK_SCRATCH_EXTRA2, (size_t)(kc + 16) * sizeof(float));
    memset(zero, 0, (size_t)(kc + 16) * sizeof(float));
    for (int64_t g = 0; g < G; g++) {
        weight_view v = {w, Cg, OC, g * OCg, T * Cg, backward, OCg, T};
        pack_panels(&v, backward ? w_backward : w_forward, T * kc, cols, im->nr, panels);
        conv_pass cp = {d, im, src, backward ? OC : C, backward ? g * OCg : g * Cg, kc, panels, cols,
                        dst, backward ? C : OC, backward ? g * Cg : g * OCg, rows, backward, zero};
        int64_t tiles = (rows + im->mr - 1) / im->mr;
        int64_t flops = 2 * rows * cols * T * kc;
        ck_parallel_for(tiles, flops < (1 << 20), conv_task, &cp);
    }
}

/* ---- convolution then 2x2 max pooling (inference) ----
 * One task per run of row pairs of one image: their tiles into a per-thread
 * buffer (in L2), the epilogue on each tile, then the pooled rows into y.
 * The convolution's output is never stored whole and never read back from
 * memory. A pixel's value does not depend on which tile computes it, so the
 * pooled values are the unfused kernels' bits whatever the run length:
 * whole images when there are enough of them (one ragged tile each), else
 * shorter runs so that every thread has work. */
int ck_conv_pool_fast(const ck_conv_desc *d) {
    return d->rank == 2 && d->groups == 1 && !few_channels(d) && !d->residual && d->in_size[2] == 1 && d->out_size[2] == 1 &&
           d->kernel[2] == 1 && d->out_size[0] >= 2 && d->out_size[1] >= 2;
}

/* The pair buffer's bound: half of a 1 MiB L2. */
#define CONV_POOL_BUFFER (512 * 1024)

typedef struct conv_pool_job { conv_pass cp; float *y; int64_t pairs, runs; } conv_pool_job;

static void conv_pool_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const conv_pool_job *job = ctx;
    const ck_conv_desc *d = job->cp.d;
    const int64_t OC = d->out_channels, OH = d->out_size[0], OW = d->out_size[1], PH = OH / 2, PW = OW / 2, MR = job->cp.im->mr;
    size_t tables = table_bytes(&job->cp);
    char *scratch = ck_thread_scratch(thread, tables + (size_t)(2 * job->pairs * OW * OC) * sizeof(float));
    if (!scratch) return;
    float *buf = (float *)(scratch + tables);
    for (int64_t task = begin; task < end; task++) {
        const int64_t n = task / job->runs, py0 = task % job->runs * job->pairs;
        const int64_t pairs = PH - py0 < job->pairs ? PH - py0 : job->pairs;
        conv_pass cp = job->cp;
        cp.first = cp.dst_first = (n * OH + 2 * py0) * OW;
        cp.rows = cp.first + 2 * pairs * OW;
        cp.dst = buf;
        conv_tiles(&cp, 0, (2 * pairs * OW + MR - 1) / MR, (const float **)scratch);
        for (int64_t k = 0; k < pairs; k++)
            ck_max_pool_2x2_row(cp.im->isa, buf + 2 * k * OW * OC, buf + (2 * k + 1) * OW * OC, PW, OC, job->y + (n * PH + py0 + k) * PW * OC);
    }
}

static void run_igemm_pool(const igemm_impl *im, const ck_conv_desc *d, const float *x, const float *w, float *y) {
    int64_t C = d->in_channels, OC = d->out_channels, T = taps_of(d), OW = d->out_size[1], PH = d->out_size[0] / 2;
    int64_t blocks = (OC + im->nr - 1) / im->nr;
    float *panels = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)blocks * im->nr * T * C * sizeof(float));
    float *zero = ck_thread_scratch(CK_SCRATCH_EXTRA2, (size_t)(C + 16) * sizeof(float));
    memset(zero, 0, (size_t)(C + 16) * sizeof(float));
    weight_view v = {w, C, OC, 0, T * C, 0, OC};
    pack_panels(&v, w_forward, T * C, OC, im->nr, panels);
    /* row pairs per task: a whole image, fewer if the buffer would outgrow its bound or some thread would idle */
    int64_t pairs = CONV_POOL_BUFFER / (2 * OW * OC * (int64_t)sizeof(float));
    int64_t per_thread = d->batch * PH / (4 * ck_threads_get());
    if (pairs > per_thread) pairs = per_thread;
    if (pairs > PH) pairs = PH;
    if (pairs < 1) pairs = 1;
    conv_pool_job job = {{d, im, x, C, 0, C, panels, OC, NULL, OC, 0, 0, 0, zero, 0, 0}, y, pairs, (PH + pairs - 1) / pairs};
    int64_t flops = 2 * d->batch * 2 * PH * OW * OC * T * C;
    ck_parallel_for(d->batch * job.runs, flops < (1 << 20), conv_pool_task, &job);
}

/* The few-channel forward: weights packed once, then one task per image. */
static void few_channel_forward(const igemm_impl *im, const ck_conv_desc *d, const float *x, const float *w, float *y) {
    int64_t C = d->in_channels, OC = d->out_channels, T = taps_of(d);
    int64_t blocks = (OC + im->nr - 1) / im->nr;
    few_pass f = {d, im, NULL, x, NULL, y, 0, 0};
    if (im == &igemm_avx512_rows14 && has_conv_epilogue(d) && !d->residual && (d->activation == 0 || d->activation == 1 + CK_UNARY_RELU))
        f.epi = ck_igemm_14x32_bias_relu;
    padded_extent(d, &f.Hp, &f.Wp);
    float *panels = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)blocks * im->nr * T * C * sizeof(float));
    weight_view v = {w, C, OC, 0, T * C, 0, OC};
    pack_panels(&v, w_forward, T * C, OC, im->nr, panels);
    f.panels = panels;
    int64_t flops = 2 * d->batch * out_pixels(d) * OC * T * C;
    ck_parallel_for(d->batch, flops < (1 << 20), few_task, &f);
}

static void ck_f32_conv_forward__avx2(const ck_conv_desc *d, const float *x, const float *w, float *y) {
    if (d->max_pool_2x2) { if (ck_conv_pool_fast(d)) run_igemm_pool(&igemm_avx2, d, x, w, y); else ref_conv_pool(d, x, w, y); }
    else if (few_channel_direct(d)) few_channel_forward(&igemm_avx2, d, x, w, y);
    else if (few_channels(d)) few_channel_gemm(CK_ISA_AVX2, d, x, w, y);
    else run_igemm(&igemm_avx2, d, 0, x, w, y);
}
static void ck_f32_conv_forward__avx512(const ck_conv_desc *d, const float *x, const float *w, float *y) {
    if (d->max_pool_2x2) { if (ck_conv_pool_fast(d)) run_igemm_pool(&igemm_avx512, d, x, w, y); else ref_conv_pool(d, x, w, y); }
    else if (few_channel_direct(d)) few_channel_forward(&igemm_avx512_rows14, d, x, w, y);
    else if (few_channels(d)) few_channel_gemm(CK_ISA_AVX512, d, x, w, y);
    else run_igemm(&igemm_avx512, d, 0, x, w, y);
}
static void ck_f32_conv_backward_data__avx2(const ck_conv_desc *d, const float *dy, const float *w, float *dx) {
    if (ck_conv_few_bd_applies(d)) ck_conv_few_backward_data(d, dy, w, dx, 0); else run_igemm(&igemm_avx2, d, 1, dy, w, dx);
}
static void ck_f32_conv_backward_data__avx512(const ck_conv_desc *d, const float *dy, const float *w, float *dx) {
    if (ck_conv_few_bd_applies(d)) ck_conv_few_backward_data(d, dy, w, dx, 1); else run_igemm(&igemm_avx512, d, 1, dy, w, dx);
}


ck_f32_conv_fn ck_f32_conv_forward_kernel(ck_isa isa) {
    return CK_PICK(isa, ck_f32_conv_forward__ref, ck_f32_conv_forward__avx2, ck_f32_conv_forward__avx512);
}
ck_f32_conv_bd_fn ck_f32_conv_backward_data_kernel(ck_isa isa) {
    return CK_PICK(isa, ck_f32_conv_backward_data__ref, ck_f32_conv_backward_data__avx2, ck_f32_conv_backward_data__avx512);
}
