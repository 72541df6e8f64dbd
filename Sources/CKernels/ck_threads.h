/* The thread pool's internal interface for kernels. */
#ifndef CK_THREADS_H
#define CK_THREADS_H
#include "CKernels.h"

/* A 64-byte-aligned buffer of at least `bytes` private to pool thread
 * `thread` (0 is the calling thread); it grows only when a larger size is asked. */
void *ck_thread_scratch(int thread, size_t bytes);

/* A scratch slot beyond every thread's, for a kernel's own intermediate. */
#define CK_SCRATCH_EXTRA 64

#endif
