/* Wiping secrets in a way the compiler cannot drop (after libsodium's sodium_memzero). */
#include <string.h>

#include "secagg.h"
#include "secret.h"

void secagg_memzero(void *p, size_t n)
{
    if (p == NULL || n == 0)
        return;
#if defined(__GNUC__) || defined(__clang__)
    memset(p, 0, n);
    /* The empty asm takes p and clobbers memory: as far as the optimiser knows it
     * reads the zeroed bytes, so the memset is not a dead store it may delete. */
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--)
        *v++ = 0;
#endif
}

#define BURN_BYTES 16384

#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
void secagg_stack_burn(void)
{
    uint8_t frame[BURN_BYTES];
    secagg_memzero(frame, sizeof frame);
}
