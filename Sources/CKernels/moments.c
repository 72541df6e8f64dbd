/* Mean and (biased) variance of each column of x [rows, cols] in one pass
 * over memory: batch normalization's statistics over every axis but the
 * channels. Rows are cut into fixed blocks of MOMENT_ROWS; each block's
 * column means and sums of squared deviations are computed while the block
 * is in cache (two passes over the block), and blocks merge in block order
 * (Chan et al.'s pairwise update, in double), so the result does not depend
 * on the number of threads. The reference is the two-pass formula over all
 * rows in double. */
#include "ck_internal.h"
#include "ck_threads.h"

#define MOMENT_ROWS 64

static void moments_ref(int64_t rows, int64_t cols, const float *x, float *mean, float *var) {
    for (int64_t c = 0; c < cols; c++) {
        double s = 0, q = 0;
        for (int64_t r = 0; r < rows; r++) s += x[r * cols + c];
        double m = rows > 0 ? s / (double)rows : 0;
        for (int64_t r = 0; r < rows; r++) { double d = x[r * cols + c] - m; q += d * d; }
        mean[c] = (float)m;
        var[c] = rows > 0 ? (float)(q / (double)rows) : 0.0f;
    }
}

typedef struct moments_job {
    int64_t rows, cols;
    const float *x;
    double *block_mean, *block_m2;  /* [blocks][cols] */
} moments_job;

CK_AVX2 static void moments_blocks(void *ctx, int64_t begin, int64_t end, int thread) {
    const moments_job *j = ctx;
    int64_t C = j->cols;
    float *s = ck_thread_scratch(thread, (size_t)(2 * C) * sizeof(float));
    if (!s) return;
    float *q = s + C;
    for (int64_t b = begin; b < end; b++) {
        int64_t r0 = b * MOMENT_ROWS, n = j->rows - r0 < MOMENT_ROWS ? j->rows - r0 : MOMENT_ROWS;
        const float *xb = j->x + r0 * C;
        for (int64_t c = 0; c < C; c++) { s[c] = 0.0f; q[c] = 0.0f; }
        for (int64_t r = 0; r < n; r++) for (int64_t c = 0; c < C; c++) s[c] += xb[r * C + c];
        for (int64_t c = 0; c < C; c++) s[c] /= (float)n;
        for (int64_t r = 0; r < n; r++) for (int64_t c = 0; c < C; c++) { float d = xb[r * C + c] - s[c]; q[c] += d * d; }
        for (int64_t c = 0; c < C; c++) { j->block_mean[b * C + c] = s[c]; j->block_m2[b * C + c] = q[c]; }
    }
}

static void moments_avx2(int64_t rows, int64_t cols, const float *x, float *mean, float *var) {
    if (cols <= 0) return;
    if (rows <= 0) { for (int64_t c = 0; c < cols; c++) { mean[c] = 0.0f; var[c] = 0.0f; } return; }
    int64_t blocks = (rows + MOMENT_ROWS - 1) / MOMENT_ROWS;
    double *scratch = ck_thread_scratch(CK_SCRATCH_EXTRA, (size_t)(2 * blocks * cols) * sizeof(double));
    if (!scratch) return;
    moments_job j = {rows, cols, x, scratch, scratch + blocks * cols};
    ck_parallel_for(blocks, rows * cols < CK_ELEMENTWISE_CHUNK, moments_blocks, &j);
    for (int64_t c = 0; c < cols; c++) {
        double n = 0, m = 0, m2 = 0;
        for (int64_t b = 0; b < blocks; b++) {
            double nb = (double)(rows - b * MOMENT_ROWS < MOMENT_ROWS ? rows - b * MOMENT_ROWS : MOMENT_ROWS);
            double mb = j.block_mean[b * cols + c], delta = mb - m, total = n + nb;
            m += delta * nb / total;
            m2 += j.block_m2[b * cols + c] + delta * delta * n * nb / total;
            n = total;
        }
        mean[c] = (float)m;
        var[c] = (float)(m2 / n);
    }
}

ck_f32_moments_fn ck_f32_moments_kernel(ck_isa isa) { return CK_PICK2(isa, moments_ref, moments_avx2); }
