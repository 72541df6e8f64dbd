/* GEMM's private interface: the epilogue every path applies to a finished
 * tile, the unpacked paths for narrow and short shapes, and the blocked
 * driver's pieces — reference (gemm_ref.c), packing (gemm_pack.c), one file
 * per micro-kernel family (gemm_ukr_avx2.c, gemm_ukr_avx512.c), the
 * blocking and driver (gemm.c). */
#ifndef CK_GEMM_INTERNAL_H
#define CK_GEMM_INTERNAL_H

#include "ck_internal.h"
#include "ck_kernel_lists.h"
#include "ck_threads.h"

/* bias, residual, activation, then accumulate_into, on rows i0.., columns j0.. of C. */
void ck_gemm_epilogue(const ck_gemm_args *g, int64_t i0, int64_t mr, int64_t j0, int64_t nr);
static inline int ck_gemm_has_epilogue(const ck_gemm_args *g) { return g->bias || g->residual || g->activation > 0 || g->accumulate_into; }

/* AVX-512, n <= 14: no packing of the large operand. */
void ck_gemm_narrow(const ck_gemm_args *g);
/* m <= 4: one pass over B. */
int ck_gemm_is_short(const ck_gemm_args *g);
void ck_gemm_short(const ck_gemm_args *g);

/* The plain-loop GEMM (accumulates in double): the oracle. */
void ck_f32_gemm__ref(const ck_gemm_args *g, void *workspace);

/* A's MR-row micro-panels for rows i0.. (mc of them) and depths p0.. (kc), from ctx (a ck_gemm_args). */
void ck_gemm_pack_a(const void *ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int MR, float *restrict dst);
/* B's NR-column micro-panels for depths p0.. (kc) and columns j0.. (nc). */
void ck_gemm_pack_b(int NR, const ck_gemm_args *g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float *restrict dst);

/* The micro-kernels (ck_f32_gemm_ukr_fn's contract), one per CK_GEMM_UKRS row. */
#define CK_ISA_ATTR_CK_ISA_AVX2 CK_AVX2
#define CK_ISA_ATTR_CK_ISA_AVX512 CK_AVX512
#define CK_GEMM_UKR_DECL(ISA, MR, NR)                                                                  \
    CK_ISA_ATTR_##ISA void ck_gemm_ukr_##MR##x##NR(int64_t kc, const float *restrict a, const float *restrict b, \
                                                 float *c, int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta);
CK_GEMM_UKRS(CK_GEMM_UKR_DECL)
/* The 14- and 8-row AVX-512 kernels with the epilogue in their store step:
 * + bias[j] (NULL: none), then relu when `relu` (gemm_ukr_avx512.c). */
typedef void (*ck_gemm_ukr_epi_fn)(int64_t kc, const float *restrict a, const float *restrict b, float *c, int64_t ldc,
                                   int64_t mr, int64_t nr, float alpha, float beta, const float *bias, int relu);
CK_AVX512 void ck_gemm_ukr_14x32_bias_relu(int64_t kc, const float *restrict a, const float *restrict b, float *c, int64_t ldc,
                                          int64_t mr, int64_t nr, float alpha, float beta, const float *bias, int relu);
/* Cache lines of a matrix for a kernel to prefetch while it computes: lines
 * first_line .. first_line + lines - 1 of a region whose rows are
 * `lines_per_row` 64-byte lines long and `ld_bytes` apart from `base`. */
typedef struct ck_gemm_prefetch { const char *base; int64_t ld_bytes, lines_per_row, first_line, lines; } ck_gemm_prefetch;
/* The 14- and 8-row kernels' general entries: A's k-step `as` (MR for a
 * packed panel, lda for a transposed A read in place) and `npf` prefetch jobs. */
typedef void (*ck_gemm_ukr_pf_fn)(int64_t kc, const float *restrict a, int64_t as, const float *restrict b, float *c,
                                  int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta, const float *bias,
                                  int relu, const ck_gemm_prefetch *pf, int npf);
CK_AVX512 void ck_gemm_ukr_14x32_prefetch(int64_t kc, const float *restrict a, int64_t as, const float *restrict b, float *c,
                                         int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta, const float *bias,
                                         int relu, const ck_gemm_prefetch *pf, int npf);
CK_AVX512 void ck_gemm_ukr_8x32_prefetch(int64_t kc, const float *restrict a, int64_t as, const float *restrict b, float *c,
                                        int64_t ldc, int64_t mr, int64_t nr, float alpha, float beta, const float *bias,
                                        int relu, const ck_gemm_prefetch *pf, int npf);
CK_AVX512 void ck_gemm_ukr_8x32_bias_relu(int64_t kc, const float *restrict a, const float *restrict b, float *c, int64_t ldc,
                                         int64_t mr, int64_t nr, float alpha, float beta, const float *bias, int relu);

#endif
