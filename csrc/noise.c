/* Exact integer noise samplers (discrete Laplace, discrete Gaussian, Poisson,
 * Skellam) over a ChaCha20 keystream. The algorithms, their derivations and the
 * stated truncations are in cdef/noise.h; this file argues the integer bounds
 * where they are used. 128-bit values are pairs of 64-bit words (w128 below), whose
 * products come from secagg_mul64 (wide.h: unsigned __int128 where the compiler has
 * it, 64-bit halves otherwise, the same values). */
#include <string.h>

#include "secagg.h"
#include "wide.h"

#define BUF_HALVES 2048                  /* keystream refill: 128 blocks = 8 KiB */
#define MAX_BLOCKS ((uint64_t)1 << 32)   /* one key's 32-bit block counter */
#define DG_MAX_DEN ((uint64_t)1 << 16)
#define DG_MAX_VAR_LOG2 40
#define SK_MAX_DEN ((uint64_t)1 << 32)
#define SK_MAX_MU ((uint64_t)1 << 24)
#define TAIL_CAP 64                      /* truncation point, see noise.h */
#define FACT_MAX 12                      /* 12! < 2^32 < 13! */
#define POISSON_REJECT_MIN 6             /* mu >= this: the O(sqrt mu) rejection sampler */
#define DG_BATCH 256                     /* candidates per batch of the discrete Gaussian */

/* A branch that is rarely taken (probability below ~5%), for the compiler's layout only. */
#if defined(__GNUC__) || defined(__clang__)
#define RARE(x) __builtin_expect(!!(x), 0)
#else
#define RARE(x) (x)
#endif

/* --- 128-bit values as two words ----------------------------------------------- */

typedef struct {
    uint64_t hi, lo;
} w128;

static inline w128 w_make(uint64_t hi, uint64_t lo)
{
    w128 r = {hi, lo};
    return r;
}
static inline w128 w_from(uint64_t a) { return w_make(0, a); }
/* a * b for 64-bit a, b (never overflows). */
static inline w128 w_mul(uint64_t a, uint64_t b)
{
    w128 r;
    r.hi = secagg_mul64(a, b, &r.lo);
    return r;
}
/* a * b mod 2^128; callers argue the product is below 2^128. */
static inline w128 w_mulw(w128 a, uint64_t b)
{
    w128 r;
    r.hi = secagg_mul64(a.lo, b, &r.lo) + a.hi * b;
    return r;
}
static inline int w_lt(w128 a, w128 b) { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo); }
static inline int w_is_zero(w128 a) { return (a.hi | a.lo) == 0; }
static inline w128 w_sub(w128 a, w128 b) /* a >= b */
{
    return w_make(a.hi - b.hi - (a.lo < b.lo), a.lo - b.lo);
}

/* --- the random source ------------------------------------------------------------ */

/* A ChaCha20 keystream read as little-endian 32-bit words (a 64-bit word is two of
 * them, low first, so it is the little-endian 64-bit word of the same 8 bytes), plus a
 * cache of single bits and the constants of bern_exp1 (per call: no global state). */
typedef struct {
    const uint8_t *key;
    uint64_t next_block; /* first block not yet in buf */
    size_t pos;          /* next unread 32-bit word of buf */
    uint64_t bits;       /* unread single bits, least significant first */
    unsigned nbits;
    int failed;          /* the keystream ran out (or refused); output is void */
    /* fact_thr[k] = floor(2^32 / k!), fact_rem[k] = 2^32 mod k!, 2 <= k <= 12. */
    uint32_t fact[FACT_MAX + 1], fact_thr[FACT_MAX + 2], fact_rem[FACT_MAX + 1];
    /* group_ones[s]: a 1 at the lowest bit of each whole s-bit group of a word. */
    uint64_t group_ones[33];
    uint32_t buf[BUF_HALVES];
} rng_t;

static void rng_init(rng_t *r, const uint8_t *key)
{
    r->key = key;
    r->next_block = 0;
    r->pos = BUF_HALVES;
    r->bits = 0;
    r->nbits = 0;
    r->failed = 0;
    r->fact[0] = r->fact[1] = 1;
    for (unsigned k = 2; k <= FACT_MAX; k++)
        r->fact[k] = r->fact[k - 1] * k; /* 12! < 2^32 */
    r->fact_thr[0] = r->fact_thr[1] = UINT32_MAX; /* not used */
    r->fact_rem[0] = r->fact_rem[1] = 0;
    r->fact_thr[2] = (uint32_t)1 << 31; /* 2^32 / 2, exact */
    r->fact_rem[2] = 0;
    for (unsigned k = 3; k <= FACT_MAX; k++) {
        /* 3 divides k!, so k! does not divide 2^32 and floor(2^32 / k!) =
         * floor((2^32 - 1) / k!); the remainder is 2^32 - thr * k! (mod 2^32). */
        r->fact_thr[k] = UINT32_MAX / r->fact[k];
        r->fact_rem[k] = (uint32_t)0 - r->fact_thr[k] * r->fact[k];
    }
    r->fact_thr[FACT_MAX + 1] = 0; /* sentinel: 13! > 2^32 */
    r->group_ones[0] = 0;
    for (unsigned g = 1; g <= 32; g++) {
        r->group_ones[g] = 0;
        for (unsigned i = 0; i + g <= 64; i += g)
            r->group_ones[g] |= (uint64_t)1 << i;
    }
}

static void rng_refill(rng_t *r)
{
    static const uint8_t zero_nonce[12] = {0};
    uint8_t *bytes = (uint8_t *)r->buf;
    const uint64_t blocks = sizeof r->buf / 64;
    if (r->failed || r->next_block + blocks > MAX_BLOCKS ||
        secagg_chacha20_keystream(bytes, sizeof r->buf, r->key, zero_nonce,
                                  (uint32_t)r->next_block) != 0) {
        /* Out of keystream: mark the call failed and feed zero words. Every loop
         * below either ends on a zero word or tests r->failed. */
        r->failed = 1;
        memset(r->buf, 0, sizeof r->buf);
    } else {
        r->next_block += blocks;
        for (size_t i = 0; i < BUF_HALVES; i++) { /* in place; a no-op on little-endian */
            uint8_t p[4];
            memcpy(p, bytes + 4 * i, 4);
            r->buf[i] = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                        ((uint32_t)p[3] << 24);
        }
    }
    r->pos = 0;
}

static inline uint32_t rng_u32(rng_t *r)
{
    if (r->pos == BUF_HALVES)
        rng_refill(r);
    return r->buf[r->pos++];
}

/* Two fresh 32-bit words; a single one left at the end of buf is skipped (which
 * depends only on how many were read, never on their values). */
static inline uint64_t rng_u64(rng_t *r)
{
    if (r->pos + 2 > BUF_HALVES)
        rng_refill(r);
    const uint64_t w = (uint64_t)r->buf[r->pos] | ((uint64_t)r->buf[r->pos + 1] << 32);
    r->pos += 2;
    return w;
}

static inline unsigned rng_bit(rng_t *r)
{
    if (r->nbits == 0) {
        r->bits = rng_u64(r);
        r->nbits = 64;
    }
    unsigned b = (unsigned)(r->bits & 1u);
    r->bits >>= 1;
    r->nbits--;
    return b;
}

/* Uniform integer in [0, n), 1 <= n <= 2^63: Lemire's multiply-shift on 64-bit words
 * with exact rejection of the 2^64 mod n low products that would bias it. */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    uint64_t lo, hi = secagg_mul64(rng_u64(r), n, &lo);
    if (lo < n) {
        const uint64_t threshold = ((uint64_t)0 - n) % n; /* 2^64 mod n */
        while (lo < threshold && !r->failed)
            hi = secagg_mul64(rng_u64(r), n, &lo);
    }
    return hi;
}

/* The same with 32-bit words for 1 <= n <= 2^31 (2^32 mod n computed only in the rare
 * case lo < n). */
static inline uint32_t rng_below32(rng_t *r, uint32_t n)
{
    uint64_t x = (uint64_t)rng_u32(r) * n;
    if (RARE((uint32_t)x < n)) {
        const uint32_t threshold = ((uint32_t)0 - n) % n; /* 2^32 mod n */
        while ((uint32_t)x < threshold && !r->failed)
            x = (uint64_t)rng_u32(r) * n;
    }
    return (uint32_t)(x >> 32);
}

/* --- Bernoulli of a rational --------------------------------------------------------- */

/* Bernoulli(num/den) for den >= 1 (1 if num >= den): U < num/den for a uniform U in
 * [0, 1) read 64 bits at a time. With u the next 64 bits, U*den*2^64 lies in
 * [u*den, u*den + den) (relative to what is decided), so U < num/den is certain when
 * num*2^64 >= u*den + den, impossible when num*2^64 <= u*den, and otherwise the rest
 * of U decides U' < r/den with r = num*2^64 - u*den in (0, den) (probability of that
 * case < den/2^64). Writing u*den = hi*2^64 + lo (hi < den): no iff num <= hi; yes iff
 * num >= hi + 2, or num = hi + 1 and 2^64 - lo >= den; else r = 2^64 - lo. */
static int bern_frac64(rng_t *r, uint64_t num, uint64_t den)
{
    if (num >= den)
        return 1;
    while (num != 0) {
        uint64_t lo, hi = secagg_mul64(rng_u64(r), den, &lo);
        if (num <= hi)
            return 0;
        if (num - hi >= 2 || lo == 0 || (uint64_t)0 - lo >= den)
            return 1;
        num = (uint64_t)0 - lo; /* 2^64 - lo < den */
        if (r->failed)
            return 0;
    }
    return 0;
}

/* The same for num, den < 2^128: u*den and num*2^64 as three words. */
static int bern_frac(rng_t *r, w128 num, w128 den)
{
    if (!w_lt(num, den))
        return 1;
    if (den.hi == 0)
        return bern_frac64(r, num.lo, den.lo);
    while (!w_is_zero(num)) {
        const uint64_t u = rng_u64(r);
        uint64_t x0, q0;
        const uint64_t p1 = secagg_mul64(u, den.lo, &x0);
        const uint64_t q1 = secagg_mul64(u, den.hi, &q0);
        const uint64_t x1 = q0 + p1;
        const uint64_t x2 = q1 + (x1 < p1); /* u*den < 2^192: no carry out */
        /* d = num*2^64 - u*den = (num.hi, num.lo, 0) - (x2, x1, x0), with borrows. */
        const uint64_t d0 = (uint64_t)0 - x0;
        const unsigned b0 = x0 != 0;
        const uint64_t d1 = num.lo - x1 - b0;
        const unsigned b1 = num.lo < x1 || (num.lo == x1 && b0);
        const uint64_t d2 = num.hi - x2 - b1;
        const unsigned b2 = num.hi < x2 || (num.hi == x2 && b1);
        if (b2 || (d2 | d1 | d0) == 0)
            return 0; /* num*2^64 <= u*den */
        if (d2 != 0 || !w_lt(w_make(d1, d0), den))
            return 1; /* num*2^64 - u*den >= den */
        num = w_make(d1, d0);
        if (r->failed)
            return 0;
    }
    return 0;
}

/* bern_frac64 with its first step written without a data-dependent branch: the
 * outcome is a value (num > hi), and only the rare undecided case (num = hi + 1 and
 * 2^64 - lo < den, probability < den/2^64) branches to the exact continuation. Valid
 * for any num >= 0, den >= 1 (for num >= den the undecided case cannot occur, as
 * 2^64 - lo = (2^64 - u) den there). */
static inline unsigned bern64_step(rng_t *r, uint64_t num, uint64_t den)
{
    uint64_t lo, hi = secagg_mul64(rng_u64(r), den, &lo);
    if (RARE(num == hi + 1 && lo != 0 && (uint64_t)0 - lo < den))
        return (unsigned)bern_frac64(r, (uint64_t)0 - lo, den);
    return num > hi;
}

/* The same reading 32 bits, for den < 2^32: u*den = hi*2^32 + lo, and the undecided
 * case (num = hi + 1, 2^32 - lo < den) continues exactly with bern_frac64. */
static inline unsigned bern32_step(rng_t *r, uint32_t num, uint32_t den)
{
    const uint64_t x = (uint64_t)rng_u32(r) * den;
    const uint32_t hi = (uint32_t)(x >> 32), lo = (uint32_t)x;
    if (RARE(num == hi + 1 && lo != 0 && (uint32_t)0 - lo < den))
        return (unsigned)bern_frac64(r, (uint32_t)0 - lo, den);
    return num > hi;
}

/* The same for 128-bit num, den (den >= 2^64), falling back to bern_frac's loop. */
static inline unsigned bern128_step(rng_t *r, w128 num, w128 den)
{
    const uint64_t u = rng_u64(r);
    uint64_t x0, q0;
    const uint64_t p1 = secagg_mul64(u, den.lo, &x0);
    const uint64_t q1 = secagg_mul64(u, den.hi, &q0);
    const uint64_t x1 = q0 + p1;
    const uint64_t x2 = q1 + (x1 < p1);
    /* num*2^64 - u*den as in bern_frac; decided yes iff the difference is >= den. */
    const uint64_t d0 = (uint64_t)0 - x0;
    const unsigned b0 = x0 != 0;
    const uint64_t d1 = num.lo - x1 - b0;
    const unsigned b1 = num.lo < x1 || (num.lo == x1 && b0);
    const uint64_t d2 = num.hi - x2 - b1;
    const unsigned b2 = num.hi < x2 || (num.hi == x2 && b1);
    const unsigned positive = !b2 && (d2 | d1 | d0) != 0;
    const unsigned yes = positive && (d2 != 0 || !w_lt(w_make(d1, d0), den));
    if (RARE(positive && !yes))
        return (unsigned)bern_frac(r, w_make(d1, d0), den);
    return yes;
}

/* --- Bernoulli(exp(-gamma)) ---------------------------------------------------------- */

/* Bernoulli(exp(-1)). CKS Algorithm 1 with gamma = 1 returns [K odd] for K the first
 * k >= 1 with Bernoulli(1/k) = 0, so P(K > k) = 1/k!. The same law of K comes from one
 * uniform U: K = min {k : U >= 1/k!}. With u the first 32 bits of U and
 * T_k = floor(2^32/k!): U < 1/k! is certain if u < T_k ((u+1) k! <= 2^32), impossible if
 * u > T_k, and for u = T_k it is U' < (2^32 mod k!)/k! in the remaining bits (k >= 3;
 * for k = 2 the remainder is 0). The T_k decrease strictly, so c = #{k in 2..12 :
 * u < T_k} gives K = c + 2, or one more after the undecided case; K > 12 (probability
 * 1/12!) continues with fresh Bernoulli(1/k), k = 13, 14, ..., conditioned on
 * K < TAIL_CAP like bern_exp_unit. */
static int bern_exp1_given(rng_t *r, uint32_t u)
{
    for (;;) {
        unsigned c = 0;
        for (unsigned k = 2; k <= FACT_MAX; k++)
            c += u < r->fact_thr[k];
        unsigned k = c + 2;
        if (k <= FACT_MAX && u == r->fact_thr[k] &&
            bern_frac64(r, r->fact_rem[k], r->fact[k]))
            k++; /* and u > T_{k+1}: stops there */
        if (k <= FACT_MAX)
            return (int)(k & 1);
        while (k < TAIL_CAP && bern_frac64(r, 1, k))
            k++;
        if (k < TAIL_CAP || r->failed)
            return (int)(k & 1);
        u = rng_u32(r); /* K reached the cap: restart */
    }
}

/* The common case of bern_exp1 without a data-dependent branch: only K > 8
 * (probability 1/8!) or u = T_k leave for the full version, from the same u. */
static inline unsigned bern_exp1(rng_t *r)
{
    const uint32_t u = rng_u32(r);
    unsigned c = 0;
    for (unsigned k = 2; k <= 8; k++)
        c += u < r->fact_thr[k];
    const unsigned k = c + 2;
    if (RARE(k > 8 || u == r->fact_thr[k]))
        return (unsigned)bern_exp1_given(r, u);
    return k & 1;
}

/* Bernoulli(exp(-num/den)) for 0 <= num <= den, den * TAIL_CAP < 2^128 (CKS
 * Algorithm 1): K = first k >= 1 with Bernoulli(gamma / k) = 0; return [K odd]. K is
 * capped at 2^6, where gamma^64/64! < 2^-290: the cap is reached only after that
 * many successes, and then the call restarts (the law conditioned on the cap). */
static int bern_exp_unit(rng_t *r, w128 num, w128 den)
{
    if (w_is_zero(num))
        return 1;
    if (!w_lt(num, den))
        return bern_exp1(r);
    if (den.hi == 0 && den.lo < ((uint64_t)1 << 57)) { /* den * k < 2^63 */
        for (;;) {
            uint64_t k = 1;
            while (k < TAIL_CAP && bern_frac64(r, num.lo, den.lo * k))
                k++;
            if (k < TAIL_CAP || r->failed)
                return (int)(k & 1);
        }
    }
    for (;;) {
        uint64_t k = 1;
        while (k < TAIL_CAP && bern_frac(r, num, w_mulw(den, k)))
            k++;
        if (k < TAIL_CAP || r->failed)
            return (int)(k & 1);
    }
}

/* Bernoulli(exp(-num/den)) for any num >= 0, 1 <= den < 2^120: Bernoulli(exp(-1))
 * while the exponent is >= 1 (stopping at the first 0), then exp(-rest). The loop
 * runs 1/(1 - 1/e) < 1.6 times on average, whatever num/den is. */
static int bern_exp(rng_t *r, w128 num, w128 den)
{
    while (!w_lt(num, den)) {
        if (!bern_exp1(r) || r->failed)
            return 0;
        num = w_sub(num, den);
    }
    return bern_exp_unit(r, num, den);
}

/* --- discrete Laplace and Gaussian ---------------------------------------------------- */

/* bern_exp_unit for gamma = num/den < 1, den < 2^57, with the first two steps of the
 * chain drawn unconditionally (words past the first failure are drawn and ignored, which
 * leaves the law of K alone) so that the common case has no data-dependent branch; K > 2
 * (probability gamma^2/2) continues the chain, and reaching the cap restarts it. */
static inline unsigned bexp_unit64_step(rng_t *r, uint64_t num, uint64_t den)
{
    const unsigned s1 = bern64_step(r, num, den);
    const unsigned s2 = bern64_step(r, num, 2 * den);
    const unsigned more = s1 & s2;
    uint64_t k = 1 + s1 + more;
    if (RARE(more)) {
        while (k < TAIL_CAP && bern_frac64(r, num, den * k))
            k++;
        if (k == TAIL_CAP && !r->failed)
            return (unsigned)bern_exp_unit(r, w_from(num), w_from(den));
    }
    return (unsigned)(k & 1);
}

/* The same with 32-bit steps, for num < den < 2^30 (so 2 den < 2^32). */
static inline unsigned bexp_unit32_step(rng_t *r, uint32_t num, uint32_t den)
{
    const unsigned s1 = bern32_step(r, num, den);
    const unsigned s2 = bern32_step(r, num, 2 * den);
    const unsigned more = s1 & s2;
    uint64_t k = 1 + s1 + more;
    if (RARE(more)) {
        while (k < TAIL_CAP && bern_frac64(r, num, (uint64_t)den * k))
            k++;
        if (k == TAIL_CAP && !r->failed)
            return (unsigned)bern_exp_unit(r, w_from(num), w_from(den));
    }
    return (unsigned)(k & 1);
}

/* The same for den >= 2^57, den < 2^120 (128-bit steps). */
static inline unsigned bexp_unit128_step(rng_t *r, w128 num, w128 den)
{
    const unsigned s1 = bern128_step(r, num, den);
    const unsigned s2 = bern128_step(r, num, w_mulw(den, 2));
    const unsigned more = s1 & s2;
    uint64_t k = 1 + s1 + more;
    if (RARE(more)) {
        while (k < TAIL_CAP && bern_frac(r, num, w_mulw(den, k)))
            k++;
        if (k == TAIL_CAP && !r->failed)
            return (unsigned)bern_exp_unit(r, num, den);
    }
    return (unsigned)(k & 1);
}

/* V with P(V >= v) = exp(-v), counted up to TAIL_CAP (returned for the capped case):
 * two Bernoulli(exp(-1)) drawn unconditionally, more only after two successes. */
static inline uint64_t geometric_e1(rng_t *r)
{
    const unsigned b1 = bern_exp1(r), b2 = bern_exp1(r);
    const unsigned more = b1 & b2;
    uint64_t v = b1 + more;
    if (RARE(more))
        while (v < TAIL_CAP && bern_exp1(r) && !r->failed)
            v++;
    return v;
}

/* Discrete Laplace with integer scale t <= 2^32 (CKS Algorithm 2, s = 1), conditioned on
 * |x| < TAIL_CAP * t: U uniform in [0, t) accepted with exp(-U/t), V with
 * P(V >= v) = exp(-v) counted up to the cap, x = +-(U + t V), (-, 0) rejected.
 * Batched: first up to n accepted U, then one V and sign for each; the i-th accepted
 * U pairs with the i-th V, all independent, so the kept x are i.i.d. as in the
 * one-at-a-time loop. Rejections are counted, not branched on. Writes up to n values
 * (n <= DG_BATCH) to y and returns how many. */
static size_t dlaplace_batch(rng_t *r, uint64_t t, int64_t *y, size_t n)
{
    uint64_t us[DG_BATCH];
    size_t nu = 0;
    if (t < ((uint64_t)1 << 30)) {
        while (nu < n && !r->failed) {
            const uint32_t u = t == 1 ? 0 : rng_below32(r, (uint32_t)t);
            us[nu] = u;
            nu += u == 0 || bexp_unit32_step(r, u, (uint32_t)t); /* exp(-0) = 1 */
        }
    } else {
        while (nu < n && !r->failed) {
            const uint64_t u = rng_below(r, t);
            us[nu] = u;
            nu += bexp_unit64_step(r, u, t); /* t <= 2^32 < 2^57 */
        }
    }
    size_t ny = 0;
    for (size_t i = 0; i < nu; i++) {
        const uint64_t v = geometric_e1(r);
        const uint64_t neg = rng_bit(r);
        const uint64_t x = us[i] + t * v; /* <= 2^32 * 65 */
        y[ny] = (int64_t)((x ^ ((uint64_t)0 - neg)) + neg); /* two's complement -x if neg */
        ny += (v < TAIL_CAP) & !(neg & (x == 0));
    }
    return ny;
}

/* The discrete Laplace scale t of the discrete Gaussian sampler with s2 = num/den
 * (num/den <= 2^40, den <= 2^16): t = max(1, floor(sigma + 7/10)), the largest t >= 1
 * with (10 t - 7)^2 den <= 100 num. CKS's acceptance test is exact for every t >= 1
 * (the accepted law is proportional to exp(-|y|/t) exp(-(|y| - s2/t)^2 / (2 s2)) =
 * exp(-y^2/(2 s2) - s2/(2 t^2))); t only sets the speed. CKS take floor(sigma) + 1;
 * this t accepts more often for small sigma (at s2 = 1: 70% of candidates, not 54%)
 * and never exceeds floor(sigma) + 1 <= 2^20 + 1, which the bounds below rely on. */
static uint64_t dg_scale(uint64_t num, uint64_t den)
{
    uint64_t lo = 1, hi = ((uint64_t)1 << 20) + 1;
    while (lo < hi) {
        const uint64_t mid = lo + (hi - lo + 1) / 2, d = 10 * mid - 7;
        if (d * d * den <= 100 * num) /* < 2^62.7 and <= 2^63: no overflow */
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* The discrete Gaussian's acceptance test for a candidate y (CKS Algorithm 3, variance
 * parameter s2 = a/b, scale t from dg_scale): Bernoulli(exp(-(|y| - s2/t)^2 / (2 s2))) =
 * Bernoulli(exp(-(|y| t b - a)^2 / (2 a b t^2))). With g = gcd(t b, a), both sides of
 * the fraction are divisible by g^2 (g^2 divides a * t b, which divides a b t^2), so the
 * test uses the same value as (|y| tb' - a')^2 / (2 a' tb' t), tb' = t b / g, a' = a / g
 * (dg_t, set up once per call), which often fits the 64-bit path.
 * Bounds: b <= 2^16, a <= 2^56, t <= 2^20 + 1, |y| < 64 t, so |y| t b < 2^62.1,
 * (|y| tb' - a')^2 < 2^125 and 2 a' tb' t < 2^116. Exponents >= 1 go to bern_exp. */
typedef struct {
    uint64_t t, tb, a; /* t, t b / g, a / g */
    w128 den;          /* 2 a' tb' t */
} dg_t;

static uint64_t gcd64(uint64_t x, uint64_t y)
{
    while (y != 0) {
        const uint64_t z = x % y;
        x = y;
        y = z;
    }
    return x;
}

static void dg_setup(dg_t *d, uint64_t a, uint64_t b)
{
    d->t = dg_scale(a, b);
    const uint64_t g = gcd64(d->t * b, a); /* t b <= 2^37 */
    d->tb = d->t * b / g;
    d->a = a / g;
    d->den = w_mulw(w_mul(2 * d->a, d->tb), d->t); /* 2^57 * 2^37 * 2^21 at most */
}

static inline unsigned dgauss_accept(rng_t *r, const dg_t *d, int64_t y)
{
    const uint64_t ay = y < 0 ? (uint64_t)0 - (uint64_t)y : (uint64_t)y;
    const uint64_t lhs = ay * d->tb; /* < 2^62.1: no overflow */
    const uint64_t diff = lhs >= d->a ? lhs - d->a : d->a - lhs;
    const w128 num = w_mul(diff, diff);
    if (RARE(!w_lt(num, d->den)))
        return (unsigned)bern_exp(r, num, d->den);
    if (d->den.hi == 0 && d->den.lo < ((uint64_t)1 << 57))
        return bexp_unit64_step(r, num.lo, d->den.lo);
    return bexp_unit128_step(r, num, d->den);
}

/* --- Poisson ------------------------------------------------------------------------- */

/* One Poisson(g) piece, g = a/c <= 1/2 (c = den * pieces): K' = number of successes
 * of Bernoulli(g/1), Bernoulli(g/2), ... before the first failure has
 * P(K' = k) = g^k/k! (1 - g/(k+1)); accepting with (1 - g)/(1 - g/(k+1)) =
 * (c - a)(k+1) / ((k+1) c - a) leaves P(k) proportional to g^k/k!, i.e. Poisson(g).
 * Conditioned on K' < 64 (see noise.h). Here c <= 2^32 * 32, so (k+1) c < 2^44. */
static uint64_t poisson_piece(rng_t *r, uint64_t a, uint64_t c)
{
    const int small = c < ((uint64_t)1 << 26); /* (k+1) c < 2^32: 32-bit steps */
    while (!r->failed) {
        uint64_t k = 0;
        if (small)
            while (k < TAIL_CAP && bern32_step(r, (uint32_t)a, (uint32_t)(c * (k + 1))))
                k++;
        else
            while (k < TAIL_CAP && bern_frac64(r, a, c * (k + 1)))
                k++;
        if (k == TAIL_CAP)
            continue;
        if (bern_frac64(r, (c - a) * (k + 1), c * (k + 1) - a))
            return k;
    }
    return 0;
}

/* Per-call constants of the Poisson(mu) rejection sampler, mu = a/b >= POISSON_REJECT_MIN
 * (derivation in noise.h): mode m = floor(mu), proposal ratio rho = (n-1)/n with
 * n = 2^s, J = max {j : b j (n-1) <= a n}, I = min {j >= 1 : j n b >= a (n-1)}. */
typedef struct {
    uint64_t a, b, m, n, I, J;
    uint64_t jmax64; /* j <= jmax64: every factor's num and den is below 2^63 (0: none) */
    unsigned s;
} poisson_t;

static void poisson_setup(poisson_t *p, uint64_t a, uint64_t b)
{
    p->a = a;
    p->b = b;
    p->m = a / b;
    /* n = 2^s near sqrt(2 mu), where the acceptance rate ~ sqrt(pi/2) c exp(-c^2),
     * c = sqrt(mu)/n, peaks (at c = 1/sqrt 2: 0.54); any n >= 2 is exact. */
    p->s = 1;
    while (((uint64_t)1 << (2 * p->s + 2)) <= 3 * p->m)
        p->s++;
    p->n = (uint64_t)1 << p->s; /* m <= 2^24: s <= 13 */
    /* J >= m since mu n/(n-1) >= mu; J - m <= mu/(n-1) + 1, a short walk. */
    const w128 an = w_mul(a, p->n), an1 = w_mul(a, p->n - 1);
    uint64_t j = p->m;
    while (!w_lt(an, w_mul(b * (j + 1), p->n - 1))) /* b (j+1) < 2^58 */
        j++;
    p->J = j;
    /* I <= m + 1 since mu (n-1)/n <= ceil(mu); m - I < mu/n + 1. */
    j = p->m + 1;
    while (j > 1 && !w_lt(w_mul(b * (j - 1), p->n), an1))
        j--;
    p->I = j;
    /* a n < 2^63 and b j n < 2^63 make every num and den of poisson_factor fit 63 bits. */
    const w128 limit = w_from((uint64_t)1 << 63);
    p->jmax64 = w_lt(an, limit) ? (((uint64_t)1 << 63) - 1) / (b * p->n) : 0;
}

/* Geometric: P(D = d) = (1 - 2^-s)^d 2^-s, d >= 0, 1 <= s <= 32: the number of s-bit
 * groups of the keystream before the first all-zero group (64 mod s bits of each word
 * are skipped, whatever their value). Counting may stop once past `limit` (a value
 * > limit is returned then: callers only need to know D > limit). Ends on a zero word. */
static inline unsigned ctz64(uint64_t x) /* x != 0 */
{
#if defined(__GNUC__) || defined(__clang__)
    return (unsigned)__builtin_ctzll(x);
#else
    unsigned n = 0;
    while ((x & 1) == 0) {
        x >>= 1;
        n++;
    }
    return n;
#endif
}

static inline unsigned bitlen64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return x == 0 ? 0 : 64 - (unsigned)__builtin_clzll(x);
#else
    unsigned n = 0;
    while (x != 0) {
        x >>= 1;
        n++;
    }
    return n;
#endif
}

static uint64_t geometric_pow2(rng_t *r, unsigned s, uint64_t limit)
{
    /* ones = a 1 at the lowest bit of each whole s-bit group, highs = at the highest.
     * (w - ones) & ~w & highs flags the lowest all-zero group exactly (groups below it
     * are >= 1, so subtracting 1 borrows nothing out of them and leaves their top bit
     * clear unless it was set; the zero group borrows and flags); higher flags may be
     * spurious and are not used. Borrows only move up, so the 64 mod s spare top bits
     * change nothing below. */
    const unsigned per_word = 64 / s;
    const uint64_t ones = r->group_ones[s], highs = ones << (s - 1);
    uint64_t d = 0;
    for (;;) {
        const uint64_t w = rng_u64(r);
        const uint64_t flags = (w - ones) & ~w & highs;
        if (flags != 0)
            return d + ctz64(flags) / s;
        d += per_word;
        if (d > limit)
            return d;
    }
}

/* The four families of acceptance factors (noise.h), each <= 1 on the range where it
 * is used and monotone in j:
 *   0: b j (n-1) / (a n)    (R, j <= J; increasing)
 *   1: a n / (b j (n-1))    (R, j > J; decreasing)
 *   2: a (n-1) / (j n b)    (L, j >= I; decreasing)
 *   3: j n b / (a (n-1))    (L, j < I; increasing).
 * Sizes: a <= 2^56, b <= 2^32, n <= 2^13 and j < 2^43 (the geometric proposal cannot
 * pass 2^42 within one seed's keystream), so every num and den is below 2^88. */
static inline void poisson_factor(const poisson_t *p, unsigned kind, uint64_t j, w128 *num,
                                  w128 *den)
{
    const w128 bj = w_mul(p->b, j);
    switch (kind) {
    case 0: *num = w_mulw(bj, p->n - 1); *den = w_mul(p->a, p->n); break;
    case 1: *num = w_mul(p->a, p->n); *den = w_mulw(bj, p->n - 1); break;
    case 2: *num = w_mul(p->a, p->n - 1); *den = w_mulw(bj, p->n); break;
    default: *num = w_mulw(bj, p->n); *den = w_mul(p->a, p->n - 1); break;
    }
}

static inline w128 w_shl(w128 x, unsigned e) /* e < 64; callers keep x 2^e < 2^128 */
{
    return e == 0 ? x : w_make((x.hi << e) | (x.lo >> (64 - e)), x.lo << e);
}

static inline unsigned w_bitlen(w128 x) { return x.hi ? 64 + bitlen64(x.hi) : bitlen64(x.lo); }

/* The largest e <= 32 with (den - num) 2^e <= den (num <= den): the factor num/den
 * fails with probability at most 2^-e. With e0 = bitlen(den) - bitlen(eps), eps 2^e0
 * has den's bit length, so e is e0 or e0 - 1. den < 2^88: the shift stays below 2^128. */
static unsigned skip_exponent(w128 num, w128 den)
{
    const w128 eps = w_sub(den, num);
    if (w_is_zero(eps))
        return 32;
    unsigned e = w_bitlen(den) - w_bitlen(eps);
    if (e > 32)
        return 32;
    if (w_lt(den, w_shl(eps, e)))
        e--; /* e >= 1 here: eps <= den */
    return e;
}

/* Bernoulli(prod_{j=lo..hi} f_j) for factors f_j = num_j/den_j of one family: every
 * factor fails independently with probability eps_j = 1 - f_j <= 2^-e (e from the two
 * ends of the range, as eps_j is monotone in j). Failing is split into a candidate,
 * probability 2^-e, confirmed with probability eps_j 2^e = (den_j - num_j) 2^e / den_j
 * (<= 1): the product is 1 exactly when no candidate is confirmed. Candidates are
 * i.i.d. Bernoulli(2^-e) over j, so the gap to the next one is geometric_pow2:
 * about e/64 words per factor instead of one, and one exact Bernoulli per candidate. */
static int bern_product(rng_t *r, const poisson_t *p, unsigned kind, uint64_t lo, uint64_t hi)
{
    w128 num, den;
    if (hi < lo + 24 && hi <= p->jmax64) { /* short ranges (and empty ones), 64 bits */
        const uint64_t an = p->a * p->n, an1 = p->a * (p->n - 1);
        const uint64_t bn = p->b * p->n, bn1 = p->b * (p->n - 1);
        for (uint64_t j = lo; j <= hi && !r->failed; j++) {
            const unsigned ok = kind == 0   ? bern64_step(r, bn1 * j, an)
                                : kind == 1 ? bern64_step(r, an, bn1 * j)
                                : kind == 2 ? bern64_step(r, an1, bn * j)
                                            : bern64_step(r, bn * j, an1);
            if (!ok)
                return 0;
        }
        return 1;
    }
    if (hi < lo + 24) { /* the same with 128-bit factors */
        for (uint64_t j = lo; j <= hi && !r->failed; j++) {
            poisson_factor(p, kind, j, &num, &den);
            if (!bern_frac(r, num, den))
                return 0;
        }
        return 1;
    }
    poisson_factor(p, kind, lo, &num, &den);
    unsigned e = skip_exponent(num, den);
    poisson_factor(p, kind, hi, &num, &den);
    const unsigned e_hi = skip_exponent(num, den);
    e = e_hi < e ? e_hi : e;
    for (uint64_t j = lo;; j++) {
        if (e > 0) {
            const uint64_t gap = geometric_pow2(r, e, hi - j);
            if (gap > hi - j)
                return 1;
            j += gap;
        }
        poisson_factor(p, kind, j, &num, &den);
        if (bern_frac(r, w_shl(w_sub(den, num), e), den))
            return 0;
        if (j == hi || r->failed)
            return 1;
    }
}

/* Bernoulli(R(k)) for k >= m: R(k) = prod_{j=k+1..J} b j (n-1) / (a n) if k <= J, else
 * prod_{j=J+1..k} a n / (b j (n-1)). */
static int poisson_right(rng_t *r, const poisson_t *p, uint64_t k)
{
    return k <= p->J ? bern_product(r, p, 0, k + 1, p->J) : bern_product(r, p, 1, p->J + 1, k);
}

/* Bernoulli(L(k)) for 0 <= k <= m: L(k) = prod_{j=I..k} a (n-1) / (j n b) if k >= I - 1,
 * else prod_{j=k+1..I-1} j n b / (a (n-1)). */
static int poisson_left(rng_t *r, const poisson_t *p, uint64_t k)
{
    return k + 1 >= p->I ? bern_product(r, p, 2, p->I, k) : bern_product(r, p, 3, k + 1, p->I - 1);
}

/* Poisson(mu), mu = a/b >= POISSON_REJECT_MIN: k = m +- D from the two-sided geometric
 * proposal with ratio rho, accepted with R(max(k, m)) L(min(k, m)) (noise.h). */
static int64_t poisson_reject(rng_t *r, const poisson_t *p)
{
    while (!r->failed) {
        const unsigned neg = rng_bit(r);
        const uint64_t d = geometric_pow2(r, p->s, UINT64_MAX - 1);
        if (neg && (d == 0 || d > p->m))
            continue; /* 0 counted once; below 0 the target is 0 */
        const uint64_t k = neg ? p->m - d : p->m + d;
        if (neg ? poisson_left(r, p, k) && poisson_right(r, p, p->m)
                : poisson_right(r, p, k) && poisson_left(r, p, p->m))
            return (int64_t)k;
    }
    return 0;
}

/* Poisson(a/b) for a/b < POISSON_REJECT_MIN: the sum of L = ceil(2 a / b) independent
 * Poisson(a / (b L)) pieces (L <= 32). */
static int64_t poisson_small(rng_t *r, uint64_t a, uint64_t b)
{
    if (a == 0)
        return 0;
    const uint64_t pieces = (2 * a + b - 1) / b; /* a < 16 b <= 2^36: no overflow */
    const uint64_t c = b * pieces;
    int64_t total = 0;
    for (uint64_t i = 0; i < pieces && !r->failed; i++)
        total += (int64_t)poisson_piece(r, a, c);
    return total;
}

static int64_t poisson(rng_t *r, const poisson_t *p)
{
    return p->m >= POISSON_REJECT_MIN ? poisson_reject(r, p) : poisson_small(r, p->a, p->b);
}

/* --- the API ------------------------------------------------------------------------- */

/* The call's status; the unread keystream (which would tell the noise) is wiped. */
static int rng_finish(rng_t *r)
{
    const int rc = r->failed ? -1 : 0;
    secagg_memzero(r, sizeof *r);
    return rc;
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
        out[i] = (uint8_t)bern_exp(&r, w_from(num), w_from(den));
    return rng_finish(&r);
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
    for (size_t i = 0; i < m && !r.failed;) {
        const size_t want = m - i < DG_BATCH ? m - i : DG_BATCH;
        i += dlaplace_batch(&r, t, out + i, want);
    }
    return rng_finish(&r);
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
    dg_t d;
    dg_setup(&d, num, den);
    rng_t r;
    rng_init(&r, seed);
    /* Batches of discrete Laplace candidates, each kept if accepted, in order, until m
     * are kept (accepted candidates past the m-th are dropped, by position). */
    size_t i = 0;
    while (i < m && !r.failed) {
        int64_t y[DG_BATCH];
        const size_t ny = dlaplace_batch(&r, d.t, y, DG_BATCH);
        for (size_t j = 0; j < ny && i < m; j++) {
            out[i] = y[j];
            i += dgauss_accept(&r, &d, y[j]);
        }
    }
    return rng_finish(&r);
}

static int check_poisson(uint64_t num, uint64_t den)
{
    if (den == 0 || den > SK_MAX_DEN || num / den > SK_MAX_MU ||
        (num / den == SK_MAX_MU && num % den != 0))
        return -1;
    return 0;
}

/* Poisson(mu) values, or with `difference` Skellam(mu, mu) ones (the difference of two
 * Poisson draws, taken in that order): the one body behind both public calls. */
static int poisson_fill(int64_t *out, size_t m, uint64_t num, uint64_t den,
                        const uint8_t *seed, int difference)
{
    if (check_poisson(num, den) != 0)
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || seed == NULL)
        return -1;
    poisson_t p;
    poisson_setup(&p, num, den);
    rng_t r;
    rng_init(&r, seed);
    for (size_t i = 0; i < m; i++) {
        const int64_t x = poisson(&r, &p);
        out[i] = difference ? x - poisson(&r, &p) : x;
    }
    return rng_finish(&r);
}

int secagg_noise_poisson(int64_t *out, size_t m, uint64_t num, uint64_t den,
                         const uint8_t *seed)
{
    return poisson_fill(out, m, num, den, seed, 0);
}

int secagg_noise_skellam(int64_t *out, size_t m, uint64_t num, uint64_t den,
                         const uint8_t *seed)
{
    return poisson_fill(out, m, num, den, seed, 1);
}
