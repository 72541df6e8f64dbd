/* GEMM packing: A into MR-row micro-panels (a transpose for a row-major A),
 * B into NR-column micro-panels, zero-filled past the matrix's edge. */
#include "gemm_internal.h"

/* dst[p * width + c] = src[c * ld + p] for c < cols (<= width), p < kc: a
 * transposing pack, 8x8 blocks at a time where they fit. */
CK_AVX2 static void pack_transposed(const float *src, int64_t ld, int64_t cols, int64_t kc, int width, float *restrict dst) {
    ck256_transpose(src, ld, cols, kc, dst, width);
    for (int64_t c = cols; c < width; c++)
        for (int64_t p = 0; p < kc; p++) dst[p * width + c] = 0.0f;
}

/* dst[p * width + c] = src[p * ld + c] for p < rows, c < width (16 or 32),
 * written out so the compiler keeps the vector moves instead of calling memmove per row. */
CK_AVX2 static void copy_rows(const float *src, int64_t ld, int64_t rows, int width, float *restrict dst) {
    if (width == 32) {
        for (int64_t p = 0; p < rows; p++, src += ld, dst += 32) {
            _mm_prefetch((const char *)(src + 8 * ld), _MM_HINT_T0);
            _mm_prefetch((const char *)(src + 8 * ld + 16), _MM_HINT_T0);
            __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8), v2 = _mm256_loadu_ps(src + 16), v3 = _mm256_loadu_ps(src + 24);
            _mm256_store_ps(dst, v0); _mm256_store_ps(dst + 8, v1); _mm256_store_ps(dst + 16, v2); _mm256_store_ps(dst + 24, v3);
        }
    } else {
        for (int64_t p = 0; p < rows; p++, src += ld, dst += 16) {
            __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8);
            _mm256_store_ps(dst, v0); _mm256_store_ps(dst + 8, v1);
        }
    }
}

/* dst[p * width + c] = src[p * ld + c] for p < rows and a width of 8 to 16
 * (a transposed A's full micro-panel: MR consecutive floats a row): one
 * 8-float move and one masked move a row instead of a scalar loop. */
CK_AVX2 static void copy_panel_rows(const float *src, int64_t ld, int64_t rows, int width, float *restrict dst) {
    __m256i tail = ck256_tail_mask((size_t)(width - 8));
    for (int64_t p = 0; p < rows; p++, src += ld, dst += width) {
        _mm256_storeu_ps(dst, _mm256_loadu_ps(src));
        if (width > 8) _mm256_maskstore_ps(dst + 8, tail, _mm256_maskload_ps(src + 8, tail));
    }
}

/* A full micro-panel of 9 to 16 rows of a row-major A (MR = 14 for the
 * AVX-512 kernel): rows 0-7 and rows mr-8 .. mr-1 transposed together, 8
 * k-steps at a time, so each packed row of MR floats is written whole at
 * once (one pass over the panel instead of two that each write part of
 * every row): 2.5 -> 2.2% of sgemm 1024^3's time, 1.3% faster (Zen 5). */
CK_AVX2 static void pack_rows_9_to_16(const float *src, int64_t ld, int64_t mr, int64_t kc, int width, float *restrict dst) {
    for (int64_t c0 = 0; c0 < kc; c0 += 8) {
        int64_t c = c0 + 8 <= kc ? c0 : kc - 8;  /* a ragged end: one more block overlapping the last */
        ck256_transpose8x8(src + c, ld, dst + c * width, width);
        ck256_transpose8x8(src + (mr - 8) * ld + c, ld, dst + c * width + (mr - 8), width);
    }
}

void ck_gemm_pack_a(const void *ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int MR, float *restrict dst) {
    const ck_gemm_args *g = ctx;
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        if (!g->trans_a && mr == MR && MR > 8 && MR <= 16 && kc >= 8) {
            pack_rows_9_to_16(g->a + (i0 + ir) * g->lda + p0, g->lda, mr, kc, MR, dst);
            dst += (int64_t)MR * kc;
            continue;
        }
        if (!g->trans_a) {
            pack_transposed(g->a + (i0 + ir) * g->lda + p0, g->lda, mr, kc, MR, dst);
            dst += (int64_t)MR * kc;
            continue;
        } else if (mr == MR && MR >= 8 && MR <= 16) {
            copy_panel_rows(g->a + p0 * g->lda + i0 + ir, g->lda, kc, MR, dst);
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = g->a + (p0 + p) * g->lda + i0 + ir;
                for (int64_t r = 0; r < mr; r++) dst[p * MR + r] = src[r];
            }
        }
        for (int64_t r = mr; r < MR; r++)
            for (int64_t p = 0; p < kc; p++) dst[p * MR + r] = 0.0f;
        dst += (int64_t)MR * kc;
    }
}

void ck_gemm_pack_b(int NR, const ck_gemm_args *g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float *restrict dst) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int64_t nr = nc - jr < NR ? nc - jr : NR;
        if (!g->trans_b && nr == NR && (NR == 16 || NR == 32)) {
            copy_rows(g->b + p0 * g->ldb + j0 + jr, g->ldb, kc, NR, dst);
        } else if (!g->trans_b) {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = g->b + (p0 + p) * g->ldb + j0 + jr;
                float *d = dst + p * NR;
                int64_t c = 0;
                for (; c < nr; c++) d[c] = src[c];
                for (; c < NR; c++) d[c] = 0.0f;
            }
        } else {
            pack_transposed(g->b + (j0 + jr) * g->ldb + p0, g->ldb, nr, kc, NR, dst);
        }
        dst += (int64_t)NR * kc;
    }
}
