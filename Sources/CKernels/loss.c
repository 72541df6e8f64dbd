/* Softmax cross-entropy and its gradient, one row at a time.
 *
 * Keras's categorical cross-entropy on probabilities normalizes p by its sum
 * and clips it to [eps, 1 - eps] before the log; its gradient therefore
 * flows only where the clip passes the value through. With q = p / s,
 * c = clip(q), dq = mask * (-y / c) * g:
 *   dp_j = dq_j / s - (sum_k dq_k p_k) / s^2,   dz_j = p_j (dp_j - sum_k dp_k p_k).
 * From logits: loss = -sum y (z - logsumexp z), dz = g (p sum(y) - y).
 * The reference accumulates in double with libm; the AVX2 kernel runs the
 * row's exp and log through the vector kernels and sums in float. */
#include "ck_internal.h"
#include "ck_threads.h"
#include <math.h>

static const float xent_eps = 1e-7f;

static void xent_ref(int64_t rows, int64_t classes, int from_logits, const float *z, const float *y, const float *g, float *loss,
                     float *dz) {
    const double eps = xent_eps, hi = 1.0f - xent_eps;
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * classes, *yr = y + r * classes;
        double m = -INFINITY, s = 0, v = 0, sy = 0;
        for (int64_t j = 0; j < classes; j++) m = zr[j] > m ? zr[j] : m;
        for (int64_t j = 0; j < classes; j++) s += exp((double)zr[j] - m);
        for (int64_t j = 0; j < classes; j++) sy += yr[j];
        double sp = 0;  /* sum of the probabilities (1 up to rounding) */
        for (int64_t j = 0; j < classes; j++) sp += exp((double)zr[j] - m) / s;
        for (int64_t j = 0; j < classes; j++) {
            double p = exp((double)zr[j] - m) / s;
            if (from_logits) v -= yr[j] * ((double)zr[j] - m - log(s));
            else { double q = p / sp, c = q < eps ? eps : q > hi ? hi : q; v -= yr[j] * log(c); }
        }
        if (loss) loss[r] = (float)v;
        if (!g) continue;
        double gr = g[r], t = 0, u = 0;
        float *dr = dz + r * classes;
        if (from_logits) {
            for (int64_t j = 0; j < classes; j++) dr[j] = (float)(gr * (exp((double)zr[j] - m) / s * sy - yr[j]));
            continue;
        }
        for (int64_t j = 0; j < classes; j++) {
            double p = exp((double)zr[j] - m) / s, q = p / sp;
            double dq = q >= eps && q <= hi ? -yr[j] / q * gr : 0;
            t += dq * p;
        }
        for (int64_t j = 0; j < classes; j++) {
            double p = exp((double)zr[j] - m) / s, q = p / sp;
            double dq = q >= eps && q <= hi ? -yr[j] / q * gr : 0;
            u += (dq / sp - t / (sp * sp)) * p;
        }
        for (int64_t j = 0; j < classes; j++) {
            double p = exp((double)zr[j] - m) / s, q = p / sp;
            double dq = q >= eps && q <= hi ? -yr[j] / q * gr : 0;
            dr[j] = (float)(p * (dq / sp - t / (sp * sp) - u));
        }
    }
}

typedef struct xent_job {
    int64_t classes;
    int from_logits;
    const float *z, *y, *g;
    float *loss, *dz;
} xent_job;

static void xent_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const xent_job *j = ctx;
    int64_t C = j->classes;
    float *p = ck_thread_scratch(thread, (size_t)(3 * C) * sizeof(float));
    if (!p) return;
    float *c = p + C, *dq = c + C;
    ck_f32_unary_fn vexp = ck_f32_unary_kernel(CK_UNARY_EXP, CK_ISA_AVX2), vlog = ck_f32_unary_kernel(CK_UNARY_LOG, CK_ISA_AVX2);
    ck_unary_params none = {0, 0};
    for (int64_t r = begin; r < end; r++) {
        const float *zr = j->z + r * C, *yr = j->y + r * C;
        float m = -INFINITY;
        for (int64_t k = 0; k < C; k++) m = zr[k] > m ? zr[k] : m;
        for (int64_t k = 0; k < C; k++) c[k] = zr[k] - m;
        vexp((size_t)C, c, p, &none);
        float s = 0;
        for (int64_t k = 0; k < C; k++) s += p[k];
        float inv = 1.0f / s;
        for (int64_t k = 0; k < C; k++) p[k] *= inv;
        float v = 0;
        if (j->from_logits) {
            float lse = logf(s);
            for (int64_t k = 0; k < C; k++) v -= yr[k] * (c[k] - lse);
            if (j->loss) j->loss[r] = v;
            if (!j->g) continue;
            float sy = 0, gr = j->g[r];
            for (int64_t k = 0; k < C; k++) sy += yr[k];
            float *dr = j->dz + r * C;
            for (int64_t k = 0; k < C; k++) dr[k] = gr * (p[k] * sy - yr[k]);
            continue;
        }
        float sp = 0;
        for (int64_t k = 0; k < C; k++) sp += p[k];
        for (int64_t k = 0; k < C; k++) {
            float q = p[k] / sp;
            c[k] = q < xent_eps ? xent_eps : q > 1.0f - xent_eps ? 1.0f - xent_eps : q;
            dq[k] = q >= xent_eps && q <= 1.0f - xent_eps ? 1.0f : 0.0f;
        }
        if (j->g) {
            float gr = j->g[r], t = 0, u = 0;
            for (int64_t k = 0; k < C; k++) { dq[k] = dq[k] != 0.0f ? -yr[k] / c[k] * gr : 0.0f; t += dq[k] * p[k]; }
            float t2 = t / (sp * sp);
            for (int64_t k = 0; k < C; k++) u += (dq[k] / sp - t2) * p[k];
            float *dr = j->dz + r * C;
            for (int64_t k = 0; k < C; k++) dr[k] = p[k] * (dq[k] / sp - t2 - u);
        }
        if (j->loss) {
            vlog((size_t)C, c, c, &none);
            for (int64_t k = 0; k < C; k++) v -= yr[k] * c[k];
            j->loss[r] = v;
        }
    }
}

/* Rows split over the pool (serial for small losses). */
static void run_rows(ck_task_fn rows_fn, int64_t rows, int64_t classes, int from_logits, const float *z, const float *y, const float *g,
                     float *loss, float *dz) {
    if (rows <= 0 || classes <= 0) return;
    xent_job j = {classes, from_logits, z, y, g, loss, dz};
    ck_parallel_for(rows, rows * classes < 4 * CK_ELEMENTWISE_CHUNK, rows_fn, &j);
}

static void xent_avx2(int64_t rows, int64_t classes, int from_logits, const float *z, const float *y, const float *g, float *loss,
                      float *dz) {
    run_rows(xent_rows, rows, classes, from_logits, z, y, g, loss, dz);
}

ck_f32_softmax_xent_fn ck_f32_softmax_xent_kernel(ck_isa isa) { return CK_PICK2(isa, xent_ref, xent_avx2); }

/* ---- sigmoid cross-entropy: Keras's binary cross-entropy, per row the mean over `classes` ----
 *
 * From logits: t = max(z, 0) - z y + log(1 + exp(-|z|)), dz = g (sigmoid(z) - y) / C.
 * On probabilities p = sigmoid(z) clipped to [eps, 1 - eps]:
 *   t = -(y log pc + (1 - y) log(1 - pc)),
 *   dz = g / C * (mask ? (1 - y) / (1 - pc) - y / pc : 0) * p (1 - p). */

static void sxent_ref(int64_t rows, int64_t classes, int from_logits, const float *z, const float *y, const float *g, float *loss,
                      float *dz) {
    const double eps = xent_eps, hi = 1.0f - xent_eps;
    for (int64_t r = 0; r < rows; r++) {
        double v = 0;
        for (int64_t j = 0; j < classes; j++) {
            int64_t i = r * classes + j;
            double zi = z[i], yi = y[i], p = 1 / (1 + exp(-zi)), d;
            if (from_logits) {
                v += (zi > 0 ? zi : 0) - zi * yi + log1p(exp(-fabs(zi)));
                d = p - yi;
            } else {
                double pc = p < eps ? eps : p > hi ? hi : p;
                v -= yi * log(pc) + (1 - yi) * log(1 - pc);
                d = p >= eps && p <= hi ? ((1 - yi) / (1 - pc) - yi / pc) * p * (1 - p) : 0;
            }
            if (g) dz[i] = (float)(g[r] * d / (double)classes);
        }
        if (loss) loss[r] = (float)(v / (double)classes);
    }
}

#define SXENT_CHUNK 256

static void sxent_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const xent_job *j = ctx;
    int64_t C = j->classes;
    float *s = ck_thread_scratch(thread, (size_t)(3 * SXENT_CHUNK) * sizeof(float));
    if (!s) return;
    float *a = s + SXENT_CHUNK, *b = a + SXENT_CHUNK;
    ck_isa isa = CK_ISA_AVX2;
    ck_f32_unary_fn vsig = ck_f32_unary_kernel(CK_UNARY_SIGMOID, isa), vsoftplus = ck_f32_unary_kernel(CK_UNARY_SOFTPLUS, isa);
    ck_f32_unary_fn vlog = ck_f32_unary_kernel(CK_UNARY_LOG, isa);
    ck_unary_params none = {0, 0};
    const float eps = xent_eps, hi = 1.0f - xent_eps, invC = 1.0f / (float)C;
    if (j->loss) for (int64_t r = begin; r < end; r++) j->loss[r] = 0.0f;
    /* elements of rows [begin, end), in chunks; each row's terms summed in element order */
    for (int64_t e0 = begin * C; e0 < end * C; e0 += SXENT_CHUNK) {
        int64_t len = end * C - e0 < SXENT_CHUNK ? end * C - e0 : SXENT_CHUNK;
        const float *zc = j->z + e0, *yc = j->y + e0;
        vsig((size_t)len, zc, s, &none);
        if (j->from_logits) {
            for (int64_t k = 0; k < len; k++) a[k] = -fabsf(zc[k]);
            vsoftplus((size_t)len, a, a, &none);
            if (j->loss)
                for (int64_t k = 0; k < len; k++) j->loss[(e0 + k) / C] += (zc[k] > 0 ? zc[k] : 0.0f) - zc[k] * yc[k] + a[k];
            if (j->g)
                for (int64_t k = 0; k < len; k++) j->dz[e0 + k] = j->g[(e0 + k) / C] * (s[k] - yc[k]) * invC;
            continue;
        }
        for (int64_t k = 0; k < len; k++) {
            float pc = s[k] < eps ? eps : s[k] > hi ? hi : s[k];
            a[k] = pc;
            b[k] = 1.0f - pc;
        }
        if (j->g)
            for (int64_t k = 0; k < len; k++) {
                float p = s[k], d = p >= eps && p <= hi ? ((1.0f - yc[k]) / b[k] - yc[k] / a[k]) * p * (1.0f - p) : 0.0f;
                j->dz[e0 + k] = j->g[(e0 + k) / C] * d * invC;
            }
        if (j->loss) {
            vlog((size_t)len, a, a, &none);
            vlog((size_t)len, b, b, &none);
            for (int64_t k = 0; k < len; k++) j->loss[(e0 + k) / C] -= yc[k] * a[k] + (1.0f - yc[k]) * b[k];
        }
    }
    if (j->loss) for (int64_t r = begin; r < end; r++) j->loss[r] *= invC;
}

static void sxent_avx2(int64_t rows, int64_t classes, int from_logits, const float *z, const float *y, const float *g, float *loss,
                       float *dz) {
    run_rows(sxent_rows, rows, classes, from_logits, z, y, g, loss, dz);
}

ck_f32_softmax_xent_fn ck_f32_sigmoid_xent_kernel(ck_isa isa) { return CK_PICK2(isa, sxent_ref, sxent_avx2); }
