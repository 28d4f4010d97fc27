/* Exact integer noise samplers (discrete Laplace, discrete Gaussian, Poisson,
 * Skellam) over a ChaCha20 bit stream. The algorithms and the stated truncations
 * are documented in cdef/noise.h. 128-bit unsigned integers (wide.h: unsigned
 * __int128 where the compiler has it, 64-bit halves otherwise, same values) hold the
 * products of the discrete Gaussian's acceptance test; every bound that keeps
 * them below 2^127 is argued where it is used. */
#include <string.h>

#include "secagg.h"
#include "wide.h"

typedef secagg_u128 u128;

#define BUF_BLOCKS 16                    /* keystream refill: 16 blocks = 1 KiB */
#define MAX_BLOCKS ((uint64_t)1 << 32)   /* one key's 32-bit block counter */
#define DG_MAX_DEN ((uint64_t)1 << 16)
#define DG_MAX_VAR_LOG2 40
#define SK_MAX_DEN ((uint64_t)1 << 32)
#define SK_MAX_MU ((uint64_t)1 << 24)
#define TAIL_CAP 64                      /* truncation point, see noise.h */

/* The random bit source: a ChaCha20 keystream consumed 64 bits at a time. */
typedef struct {
    const uint8_t *key;
    uint64_t next_block; /* first block not yet in buf */
    uint8_t buf[64 * BUF_BLOCKS];
    size_t pos;          /* next unread byte of buf */
    uint64_t word;       /* unread bits, least significant first */
    unsigned nbits;
    int failed;          /* the keystream ran out (or refused); output is void */
} rng_t;

static void rng_init(rng_t *r, const uint8_t *key)
{
    r->key = key;
    r->next_block = 0;
    r->pos = sizeof r->buf;
    r->word = 0;
    r->nbits = 0;
    r->failed = 0;
}

static uint64_t rng_u64(rng_t *r)
{
    static const uint8_t zero_nonce[12] = {0};
    if (r->pos == sizeof r->buf) {
        if (r->failed || r->next_block + BUF_BLOCKS > MAX_BLOCKS ||
            secagg_chacha20_keystream(r->buf, sizeof r->buf, r->key, zero_nonce,
                                      (uint32_t)r->next_block) != 0) {
            /* Out of keystream: mark the call failed and feed zeros, which end every
             * loop below (a zero bit always decides a Bernoulli comparison in at
             * most as many steps as the denominator has bits). */
            r->failed = 1;
            memset(r->buf, 0, sizeof r->buf);
        } else {
            r->next_block += BUF_BLOCKS;
        }
        r->pos = 0;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += 8;
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
           ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

static inline unsigned rng_bit(rng_t *r)
{
    if (r->nbits == 0) {
        r->word = rng_u64(r);
        r->nbits = 64;
    }
    unsigned b = (unsigned)(r->word & 1u);
    r->word >>= 1;
    r->nbits--;
    return b;
}

/* Uniform integer in [0, n), 1 <= n <= 2^32: Lemire's multiply-and-reject on 32-bit
 * words, exactly uniform (the biased low range is rejected). */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    if (n == ((uint64_t)1 << 32))
        return rng_u64(r) >> 32;
    uint64_t x = rng_u64(r) >> 32;
    uint64_t prod = x * n;
    uint32_t low = (uint32_t)prod;
    if (low < (uint32_t)n) {
        uint32_t threshold = (uint32_t)(-(uint32_t)n) % (uint32_t)n;
        while (low < threshold && !r->failed) {
            x = rng_u64(r) >> 32;
            prod = x * n;
            low = (uint32_t)prod;
        }
    }
    return prod >> 32;
}

/* Bernoulli(num/den), 0 <= num <= den, 1 <= den < 2^127: U < num/den decided at the
 * first bit where a lazily drawn uniform U and the binary expansion of num/den
 * differ. Each step decides with probability 1/2. */
static int bern_frac64(rng_t *r, uint64_t num, uint64_t den)
{
    if (num >= den)
        return 1;
    uint64_t rem = num;
    while (rem != 0) {
        rem <<= 1; /* rem < den < 2^63: no overflow */
        unsigned pbit = rem >= den;
        if (pbit)
            rem -= den;
        unsigned ubit = rng_bit(r);
        if (ubit != pbit)
            return (int)pbit;
        if (r->failed)
            return 0;
    }
    return 0;
}

static int bern_frac(rng_t *r, u128 num, u128 den)
{
    if (secagg_u128_fits64(den) && secagg_u128_lo(den) < ((uint64_t)1 << 63))
        return bern_frac64(r, secagg_u128_lo(num), secagg_u128_lo(den));
    if (!secagg_u128_lt(num, den))
        return 1;
    u128 rem = num;
    while (!secagg_u128_is_zero(rem)) {
        rem = secagg_u128_shl1(rem); /* rem < den < 2^127: no overflow */
        unsigned pbit = !secagg_u128_lt(rem, den);
        if (pbit)
            rem = secagg_u128_sub(rem, den);
        unsigned ubit = rng_bit(r);
        if (ubit != pbit)
            return (int)pbit;
        if (r->failed)
            return 0;
    }
    return 0; /* the rest of the expansion is 0: U >= p with probability 1 */
}

/* Bernoulli(exp(-num/den)) for 0 <= num <= den < 2^120 (CKS Algorithm 1, gamma <= 1):
 * K = first k >= 1 with Bernoulli(gamma / k) = 0; return [K odd]. K is capped at
 * 2^6, where gamma^64/64! < 2^-290: the cap is reached only after that many
 * successes, and then the call restarts (the law conditioned on the cap). */
static int bern_exp_unit(rng_t *r, u128 num, u128 den)
{
    for (;;) {
        uint64_t k = 1;
        while (k < TAIL_CAP && bern_frac(r, num, secagg_u128_mul64(den, k)))
            k++;
        if (k < TAIL_CAP || r->failed)
            return (int)(k & 1);
    }
}

/* Bernoulli(exp(-num/den)) for any num >= 0, 1 <= den < 2^120: floor(g) draws of
 * Bernoulli(exp(-1)), then one of exp(-(g - floor g)); stops at the first 0. */
static int bern_exp(rng_t *r, u128 num, u128 den)
{
    const u128 one = secagg_u128_from64(1);
    u128 frac;
    const u128 whole = secagg_u128_divmod(num, den, &frac);
    /* A whole part of 2^64 or more never finishes its loop either way: the keystream
     * (2^41 bits) runs out first, and r->failed ends it. */
    const int huge = !secagg_u128_fits64(whole);
    for (uint64_t i = 0; huge || i < secagg_u128_lo(whole); i++) {
        if (!bern_exp_unit(r, one, one))
            return 0;
        if (r->failed)
            return 0;
    }
    return bern_exp_unit(r, frac, den);
}

/* Discrete Laplace with integer scale t (CKS Algorithm 2, s = 1), conditioned on
 * |x| < TAIL_CAP * t: U uniform in [0, t) accepted with exp(-U/t), V ~ Geometric
 * with P(V >= v) = exp(-v) counted up to the cap, x = +-(U + t V), (-, 0) rejected. */
static int64_t dlaplace(rng_t *r, uint64_t t)
{
    while (!r->failed) {
        uint64_t u = rng_below(r, t);
        if (!bern_exp_unit(r, secagg_u128_from64(u), secagg_u128_from64(t)))
            continue;
        uint64_t v = 0;
        while (v < TAIL_CAP &&
               bern_exp_unit(r, secagg_u128_from64(1), secagg_u128_from64(1)))
            v++;
        if (v == TAIL_CAP)
            continue;
        uint64_t x = u + t * v; /* < 64 * 2^32 */
        unsigned neg = rng_bit(r);
        if (neg && x == 0)
            continue;
        return neg ? -(int64_t)x : (int64_t)x;
    }
    return 0;
}

/* floor(sqrt(num/den)) for num/den <= 2^40, den <= 2^16: the largest s with
 * s^2 den <= num. */
static uint64_t isqrt_frac(uint64_t num, uint64_t den)
{
    uint64_t lo = 0, hi = (uint64_t)1 << 20; /* s <= 2^20 */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (mid * mid * den <= num) /* <= 2^40 * 2^16: no overflow */
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Discrete Gaussian with variance parameter s2 = a/b (CKS Algorithm 3): Y from the
 * discrete Laplace of scale t = floor(sigma) + 1, accepted with probability
 * exp(-(|Y| - s2/t)^2 / (2 s2)) = exp(-(|Y| t b - a)^2 / (2 a b t^2)).
 * Bounds: b <= 2^16, a <= 2^56, t <= 2^20 + 1, |Y| < 64 t, so |Y| t b < 2^62.1,
 * (|Y| t b - a)^2 < 2^125 and 2 a b t^2 < 2^116. */
static int64_t dgauss(rng_t *r, uint64_t a, uint64_t b, uint64_t t)
{
    const u128 den = secagg_u128_mul64(
        secagg_u128_mul64(secagg_u128_mul64(secagg_u128_from64(2 * a), b), t), t);
    while (!r->failed) {
        int64_t y = dlaplace(r, t);
        uint64_t ay = y < 0 ? (uint64_t)(-y) : (uint64_t)y;
        uint64_t lhs = ay * t * b; /* < 2^62.1: no overflow */
        uint64_t diff = lhs >= a ? lhs - a : a - lhs;
        if (bern_exp(r, secagg_u128_mul64(secagg_u128_from64(diff), diff), den))
            return y;
    }
    return 0;
}

/* One Poisson(g) piece, g = a/c <= 1/2 (c = den * pieces): K' = number of successes
 * of Bernoulli(g/1), Bernoulli(g/2), ... before the first failure has
 * P(K' = k) = g^k/k! (1 - g/(k+1)); accepting with (1 - g)/(1 - g/(k+1)) =
 * (c - a)(k+1) / ((k+1) c - a) leaves P(k) proportional to g^k/k!, i.e. Poisson(g).
 * Conditioned on K' < 64 (see noise.h). c <= 2^57, so (k+1) c < 2^63. */
static uint64_t poisson_piece(rng_t *r, uint64_t a, uint64_t c)
{
    while (!r->failed) {
        uint64_t k = 0;
        while (k < TAIL_CAP && bern_frac(r, secagg_u128_from64(a),
                                         secagg_u128_mul64(secagg_u128_from64(c), k + 1)))
            k++;
        if (k == TAIL_CAP)
            continue;
        const u128 kc = secagg_u128_mul64(secagg_u128_from64(c), k + 1);
        if (bern_frac(r, secagg_u128_mul64(secagg_u128_from64(c - a), k + 1),
                      secagg_u128_sub(kc, secagg_u128_from64(a))))
            return k;
    }
    return 0;
}

/* Poisson(a/b) as the sum of L = ceil(2 a / b) independent Poisson(a / (b L)) pieces. */
static int64_t poisson(rng_t *r, uint64_t a, uint64_t b)
{
    if (a == 0)
        return 0;
    uint64_t pieces = (2 * a + b - 1) / b; /* a <= 2^56: no overflow */
    uint64_t c = b * pieces;
    int64_t total = 0;
    for (uint64_t i = 0; i < pieces && !r->failed; i++)
        total += (int64_t)poisson_piece(r, a, c);
    return total;
}

uint64_t secagg_noise_dgauss_max_den(void) { return DG_MAX_DEN; }
uint64_t secagg_noise_dgauss_max_variance(void) { return (uint64_t)1 << DG_MAX_VAR_LOG2; }
uint64_t secagg_noise_skellam_max_den(void) { return SK_MAX_DEN; }
uint64_t secagg_noise_skellam_max_mu(void) { return SK_MAX_MU; }
size_t secagg_noise_seedbytes(void) { return 32; }

int secagg_noise_bernoulli_exp(uint8_t *out, size_t m, uint64_t num, uint64_t den,
                               const uint8_t *seed)
{
    if (den == 0 || num > ((uint64_t)1 << 62) || den > ((uint64_t)1 << 62))
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || seed == NULL)
        return -1;
    rng_t r;
    rng_init(&r, seed);
    for (size_t i = 0; i < m; i++)
        out[i] = (uint8_t)bern_exp(&r, secagg_u128_from64(num), secagg_u128_from64(den));
    return r.failed ? -1 : 0;
}

int secagg_noise_dlaplace(int64_t *out, size_t m, uint64_t t, const uint8_t *seed)
{
    if (t == 0 || t > ((uint64_t)1 << 32))
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || seed == NULL)
        return -1;
    rng_t r;
    rng_init(&r, seed);
    for (size_t i = 0; i < m; i++)
        out[i] = dlaplace(&r, t);
    return r.failed ? -1 : 0;
}

int secagg_noise_dgauss(int64_t *out, size_t m, uint64_t num, uint64_t den,
                        const uint8_t *seed)
{
    if (den == 0 || den > DG_MAX_DEN || num == 0 ||
        num / den > ((uint64_t)1 << DG_MAX_VAR_LOG2) ||
        (num / den == ((uint64_t)1 << DG_MAX_VAR_LOG2) && num % den != 0))
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || seed == NULL)
        return -1;
    uint64_t t = isqrt_frac(num, den) + 1;
    rng_t r;
    rng_init(&r, seed);
    for (size_t i = 0; i < m; i++)
        out[i] = dgauss(&r, num, den, t);
    return r.failed ? -1 : 0;
}

static int check_poisson(uint64_t num, uint64_t den)
{
    if (den == 0 || den > SK_MAX_DEN || num / den > SK_MAX_MU ||
        (num / den == SK_MAX_MU && num % den != 0))
        return -1;
    return 0;
}

int secagg_noise_poisson(int64_t *out, size_t m, uint64_t num, uint64_t den,
                         const uint8_t *seed)
{
    if (check_poisson(num, den) != 0)
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || seed == NULL)
        return -1;
    rng_t r;
    rng_init(&r, seed);
    for (size_t i = 0; i < m; i++)
        out[i] = poisson(&r, num, den);
    return r.failed ? -1 : 0;
}

int secagg_noise_skellam(int64_t *out, size_t m, uint64_t num, uint64_t den,
                         const uint8_t *seed)
{
    if (check_poisson(num, den) != 0)
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || seed == NULL)
        return -1;
    rng_t r;
    rng_init(&r, seed);
    for (size_t i = 0; i < m; i++) {
        int64_t p = poisson(&r, num, den);
        out[i] = p - poisson(&r, num, den);
    }
    return r.failed ? -1 : 0;
}
