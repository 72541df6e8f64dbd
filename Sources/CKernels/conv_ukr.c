/* The indirect-convolution micro-kernels (AVX2 6x16; AVX-512 12x32, 14x32
 * and 14x32 with bias and relu in its store step), their reference twin and
 * the lookup behind their kernel-table rows. conv.c drives them. */
#include "conv_internal.h"
#include "ck_kernel_lists.h"

/* ---- indirect GEMM micro-kernels: C[MR x NR] = sum_t sum_k A_t[r][k] * W[t][k][:] ----
 * Row r of tap t starts at ind[t * MR + r]; or, with a pixel stride ps != 0,
 * at ind[t * MR] + r * ps (only row 0's pointer is read: tiles along one
 * line of pixels whose windows are all inside the input). With `accumulate`
 * the tile is added to C (a product split over calls: the kernel tests). */


CK_AVX2 void ck_igemm_6x16(int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w, float *c, int64_t ldc,
                               int64_t mr, int64_t nr, int accumulate) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t r = 0; r < mr; r++) _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_ET0);  /* as the AVX-512 kernels */
    for (int64_t t = 0; t < taps; t++) {
        const float *a0 = ind[t * 6 + 0];
        const float *a1 = ps ? a0 + ps : ind[t * 6 + 1], *a2 = ps ? a0 + 2 * ps : ind[t * 6 + 2];
        const float *a3 = ps ? a0 + 3 * ps : ind[t * 6 + 3], *a4 = ps ? a0 + 4 * ps : ind[t * 6 + 4], *a5 = ps ? a0 + 5 * ps : ind[t * 6 + 5];
        for (int64_t k = 0; k < kc; k++) {
            __m256 b0 = _mm256_load_ps(w), b1 = _mm256_load_ps(w + 8);
            __m256 v = _mm256_broadcast_ss(a0 + k);
            c00 = _mm256_fmadd_ps(v, b0, c00); c01 = _mm256_fmadd_ps(v, b1, c01);
            v = _mm256_broadcast_ss(a1 + k);
            c10 = _mm256_fmadd_ps(v, b0, c10); c11 = _mm256_fmadd_ps(v, b1, c11);
            v = _mm256_broadcast_ss(a2 + k);
            c20 = _mm256_fmadd_ps(v, b0, c20); c21 = _mm256_fmadd_ps(v, b1, c21);
            v = _mm256_broadcast_ss(a3 + k);
            c30 = _mm256_fmadd_ps(v, b0, c30); c31 = _mm256_fmadd_ps(v, b1, c31);
            v = _mm256_broadcast_ss(a4 + k);
            c40 = _mm256_fmadd_ps(v, b0, c40); c41 = _mm256_fmadd_ps(v, b1, c41);
            v = _mm256_broadcast_ss(a5 + k);
            c50 = _mm256_fmadd_ps(v, b0, c50); c51 = _mm256_fmadd_ps(v, b1, c51);
            w += 16;
        }
    }
    __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256i m0 = ck256_tail_mask(nr >= 8 ? 8 : (size_t)nr), m1 = ck256_tail_mask(nr > 8 ? (size_t)(nr - 8) : 0);
    if (accumulate)
        for (int64_t r = 0; r < mr; r++) {
            acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_maskload_ps(c + r * ldc, m0));
            acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_maskload_ps(c + r * ldc + 8, m1));
        }
    if (nr == 16) {
        for (int64_t r = 0; r < mr; r++) {
            _mm256_storeu_ps(c + r * ldc, acc[r][0]);
            _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
        }
        return;
    }
    for (int64_t r = 0; r < mr; r++) {
        _mm256_maskstore_ps(c + r * ldc, m0, acc[r][0]);
        _mm256_maskstore_ps(c + r * ldc + 8, m1, acc[r][1]);
    }
}

#define IROW512(r)                                                        \
    {                                                                     \
        __m512 v = _mm512_set1_ps(a##r[k]);                               \
        acc##r##0 = _mm512_fmadd_ps(v, b0, acc##r##0);                    \
        acc##r##1 = _mm512_fmadd_ps(v, b1, acc##r##1);                    \
    }

/* The R x 32 indirect micro-kernels, R = 14 and 12, written out row by row
 * (named accumulators and pointers keep clang from spilling them): 14 rows
 * for the few-channel forward, whose tiles run along an output row with a
 * pixel stride (one base pointer); 12 for the pointer-table path, where 14
 * rows' pointers do not fit in the general registers beside the loop's own
 * and were reloaded from the stack every step (measured: conv3x3 64->64
 * forward 85-87% -> 91-92% of peak, Zen 5). */
#define IGEMM512(NAME, R, EXTRA_PARAMS, EPILOGUE, ACCUMULATORS, IPTRS, IROWS, ACC_ROWS)                   \
    CK_AVX512 void NAME(int64_t taps, int64_t kc, const float *const *ind, int64_t ps,               \
                               const float *w, float *c, int64_t ldc, int64_t mr, int64_t nr,              \
                               int accumulate EXTRA_PARAMS) {                                               \
        ACCUMULATORS;                                                                                       \
        /* the tile's lines of C, fetched for writing while the taps run (a new output's lines   \
         * come from memory: waiting for them at the store cost 8% of a 32->64 layer) */           \
        for (int64_t r = 0; r < mr; r++) {                                                                  \
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_ET0);                                        \
            _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_ET0);                                   \
        }                                                                                                   \
        for (int64_t t = 0; t < taps; t++) {                                                                \
            const float *const *row = ind + t * R;                                                          \
            const float *a0 = row[0];                                                                       \
            IPTRS                                                                                           \
            for (int64_t k = 0; k < kc; k++) {                                                              \
                __m512 b0 = _mm512_load_ps(w), b1 = _mm512_load_ps(w + 16);                                 \
                IROWS                                                                                       \
                w += 32;                                                                                    \
            }                                                                                               \
        }                                                                                                   \
        __m512 acc[R][2] = ACC_ROWS;                                                                        \
        __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);                          \
        __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : (__mmask16)0; \
        /* rows unrolled (a fixed index each, so the tile stays in registers), leaving at mr */            \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < R; r++) {                                    \
            if (r >= mr) break;                                                                             \
            if (accumulate) {                                                                               \
                acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, c + r * ldc));               \
                acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, c + r * ldc + 16));          \
            }                                                                                               \
            EPILOGUE                                                                                        \
            _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);                                              \
            _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);                                         \
        }                                                                                                   \
    }
#define IPTR(r) const float *a##r = ps ? a0 + r * ps : row[r];
#define IPTRS_12 IPTR(1) IPTR(2) IPTR(3) IPTR(4) IPTR(5) IPTR(6) IPTR(7) IPTR(8) IPTR(9) IPTR(10) IPTR(11)
#define IROWS_12 IROW512(0) IROW512(1) IROW512(2) IROW512(3) IROW512(4) IROW512(5) IROW512(6) IROW512(7) \
                 IROW512(8) IROW512(9) IROW512(10) IROW512(11)
#define ACC_ROWS_12 {{acc00, acc01}, {acc10, acc11}, {acc20, acc21}, {acc30, acc31}, {acc40, acc41}, {acc50, acc51}, \
                     {acc60, acc61}, {acc70, acc71}, {acc80, acc81}, {acc90, acc91}, {acc100, acc101}, {acc110, acc111}}
#define ACCS_12                                                                                             \
    __m512 acc00 = _mm512_setzero_ps(), acc01 = acc00, acc10 = acc00, acc11 = acc00, acc20 = acc00,          \
           acc21 = acc00, acc30 = acc00, acc31 = acc00, acc40 = acc00, acc41 = acc00, acc50 = acc00,         \
           acc51 = acc00, acc60 = acc00, acc61 = acc00, acc70 = acc00, acc71 = acc00, acc80 = acc00,         \
           acc81 = acc00, acc90 = acc00, acc91 = acc00, acc100 = acc00, acc101 = acc00, acc110 = acc00, acc111 = acc00
#define ACC_ROWS_14 {{acc00, acc01}, {acc10, acc11}, {acc20, acc21}, {acc30, acc31}, {acc40, acc41}, {acc50, acc51}, \
                     {acc60, acc61}, {acc70, acc71}, {acc80, acc81}, {acc90, acc91}, {acc100, acc101}, {acc110, acc111}, \
                     {acc120, acc121}, {acc130, acc131}}
#define IPTRS_14 IPTRS_12 IPTR(12) IPTR(13)
#define IROWS_14 IROWS_12 IROW512(12) IROW512(13)
/* The few-channel forward's variant: bias and relu in the store step. With
 * one to four channels a tile holds nine multiply-adds per output, so a
 * separate pass over the output cost a quarter of the layer. */
#define IGEMM_EPI_PARAMS , const float *bias, int relu
#define IGEMM_EPI                                                                                           \
    if (bias) {                                                                                             \
        acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, bias));                              \
        acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, bias + 16));                         \
    }                                                                                                       \
    if (relu) { /* max with +0 second: +0 for a NaN or -0 too, so x > 0 ? x : +0 exactly */              \
        acc[r][0] = _mm512_max_ps(acc[r][0], _mm512_setzero_ps());                                          \
        acc[r][1] = _mm512_max_ps(acc[r][1], _mm512_setzero_ps());                                          \
    }
IGEMM512(ck_igemm_14x32, 14, , , CK512_TILE_14x32_ACCUMULATORS, IPTRS_14, IROWS_14, ACC_ROWS_14)
IGEMM512(ck_igemm_14x32_bias_relu, 14, IGEMM_EPI_PARAMS, IGEMM_EPI, CK512_TILE_14x32_ACCUMULATORS, IPTRS_14, IROWS_14, ACC_ROWS_14)
IGEMM512(ck_igemm_12x32, 12, , , ACCS_12, IPTRS_12, IROWS_12, ACC_ROWS_12)

/* ---- the indirect micro-kernels by themselves (their own table rows; tests and keras-bench call them) ---- */

void ck_f32_conv_ukr__ref(int MR, int NR, int64_t taps, int64_t kc, const float *const *ind, int64_t ps, const float *w,
                          float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate) {
    for (int64_t r = 0; r < mr; r++)
        for (int64_t j = 0; j < nr; j++) {
            double acc = accumulate ? c[r * ldc + j] : 0.0;
            for (int64_t t = 0; t < taps; t++) {
                const float *a = ps ? ind[t * MR] + r * ps : ind[t * MR + r];
                for (int64_t k = 0; k < kc; k++) acc += (double)a[k] * (double)w[(t * kc + k) * NR + j];
            }
            c[r * ldc + j] = (float)acc;
        }
}

ck_f32_conv_ukr_fn ck_f32_conv_ukr_kernel(ck_isa isa, int mr, int nr) {
#define CK_UKR_NAME(MR, NR) ck_igemm_##MR##x##NR
    CK_CONV_UKRS(CK_UKR_CASE)
#undef CK_UKR_NAME
    return NULL;
}
