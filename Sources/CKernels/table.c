/* The kernel table: one row per compiled kernel, so tests and benchmarks
 * enumerate kernels instead of repeating lists. */
#include "ck_internal.h"
#include "ck_kernel_lists.h"

#define U(OP, name) {"ck_f32_" #name "__ref", CK_FAMILY_UNARY, OP, CK_ISA_REF, 1},  \
                    {"ck_f32_" #name "__avx2", CK_FAMILY_UNARY, OP, CK_ISA_AVX2, 8},
#define BF(OP, name) {"ck_f32_" #name "__ref", CK_FAMILY_BINARY_F32, OP, CK_ISA_REF, 1}, \
                     {"ck_f32_" #name "__avx2", CK_FAMILY_BINARY_F32, OP, CK_ISA_AVX2, 8},
#define BI(OP, name) {"ck_i32_" #name "__ref", CK_FAMILY_BINARY_I32, OP, CK_ISA_REF, 1}, \
                     {"ck_i32_" #name "__avx2", CK_FAMILY_BINARY_I32, OP, CK_ISA_AVX2, 8},
#define R(OP, name) {"ck_f32_reduce_" #name "__ref", CK_FAMILY_REDUCE, OP, CK_ISA_REF, 1}, \
                    {"ck_f32_reduce_" #name "__avx2", CK_FAMILY_REDUCE, OP, CK_ISA_AVX2, 8},
#define RN(OP, name) {"ck_f32_random_" #name "__ref", CK_FAMILY_RANDOM, OP, CK_ISA_REF, 1}, \
                     {"ck_f32_random_" #name "__avx2", CK_FAMILY_RANDOM, OP, CK_ISA_AVX2, 8},

/* A micro-kernel's row: op = NR, tile = MR. */
#define UKR(ISA, MR, NR) {ISA == CK_ISA_AVX512 ? "ck_f32_gemm_ukr__avx512_" #MR "x" #NR : "ck_f32_gemm_ukr__avx2_" #MR "x" #NR, \
                          CK_FAMILY_GEMM_UKR, NR, ISA, MR},

#define CONV_UKR(ISA, MR, NR) {ISA == CK_ISA_AVX512 ? "ck_f32_conv_ukr__avx512_" #MR "x" #NR : "ck_f32_conv_ukr__avx2_" #MR "x" #NR, \
                               CK_FAMILY_CONV_UKR, NR, ISA, MR},

#define CONV_BF_UKR(ISA, MR, NR) {ISA == CK_ISA_AVX512 ? "ck_f32_conv_bf_ukr__avx512_" #MR "x" #NR : "ck_f32_conv_bf_ukr__avx2_" #MR "x" #NR, \
                                  CK_FAMILY_CONV_BF_UKR, NR, ISA, MR},

static const ck_kernel_info table[] = {
    CK_UNARY_OPS(U)
    CK_BINARY_F32_OPS(BF)
    CK_BINARY_I32_OPS(BI)
    {"ck_x32_select_f32__ref", CK_FAMILY_SELECT, 1, CK_ISA_REF, 1},
    {"ck_x32_select_f32__avx2", CK_FAMILY_SELECT, 1, CK_ISA_AVX2, 8},
    {"ck_x32_select_i32__ref", CK_FAMILY_SELECT, 0, CK_ISA_REF, 1},
    {"ck_x32_select_i32__avx2", CK_FAMILY_SELECT, 0, CK_ISA_AVX2, 8},
    {"ck_x32_copy_nd__ref", CK_FAMILY_COPY, 0, CK_ISA_REF, 1},
    {"ck_x32_copy_nd__avx2", CK_FAMILY_COPY, 0, CK_ISA_AVX2, 8},
    {"ck_x32_fill__ref", CK_FAMILY_FILL, 0, CK_ISA_REF, 1},
    {"ck_x32_fill__avx2", CK_FAMILY_FILL, 0, CK_ISA_AVX2, 8},
    {"ck_cast_i32_f32__ref", CK_FAMILY_CAST, 0, CK_ISA_REF, 1},
    {"ck_cast_i32_f32__avx2", CK_FAMILY_CAST, 0, CK_ISA_AVX2, 8},
    {"ck_cast_f32_i32__ref", CK_FAMILY_CAST, 1, CK_ISA_REF, 1},
    {"ck_cast_f32_i32__avx2", CK_FAMILY_CAST, 1, CK_ISA_AVX2, 8},
    CK_REDUCE_OPS(R)
    {"ck_f32_softmax__ref", CK_FAMILY_SOFTMAX, 0, CK_ISA_REF, 1},
    {"ck_f32_softmax__avx2", CK_FAMILY_SOFTMAX, 0, CK_ISA_AVX2, 8},
    {"ck_f32_moments__ref", CK_FAMILY_REDUCE, 100, CK_ISA_REF, 1},
    {"ck_f32_moments__avx2", CK_FAMILY_REDUCE, 100, CK_ISA_AVX2, 8},
    {"ck_f32_softmax_xent__ref", CK_FAMILY_SOFTMAX, 1, CK_ISA_REF, 1},
    {"ck_f32_softmax_xent__avx2", CK_FAMILY_SOFTMAX, 1, CK_ISA_AVX2, 8},
    {"ck_f32_sigmoid_xent__ref", CK_FAMILY_SOFTMAX, 2, CK_ISA_REF, 1},
    {"ck_f32_sigmoid_xent__avx2", CK_FAMILY_SOFTMAX, 2, CK_ISA_AVX2, 8},
    {"ck_f32_gather_rows__ref", CK_FAMILY_GATHER, 0, CK_ISA_REF, 1},
    {"ck_f32_gather_rows__avx2", CK_FAMILY_GATHER, 0, CK_ISA_AVX2, 8},
    {"ck_f32_scatter_add_rows__ref", CK_FAMILY_SCATTER_ADD, 0, CK_ISA_REF, 1},
    {"ck_f32_scatter_add_rows__avx2", CK_FAMILY_SCATTER_ADD, 0, CK_ISA_AVX2, 8},
    CK_RANDOM_OPS(RN)
    {"ck_f32_allreduce_mean__ref", CK_FAMILY_COLLECTIVE, 0, CK_ISA_REF, 1},
    {"ck_f32_allreduce_mean__avx2", CK_FAMILY_COLLECTIVE, 0, CK_ISA_AVX2, 8},
    {"ck_f32_argmax__ref", CK_FAMILY_ARGMAX, 0, CK_ISA_REF, 1},
    {"ck_f32_argmax__avx2", CK_FAMILY_ARGMAX, 0, CK_ISA_AVX2, 8},
    {"ck_f32_conv_forward__ref", CK_FAMILY_CONV, 0, CK_ISA_REF, 1},
    {"ck_f32_conv_forward__avx2_6x16", CK_FAMILY_CONV, 0, CK_ISA_AVX2, 6},
    {"ck_f32_conv_forward__avx512_12x32", CK_FAMILY_CONV, 0, CK_ISA_AVX512, 12},
    {"ck_f32_conv_backward_data__ref", CK_FAMILY_CONV, 1, CK_ISA_REF, 1},
    {"ck_f32_conv_backward_data__avx2_6x16", CK_FAMILY_CONV, 1, CK_ISA_AVX2, 6},
    {"ck_f32_conv_backward_data__avx512_12x32", CK_FAMILY_CONV, 1, CK_ISA_AVX512, 12},
    {"ck_f32_conv_backward_filter__ref", CK_FAMILY_CONV, 2, CK_ISA_REF, 1},
    {"ck_f32_conv_backward_filter__avx2_6x16", CK_FAMILY_CONV, 2, CK_ISA_AVX2, 6},
    {"ck_f32_conv_backward_filter__avx512_14x32", CK_FAMILY_CONV, 2, CK_ISA_AVX512, 14},
    {"ck_f32_max_pool__ref", CK_FAMILY_POOL, 0, CK_ISA_REF, 1},
    {"ck_f32_max_pool__avx2", CK_FAMILY_POOL, 0, CK_ISA_AVX2, 8},
    {"ck_f32_max_pool__avx512", CK_FAMILY_POOL, 0, CK_ISA_AVX512, 16},
    {"ck_f32_avg_pool__ref", CK_FAMILY_POOL, 1, CK_ISA_REF, 1},
    {"ck_f32_avg_pool__avx2", CK_FAMILY_POOL, 1, CK_ISA_AVX2, 8},
    {"ck_f32_max_pool_backward__ref", CK_FAMILY_POOL, 2, CK_ISA_REF, 1},
    {"ck_f32_max_pool_backward__avx2", CK_FAMILY_POOL, 2, CK_ISA_AVX2, 1},
    {"ck_f32_max_pool_backward__avx512", CK_FAMILY_POOL, 2, CK_ISA_AVX512, 16},
    {"ck_f32_avg_pool_backward__ref", CK_FAMILY_POOL, 3, CK_ISA_REF, 1},
    {"ck_f32_avg_pool_backward__avx2", CK_FAMILY_POOL, 3, CK_ISA_AVX2, 1},
    {"ck_f32_max_pool_backward_relu__ref", CK_FAMILY_POOL, 4, CK_ISA_REF, 1},
    {"ck_f32_max_pool_backward_relu__avx2", CK_FAMILY_POOL, 4, CK_ISA_AVX2, 8},
    {"ck_f32_max_pool_backward_relu__avx512", CK_FAMILY_POOL, 4, CK_ISA_AVX512, 16},
    {"ck_f32_lstm_cell_state__ref", CK_FAMILY_LSTM, 0, CK_ISA_REF, 1},
    {"ck_f32_lstm_cell_state__avx2", CK_FAMILY_LSTM, 0, CK_ISA_AVX2, 8},
    {"ck_f32_lstm_hidden__ref", CK_FAMILY_LSTM, 1, CK_ISA_REF, 1},
    {"ck_f32_lstm_hidden__avx2", CK_FAMILY_LSTM, 1, CK_ISA_AVX2, 8},
    {"ck_f32_rnn_forward__ref", CK_FAMILY_RNN, 0, CK_ISA_REF, 1},
    {"ck_f32_rnn_forward__avx2", CK_FAMILY_RNN, 0, CK_ISA_AVX2, 8},
    {"ck_f32_rnn_forward__avx512", CK_FAMILY_RNN, 0, CK_ISA_AVX512, 16},
    {"ck_f32_rnn_backward__ref", CK_FAMILY_RNN, 1, CK_ISA_REF, 1},
    {"ck_f32_rnn_backward__avx2", CK_FAMILY_RNN, 1, CK_ISA_AVX2, 8},
    {"ck_f32_rnn_backward__avx512", CK_FAMILY_RNN, 1, CK_ISA_AVX512, 16},
    {"ck_f32_fused_elementwise__ref", CK_FAMILY_FUSED_ELEMENTWISE, 0, CK_ISA_REF, 1},
    {"ck_f32_fused_elementwise__avx2", CK_FAMILY_FUSED_ELEMENTWISE, 0, CK_ISA_AVX2, 8},
    {"ck_f32_fused_update__ref", CK_FAMILY_FUSED_ELEMENTWISE, 1, CK_ISA_REF, 1},
    {"ck_f32_fused_update__avx2", CK_FAMILY_FUSED_ELEMENTWISE, 1, CK_ISA_AVX2, 8},
    {"ck_f32_gemm__ref", CK_FAMILY_GEMM, 0, CK_ISA_REF, 1},
    {"ck_f32_gemm__avx2_6x16", CK_FAMILY_GEMM, 0, CK_ISA_AVX2, 6},
    {"ck_f32_gemm__avx512_14x32", CK_FAMILY_GEMM, 0, CK_ISA_AVX512, 14},
    {"ck_f32_gemm__avx512_8x32", CK_FAMILY_GEMM, 0, CK_ISA_AVX512, 8},
    {"ck_f32_gemm_ukr__ref", CK_FAMILY_GEMM_UKR, 0, CK_ISA_REF, 1},
    CK_GEMM_UKRS(UKR)
    {"ck_f32_conv_ukr__ref", CK_FAMILY_CONV_UKR, 0, CK_ISA_REF, 1},
    CK_CONV_UKRS(CONV_UKR)
    {"ck_f32_conv_bf_ukr__ref", CK_FAMILY_CONV_BF_UKR, 0, CK_ISA_REF, 1},
    CK_CONV_BF_UKRS(CONV_BF_UKR)
};

const ck_kernel_info *ck_kernel_table(size_t *count) {
    *count = sizeof(table) / sizeof(table[0]);
    return table;
}
