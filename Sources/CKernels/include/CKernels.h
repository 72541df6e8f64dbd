/*
 * CKernels: the numerical kernels behind every lowered op.
 *
 * Plain C11. Only sizes, strides, `restrict` pointers and small parameter
 * structs cross into Swift. Every kernel family has a `__ref` twin written as
 * plain loops (the test oracle) and optimized versions compiled per function
 * with __attribute__((target(...))), chosen at run time from CPU features.
 *
 * Naming: ck_<dtype>_<what>__<isa>, e.g. ck_f32_vexp__avx2, ck_f32_gemm__ref.
 * The kernel table (ck_kernel_table) lists every kernel so that tests and
 * benchmarks enumerate it instead of repeating lists.
 */
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* CPU features and instruction-set choice                                   */

typedef enum ck_isa {
    CK_ISA_REF = 0,    /* plain loops; the oracle */
    CK_ISA_AVX2 = 1,   /* AVX2 + FMA */
    CK_ISA_AVX512 = 2, /* AVX-512F (where a family has one) */
} ck_isa;

int ck_cpu_has_avx2_fma(void);
int ck_cpu_has_avx512f(void);
/* The best ISA this CPU supports, capped by KERAS_ISA=ref|avx2|avx512 if set. */
ck_isa ck_best_isa(void);

/* The core this runs on, from CPUID: vendor string, family and model, and
 * the data caches (bytes per instance, 0 when unknown; how many logical
 * processors share one instance). The GEMM blocking is derived from it. */
typedef struct ck_cpu_info {
    char vendor[16];
    int family, model;
    int64_t l1d_bytes, l2_bytes, l3_bytes;
    int l2_shared_by, l3_shared_by;
} ck_cpu_info;
void ck_cpu_describe(ck_cpu_info *info);

/* GEMM cache blocking: A in MC x KC blocks (L2), B in KC x NC blocks (L3),
 * KC x NR micro-panels of B in L1. Derived per ISA from the core's caches;
 * KERAS_GEMM_BLOCKING=MC,KC,NC (read once) overrides; set only while no
 * GEMM runs (benchmarks, --tune). MC rounds down to the tile's rows, NC to
 * its columns. */
typedef struct ck_gemm_blocking { int mc, kc, nc; } ck_gemm_blocking;
ck_gemm_blocking ck_gemm_blocking_for(ck_isa isa, const ck_cpu_info *cpu);
ck_gemm_blocking ck_gemm_get_blocking(ck_isa isa);
/* 0, or -1 (nothing changed) for a blocking the ISA's tiles cannot use. */
int ck_gemm_set_blocking(ck_isa isa, ck_gemm_blocking b);
/* "MC,KC,NC" -> 0 and *out, or -1 for anything else. */
int ck_gemm_parse_blocking(const char *text, ck_gemm_blocking *out);
const char *ck_isa_name(ck_isa isa);

/* ------------------------------------------------------------------------ */
/* Elementwise unary, f32 -> f32                                             */

typedef enum ck_unary_op {
    CK_UNARY_NEG = 0,
    CK_UNARY_EXP,
    CK_UNARY_LOG,
    CK_UNARY_SQRT,
    CK_UNARY_RSQRT,
    CK_UNARY_SQUARE,
    CK_UNARY_ABS,
    CK_UNARY_SIGN,
    CK_UNARY_ERF,
    CK_UNARY_RELU,
    CK_UNARY_SIGMOID,
    CK_UNARY_TANH,
    CK_UNARY_SOFTPLUS,
    CK_UNARY_SOFTSIGN,
    CK_UNARY_ELU,        /* alpha */
    CK_UNARY_SELU,
    CK_UNARY_GELU,       /* exact erf form */
    CK_UNARY_GELU_TANH,  /* tanh approximation */
    CK_UNARY_SWISH,
    CK_UNARY_HARD_SIGMOID,
    CK_UNARY_LEAKY_RELU, /* alpha = negative slope */
    CK_UNARY_COPY,
    CK_UNARY_COUNT
} ck_unary_op;

typedef struct ck_unary_params {
    float alpha;
    float beta;
} ck_unary_params;

typedef void (*ck_f32_unary_fn)(size_t n, const float *restrict x, float *restrict y,
                                const ck_unary_params *params);

/* The kernel for `op` at `isa`; NULL when that pair does not exist. */
ck_f32_unary_fn ck_f32_unary_kernel(ck_unary_op op, ck_isa isa);
const char *ck_unary_op_name(ck_unary_op op);

/* ------------------------------------------------------------------------ */
/* Elementwise binary with broadcasting                                       */

typedef enum ck_binary_op {
    CK_BINARY_ADD = 0,
    CK_BINARY_SUB,
    CK_BINARY_MUL,
    CK_BINARY_DIV,
    CK_BINARY_MAX,
    CK_BINARY_MIN,
    CK_BINARY_POW,
    CK_BINARY_EQ, /* comparisons write 1 or 0 in the input dtype */
    CK_BINARY_NE,
    CK_BINARY_LT,
    CK_BINARY_LE,
    CK_BINARY_GT,
    CK_BINARY_GE,
    CK_BINARY_COUNT
} ck_binary_op;

/* Innermost loop: y[i] = a[i*sa] op b[i*sb] with sa, sb in {0, 1}. */
typedef void (*ck_f32_binary_fn)(size_t n, const float *a, size_t sa, const float *b, size_t sb,
                                 float *y);
typedef void (*ck_i32_binary_fn)(size_t n, const int32_t *a, size_t sa, const int32_t *b,
                                 size_t sb, int32_t *y);

ck_f32_binary_fn ck_f32_binary_kernel(ck_binary_op op, ck_isa isa);
/* i32 supports ADD, SUB, MUL, MAX, MIN and the comparisons. */
ck_i32_binary_fn ck_i32_binary_kernel(ck_binary_op op, ck_isa isa);
const char *ck_binary_op_name(ck_binary_op op);

/* N-d iteration (rank <= CK_MAX_RANK). Strides are in elements; the last
 * dimension's strides must be 0 or 1 (broadcast or contiguous). */
#define CK_MAX_RANK 8
typedef struct ck_nd3 {
    int32_t rank;
    int64_t shape[CK_MAX_RANK];
    int64_t stride_a[CK_MAX_RANK];
    int64_t stride_b[CK_MAX_RANK];
    int64_t stride_c[CK_MAX_RANK];
} ck_nd3;

void ck_f32_binary_nd(ck_f32_binary_fn fn, const ck_nd3 *d, const float *a, const float *b,
                      float *y);
void ck_i32_binary_nd(ck_i32_binary_fn fn, const ck_nd3 *d, const int32_t *a, const int32_t *b,
                      int32_t *y);

/* select: y = cond != 0 ? a : b over 32-bit payloads; cond is f32 or i32.
 * stride_a = cond, stride_b = a, stride_c = b. */
typedef void (*ck_x32_select_fn)(size_t n, const void *cond, size_t sc, const uint32_t *a,
                                 size_t sa, const uint32_t *b, size_t sb, uint32_t *y);
ck_x32_select_fn ck_x32_select_kernel(int cond_is_f32, ck_isa isa);
void ck_x32_select_nd(ck_x32_select_fn fn, const ck_nd3 *d, const void *cond,
                      const uint32_t *a, const uint32_t *b, uint32_t *y);

/* ------------------------------------------------------------------------ */
/* Data movement over 32-bit elements (f32 and i32 alike)                    */

typedef struct ck_copy_desc {
    int32_t rank;
    int64_t shape[CK_MAX_RANK];
    int64_t src_stride[CK_MAX_RANK];
    int64_t dst_stride[CK_MAX_RANK];
} ck_copy_desc;

/* dst[idx . dst_stride] = src[idx . src_stride] for every index in shape.
 * Strides are in elements and may be 0 (broadcast) on the source. */
typedef void (*ck_x32_copy_fn)(const ck_copy_desc *d, const uint32_t *src, uint32_t *dst);
ck_x32_copy_fn ck_x32_copy_kernel(ck_isa isa);

typedef void (*ck_x32_fill_fn)(size_t n, uint32_t value, uint32_t *dst);
ck_x32_fill_fn ck_x32_fill_kernel(ck_isa isa);

typedef void (*ck_cast_fn)(size_t n, const void *x, void *y);
/* to_i32 != 0: f32 -> i32 (truncation toward zero, saturating); else i32 -> f32. */
ck_cast_fn ck_cast_kernel(int to_i32, ck_isa isa);

/* ------------------------------------------------------------------------ */
/* Reductions and softmax over a [outer, n, inner] view                      */

typedef enum ck_reduce_op {
    CK_REDUCE_SUM = 0,
    CK_REDUCE_MAX,
    CK_REDUCE_MIN,
    CK_REDUCE_COUNT
} ck_reduce_op;

/* y[o, i] = reduce_j x[o, j, i]; y has outer*inner elements. */
typedef void (*ck_f32_reduce_fn)(size_t outer, size_t n, size_t inner, const float *restrict x,
                                 float *restrict y);
ck_f32_reduce_fn ck_f32_reduce_kernel(ck_reduce_op op, ck_isa isa);
const char *ck_reduce_op_name(ck_reduce_op op);

/* Index of the first maximum along the middle axis of [outer, n, inner] (NaN counts as maximal). */
typedef void (*ck_f32_argmax_fn)(size_t outer, size_t n, size_t inner, const float *restrict x,
                                 int32_t *restrict y);
ck_f32_argmax_fn ck_f32_argmax_kernel(ck_isa isa);

/* Collectives (collective.c). A data-parallel training step averages its
 * gradients across processes with an allreduce; the processes are the
 * runtime's business (MPI, loaded at run time), so the kernel calls a hook
 * the runtime registers: hook(context, data, n) replaces data[0..n) by its
 * mean over the processes and returns 0, or a failure code that the kernel
 * passes on. With no hook (one process) the mean is the data itself. */
typedef int64_t (*ck_allreduce_hook)(void *context, float *data, int64_t n);
void ck_set_allreduce_hook(ck_allreduce_hook hook, void *context);
/* y = the mean of x over the processes (x and y may be the same buffer); 0 or the hook's failure code. */
typedef int64_t (*ck_f32_allreduce_mean_fn)(size_t n, const float *x, float *y);
ck_f32_allreduce_mean_fn ck_f32_allreduce_mean_kernel(ck_isa isa);

/* Softmax (log_softmax when `log` != 0) along the middle axis of [outer, n, inner]. */
typedef void (*ck_f32_softmax_fn)(size_t outer, size_t n, size_t inner, const float *restrict x,
                                  float *restrict y, int log);
ck_f32_softmax_fn ck_f32_softmax_kernel(ck_isa isa);

/* Column means and biased variances of x [rows, cols] in one pass over
 * memory (moments.c): batch normalization's statistics. */
typedef void (*ck_f32_moments_fn)(int64_t rows, int64_t cols, const float *x, float *mean, float *var);
ck_f32_moments_fn ck_f32_moments_kernel(ck_isa isa);

/* Softmax cross-entropy over rows of `classes` (loss.c), Keras's categorical
 * cross-entropy of p = softmax(z) against targets y: from_logits, or on the
 * probabilities normalized and clipped to [1e-7, 1 - 1e-7] as Keras does.
 * Writes loss[r] when `loss` is not NULL, and dz = g[r] * d loss[r] / dz
 * when `g` is not NULL: the loss and its gradient in one pass over the rows.
 * Rows are independent and split over the pool. */
typedef void (*ck_f32_softmax_xent_fn)(int64_t rows, int64_t classes, int from_logits, const float *z, const float *y,
                                       const float *g, float *loss, float *dz);
ck_f32_softmax_xent_fn ck_f32_softmax_xent_kernel(ck_isa isa);
/* The same for Keras's binary cross-entropy of sigmoid(z): loss[r] is the
 * mean over the row's `classes` elements (from logits, or on probabilities
 * clipped to [1e-7, 1 - 1e-7]); same arguments. */
ck_f32_softmax_xent_fn ck_f32_sigmoid_xent_kernel(ck_isa isa);

/* ------------------------------------------------------------------------ */
/* Row gather (embedding lookup) and its transpose                           */

/* out[i, :] = table[idx[i], :]; rows out of [0, rows) are written as zeros and
 * counted: the return value is the number of such indices (the caller reports). */
typedef int64_t (*ck_f32_gather_fn)(size_t nidx, const int32_t *restrict idx,
                                    const float *restrict table, size_t rows, size_t width,
                                    float *restrict out);
ck_f32_gather_fn ck_f32_gather_kernel(ck_isa isa);

/* out = zeros(rows, width); out[idx[i], :] += upd[i, :] in index order. */
typedef int64_t (*ck_f32_scatter_add_fn)(size_t nidx, const int32_t *restrict idx,
                                         const float *restrict upd, size_t rows, size_t width,
                                         float *restrict out);
ck_f32_scatter_add_fn ck_f32_scatter_add_kernel(ck_isa isa);

/* ------------------------------------------------------------------------ */
/* Counter-based random numbers: element i of draw `counter` under `seed` is a
 * pure function of (seed, counter, i), so results do not depend on threads. */

typedef enum ck_random_dist {
    CK_RANDOM_UNIFORM = 0, /* a = low, b = high */
    CK_RANDOM_NORMAL,      /* a = mean, b = stddev */
    CK_RANDOM_BERNOULLI,   /* a = p: 1 with probability p, else 0 */
    CK_RANDOM_COUNT
} ck_random_dist;

typedef void (*ck_f32_random_fn)(size_t n, uint64_t seed, uint64_t counter, float a, float b,
                                 float *y);
ck_f32_random_fn ck_f32_random_kernel(ck_random_dist dist, ck_isa isa);
/* Elements [first, first + n) of the same draw, as the whole kernel writes them. */
void ck_f32_random_at(ck_random_dist dist, ck_isa isa, uint64_t seed, uint64_t counter, uint64_t first, size_t n, float a, float b, float *y);
/* The 24-bit uniform integer behind element i (exposed for the Swift reference). */
uint32_t ck_random_bits(uint64_t seed, uint64_t counter, uint64_t i);

/* ------------------------------------------------------------------------ */
/* GEMM: C = alpha * op(A) * op(B) + beta * C, row-major, op = transpose or not.
 * A is M x K after op, B is K x N after op. beta == 0 ignores C's old contents. */

/* Packs an mc x kc block of A starting at (i0, p0) into MR-row micro-panels
 * (dst[panel][p][r]), zero-filling rows past mc. */
typedef void (*ck_pack_a_fn)(const void *ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float *dst);

typedef struct ck_gemm_args {
    int32_t trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    const float *a;
    int64_t lda;
    const float *b;
    int64_t ldb;
    float *c;
    int64_t ldc;
    /* Internal: an A gathered on the fly (convolutions); NULL for a matrix. */
    ck_pack_a_fn user_pack_a;
    const void *user_pack_ctx;
    /* Epilogue, applied to each tile after its last K block:
     * C = act(alpha * AB + beta * C + bias[j] + residual[i, j]). */
    const float *bias;        /* n values, or NULL */
    const float *residual;    /* m x n with leading dimension ld_residual, or NULL */
    int64_t ld_residual;
    int32_t activation;       /* 1 + a ck_unary_op, or 0 for none (so zeroed args have no epilogue) */
    ck_unary_params act_params;
    /* Last: D += C (the finished tile added into a second matrix: an SGD
     * momentum update makes m in C and adds it into the weights). */
    float *accumulate_into;   /* m x n with leading dimension ld_accumulate, or NULL */
    int64_t ld_accumulate;
    /* B already packed by ck_f32_gemm_pack_b for this ISA, k, n and trans_b
     * (a recurrent kernel reused every step), or NULL to pack per call;
     * paths that do not pack read b itself, which must stay valid. */
    const float *packed_b;
} ck_gemm_args;

/* workspace: unused (packing buffers are per-thread pool scratch); pass NULL.
 * Multi-threaded over C's columns or rows; bitwise identical for any thread count. */
typedef void (*ck_f32_gemm_fn)(const ck_gemm_args *args, void *workspace);
ck_f32_gemm_fn ck_f32_gemm_kernel(ck_isa isa);
size_t ck_f32_gemm_workspace_bytes(ck_isa isa);
/* Floats ck_f32_gemm_pack_b writes for k x n at any ISA, and the packing
 * itself (args: b, ldb, trans_b, k, n) into dst, which must be 64-byte
 * aligned (the micro-kernels load B panels aligned). */
size_t ck_f32_gemm_packed_b_floats(int64_t k, int64_t n);
void ck_f32_gemm_pack_b(ck_isa isa, const ck_gemm_args *args, float *dst);
/* Micro-tile of the optimized kernel (MR x NR), for tests around the tile. */
void ck_f32_gemm_tile(ck_isa isa, int *mr, int *nr, int *kc);
/* The tile a GEMM of m rows runs (AVX-512 picks 8 x 32 where 14 rows would leave a mostly empty last tile). */
void ck_f32_gemm_tile_for_rows(ck_isa isa, int64_t m, int *mr, int *nr, int *kc);

/* ------------------------------------------------------------------------ */
/* Convolution, channels-last, 1 to 3 spatial dimensions (unused ones are 1).
 * x: [batch, *in_size, in_channels]; w: [*kernel, in_channels/groups, out_channels]
 * (Keras's layout); y: [batch, *out_size, out_channels]. pad = padding before
 * each spatial axis (the padding after is whatever out_size implies). */

typedef struct ck_conv_desc {
    int32_t rank;
    int64_t batch, in_channels, out_channels, groups;
    int64_t in_size[3], out_size[3], kernel[3], stride[3], dilation[3], pad[3];
    /* Forward only: an epilogue applied to each finished tile while it is in
     * cache, y = act(conv + bias[oc] + residual[p, oc]) (zeroed: none). */
    const float *bias;        /* out_channels values, or NULL */
    const float *residual;    /* shaped like y, or NULL */
    int32_t activation;       /* 1 + a ck_unary_op, or 0 for none */
    ck_unary_params act_params;
    /* Forward only: then max pooling over 2x2 windows at stride 2 (2-D,
     * unpadded; a last odd row or column dropped), y being the pooled
     * result [N, OH/2, OW/2, OC] and out_size still the convolution's: each
     * pair of output rows is pooled while in cache, never stored whole. */
    int32_t max_pool_2x2;
} ck_conv_desc;

/* y = conv(x, w). */
typedef void (*ck_f32_conv_fn)(const ck_conv_desc *d, const float *x, const float *w, float *y);
/* dx = the gradient of sum(conv(x, w) * dy) with respect to x (also the transposed convolution). */
typedef void (*ck_f32_conv_bd_fn)(const ck_conv_desc *d, const float *dy, const float *w, float *dx);
/* dw = the gradient with respect to w. */
typedef void (*ck_f32_conv_bf_fn)(const ck_conv_desc *d, const float *x, const float *dy, float *dw);

ck_f32_conv_fn ck_f32_conv_forward_kernel(ck_isa isa);
/* Whether a forward convolution with max_pool_2x2 runs on the optimized
 * kernels (the indirect GEMM: 2-D, one group, more than 4 input channels, no
 * residual); other shapes pool correctly but through the reference's loops. */
int ck_conv_pool_fast(const ck_conv_desc *d);
ck_f32_conv_bd_fn ck_f32_conv_backward_data_kernel(ck_isa isa);
ck_f32_conv_bf_fn ck_f32_conv_backward_filter_kernel(ck_isa isa);

/* ------------------------------------------------------------------------ */
/* Pooling, channels-last, 1 to 3 spatial dimensions; the descriptor reuses
 * ck_conv_desc (kernel = pool size; in_channels = out_channels = channels;
 * dilation and groups unused). Windows cover only real elements: max ignores
 * padding, average divides by the number of real elements it covers. */

typedef void (*ck_f32_pool_fn)(const ck_conv_desc *d, const float *x, float *y);
/* max: dx[argmax of window] += dy (first maximum); avg: dx += dy / count. */
typedef void (*ck_f32_max_pool_bwd_fn)(const ck_conv_desc *d, const float *x, const float *dy, float *dx);
typedef void (*ck_f32_avg_pool_bwd_fn)(const ck_conv_desc *d, const float *dy, float *dx);
ck_f32_pool_fn ck_f32_max_pool_kernel(ck_isa isa);
ck_f32_pool_fn ck_f32_avg_pool_kernel(ck_isa isa);
ck_f32_max_pool_bwd_fn ck_f32_max_pool_backward_kernel(ck_isa isa);
ck_f32_avg_pool_bwd_fn ck_f32_avg_pool_backward_kernel(ck_isa isa);
/* dx = x > 0 ? max-pool backward : 0 (relu's gradient from its output x,
 * fused) for windows that do not overlap; dx may be x's storage. */
ck_f32_max_pool_bwd_fn ck_f32_max_pool_backward_relu_kernel(ck_isa isa);
int ck_pool_windows_overlap(const ck_conv_desc *d);

/* ------------------------------------------------------------------------ */
/* Threads: a persistent pool; KERAS_NUM_THREADS or the number of cores by default. */

typedef void (*ck_task_fn)(void *ctx, int64_t begin, int64_t end, int thread);
int ck_threads_get(void);
/* Sets the thread count (1 ... ck_threads_max()); returns the previous count, or -1 for a bad count. */
int ck_threads_set(int n);
int ck_threads_max(void);
/* Runs fn over [0, tasks), one contiguous range per thread (a static partition); `serial` runs inline. */
void ck_parallel_for(int64_t tasks, int serial, ck_task_fn fn, void *ctx);
/* Per-thread packing scratch a GEMM at `isa` needs. */
size_t ck_f32_gemm_scratch_bytes(ck_isa isa);

/* ------------------------------------------------------------------------ */
/* LSTM cell (pointwise part; recurrent.c): op 0 the cell state from z [rows,
 * 4*units] (gates i f c o) and c_prev, op 1 the hidden state from z and c. */
typedef void (*ck_f32_lstm_fn)(int64_t rows, int64_t units, const float *restrict z,
                               const float *restrict state, float *restrict out);
ck_f32_lstm_fn ck_f32_lstm_kernel(int op, ck_isa isa);

/* ------------------------------------------------------------------------ */
/* Whole-sequence recurrent layers (rnn_sequence.c). Shapes, with G gates
 * (ck_rnn_gates), S states (ck_rnn_state_width), n units:
 *   xp [batch, time, G n]  the input projections (input bias included)
 *   u [n, G n]  rb [G n] (GRU reset_after's recurrent bias, else NULL)
 *   h0, c0 [batch, n] (c0 LSTM only)  mask [batch, time] or NULL (0 = skip)
 *   states [batch, time, S n]: h (and c) after each step, in processing order
 * The backward writes grad [batch, time + 1, W n] (W = ck_rnn_grad_width):
 * row t < time holds, for the step that read input t, the input-side
 * pre-activation cotangent [G n], the state that step read [n], and for GRU
 * reset_after the recurrent-side cotangent [G n], for GRU reset_before r*h [n];
 * row `time` holds dh0 [n] and dc0 [n], then zeros. */
typedef enum ck_rnn_cell {
    CK_RNN_SIMPLE = 0,
    CK_RNN_LSTM = 1,
    CK_RNN_GRU = 2,                /* reset_after (Keras 3's default) */
    CK_RNN_GRU_RESET_BEFORE = 3,
} ck_rnn_cell;
typedef struct ck_rnn_desc {
    int32_t cell, go_backwards;
    int64_t batch, time, units;
} ck_rnn_desc;
int64_t ck_rnn_gates(int32_t cell);
int64_t ck_rnn_state_width(int32_t cell);
int64_t ck_rnn_grad_width(int32_t cell);
size_t ck_f32_rnn_forward_workspace_bytes(const ck_rnn_desc *d);
size_t ck_f32_rnn_backward_workspace_bytes(const ck_rnn_desc *d);
void ck_f32_rnn_forward(ck_isa isa, const ck_rnn_desc *d, const float *xp, const float *u, const float *rb,
                        const float *h0, const float *c0, const float *mask, float *states, void *workspace);
void ck_f32_rnn_backward(ck_isa isa, const ck_rnn_desc *d, const float *xp, const float *u, const float *rb,
                         const float *h0, const float *c0, const float *mask, const float *states,
                         const float *dstates, float *grad, void *workspace);

/* ------------------------------------------------------------------------ */
/* Fused elementwise chains (fused_elementwise.c): instructions in order, the
 * last one writing the output. An operand kind is 0 for a fused input (whole,
 * one value, or a trailing block repeated: counts[] says which) and 1 for an
 * earlier instruction's result. `binary` is 0 for a ck_unary_op in `op`, 1
 * for a ck_binary_op (comparisons included), 2 for select(a, b, c) =
 * a != 0 ? b : c, 3 for a random draw with no operands: `op` a
 * ck_random_dist, alpha its first parameter (bernoulli's p), the seed's low
 * and high 32 bits in a_index and b_index, element i of the result being
 * element i of the draw under the call's run counter. */
typedef struct ck_fused_instr {
    int32_t binary, op;
    int32_t a_kind, a_index, b_kind, b_index;
    float alpha;
    int32_t c_kind, c_index;
} ck_fused_instr;
typedef struct ck_fused_program {
    int32_t count;
    const ck_fused_instr *instrs;
} ck_fused_program;
void ck_f32_fused_elementwise(ck_isa isa, const ck_fused_program *p, uint64_t counter, int64_t n, const float *const *inputs,
                              const int64_t *counts, float *out);
size_t ck_f32_fused_elementwise_scratch_bytes(const ck_fused_program *p);
/* Elements per tile of the fused kernels (for tests around it). */
int64_t ck_fused_tile(void);

/* Fused parameter updates (fused_elementwise.c): every job is a program as
 * above over its own n elements, ending in stores into parameters, and one
 * call runs all jobs (an optimizer's update of every variable, a layer's
 * moving statistics, the step counter). Instruction operands index the
 * update's shared `inputs` (kind 0) or the job's own instructions (kind 1).
 * An instruction whose operands are all single values is computed once per
 * job before any tile; then every job's tiles run on the pool, each storing
 * its results after computing them; stores into single-value targets run
 * last. So every job reads the values all parameters had before the call,
 * provided no vector target is read by another job (the fusion pass checks).
 * Before all of that, `reductions` sums of squares (gradient clipping by
 * norm): reduction r writes sum(x^2) over input reduce_inputs[r] into the
 * single value inputs[reduce_first + r], which jobs then read as an input.
 * Each TILE-element block's partial sum is fixed and the partials are added
 * in order in double, so the sums do not depend on the thread count. */
typedef struct ck_update_store {
    int32_t target;            /* input index of the parameter written */
    int32_t kind, index;       /* the value: an input (0) or an instruction (1) */
} ck_update_store;
typedef struct ck_update_job {
    int64_t n;                 /* elements of every target of this job */
    int32_t first, count;      /* instructions [first, first + count) */
    int32_t store_first, store_count;
} ck_update_job;
typedef struct ck_fused_update {
    int32_t jobs;
    const ck_update_job *job;
    const ck_fused_instr *instrs;
    const ck_update_store *stores;
    float *const *inputs;      /* store targets are written through these */
    const int64_t *counts;     /* elements of each input */
    /* Caller-owned state, one entry per instruction of all jobs and one per job + 1. */
    float *uniform_values;
    uint8_t *uniform;
    int64_t *tile_start;
    /* Sums of squares computed first (none when reductions == 0); the
     * state: reductions + 1 tile offsets and one double per block. */
    int32_t reductions, reduce_first;
    const int32_t *reduce_inputs;
    int64_t *reduce_start;
    double *partials;
} ck_fused_update;
void ck_f32_fused_update(ck_isa isa, const ck_fused_update *u);

/* ------------------------------------------------------------------------ */
/* FMA peak probe (benchmarks): run `iterations` rounds of independent FMAs;
 * each round is ck_fma_peak_flops_per_iteration(isa) flops. */
float ck_fma_peak_run(ck_isa isa, int64_t iterations);
double ck_fma_peak_flops_per_iteration(ck_isa isa);

/* ------------------------------------------------------------------------ */
/* The kernel table                                                          */

typedef enum ck_family {
    CK_FAMILY_UNARY = 0,
    CK_FAMILY_BINARY_F32,
    CK_FAMILY_BINARY_I32,
    CK_FAMILY_SELECT,
    CK_FAMILY_COPY,
    CK_FAMILY_FILL,
    CK_FAMILY_CAST,
    CK_FAMILY_REDUCE,      /* op: a ck_reduce_op, or 100 for moments (mean and variance) */
    CK_FAMILY_SOFTMAX,     /* op: 0 softmax, 1 softmax cross-entropy, 2 sigmoid cross-entropy */
    CK_FAMILY_GATHER,
    CK_FAMILY_SCATTER_ADD,
    CK_FAMILY_RANDOM,
    CK_FAMILY_GEMM,
    CK_FAMILY_ARGMAX,
    CK_FAMILY_CONV,        /* op: 0 forward, 1 backward data, 2 backward filter */
    CK_FAMILY_POOL,        /* op: 0 max, 1 avg, 2 max backward, 3 avg backward, 4 max backward with relu */
    CK_FAMILY_LSTM,        /* op: 0 cell state, 1 hidden state */
    CK_FAMILY_RNN,         /* op: 0 whole-sequence forward, 1 backward (all cells) */
    CK_FAMILY_FUSED_ELEMENTWISE, /* a program of unary and binary ops, per tile */
    CK_FAMILY_GEMM_UKR,    /* a GEMM micro-kernel by itself: tile = MR, op = NR (the reference: any) */
    CK_FAMILY_CONV_UKR,    /* an indirect-convolution micro-kernel by itself: tile = MR, op = NR */
    CK_FAMILY_CONV_BF_UKR, /* a filter-gradient micro-kernel by itself: tile = MR, op = NR */
    CK_FAMILY_COLLECTIVE,  /* op 0: allreduce mean across the processes of a distributed job */
    CK_FAMILY_COUNT
} ck_family;

typedef struct ck_kernel_info {
    const char *name; /* e.g. "ck_f32_vexp__avx2" */
    ck_family family;
    int32_t op;       /* the family's op enum value (0 where the family has one) */
    ck_isa isa;
    int32_t tile;     /* the vector width or micro-tile rows the kernel works in */
} ck_kernel_info;

/* A GEMM micro-kernel: C[0:mr, 0:nr] = alpha * A B + beta * C (beta 0: C
 * not read) over packed panels, A as kc steps of MR floats, B as kc steps of
 * NR floats (64-byte aligned), mr <= MR, nr <= NR. The blocked GEMM calls
 * these; tests and keras-bench call them through their table rows. */
typedef void (*ck_f32_gemm_ukr_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                   int64_t mr, int64_t nr, float alpha, float beta);
/* The MR x NR micro-kernel at `isa`, or NULL. */
ck_f32_gemm_ukr_fn ck_f32_gemm_ukr_kernel(ck_isa isa, int mr, int nr);
/* Its reference twin (accumulates in double), for any panel shape. */
void ck_f32_gemm_ukr__ref(int MR, int NR, int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                          int64_t mr, int64_t nr, float alpha, float beta);

/* An indirect-convolution micro-kernel: C[0:mr, 0:nr] (+)= sum over taps t
 * and k < kc of A_t[r][k] * w[(t * kc + k) * NR + j], where row r of tap t
 * is ind[t * MR + r] (ps == 0) or ind[t * MR] + r * ps; all MR pointers of
 * a tap are read (point rows past mr anywhere valid); w 64-byte aligned;
 * accumulate adds to C instead of overwriting it. */
typedef void (*ck_f32_conv_ukr_fn)(int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w,
                                   float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate);
ck_f32_conv_ukr_fn ck_f32_conv_ukr_kernel(ck_isa isa, int mr, int nr);
void ck_f32_conv_ukr__ref(int MR, int NR, int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w,
                          float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate);

/* A filter-gradient micro-kernel: C[0:mr, 0:nr] (+)= sum over p < kc of
 * a_p[r] * dy[p * ldy + j], where a_p = x + offs[p], or `zero` (a row of
 * zeros at least MR long) when offs[p] < 0; all MR channels of a_p are read. */
typedef void (*ck_f32_conv_bf_ukr_fn)(int64_t kc, const int64_t *offs, const float *x, const float *zero, const float *dy,
                                      int64_t ldy, float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate);
ck_f32_conv_bf_ukr_fn ck_f32_conv_bf_ukr_kernel(ck_isa isa, int mr, int nr);
void ck_f32_conv_bf_ukr__ref(int MR, int NR, int64_t kc, const int64_t *offs, const float *x, const float *zero,
                             const float *dy, int64_t ldy, float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate);

/* Every kernel compiled into this library (whether or not this CPU runs it). */
const ck_kernel_info *ck_kernel_table(size_t *count);

/* Kernel calls as data: CKernelCalls.h. */
#include "CKernelCalls.h"

#ifdef __cplusplus
}
#endif

#endif /* CKERNELS_H */
