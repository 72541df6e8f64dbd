/* The thread pool's internal interface for kernels. */
#ifndef CK_THREADS_H
#define CK_THREADS_H
#include "CKernels.h"

/* A 64-byte-aligned buffer of at least `bytes` private to pool thread
 * `thread` (0 is the calling thread); it grows only when a larger size is asked. */
void *ck_thread_scratch(int thread, size_t bytes);

/* A scratch slot beyond every thread's, for a kernel's own intermediate. */
#define CK_SCRATCH_EXTRA 64
#define CK_SCRATCH_EXTRA2 65

/* GEMM (alpha, beta as given; B as described) with A from args->user_pack_a. */
void ck_gemm_custom_a(ck_isa isa, const ck_gemm_args *args);

/* Elementwise work is split into chunks of this many elements (a multiple
 * of every vector width), fixed by the size alone, so a split never changes
 * a result; arrays under two chunks run inline. */
#define CK_ELEMENTWISE_CHUNK 32768

#endif
