/* Shamir secret sharing over GF(2^61 - 1): Horner evaluation, Lagrange at 0, combine. */
#include "secagg.h"
#include "secret.h"
#include "wide.h" /* secagg_mul64: with or without unsigned __int128 */

#define SHAMIR_P ((uint64_t)0x1FFFFFFFFFFFFFFFULL) /* 2^61 - 1 */
#define SHAMIR_MAX_CHUNKS 16

uint64_t secagg_shamir_prime(void) { return SHAMIR_P; }
size_t secagg_shamir_max_chunks(void) { return SHAMIR_MAX_CHUNKS; }

/* 1 if the byte ranges [a, a + na*8) and [b, b + nb*8) overlap. Compared as integers:
 * relational operators on pointers into different objects are undefined. */
static int overlaps(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    if (na == 0 || nb == 0)
        return 0;
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 ? b0 - a0 < na * sizeof *a : a0 - b0 < nb * sizeof *b;
}

/* r mod p for r < 2p, branch-free: subtract p, add it back under the borrow's mask.
 * r - p < 2^63 when r >= p, and wraps to >= 2^63 when r < p (p < 2^61). */
static inline uint64_t reduce_once(uint64_t r)
{
    const uint64_t d = r - SHAMIR_P;
    return d + (SHAMIR_P & secagg_mask64(d >> 63));
}

/* a*b mod p for a, b < p: the 122-bit product folds as lo + hi (2^61 = 1 mod p),
 * which is < 2p, so one conditional subtraction reduces it. */
static inline uint64_t mulmod(uint64_t a, uint64_t b)
{
    uint64_t lo;
    const uint64_t hi = secagg_mul64(a, b, &lo); /* < 2^58 */
    return reduce_once((lo & SHAMIR_P) + ((hi << 3) | (lo >> 61)));
}

static inline uint64_t addmod(uint64_t a, uint64_t b)
{
    return reduce_once(a + b); /* < 2^62: no overflow */
}

static inline uint64_t submod(uint64_t a, uint64_t b)
{
    const uint64_t d = a - b; /* wraps to >= 2^63 exactly when a < b */
    return d + (SHAMIR_P & secagg_mask64(d >> 63));
}

static uint64_t powmod(uint64_t a, uint64_t e)
{
    uint64_t r = 1;
    while (e) {
        if (e & 1)
            r = mulmod(r, a);
        a = mulmod(a, a);
        e >>= 1;
    }
    return r;
}

/* 1 if every element is < p. Scans all of v without a branch on it; the answer
 * (a range error or not) is then declassified: the caller branches on it. */
static int all_reduced(const uint64_t *v, size_t len)
{
    uint64_t bad = 0;
    for (size_t i = 0; i < len; i++)
        /* v >= p iff v >= 2^61 or v == p; below 2^61, v ^ p is 0 only for v == p,
         * and x - 1 has its top bit set only for x == 0 (x < 2^63). */
        bad |= (v[i] >> 61) | (((v[i] ^ SHAMIR_P) - 1) >> 63);
    int ok = bad == 0;
    SECAGG_DECLASSIFY(&ok, sizeof ok);
    return ok;
}

int secagg_shamir_split(uint64_t *shares, const uint64_t *secret, const uint64_t *coeffs,
                        const uint64_t *xs, size_t n, size_t t, size_t chunks)
{
    if (shares == NULL || secret == NULL || xs == NULL || t == 0 || chunks == 0 ||
        chunks > SHAMIR_MAX_CHUNKS || (t > 1 && coeffs == NULL))
        return -1;
    if (t - 1 > SIZE_MAX / 8 / chunks)
        return -1;
    if (n > SIZE_MAX / 8 / chunks)
        return -1;
    /* Outputs are written while inputs are still read: they must not share memory. */
    if (overlaps(shares, n * chunks, secret, chunks) || overlaps(shares, n * chunks, xs, n) ||
        (t > 1 && overlaps(shares, n * chunks, coeffs, (t - 1) * chunks)))
        return -1;
    if (!all_reduced(secret, chunks) || !all_reduced(xs, n) ||
        !all_reduced(coeffs, (t - 1) * chunks))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (xs[i] == 0)
            return -1;

    uint64_t acc[SHAMIR_MAX_CHUNKS];
    for (size_t i = 0; i < n; i++) {
        const uint64_t x = xs[i];
        for (size_t c = 0; c < chunks; c++)
            acc[c] = 0;
        /* Horner from the top coefficient down; the chunks are independent
         * chains, which keeps the multiplier busy. */
        for (size_t j = t - 1; j > 0; j--) {
            const uint64_t *row = coeffs + (j - 1) * chunks;
            for (size_t c = 0; c < chunks; c++)
                acc[c] = mulmod(addmod(acc[c], row[c]), x);
        }
        uint64_t *out = shares + i * chunks;
        for (size_t c = 0; c < chunks; c++)
            out[c] = addmod(acc[c], secret[c]);
    }
    secagg_memzero(acc, sizeof acc); /* share - secret: with one share, it gives the secret */
    return 0;
}

int secagg_shamir_lagrange(uint64_t *lagrange, const uint64_t *xs, size_t t)
{
    if (lagrange == NULL || xs == NULL || t == 0 || t > SIZE_MAX / 8 ||
        overlaps(lagrange, t, xs, t) || !all_reduced(xs, t))
        return -1;
    for (size_t i = 0; i < t; i++) {
        const uint64_t xi = xs[i];
        if (xi == 0)
            return -1;
        uint64_t num = 1, den = 1;
        for (size_t j = 0; j < t; j++) {
            if (j == i)
                continue;
            const uint64_t d = submod(xs[j], xi);
            if (d == 0)
                return -1; /* repeated x */
            num = mulmod(num, xs[j]);
            den = mulmod(den, d);
        }
        lagrange[i] = mulmod(num, powmod(den, SHAMIR_P - 2));
    }
    return 0;
}

int secagg_shamir_combine(uint64_t *secret, const uint64_t *shares, const uint64_t *lagrange,
                          size_t t, size_t chunks)
{
    if (secret == NULL || shares == NULL || lagrange == NULL || t == 0 || chunks == 0 ||
        chunks > SIZE_MAX / 8 || t > SIZE_MAX / 8 / chunks)
        return -1;
    if (overlaps(secret, chunks, shares, t * chunks) || overlaps(secret, chunks, lagrange, t))
        return -1;
    if (!all_reduced(shares, t * chunks) || !all_reduced(lagrange, t))
        return -1;
    for (size_t c = 0; c < chunks; c++)
        secret[c] = 0;
    for (size_t i = 0; i < t; i++) {
        const uint64_t l = lagrange[i];
        const uint64_t *row = shares + i * chunks;
        for (size_t c = 0; c < chunks; c++)
            secret[c] = addmod(secret[c], mulmod(l, row[c]));
    }
    return 0;
}
