/* Internal helpers shared by the kernel files: target attributes and the AVX2
 * vector math (exp, log, tanh, erf) used by the elementwise kernels.
 *
 * Stated accuracy of the AVX2 math against libm (checked in CKernelsTests):
 *   exp   relative error <= 2 ulp on [-87, 88]; +inf above 88.72, 0 below -87.3
 *   log   relative error <= 2 ulp on normal positive inputs
 *   tanh  absolute error <= 2e-7
 *   erf   absolute error <= 4e-7 (the rational form XLA uses for f32; 3.0e-7 measured)
 */
#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H

#include "CKernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define CK_AVX2 __attribute__((target("avx2,fma")))
#define CK_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define CK_INLINE static inline __attribute__((always_inline))

/* A family's kernel for `isa`, the one place the fallback order is written:
 * the AVX-512 variant at AVX-512, the AVX2 one at AVX2, the reference below.
 * A family without an AVX-512 variant uses CK_PICK2 (its AVX2 one serves
 * AVX-512 machines). */
#define CK_PICK(isa, ref, avx2, avx512) ((isa) >= CK_ISA_AVX512 ? (avx512) : (isa) >= CK_ISA_AVX2 ? (avx2) : (ref))
#define CK_PICK2(isa, ref, avx2) CK_PICK(isa, ref, avx2, avx2)

/* A finished tile's bias (NULL: none) and relu (epilogue.c): rows x cols of y
 * with leading dimension ld, the bits of the separate add and relu kernels.
 * isa is AVX2 or AVX-512 (the reference paths keep the separate kernels). */
void ck_bias_relu_tile(ck_isa isa, float *y, int64_t ld, int64_t rows, int64_t cols, const float *bias, int relu);
/* One output row of 2x2, stride-2 max pooling: out[o][c] = the max of rows
 * r0 and r1 at pixels 2o and 2o + 1 (C channels each), compared in that
 * order, a NaN kept (pool.c; the pooling kernel and the fused convolution's). */
void ck_max_pool_2x2_row(ck_isa isa, const float *r0, const float *r1, int64_t out_pixels, int64_t C, float *out);

CK_AVX2 CK_INLINE __m256 ck256_exp(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f);
    const __m256 lo = _mm256_set1_ps(-87.3365478515625f);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n in two halves so that n = 128 (x near 88.7) does not overflow the exponent. */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    /* overflow -> inf, underflow -> 0, NaN passes through */
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(88.72283935546875f), _CMP_GT_OQ));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    return y;
}

CK_AVX2 CK_INLINE __m256 ck256_log(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 xin = x;
    /* Split into mantissa m in [0.5, 1) and exponent e (normal inputs). */
    __m256i xi = _mm256_castps_si256(x);
    __m256i ei = _mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(126));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(xi, _mm256_set1_epi32(0x007fffff)),
                                                   _mm256_set1_epi32(0x3f000000)));
    __m256 e = _mm256_cvtepi32_ps(ei);
    __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(one, small));
    __m256 t = _mm256_add_ps(m, _mm256_and_ps(m, small));
    t = _mm256_sub_ps(t, one);
    __m256 z = _mm256_mul_ps(t, t);
    __m256 p = _mm256_set1_ps(7.0376836292e-2f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.1514610310e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.1676998740e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.2420140846e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.4249322787e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.6668057665e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(2.0000714765e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-2.4999993993e-1f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(3.3333331174e-1f));
    p = _mm256_mul_ps(_mm256_mul_ps(p, t), z);
    p = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), p);
    p = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), p);
    __m256 y = _mm256_add_ps(t, p);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), y);
    /* Special inputs: 0 -> -inf, negative or NaN -> NaN, +inf -> +inf, subnormal via libm path. */
    y = _mm256_blendv_ps(y, _mm256_set1_ps(NAN), _mm256_cmp_ps(xin, _mm256_setzero_ps(), _CMP_NGE_UQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(-INFINITY), _mm256_cmp_ps(xin, _mm256_setzero_ps(), _CMP_EQ_OQ));
    y = _mm256_blendv_ps(y, xin, _mm256_cmp_ps(xin, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ));
    return y;
}

/* Subnormal inputs are rare; the caller redoes them with logf. */
CK_AVX2 CK_INLINE int ck256_has_subnormal(__m256 x) {
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 m = _mm256_and_ps(_mm256_cmp_ps(ax, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ),
                             _mm256_cmp_ps(ax, _mm256_setzero_ps(), _CMP_GT_OQ));
    return _mm256_movemask_ps(m);
}

CK_AVX2 CK_INLINE __m256 ck256_tanh(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    __m256 z = _mm256_mul_ps(x, x);
    /* |x| < 0.625: odd polynomial */
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    /* otherwise 1 - 2 / (exp(2|x|) + 1), with the sign put back */
    __m256 e = ck256_exp(_mm256_add_ps(ax, ax));
    __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                               _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
    __m256 y = _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

CK_AVX2 CK_INLINE __m256 ck256_erf(__m256 x) {
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
    __m256 x2 = _mm256_mul_ps(xc, xc);
    __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
    p = _mm256_mul_ps(p, xc);
    __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
    __m256 y = _mm256_div_ps(p, q);
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

CK_AVX2 CK_INLINE __m256 ck256_sigmoid(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = ck256_exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

/* Partial vectors: load/store the first `n` (< 8) lanes. */
CK_AVX2 CK_INLINE __m256i ck256_tail_mask(size_t n) {
    static const int32_t lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(lanes + 8 - n));
}

/* AVX-512 twins of ck256_exp, ck256_tanh and ck256_sigmoid: the same
 * polynomials, with 2^n applied by scalef. */
/* The 14 x 32 AVX-512 tile's 28 accumulators acc<row><half>, zeroed: the
 * GEMM and indirect-convolution micro-kernels both keep that tile. */
#define CK512_TILE_14x32_ACCUMULATORS                                                                   \
    __m512 acc00 = _mm512_setzero_ps(), acc01 = acc00, acc10 = acc00, acc11 = acc00, acc20 = acc00,      \
           acc21 = acc00, acc30 = acc00, acc31 = acc00, acc40 = acc00, acc41 = acc00, acc50 = acc00,     \
           acc51 = acc00, acc60 = acc00, acc61 = acc00, acc70 = acc00, acc71 = acc00, acc80 = acc00,     \
           acc81 = acc00, acc90 = acc00, acc91 = acc00, acc100 = acc00, acc101 = acc00, acc110 = acc00,  \
           acc111 = acc00, acc120 = acc00, acc121 = acc00, acc130 = acc00, acc131 = acc00

/* exp on the clamped range only: no infinity, zero or NaN fix-ups (a NaN
 * comes out finite). For callers whose own formula gives the same result at
 * those ends (tanh, sigmoid): five compares and blends fewer per vector. */
CK_AVX512 CK_INLINE __m512 ck512_exp_clamped(__m512 x) {
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3365478515625f)), _mm512_set1_ps(88.3762626647949f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

CK_AVX512 CK_INLINE __m512 ck512_exp(__m512 x) {
    __m512 y = ck512_exp_clamped(x);
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(88.72283935546875f), _CMP_GT_OQ), y, _mm512_set1_ps(INFINITY));
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3365478515625f), _CMP_LT_OQ), y, _mm512_setzero_ps());
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

CK_AVX512 CK_INLINE __m512 ck512_tanh(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036e-1f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422e-1f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    /* exp(2|x|) clamped: past the clamp 1 - 2 / (e + 1) is 1 either way, and a NaN is restored below */
    __m512 e = ck512_exp_clamped(_mm512_add_ps(ax, ax));
    __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(big),
                                              _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
    __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ), big, small);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

/* exp(-x) without the zero fix-up (below the clamp 1 / (1 + e) rounds to 1
 * either way); with exp's infinity (sigmoid 0) and NaN ends. */
CK_AVX512 CK_INLINE __m512 ck512_sigmoid(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 nx = _mm512_sub_ps(_mm512_setzero_ps(), x);
    __m512 e = ck512_exp_clamped(nx);
    e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(nx, _mm512_set1_ps(88.72283935546875f), _CMP_GT_OQ), e, _mm512_set1_ps(INFINITY));
    e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(nx, nx, _CMP_UNORD_Q), e, nx);
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

/* Lane j of the result is the sum of v[j]'s lanes, for j < n (n <= 16;
 * the rest are 0): a tree of unpacks and shuffles that shares its work
 * across the vectors, where a horizontal sum per vector costs three times as
 * many operations. Pairs first (within 128-bit lanes), then 128-bit lanes. */
CK_AVX512 CK_INLINE __m512 ck512_sum16(const __m512 *v, int n) {
    __m512 z = _mm512_setzero_ps(), p[8], q[4], r[2];
    for (int i = 0; i < 8; i++) {
        __m512 a = 2 * i < n ? v[2 * i] : z, b = 2 * i + 1 < n ? v[2 * i + 1] : z;
        p[i] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));   /* a, b, a, b per 128 bits */
    }
    for (int i = 0; i < 4; i++)  /* four vectors' partial sums per 128 bits, in order */
        q[i] = _mm512_add_ps(_mm512_shuffle_ps(p[2 * i], p[2 * i + 1], 0x44), _mm512_shuffle_ps(p[2 * i], p[2 * i + 1], 0xEE));
    for (int i = 0; i < 2; i++)
        r[i] = _mm512_add_ps(_mm512_shuffle_f32x4(q[2 * i], q[2 * i + 1], 0x44), _mm512_shuffle_f32x4(q[2 * i], q[2 * i + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(r[0], r[1], 0x88), _mm512_shuffle_f32x4(r[0], r[1], 0xDD));
}

/* Transposes an 8x8 block: rows src[r * ld + 0..7] into dst[c * dld + r]. */
CK_AVX2 CK_INLINE void ck256_transpose8x8(const float *src, int64_t ld, float *dst, int64_t dld) {
    __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld), r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
    __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld), r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5), t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE), u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * dld, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * dld, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dld, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dld, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dld, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dld, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dld, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dld, _mm256_permute2f128_ps(u3, u7, 0x31));
}


/* ck256_transpose8x8 for the first `rows` (1..8) rows of src: missing rows
 * repeat the last one, and each output row stores only `rows` lanes. */
CK_AVX2 CK_INLINE void ck256_transpose_rows8(const float *src, int64_t ld, int64_t rows, float *dst, int64_t dld) {
    __m256 r[8];
    for (int64_t q = 0; q < 8; q++) r[q] = _mm256_loadu_ps(src + (q < rows ? q : rows - 1) * ld);
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]), t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]), t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE), u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rows), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(dst + 0 * dld, mask, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_maskstore_ps(dst + 1 * dld, mask, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_maskstore_ps(dst + 2 * dld, mask, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_maskstore_ps(dst + 3 * dld, mask, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_maskstore_ps(dst + 4 * dld, mask, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_maskstore_ps(dst + 5 * dld, mask, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_maskstore_ps(dst + 6 * dld, mask, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_maskstore_ps(dst + 7 * dld, mask, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* dst[c * dld + r] = src[r * ld + c] for r < rows, c < cols, through 8x8
 * register blocks. A ragged edge of 8 or more is one more block overlapping
 * the previous (its shared elements are written twice, with the same
 * values); fewer than 8 rows take the masked block; fewer than 8 columns go
 * element by element. src and dst must not overlap. */
CK_AVX2 CK_INLINE void ck256_transpose(const float *src, int64_t ld, int64_t rows, int64_t cols, float *dst, int64_t dld) {
    if (cols < 8) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) dst[c * dld + r] = src[r * ld + c];
        return;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        int64_t r = r0 + 8 <= rows ? r0 : rows >= 8 ? rows - 8 : 0;
        for (int64_t c0 = 0; c0 < cols; c0 += 8) {
            int64_t c = c0 + 8 <= cols ? c0 : cols - 8;
            if (rows >= 8) ck256_transpose8x8(src + r * ld + c, ld, dst + c * dld + r, dld);
            else ck256_transpose_rows8(src + c, ld, rows, dst + c * dld, dld);
        }
    }
}

#endif
