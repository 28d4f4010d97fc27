/* Shamir t-of-n secret sharing over GF(p), p = 2^61 - 1 (a Mersenne prime).
 * A secret is a vector of `chunks` field elements, each shared with its own
 * random polynomial of degree t-1; a share is the vector of its evaluations.
 * Arrays are row-major uint64_t, every element must be < p (checked: -1).
 * An output array must not overlap any input array (checked: -1, nothing written).
 * chunks <= secagg_shamir_max_chunks() (16) in split. */
uint64_t secagg_shamir_prime(void);
size_t secagg_shamir_max_chunks(void);

/* shares[i*chunks + c] = secret[c] + sum_{j=1}^{t-1} coeffs[(j-1)*chunks + c] * xs[i]^j.
 * coeffs has (t-1)*chunks elements (NULL allowed when t == 1). xs must be nonzero,
 * < p (distinctness is the caller's business). */
int secagg_shamir_split(uint64_t *shares, const uint64_t *secret, const uint64_t *coeffs,
                        const uint64_t *xs, size_t n, size_t t, size_t chunks);

/* lagrange[i] = prod_{j != i} xs[j] / (xs[j] - xs[i]): the coefficients that
 * interpolate at 0 from the points xs[0..t-1]. -1 on a zero, >= p or repeated x. */
int secagg_shamir_lagrange(uint64_t *lagrange, const uint64_t *xs, size_t t);

/* secret[c] = sum_i lagrange[i] * shares[i*chunks + c]. */
int secagg_shamir_combine(uint64_t *secret, const uint64_t *shares, const uint64_t *lagrange,
                          size_t t, size_t chunks);
