/* Counter-based random numbers. Element i of draw `counter` under `seed` is
 * hash(key(seed, counter) + i): a pure function, so any partition of the work
 * gives the same bits, and a plan that bumps `counter` each step gets fresh
 * draws without carrying generator state. */
#include "ck_internal.h"
#include "ck_kernel_lists.h"

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline uint32_t key32(uint64_t seed, uint64_t counter) {
    return (uint32_t)mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (counter * 0xd1b54a32d192ed03ULL));
}
/* lowbias32 (Wellons) on key ^ i: 32-bit, so it vectorizes with mullo_epi32. */
static inline uint32_t hash32(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352dU;
    x ^= x >> 15; x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

uint32_t ck_random_bits(uint64_t seed, uint64_t counter, uint64_t i) {
    return hash32(key32(seed, counter) + (uint32_t)(i * 0x9e3779b9U)) >> 8;
}

#define U24 (1.0f / 16777216.0f)

static void ck_f32_random_uniform__ref(size_t n, uint64_t seed, uint64_t counter, float lo, float hi, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = lo + (hi - lo) * ((float)ck_random_bits(seed, counter, i) * U24);
}
static void ck_f32_random_bernoulli__ref(size_t n, uint64_t seed, uint64_t counter, float p, float unused, float *y) {
    (void)unused;
    for (size_t i = 0; i < n; i++) y[i] = ((float)ck_random_bits(seed, counter, i) * U24) < p ? 1.0f : 0.0f;
}
/* Box-Muller on pairs (2k, 2k+1); u1 is shifted into (0, 1] so log is finite. */
static inline float normal_at(uint64_t seed, uint64_t counter, size_t i, float mean, float sd) {
    size_t k = i & ~(size_t)1;
    float u1 = ((float)ck_random_bits(seed, counter, k) + 1.0f) * U24;
    float u2 = (float)ck_random_bits(seed, counter, k + 1) * U24;
    float r = sqrtf(-2.0f * logf(u1));
    float t = 6.28318530717958648f * u2;
    return mean + sd * r * ((i & 1) ? sinf(t) : cosf(t));
}
static void ck_f32_random_normal__ref(size_t n, uint64_t seed, uint64_t counter, float mean, float sd, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = normal_at(seed, counter, i, mean, sd);
}

CK_AVX2 static inline __m256 bits_to_unit(__m256i key, size_t i) {
    __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)i), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i x = _mm256_add_epi32(key, _mm256_mullo_epi32(idx, _mm256_set1_epi32((int)0x9e3779b9U)));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16)); x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15)); x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bU));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_srli_epi32(x, 8);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(x), _mm256_set1_ps(U24));
}

CK_AVX2 static void ck_f32_random_uniform__avx2(size_t n, uint64_t seed, uint64_t counter, float lo, float hi, float *y) {
    __m256i key = _mm256_set1_epi32((int)key32(seed, counter));
    __m256 vlo = _mm256_set1_ps(lo), vw = _mm256_set1_ps(hi - lo);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(vlo, _mm256_mul_ps(vw, bits_to_unit(key, i))));
    for (; i < n; i++) y[i] = lo + (hi - lo) * ((float)ck_random_bits(seed, counter, i) * U24);
}

CK_AVX2 static void ck_f32_random_bernoulli__avx2(size_t n, uint64_t seed, uint64_t counter, float p, float unused, float *y) {
    (void)unused;
    __m256i key = _mm256_set1_epi32((int)key32(seed, counter));
    __m256 vp = _mm256_set1_ps(p), one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_and_ps(_mm256_cmp_ps(bits_to_unit(key, i), vp, _CMP_LT_OQ), one));
    for (; i < n; i++) y[i] = ((float)ck_random_bits(seed, counter, i) * U24) < p ? 1.0f : 0.0f;
}

/* The uniforms are drawn 8 at a time; the transcendental part stays scalar. */
CK_AVX2 static void ck_f32_random_normal__avx2(size_t n, uint64_t seed, uint64_t counter, float mean, float sd, float *y) {
    __m256i key = _mm256_set1_epi32((int)key32(seed, counter));
    float u[8];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(u, bits_to_unit(key, i));
        for (int l = 0; l < 8; l += 2) {
            float u1 = u[l] + U24, u2 = u[l + 1];
            float r = sqrtf(-2.0f * logf(u1));
            float t = 6.28318530717958648f * u2;
            y[i + l] = mean + sd * r * cosf(t);
            y[i + l + 1] = mean + sd * r * sinf(t);
        }
    }
    for (; i < n; i++) y[i] = normal_at(seed, counter, i, mean, sd);
}

ck_f32_random_fn ck_f32_random_kernel(ck_random_dist dist, ck_isa isa) {
#define RANDOM_REF(OP, name) [OP] = ck_f32_random_##name##__ref,
#define RANDOM_AVX2(OP, name) [OP] = ck_f32_random_##name##__avx2,
    static const ck_f32_random_fn ref[CK_RANDOM_COUNT] = {CK_RANDOM_OPS(RANDOM_REF)};
    static const ck_f32_random_fn avx2[CK_RANDOM_COUNT] = {CK_RANDOM_OPS(RANDOM_AVX2)};
    if ((unsigned)dist >= CK_RANDOM_COUNT) return NULL;
    return CK_PICK2(isa, ref[dist], avx2[dist]);
}

/* Elements [first, first + n) of draw `counter`: the same values the whole
 * kernel writes there, so a fused program can compute a draw one tile at a
 * time (dropout's mask, recomputed in the backward pass instead of stored). */
CK_AVX2 static void random_at__avx2(ck_random_dist dist, uint64_t seed, uint64_t counter, uint64_t first, size_t n, float a, float b, float *y) {
    __m256i key = _mm256_set1_epi32((int)key32(seed, counter));
    size_t i = 0;
    if (dist == CK_RANDOM_BERNOULLI) {
        __m256 vp = _mm256_set1_ps(a), one = _mm256_set1_ps(1.0f);
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_and_ps(_mm256_cmp_ps(bits_to_unit(key, first + i), vp, _CMP_LT_OQ), one));
        for (; i < n; i++) y[i] = ((float)ck_random_bits(seed, counter, first + i) * U24) < a ? 1.0f : 0.0f;
    } else if (dist == CK_RANDOM_UNIFORM) {
        __m256 vlo = _mm256_set1_ps(a), vw = _mm256_set1_ps(b - a);
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(vlo, _mm256_mul_ps(vw, bits_to_unit(key, first + i))));
        for (; i < n; i++) y[i] = a + (b - a) * ((float)ck_random_bits(seed, counter, first + i) * U24);
    } else {
        for (; i < n; i++) y[i] = normal_at(seed, counter, first + i, a, b);
    }
}

void ck_f32_random_at(ck_random_dist dist, ck_isa isa, uint64_t seed, uint64_t counter, uint64_t first, size_t n, float a, float b, float *y) {
    if (isa != CK_ISA_REF) { random_at__avx2(dist, seed, counter, first, n, a, b, y); return; }
    for (size_t i = 0; i < n; i++) {
        float u = (float)ck_random_bits(seed, counter, first + i) * U24;
        y[i] = dist == CK_RANDOM_BERNOULLI ? (u < a ? 1.0f : 0.0f) : dist == CK_RANDOM_UNIFORM ? a + (b - a) * u : normal_at(seed, counter, first + i, a, b);
    }
}
