/*
 * CKernels: kernel calls as data (calls.c) — part of CKernels.h, which
 * includes it after the kernel table it refers to.
 */
#ifndef CKERNEL_CALLS_H
#define CKERNEL_CALLS_H

#include "CKernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel calls as data (calls.c). A lowered op is a list of calls, each a
 * kernel-table row, a pointer-free parameter block and an array of operand
 * addresses, run through one signature:
 *     int64_t entry(row, params, operands)
 * which returns 0 or a failure code (gather, scatter_add: the number of
 * indices out of range). Below, each family's parameter block and operand
 * order; a NULL operand is an absent optional one. Blocks that carry arrays
 * record each array's byte offset from the block's start (8-byte aligned).
 * Plans hold only these, so they print, compare and serialize. */

typedef int64_t (*ck_entry_fn)(const ck_kernel_info *row, const void *params, void *const *operands);
/* The entry for table row `id`; NULL when there is no such row. */
ck_entry_fn ck_kernel_entry(int32_t id);

/* UNARY: [x, y]. */
typedef struct ck_unary_call { int64_t n; ck_unary_params params; } ck_unary_call;
/* BINARY_F32, BINARY_I32: a ck_nd3, [a, b, y]. SELECT: a ck_nd3, [cond, a, b, y].
 * COPY: a ck_copy_desc, [src, dst] (nothing to do when src == dst with equal strides). */
/* FILL: [dst]. */
typedef struct ck_fill_call { int64_t n; uint32_t value; } ck_fill_call;
/* CAST: [x, y]. COLLECTIVE op 0 (allreduce mean): [x, y]; returns the hook's failure code. */
typedef struct ck_count_call { int64_t n; } ck_count_call;
/* REDUCE (sum, max, min): [x, y], then y *= scale when scale != 1 (a mean).
 * ARGMAX: the same block, [x, y]. SOFTMAX op 0: the same, `flag` = log, [x, y]. */
typedef struct ck_axis_call { int64_t outer, n, inner; float scale; int32_t flag; } ck_axis_call;
/* REDUCE op 100 (moments): [x, mean, var]. LSTM: rows, units; [z, state, out]. */
typedef struct ck_rows_call { int64_t rows, cols; } ck_rows_call;
/* SOFTMAX op 1, 2 (cross-entropy): [z, y, g, loss, dz]. */
typedef struct ck_xent_call { int64_t rows, classes; int32_t from_logits; } ck_xent_call;
/* GATHER: [idx, table, out]. SCATTER_ADD: [idx, updates, out]. */
typedef struct ck_index_call { int64_t nidx, rows, width; } ck_index_call;
/* RANDOM: [y, counter (uint64_t, the plan's run count)]; y[0] is element `first` of the draw
 * (a data-parallel shard's place in the global batch; 0 otherwise). */
typedef struct ck_random_call { int64_t n; uint64_t seed; float a, b; int64_t first; } ck_random_call;
/* GEMM: [a, b, c, bias, residual, accumulate_into, alpha_source], `batch`
 * products `stride_*` elements apart; when alpha_source is given, alpha is
 * -alpha_source[0] read at run time (an SGD update's learning rate). */
typedef struct ck_gemm_call {
    int32_t trans_a, trans_b;
    int64_t m, n, k, lda, ldb, ldc, ld_residual, ld_accumulate;
    float alpha, beta;
    int32_t activation;
    ck_unary_params act_params;
    int64_t batch, stride_a, stride_b, stride_c;
} ck_gemm_call;
/* CONV: a ck_conv_desc whose pointers are ignored, [a, b, out, bias, residual]
 * (forward: x, w; backward data: dy, w; backward filter: x, dy).
 * POOL: a ck_conv_desc; op 0, 1: [x, y]; op 2, 4: [x, dy, dx]; op 3: [dy, dx]. */
/* RNN: a ck_rnn_desc; forward [xp, u, rb, h0, c0, mask, states, workspace],
 * backward [xp, u, rb, h0, c0, mask, states, dstates, grad, workspace]. */
/* FUSED_ELEMENTWISE op 0: [inputs..., out, counter (uint64_t, for random draws)]. */
typedef struct ck_fused_call { int64_t n; int32_t count, inputs; int64_t instrs_at, counts_at; } ck_fused_call;
/* FUSED_ELEMENTWISE op 1 (fused update): [inputs..., workspace], where the
 * last `reductions` inputs are the sums of squares' results, which the
 * caller places in the workspace at `results_offset` (4 bytes each); the
 * workspace is ck_fused_update_workspace(...) bytes. */
typedef struct ck_update_call {
    int32_t jobs, inputs, instr_count, store_count, reductions, pad_;
    int64_t reduce_tiles;
    int64_t jobs_at, instrs_at, stores_at, counts_at, reduce_at;
} ck_update_call;
size_t ck_fused_update_workspace(int64_t instr_count, int64_t jobs, int64_t reductions, int64_t reduce_tiles, size_t *results_offset);

#ifdef __cplusplus
}
#endif

#endif /* CKERNEL_CALLS_H */
