/* Kernel calls as data: one entry per family turns a parameter block and an
 * operand array into the family's C call (the layouts are in CKernels.h).
 * The row names the kernel and its ISA, so the same block runs the
 * reference or the vector kernel. */
#include "ck_internal.h"

#define AT(T, base, offset) ((const T *)((const char *)(base) + (offset)))

static int64_t run_unary(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_unary_call *p = params;
    ck_f32_unary_kernel((ck_unary_op)k->op, k->isa)((size_t)p->n, o[0], o[1], &p->params);
    return 0;
}

static int64_t run_binary_f32(const ck_kernel_info *k, const void *params, void *const *o) {
    ck_f32_binary_nd(ck_f32_binary_kernel((ck_binary_op)k->op, k->isa), params, o[0], o[1], o[2]);
    return 0;
}

static int64_t run_binary_i32(const ck_kernel_info *k, const void *params, void *const *o) {
    ck_i32_binary_nd(ck_i32_binary_kernel((ck_binary_op)k->op, k->isa), params, o[0], o[1], o[2]);
    return 0;
}

static int64_t run_select(const ck_kernel_info *k, const void *params, void *const *o) {
    ck_x32_select_nd(ck_x32_select_kernel(k->op, k->isa), params, o[0], o[1], o[2], o[3]);
    return 0;
}

static int64_t run_copy(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_copy_desc *d = params;
    if (o[0] == o[1] && memcmp(d->src_stride, d->dst_stride, sizeof d->src_stride) == 0) return 0;
    ck_x32_copy_kernel(k->isa)(d, o[0], o[1]);
    return 0;
}

static int64_t run_fill(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_fill_call *p = params;
    ck_x32_fill_kernel(k->isa)((size_t)p->n, p->value, o[0]);
    return 0;
}

static int64_t run_cast(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_count_call *p = params;
    ck_cast_kernel(k->op, k->isa)((size_t)p->n, o[0], o[1]);
    return 0;
}

static int64_t run_collective(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_count_call *p = params;
    return ck_f32_allreduce_mean_kernel(k->isa)((size_t)p->n, o[0], o[1]);
}

static int64_t run_reduce(const ck_kernel_info *k, const void *params, void *const *o) {
    if (k->op == 100) {
        const ck_rows_call *p = params;
        ck_f32_moments_kernel(k->isa)(p->rows, p->cols, o[0], o[1], o[2]);
        return 0;
    }
    const ck_axis_call *p = params;
    float *y = o[1];
    ck_f32_reduce_kernel((ck_reduce_op)k->op, k->isa)((size_t)p->outer, (size_t)p->n, (size_t)p->inner, o[0], y);
    if (p->scale != 1.0f) ck_f32_binary_kernel(CK_BINARY_MUL, k->isa)((size_t)(p->outer * p->inner), y, 1, &p->scale, 0, y);
    return 0;
}

static int64_t run_softmax(const ck_kernel_info *k, const void *params, void *const *o) {
    if (k->op == 0) {
        const ck_axis_call *p = params;
        ck_f32_softmax_kernel(k->isa)((size_t)p->outer, (size_t)p->n, (size_t)p->inner, o[0], o[1], p->flag);
        return 0;
    }
    const ck_xent_call *p = params;
    ck_f32_softmax_xent_fn fn = k->op == 1 ? ck_f32_softmax_xent_kernel(k->isa) : ck_f32_sigmoid_xent_kernel(k->isa);
    fn(p->rows, p->classes, p->from_logits, o[0], o[1], o[2], o[3], o[4]);
    return 0;
}

static int64_t run_gather(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_index_call *p = params;
    return ck_f32_gather_kernel(k->isa)((size_t)p->nidx, o[0], o[1], (size_t)p->rows, (size_t)p->width, o[2]);
}

static int64_t run_scatter_add(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_index_call *p = params;
    return ck_f32_scatter_add_kernel(k->isa)((size_t)p->nidx, o[0], o[1], (size_t)p->rows, (size_t)p->width, o[2]);
}

static int64_t run_random(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_random_call *p = params;
    if (p->first) ck_f32_random_at((ck_random_dist)k->op, k->isa, p->seed, *(const uint64_t *)o[1], (uint64_t)p->first, (size_t)p->n, p->a, p->b, o[0]);
    else ck_f32_random_kernel((ck_random_dist)k->op, k->isa)((size_t)p->n, p->seed, *(const uint64_t *)o[1], p->a, p->b, o[0]);
    return 0;
}

static int64_t run_argmax(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_axis_call *p = params;
    ck_f32_argmax_kernel(k->isa)((size_t)p->outer, (size_t)p->n, (size_t)p->inner, o[0], o[1]);
    return 0;
}

static int64_t run_gemm(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_gemm_call *p = params;
    ck_gemm_args g;
    memset(&g, 0, sizeof g);
    g.trans_a = p->trans_a; g.trans_b = p->trans_b;
    g.m = p->m; g.n = p->n; g.k = p->k;
    g.alpha = o[6] ? -*(const float *)o[6] : p->alpha;
    g.beta = p->beta;
    g.lda = p->lda; g.ldb = p->ldb; g.ldc = p->ldc;
    g.bias = o[3];
    g.residual = o[4]; g.ld_residual = p->ld_residual;
    g.activation = p->activation; g.act_params = p->act_params;
    g.accumulate_into = o[5]; g.ld_accumulate = p->ld_accumulate;
    ck_f32_gemm_fn fn = ck_f32_gemm_kernel(k->isa);
    const float *a = o[0], *b = o[1];
    float *c = o[2];
    for (int64_t i = 0; i < p->batch; i++) {
        g.a = a + i * p->stride_a;
        g.b = b + i * p->stride_b;
        g.c = c + i * p->stride_c;
        fn(&g, NULL);
    }
    return 0;
}

static int64_t run_conv(const ck_kernel_info *k, const void *params, void *const *o) {
    ck_conv_desc d = *(const ck_conv_desc *)params;
    d.bias = o[3];
    d.residual = o[4];
    switch (k->op) {
    case 0: ck_f32_conv_forward_kernel(k->isa)(&d, o[0], o[1], o[2]); break;
    case 1: ck_f32_conv_backward_data_kernel(k->isa)(&d, o[0], o[1], o[2]); break;
    default: ck_f32_conv_backward_filter_kernel(k->isa)(&d, o[0], o[1], o[2]); break;
    }
    return 0;
}

static int64_t run_pool(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_conv_desc *d = params;
    switch (k->op) {
    case 0: ck_f32_max_pool_kernel(k->isa)(d, o[0], o[1]); break;
    case 1: ck_f32_avg_pool_kernel(k->isa)(d, o[0], o[1]); break;
    case 2: ck_f32_max_pool_backward_kernel(k->isa)(d, o[0], o[1], o[2]); break;
    case 4: ck_f32_max_pool_backward_relu_kernel(k->isa)(d, o[0], o[1], o[2]); break;
    default: ck_f32_avg_pool_backward_kernel(k->isa)(d, o[0], o[1]); break;
    }
    return 0;
}

static int64_t run_lstm(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_rows_call *p = params;
    ck_f32_lstm_kernel(k->op, k->isa)(p->rows, p->cols, o[0], o[1], o[2]);
    return 0;
}

static int64_t run_rnn(const ck_kernel_info *k, const void *params, void *const *o) {
    const ck_rnn_desc *d = params;
    if (k->op == 0) ck_f32_rnn_forward(k->isa, d, o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]);
    else ck_f32_rnn_backward(k->isa, d, o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8], o[9]);
    return 0;
}

/* The fused update's workspace: per-instruction values and flags, per-job
 * tile offsets, per-reduction tile offsets and results, per-block partials. */
typedef struct update_layout { size_t flags, tile_start, reduce_start, results, partials, total; } update_layout;

static update_layout layout(int64_t instr_count, int64_t jobs, int64_t reductions, int64_t reduce_tiles) {
    size_t n = (size_t)(instr_count > 0 ? instr_count : 1);
    update_layout l;
    l.flags = (n * sizeof(float) + 7) / 8 * 8;
    l.tile_start = l.flags + (n + 7) / 8 * 8;
    l.reduce_start = l.tile_start + (size_t)(jobs + 1) * sizeof(int64_t);
    l.results = l.reduce_start + (size_t)(reductions + 1) * sizeof(int64_t);
    l.partials = l.results + ((size_t)reductions * sizeof(float) + 7) / 8 * 8;
    l.total = l.partials + (size_t)reduce_tiles * sizeof(double);
    return l;
}

size_t ck_fused_update_workspace(int64_t instr_count, int64_t jobs, int64_t reductions, int64_t reduce_tiles, size_t *results_offset) {
    update_layout l = layout(instr_count, jobs, reductions, reduce_tiles);
    if (results_offset) *results_offset = l.results;
    return l.total;
}

static int64_t run_fused(const ck_kernel_info *k, const void *params, void *const *o) {
    if (k->op == 0) {
        const ck_fused_call *p = params;
        ck_fused_program program = {p->count, AT(ck_fused_instr, p, p->instrs_at)};
        ck_f32_fused_elementwise(k->isa, &program, *(const uint64_t *)o[p->inputs + 1], p->n, (const float *const *)o,
                                 AT(int64_t, p, p->counts_at), o[p->inputs]);
        return 0;
    }
    const ck_update_call *p = params;
    char *ws = o[p->inputs];
    update_layout l = layout(p->instr_count, p->jobs, p->reductions, p->reduce_tiles);
    ck_fused_update u = {
        .jobs = p->jobs,
        .job = AT(ck_update_job, p, p->jobs_at),
        .instrs = AT(ck_fused_instr, p, p->instrs_at),
        .stores = AT(ck_update_store, p, p->stores_at),
        .inputs = (float *const *)o,
        .counts = AT(int64_t, p, p->counts_at),
        .uniform_values = (float *)ws,
        .uniform = (uint8_t *)(ws + l.flags),
        .tile_start = (int64_t *)(ws + l.tile_start),
        .reductions = p->reductions,
        .reduce_first = p->inputs - p->reductions,
        .reduce_inputs = AT(int32_t, p, p->reduce_at),
        .reduce_start = (int64_t *)(ws + l.reduce_start),
        .partials = (double *)(ws + l.partials),
    };
    ck_f32_fused_update(k->isa, &u);
    return 0;
}

ck_entry_fn ck_kernel_entry(int32_t id) {
    size_t count;
    const ck_kernel_info *table = ck_kernel_table(&count);
    if (id < 0 || (size_t)id >= count) return NULL;
    switch (table[id].family) {
    case CK_FAMILY_UNARY: return run_unary;
    case CK_FAMILY_BINARY_F32: return run_binary_f32;
    case CK_FAMILY_BINARY_I32: return run_binary_i32;
    case CK_FAMILY_SELECT: return run_select;
    case CK_FAMILY_COPY: return run_copy;
    case CK_FAMILY_FILL: return run_fill;
    case CK_FAMILY_CAST: return run_cast;
    case CK_FAMILY_REDUCE: return run_reduce;
    case CK_FAMILY_SOFTMAX: return run_softmax;
    case CK_FAMILY_GATHER: return run_gather;
    case CK_FAMILY_SCATTER_ADD: return run_scatter_add;
    case CK_FAMILY_RANDOM: return run_random;
    case CK_FAMILY_GEMM: return run_gemm;
    case CK_FAMILY_ARGMAX: return run_argmax;
    case CK_FAMILY_CONV: return run_conv;
    case CK_FAMILY_POOL: return run_pool;
    case CK_FAMILY_LSTM: return run_lstm;
    case CK_FAMILY_RNN: return run_rnn;
    case CK_FAMILY_FUSED_ELEMENTWISE: return run_fused;
    case CK_FAMILY_GEMM_UKR:  /* micro-kernels are called directly, never by a plan */
    case CK_FAMILY_CONV_UKR:
    case CK_FAMILY_CONV_BF_UKR: break;
    case CK_FAMILY_COLLECTIVE: return run_collective;
    case CK_FAMILY_COUNT: break;
    }
    return NULL;
}
