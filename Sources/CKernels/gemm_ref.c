/* GEMM's reference twins: the plain-loop GEMM and the plain-loop micro-kernel. */
#include "gemm_internal.h"

void ck_f32_gemm__ref(const ck_gemm_args *g, void *workspace) {
    (void)workspace;
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            double acc = 0; /* the oracle accumulates in double */
            for (int64_t p = 0; p < g->k; p++) {
                float a = g->trans_a ? g->a[p * g->lda + i] : g->a[i * g->lda + p];
                float b = g->trans_b ? g->b[j * g->ldb + p] : g->b[p * g->ldb + j];
                acc += (double)a * (double)b;
            }
            float *c = &g->c[i * g->ldc + j];
            float prev = g->beta == 0.0f ? 0.0f : g->beta * *c;
            *c = g->alpha * (float)acc + prev;
        }
    /* the epilogue through the reference elementwise kernels */
    ck_f32_unary_fn act = g->activation > 0 ? ck_f32_unary_kernel((ck_unary_op)(g->activation - 1), CK_ISA_REF) : NULL;
    ck_f32_binary_fn add = ck_f32_binary_kernel(CK_BINARY_ADD, CK_ISA_REF);
    for (int64_t i = 0; i < g->m; i++) {
        float *row = g->c + i * g->ldc;
        if (g->bias) add((size_t)g->n, row, 1, g->bias, 1, row);
        if (g->residual) add((size_t)g->n, row, 1, g->residual + i * g->ld_residual, 1, row);
        if (act) act((size_t)g->n, row, row, &g->act_params);
        if (g->accumulate_into) { float *d = g->accumulate_into + i * g->ld_accumulate; add((size_t)g->n, d, 1, row, 1, d); }
    }
}

void ck_f32_gemm_ukr__ref(int MR, int NR, int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                          int64_t mr, int64_t nr, float alpha, float beta) {
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) {
            double acc = 0;
            for (int64_t p = 0; p < kc; p++) acc += (double)a[p * MR + i] * (double)b[p * NR + j];
            float *cc = c + i * ldc + j;
            *cc = beta != 0.0f ? alpha * (float)acc + beta * *cc : alpha * (float)acc;
        }
}
