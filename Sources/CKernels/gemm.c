/* SGEMM: C = alpha * op(A) op(B) + beta * C, row-major.
 *
 * The optimized path follows BLIS: B is packed into KC x NR micro-panels, A
 * into MR x KC micro-panels, and a register-blocked micro-kernel (6x16, twelve
 * 8-lane accumulators) updates one MR x NR tile, handling partial tiles
 * itself. The NC/KC/MC loops around it only choose what is packed. */
#include "ck_internal.h"

/* ---- reference ---- */

static void ck_f32_gemm__ref(const ck_gemm_args *g, void *workspace) {
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
}

/* ---- AVX2 + FMA ---- */

enum { MR = 6, NR = 16, KC = 256, MC = 72, NC = 2048 };

static void pack_a(const ck_gemm_args *g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float *restrict dst) {
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        for (int64_t p = 0; p < kc; p++) {
            for (int64_t r = 0; r < mr; r++) {
                int64_t i = i0 + ir + r, k = p0 + p;
                dst[p * MR + r] = g->trans_a ? g->a[k * g->lda + i] : g->a[i * g->lda + k];
            }
            for (int64_t r = mr; r < MR; r++) dst[p * MR + r] = 0.0f;
        }
        dst += MR * kc;
    }
}

CK_AVX2 static void pack_b(const ck_gemm_args *g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float *restrict dst) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int64_t nr = nc - jr < NR ? nc - jr : NR;
        for (int64_t p = 0; p < kc; p++) {
            int64_t k = p0 + p;
            float *d = dst + p * NR;
            if (!g->trans_b && nr == NR) {
                const float *s = g->b + k * g->ldb + j0 + jr;
                _mm256_store_ps(d, _mm256_loadu_ps(s));
                _mm256_store_ps(d + 8, _mm256_loadu_ps(s + 8));
                continue;
            }
            for (int64_t c = 0; c < nr; c++) {
                int64_t j = j0 + jr + c;
                d[c] = g->trans_b ? g->b[j * g->ldb + k] : g->b[k * g->ldb + j];
            }
            for (int64_t c = nr; c < NR; c++) d[c] = 0.0f;
        }
        dst += NR * kc;
    }
}

/* One MR x NR tile: acc = A_panel * B_panel over kc, then
 * C = alpha * acc + beta_eff * C (beta_eff == 0 never reads C). */
CK_AVX2 static void ukr_6x16(int64_t kc, const float *restrict a, const float *restrict b, float *c, int64_t ldc,
                             int64_t mr, int64_t nr, float alpha, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 a0 = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(a0, b0, c00); c01 = _mm256_fmadd_ps(a0, b1, c01);
        a0 = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(a0, b0, c10); c11 = _mm256_fmadd_ps(a0, b1, c11);
        a0 = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(a0, b0, c20); c21 = _mm256_fmadd_ps(a0, b1, c21);
        a0 = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(a0, b0, c30); c31 = _mm256_fmadd_ps(a0, b1, c31);
        a0 = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(a0, b0, c40); c41 = _mm256_fmadd_ps(a0, b1, c41);
        a0 = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(a0, b0, c50); c51 = _mm256_fmadd_ps(a0, b1, c51);
        a += MR;
        b += NR;
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (mr == MR && nr == NR) {
        for (int r = 0; r < MR; r++) {
            float *cr = c + r * ldc;
            __m256 y0 = _mm256_mul_ps(va, acc[r][0]), y1 = _mm256_mul_ps(va, acc[r][1]);
            if (beta != 0.0f) {
                y0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), y0);
                y1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), y1);
            }
            _mm256_storeu_ps(cr, y0);
            _mm256_storeu_ps(cr + 8, y1);
        }
        return;
    }
    float tile[MR * NR];
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_ps(tile + r * NR, acc[r][0]);
        _mm256_storeu_ps(tile + r * NR + 8, acc[r][1]);
    }
    for (int64_t r = 0; r < mr; r++)
        for (int64_t j = 0; j < nr; j++) {
            float *cc = c + r * ldc + j;
            *cc = beta != 0.0f ? alpha * tile[r * NR + j] + beta * *cc : alpha * tile[r * NR + j];
        }
}

CK_AVX2 static void ck_f32_gemm__avx2(const ck_gemm_args *g, void *workspace) {
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) { /* C = beta * C */
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++) {
                float *c = &g->c[i * g->ldc + j];
                *c = g->beta == 0.0f ? 0.0f : g->beta * *c;
            }
        return;
    }
    float *pa = (float *)workspace;
    float *pb = pa + MC * KC;
    for (int64_t jc = 0; jc < g->n; jc += NC) {
        int64_t nc = g->n - jc < NC ? g->n - jc : NC;
        for (int64_t pc = 0; pc < g->k; pc += KC) {
            int64_t kc = g->k - pc < KC ? g->k - pc : KC;
            float beta = pc == 0 ? g->beta : 1.0f;
            pack_b(g, pc, kc, jc, nc, pb);
            for (int64_t ic = 0; ic < g->m; ic += MC) {
                int64_t mc = g->m - ic < MC ? g->m - ic : MC;
                pack_a(g, ic, mc, pc, kc, pa);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = nc - jr < NR ? nc - jr : NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = mc - ir < MR ? mc - ir : MR;
                        ukr_6x16(kc, pa + ir * kc, pb + jr * kc, g->c + (ic + ir) * g->ldc + jc + jr, g->ldc,
                                 mr, nr, g->alpha, beta);
                    }
                }
            }
        }
    }
}

ck_f32_gemm_fn ck_f32_gemm_kernel(ck_isa isa) {
    return isa == CK_ISA_REF ? ck_f32_gemm__ref : ck_f32_gemm__avx2;
}

size_t ck_f32_gemm_workspace_bytes(ck_isa isa) {
    return isa == CK_ISA_REF ? 0 : (size_t)(MC * KC + KC * NC) * sizeof(float);
}

void ck_f32_gemm_tile(ck_isa isa, int *mr, int *nr, int *kc) {
    if (isa == CK_ISA_REF) { *mr = 1; *nr = 1; *kc = 1; return; }
    *mr = MR; *nr = NR; *kc = KC;
}
