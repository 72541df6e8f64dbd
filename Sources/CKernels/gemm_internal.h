/* What gemm.c and gemm_small.c share: the epilogue every path applies to a
 * finished tile, and the unpacked paths for narrow and short shapes. */
#ifndef CK_GEMM_INTERNAL_H
#define CK_GEMM_INTERNAL_H

#include "ck_internal.h"
#include "ck_threads.h"

/* bias, residual, activation, then accumulate_into, on rows i0.., columns j0.. of C. */
void ck_gemm_epilogue(const ck_gemm_args *g, int64_t i0, int64_t mr, int64_t j0, int64_t nr);
static inline int ck_gemm_has_epilogue(const ck_gemm_args *g) { return g->bias || g->residual || g->activation > 0 || g->accumulate_into; }

/* AVX-512, n <= 14: no packing of the large operand. */
void ck_gemm_narrow(const ck_gemm_args *g);
/* m <= 4: one pass over B. */
int ck_gemm_is_short(const ck_gemm_args *g);
void ck_gemm_short(const ck_gemm_args *g);

#endif
