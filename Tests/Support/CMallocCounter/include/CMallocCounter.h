/* Counts heap allocations made by the calling thread while counting is on.
 * Linked into the test executable only: its malloc/calloc/realloc wrap
 * glibc's, so a test can measure that a steady-state step allocates nothing. */
#ifndef CMALLOC_COUNTER_H
#define CMALLOC_COUNTER_H
#include <stdint.h>
void mc_start(void);
/* Stops counting and returns the number of allocations since mc_start. */
int64_t mc_stop(void);
/* 1 when the wrappers are in effect in this process (the linker used them). */
int mc_active(void);
#endif
