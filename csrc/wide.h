/* Internal 128-bit unsigned arithmetic. Not part of the cffi API.
 *
 * With unsigned __int128 where the compiler has it; otherwise (32-bit targets, MSVC,
 * wasm, or -DSECAGG_NO_INT128, which the test suite and `scripts/sanitize.sh --portable`
 * build to exercise this path) from 64-bit halves. Both paths compute the same exact
 * values; callers argue that their results stay below 2^128. */
#ifndef SECAGG_WIDE_H
#define SECAGG_WIDE_H

#include <stdint.h>

#if defined(__SIZEOF_INT128__) && !defined(SECAGG_NO_INT128)
#define SECAGG_HAVE_INT128 1
#endif

/* The 128-bit product of two 64-bit words: returns the high word, *lo the low one. */
#ifdef SECAGG_HAVE_INT128
static inline uint64_t secagg_mul64(uint64_t a, uint64_t b, uint64_t *lo)
{
    unsigned __int128 z = (unsigned __int128)a * b;
    *lo = (uint64_t)z;
    return (uint64_t)(z >> 64);
}
#else
static inline uint64_t secagg_mul64(uint64_t a, uint64_t b, uint64_t *lo)
{
    const uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    /* The middle column: three terms below 2^32 each, so no overflow. */
    const uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    *lo = (mid << 32) | (p00 & 0xffffffffu);
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}
#endif

/* An unsigned 128-bit integer and the operations the noise samplers need. Values are
 * exact below 2^128; products and sums that would reach it wrap, as unsigned
 * arithmetic does. */
#ifdef SECAGG_HAVE_INT128
typedef unsigned __int128 secagg_u128;

static inline secagg_u128 secagg_u128_from64(uint64_t a) { return a; }
static inline uint64_t secagg_u128_lo(secagg_u128 a) { return (uint64_t)a; }
static inline int secagg_u128_fits64(secagg_u128 a) { return (a >> 64) == 0; }
static inline int secagg_u128_lt(secagg_u128 a, secagg_u128 b) { return a < b; }
static inline int secagg_u128_is_zero(secagg_u128 a) { return a == 0; }
static inline secagg_u128 secagg_u128_sub(secagg_u128 a, secagg_u128 b) { return a - b; }
static inline secagg_u128 secagg_u128_shl1(secagg_u128 a) { return a << 1; }
static inline secagg_u128 secagg_u128_mul64(secagg_u128 a, uint64_t b) { return a * b; }
/* The quotient a / b, *rem = a % b; b != 0. */
static inline secagg_u128 secagg_u128_divmod(secagg_u128 a, secagg_u128 b, secagg_u128 *rem)
{
    *rem = a % b;
    return a / b;
}
#else
typedef struct {
    uint64_t hi, lo;
} secagg_u128;

static inline secagg_u128 secagg_u128_from64(uint64_t a)
{
    secagg_u128 r = {0, a};
    return r;
}
static inline uint64_t secagg_u128_lo(secagg_u128 a) { return a.lo; }
static inline int secagg_u128_fits64(secagg_u128 a) { return a.hi == 0; }
static inline int secagg_u128_lt(secagg_u128 a, secagg_u128 b)
{
    return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}
static inline int secagg_u128_is_zero(secagg_u128 a) { return (a.hi | a.lo) == 0; }
static inline secagg_u128 secagg_u128_sub(secagg_u128 a, secagg_u128 b)
{
    secagg_u128 r = {a.hi - b.hi - (a.lo < b.lo), a.lo - b.lo};
    return r;
}
static inline secagg_u128 secagg_u128_shl1(secagg_u128 a)
{
    secagg_u128 r = {(a.hi << 1) | (a.lo >> 63), a.lo << 1};
    return r;
}
static inline secagg_u128 secagg_u128_mul64(secagg_u128 a, uint64_t b)
{
    secagg_u128 r;
    r.hi = secagg_mul64(a.lo, b, &r.lo) + a.hi * b;
    return r;
}
/* The quotient a / b, *rem = a % b; b != 0. Restoring binary long division over the
 * bits of a, most significant first (at most 128 steps). */
static inline secagg_u128 secagg_u128_divmod(secagg_u128 a, secagg_u128 b, secagg_u128 *rem)
{
    secagg_u128 q = {0, 0}, r = {0, 0};
    for (int i = 127; i >= 0; i--) {
        const uint64_t bit = i >= 64 ? (a.hi >> (i - 64)) & 1u : (a.lo >> i) & 1u;
        const int carry = (int)(r.hi >> 63); /* r < b, so 2r + bit < 2^129 */
        r = secagg_u128_shl1(r);
        r.lo |= bit;
        q = secagg_u128_shl1(q);
        if (carry || !secagg_u128_lt(r, b)) {
            r = secagg_u128_sub(r, b);
            q.lo |= 1u;
        }
    }
    *rem = r;
    return q;
}
#endif

#endif /* SECAGG_WIDE_H */
