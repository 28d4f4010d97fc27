/* Internal helpers for code that handles secrets. Not part of the cffi API.
 *
 * SECAGG_DECLASSIFY(p, n) marks n bytes at p as public. It does nothing in a normal
 * build; in the constant-time check build (-DSECAGG_CTGRIND, tests/test_ctgrind.py)
 * secrets are marked undefined for valgrind's memcheck, which then reports every
 * branch or memory index that depends on them, and a declassified value is one the
 * code may branch on because it is meant to be public (say, "an input was NaN"). */
#ifndef SECAGG_SECRET_H
#define SECAGG_SECRET_H

#include <stdint.h>

#ifdef SECAGG_CTGRIND
#include <valgrind/memcheck.h>
#define SECAGG_DECLASSIFY(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#else
#define SECAGG_DECLASSIFY(p, n) ((void)(p), (void)(n))
#endif

/* Zeroes the 16 KiB of stack below the caller's frame: where the kernels it just
 * called kept their frames, including what their compilers spilled (the SIMD
 * kernels' round keys and states) and no source-level wipe can reach. Called by
 * each entry point that handled a key, after its kernels return (after libgcrypt's
 * _gcry_burn_stack). */
void secagg_stack_burn(void);

/* All ones if bit (0 or 1) is 1, else zero: the mask of a branch-free select. */
static inline uint64_t secagg_mask64(uint64_t bit)
{
    uint64_t m = (uint64_t)0 - bit;
#if defined(__GNUC__) || defined(__clang__)
    /* Hide from the optimiser that m is 0 or all ones, so it cannot turn the
     * masking back into a branch. */
    __asm__("" : "+r"(m));
#endif
    return m;
}

/* a if bit else b, for bit 0 or 1, without a branch. */
static inline uint64_t secagg_select64(uint64_t bit, uint64_t a, uint64_t b)
{
    const uint64_t m = secagg_mask64(bit);
    return (a & m) | (b & ~m);
}

#endif /* SECAGG_SECRET_H */
