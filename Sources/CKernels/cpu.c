/* CPU feature detection and the run-time ISA choice. */
#include "CKernels.h"
#include <stdlib.h>
#include <string.h>

int ck_cpu_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int ck_cpu_has_avx512f(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && ck_cpu_has_avx2_fma();
#else
    return 0;
#endif
}

ck_isa ck_best_isa(void) {
    ck_isa best = ck_cpu_has_avx512f() ? CK_ISA_AVX512 : ck_cpu_has_avx2_fma() ? CK_ISA_AVX2 : CK_ISA_REF;
    const char *cap = getenv("KERAS_ISA");
    if (cap) {
        ck_isa want = best;
        if (strcmp(cap, "ref") == 0) want = CK_ISA_REF;
        else if (strcmp(cap, "avx2") == 0) want = CK_ISA_AVX2;
        else if (strcmp(cap, "avx512") == 0) want = CK_ISA_AVX512;
        if (want < best) best = want;
    }
    return best;
}

const char *ck_isa_name(ck_isa isa) {
    switch (isa) {
    case CK_ISA_REF: return "ref";
    case CK_ISA_AVX2: return "avx2";
    case CK_ISA_AVX512: return "avx512";
    }
    return "?";
}

/* ---- the core: vendor, family/model, data caches ----
 * Caches come from CPUID's deterministic cache parameters: leaf 4 on Intel,
 * 0x8000001D on AMD (same layout). Each subleaf describes one cache: type
 * (EAX 4:0, 0 ends the list), level (EAX 7:5), logical processors sharing
 * it (EAX 25:14, plus 1) and its size, ways x partitions x line x sets. */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static void describe(ck_cpu_info *info) {
    unsigned a, b, c, d;
    memset(info, 0, sizeof *info);
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned max_leaf = a;
    memcpy(info->vendor, &b, 4); memcpy(info->vendor + 4, &d, 4); memcpy(info->vendor + 8, &c, 4);
    info->vendor[12] = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        unsigned base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
        info->family = (int)(base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family);
        info->model = (int)(base_family == 0xf || base_family == 6 ? base_model | (((a >> 16) & 0xf) << 4) : base_model);
    }
    unsigned leaf = 0;
    if (strcmp(info->vendor, "GenuineIntel") == 0 && max_leaf >= 4) leaf = 4;
    else if (strcmp(info->vendor, "AuthenticAMD") == 0 || strcmp(info->vendor, "HygonGenuine") == 0) {
        __get_cpuid(0x80000000, &a, &b, &c, &d);
        if (a >= 0x8000001D) leaf = 0x8000001D;
    }
    if (!leaf) return;
    for (unsigned sub = 0; sub < 16; sub++) {
        __cpuid_count(leaf, sub, a, b, c, d);
        unsigned type = a & 0x1f, level = (a >> 5) & 7;
        if (type == 0) break;
        if (type == 2) continue;  /* instruction cache */
        int64_t bytes = (int64_t)(((b >> 22) & 0x3ff) + 1) * (((b >> 12) & 0x3ff) + 1) * ((b & 0xfff) + 1) * ((int64_t)c + 1);
        int shared = (int)((a >> 14) & 0xfff) + 1;
        if (level == 1) info->l1d_bytes = bytes;
        else if (level == 2) { info->l2_bytes = bytes; info->l2_shared_by = shared; }
        else if (level == 3) { info->l3_bytes = bytes; info->l3_shared_by = shared; }
    }
}
#else
static void describe(ck_cpu_info *info) { memset(info, 0, sizeof *info); }
#endif

void ck_cpu_describe(ck_cpu_info *info) { describe(info); }
