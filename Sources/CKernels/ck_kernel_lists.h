/* The kernel families' lists, written once: each X(OP, name) row names an
 * op of the family's enum (CKernels.h) and the stem of its kernels'
 * names. The family files expand them into their kernels and dispatch
 * tables, table.c into the rows of ck_kernel_table, so adding a row here
 * adds the kernel, its dispatch and its table row (which the kernel tests
 * walk) together. */
#ifndef CK_KERNEL_LISTS_H
#define CK_KERNEL_LISTS_H

#define CK_UNARY_OPS(X)                                                                       \
    X(CK_UNARY_NEG, vneg) X(CK_UNARY_EXP, vexp) X(CK_UNARY_LOG, vlog) X(CK_UNARY_SQRT, vsqrt)  \
    X(CK_UNARY_RSQRT, vrsqrt) X(CK_UNARY_SQUARE, vsquare) X(CK_UNARY_ABS, vabs)               \
    X(CK_UNARY_SIGN, vsign) X(CK_UNARY_ERF, verf) X(CK_UNARY_RELU, vrelu)                     \
    X(CK_UNARY_SIGMOID, vsigmoid) X(CK_UNARY_TANH, vtanh) X(CK_UNARY_SOFTPLUS, vsoftplus)     \
    X(CK_UNARY_SOFTSIGN, vsoftsign) X(CK_UNARY_ELU, velu) X(CK_UNARY_SELU, vselu)             \
    X(CK_UNARY_GELU, vgelu) X(CK_UNARY_GELU_TANH, vgelu_tanh) X(CK_UNARY_SWISH, vswish)       \
    X(CK_UNARY_HARD_SIGMOID, vhard_sigmoid) X(CK_UNARY_LEAKY_RELU, vleaky_relu)               \
    X(CK_UNARY_COPY, vcopy)

/* Binary ops with one vector body each; pow has its own (a polynomial, not one instruction). */
#define CK_BINARY_F32_SIMPLE_OPS(X)                                                           \
    X(CK_BINARY_ADD, vadd) X(CK_BINARY_SUB, vsub) X(CK_BINARY_MUL, vmul) X(CK_BINARY_DIV, vdiv) \
    X(CK_BINARY_MAX, vmax) X(CK_BINARY_MIN, vmin) X(CK_BINARY_EQ, veq) X(CK_BINARY_NE, vne)   \
    X(CK_BINARY_LT, vlt) X(CK_BINARY_LE, vle) X(CK_BINARY_GT, vgt) X(CK_BINARY_GE, vge)
#define CK_BINARY_F32_OPS(X) CK_BINARY_F32_SIMPLE_OPS(X) X(CK_BINARY_POW, vpow)
#define CK_BINARY_I32_OPS(X)                                                                  \
    X(CK_BINARY_ADD, vadd) X(CK_BINARY_SUB, vsub) X(CK_BINARY_MUL, vmul)                      \
    X(CK_BINARY_MAX, vmax) X(CK_BINARY_MIN, vmin) X(CK_BINARY_EQ, veq) X(CK_BINARY_NE, vne)   \
    X(CK_BINARY_LT, vlt) X(CK_BINARY_LE, vle) X(CK_BINARY_GT, vgt) X(CK_BINARY_GE, vge)

#define CK_REDUCE_OPS(X) X(CK_REDUCE_SUM, sum) X(CK_REDUCE_MAX, max) X(CK_REDUCE_MIN, min)

#define CK_RANDOM_OPS(X) X(CK_RANDOM_UNIFORM, uniform) X(CK_RANDOM_NORMAL, normal) X(CK_RANDOM_BERNOULLI, bernoulli)

/* GEMM micro-kernels: X(ISA, MR, NR) for ukr_<MR>x<NR> in gemm.c. */
#define CK_GEMM_UKRS(X)                                                                       \
    X(CK_ISA_AVX2, 6, 16) X(CK_ISA_AVX512, 14, 32) X(CK_ISA_AVX512, 12, 32) X(CK_ISA_AVX512, 10, 32) \
    X(CK_ISA_AVX512, 8, 32) X(CK_ISA_AVX512, 6, 32) X(CK_ISA_AVX512, 4, 32) X(CK_ISA_AVX512, 2, 32)

/* Indirect-convolution micro-kernels: X(ISA, MR, NR) for igemm_<MR>x<NR> in conv.c. */
#define CK_CONV_UKRS(X) X(CK_ISA_AVX2, 6, 16) X(CK_ISA_AVX512, 12, 32) X(CK_ISA_AVX512, 14, 32)

/* Filter-gradient micro-kernels: X(ISA, MR, NR) for bf_<MR>x<NR> in conv_filter.c. */
#define CK_CONV_BF_UKRS(X)                                                                    \
    X(CK_ISA_AVX2, 6, 16) X(CK_ISA_AVX512, 8, 32) X(CK_ISA_AVX512, 9, 32) X(CK_ISA_AVX512, 10, 32) \
    X(CK_ISA_AVX512, 11, 32) X(CK_ISA_AVX512, 12, 32) X(CK_ISA_AVX512, 13, 32) X(CK_ISA_AVX512, 14, 32)

/* The body of a micro-kernel lookup (isa, mr, nr -> the kernel or NULL):
 * `LIST(CK_UKR_CASE) return NULL;`, with CK_UKR_NAME(MR, NR) defined first
 * as the family's function name. */
#define CK_UKR_CASE(ISA, MR, NR) if (isa == ISA && mr == MR && nr == NR) return CK_UKR_NAME(MR, NR);

#endif
