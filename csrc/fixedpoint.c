/* Fixed-point encoding with clipping and unbiased stochastic rounding; decoding.
 * The format and the source of randomness are documented in cdef/fixedpoint.h. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "secagg.h"
#include "secret.h"

#if defined(__SSE2__) && !defined(SECAGG_NO_SIMD)
#include <emmintrin.h>
#define CLAMP_SSE2 1
#else
#define CLAMP_SSE2 0
#endif

/* Elements per tile: one keystream call of 4 * TILE bytes (64 ChaCha20 blocks). */
#define TILE 1024
#define MAX_ELEMS ((uint64_t)1 << 36) /* 2^32 blocks * 16 words per block */

/* m as 64 bits: compared with MAX_ELEMS without a "always false" warning on 32-bit targets. */
static inline uint64_t wide(size_t m) { return m; }

uint64_t secagg_fixedpoint_max_length(void) { return MAX_ELEMS; }

static inline uint32_t load32_le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* 0 if the parameters are valid for `bits` bits stored in words of `storage` bits. */
static int check_params(double clip, double scale, unsigned bits, unsigned storage)
{
    if (bits < 2 || bits > storage || (storage == 64 && bits <= 32))
        return -1;
    if (!(clip > 0.0) || !(scale > 0.0) || !isfinite(clip) || !isfinite(scale))
        return -1;
    double top = clip * scale;
    /* Rounded values lie in [-ceil(top), ceil(top)]; both ends must be < 2^(bits-1). */
    if (!isfinite(top) || !(ceil(top) < ldexp(1.0, (int)bits - 1)))
        return -1;
    return 0;
}

/* v clipped to [-clip, clip] without a branch; NaN becomes one of the bounds (NaN is
 * refused anyway, this only keeps the integer conversion defined). On x86-64 with
 * MINSD/MAXSD, branch-free instructions at every optimisation level; elsewhere (and in
 * the portable build) by masking the bit patterns, which is about 4x slower here.
 * tests/test_ctgrind.py checks both for secret-dependent branches. */
#if CLAMP_SSE2
static inline double clamp(double v, double clip)
{
    /* MINSD/MAXSD return their second operand when either is NaN: NaN -> clip. */
    __m128d x = _mm_min_sd(_mm_set_sd(v), _mm_set_sd(clip));
    return _mm_cvtsd_f64(_mm_max_sd(x, _mm_set_sd(-clip)));
}
#else
static inline double select_f64(uint64_t bit, double a, double b)
{
    uint64_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    const uint64_t m = (uint64_t)0 - bit;
    const uint64_t r = (ua & m) | (ub & ~m);
    double d;
    memcpy(&d, &r, sizeof d);
    return d;
}

static inline double clamp(double v, double clip)
{
    v = select_f64(v > clip, clip, v);
    return select_f64(!(v >= -clip), -clip, v); /* NaN -> -clip */
}
#endif

/* One element: already clipped (and NaN-free) v -> k mod 2^64, u the random word.
 * |v * scale| < 2^63, so the integer conversions below are exact and defined. */
static inline uint64_t round_one(double v, double scale, uint32_t u)
{
    double y = v * scale;
    int64_t t = (int64_t)y;             /* truncation toward zero */
    t -= (y < (double)t);               /* floor(y) */
    double frac = y - (double)t;        /* exact, in [0, 1) */
    t += ((double)(int64_t)u < frac * 4294967296.0); /* signed: no branch at -O0 */
    return (uint64_t)t;                 /* two's complement mod 2^64 */
}

#define DEFINE_ENCODE(NAME, IN_T, OUT_T, STORAGE)                                           \
    int NAME(OUT_T *out, const IN_T *x, size_t m, double clip, double scale, unsigned bits, \
             const uint8_t *seed, size_t *n_clipped, size_t *first_bad)                     \
    {                                                                                       \
        static const uint8_t zero_nonce[12] = {0};                                          \
        uint8_t ks[4 * TILE];                                                               \
        if (first_bad == NULL || n_clipped == NULL)                                         \
            return -1;                                                                      \
        *first_bad = m;                                                                     \
        *n_clipped = 0;                                                                     \
        if (check_params(clip, scale, bits, STORAGE) != 0 || wide(m) > MAX_ELEMS)       \
            return -1;                                                                      \
        if (m == 0)                                                                         \
            return 0;                                                                       \
        if (out == NULL || x == NULL || seed == NULL)                                       \
            return -1;                                                                      \
        const uint64_t mask = bits == 64 ? UINT64_MAX : (((uint64_t)1 << bits) - 1);       \
        size_t clipped = 0;                                                                 \
        for (size_t base = 0; base < m; base += TILE) {                                     \
            size_t n = m - base < TILE ? m - base : TILE;                                   \
            uint32_t counter = (uint32_t)(base / 16);                                       \
            if (secagg_chacha20_keystream(ks, 4 * n, seed, zero_nonce, counter) != 0)       \
                return -1; /* unreachable: m and the seed were checked */                   \
            int bad = 0;                                                                    \
            for (size_t i = 0; i < n; i++) {                                                \
                double v = (double)x[base + i];                                             \
                bad |= !(fabs(v) <= DBL_MAX);                                              \
                clipped += (v > clip) | (v < -clip);                                        \
                v = clamp(v, clip); /* NaN -> a bound: no UB in the cast */                 \
                out[base + i] = (OUT_T)(round_one(v, scale, load32_le(ks + 4 * i)) & mask); \
            }                                                                               \
            SECAGG_DECLASSIFY(&bad, sizeof bad); /* "an input was not finite" is public */ \
            if (bad) {                                                                      \
                secagg_memzero(ks, sizeof ks);                                              \
                for (size_t i = 0; i < n; i++) {                                            \
                    if (!isfinite((double)x[base + i])) {                                   \
                        *first_bad = base + i;                                              \
                        break;                                                              \
                    }                                                                       \
                }                                                                           \
                return -1;                                                                  \
            }                                                                               \
        }                                                                                   \
        secagg_memzero(ks, sizeof ks); /* the rounding randomness */                       \
        secagg_stack_burn();           /* and the keystream kernel's spills */             \
        *n_clipped = clipped;                                                               \
        return 0;                                                                           \
    }


DEFINE_ENCODE(secagg_fixedpoint_encode_f32_u32, float, uint32_t, 32)
DEFINE_ENCODE(secagg_fixedpoint_encode_f32_u64, float, uint64_t, 64)
DEFINE_ENCODE(secagg_fixedpoint_encode_f64_u32, double, uint32_t, 32)
DEFINE_ENCODE(secagg_fixedpoint_encode_f64_u64, double, uint64_t, 64)

/* Decoding: w < 2^bits read as signed bits-bit (sign-extended by xor and subtract of
 * the sign bit), over scale. The int64 -> double conversion is one instruction on
 * x86-64, where uint64 -> double branches on the top bit; the result is the same. */
#define DEFINE_DECODE(NAME, IN_T, STORAGE)                                                  \
    int NAME(double *out, const IN_T *v, size_t m, double scale, unsigned bits)             \
    {                                                                                       \
        if (bits < 1 || bits > STORAGE || (STORAGE == 64 && bits <= 32))                    \
            return -1;                                                                      \
        if (!(scale > 0.0) || !isfinite(scale))                                             \
            return -1;                                                                      \
        if (m == 0)                                                                         \
            return 0;                                                                       \
        if (out == NULL || v == NULL)                                                       \
            return -1;                                                                      \
        const uint64_t mask = bits == 64 ? UINT64_MAX : (((uint64_t)1 << bits) - 1);       \
        const uint64_t sign = (uint64_t)1 << (bits - 1);                                    \
        uint64_t high = 0;                                                                  \
        for (size_t i = 0; i < m; i++) {                                                    \
            uint64_t w = v[i];                                                              \
            high |= w & ~mask;                                                              \
            const uint64_t sx = ((w & mask) ^ sign) - sign; /* sign-extended, mod 2^64 */  \
            int64_t k;                                                                      \
            memcpy(&k, &sx, sizeof k);                                                      \
            out[i] = (double)k / scale; /* signed: no branch, unlike uint64 -> double */    \
        }                                                                                   \
        SECAGG_DECLASSIFY(&high, sizeof high); /* "a value was out of range" is public */   \
        return high ? -1 : 0;                                                               \
    }

DEFINE_DECODE(secagg_fixedpoint_decode_u32, uint32_t, 32)
DEFINE_DECODE(secagg_fixedpoint_decode_u64, uint64_t, 64)
