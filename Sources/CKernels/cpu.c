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
