/* Exact integer noise for distributed differential privacy.
 *
 * Every sampler is exact in integer arithmetic: no floating point anywhere, so
 * the output distribution is the stated one (the attacks of Mironov, CCS 2012,
 * and Jin et al., S&P 2022, on floating-point noise do not apply). Randomness is
 * the ChaCha20 keystream (RFC 8439) keyed by the 32-byte `seed`, all-zero nonce,
 * block counter from 0, read as little-endian 64-bit words, bits from the least
 * significant end; callers key it from the OS CSPRNG.
 *
 * Building blocks (Canonne, Kamath, Steinke, NeurIPS 2020, "CKS"):
 *  - Bernoulli(p), p = num/den rational: compare a lazily drawn uniform with the
 *    binary expansion of p bit by bit (2 random bits expected);
 *  - Bernoulli(exp(-g)), g = num/den >= 0: CKS Algorithm 1 (von Neumann's series
 *    trick, with floor(g) independent Bernoulli(exp(-1)) first);
 *  - discrete Laplace with integer scale t: CKS Algorithm 2;
 *  - discrete Gaussian N_Z(0, s2): CKS Algorithm 3 with t = floor(sqrt(s2)) + 1.
 *
 * Truncation (stated, not hidden): the discrete Gaussian sampler returns the
 * distribution conditioned on |Y| < 64 t (t > sigma), whose dropped mass is below
 * exp(-2000); the Poisson pieces of the Skellam sampler are conditioned on fewer
 * than 64 events per piece of rate <= 1/2 (dropped mass < 2^-350 per piece). These
 * bounds keep all integer arithmetic within 128 bits. The total-variation distance
 * to the untruncated law, summed over any realistic number of draws, stays below
 * 2^-300, which adds at most that to a DP delta.
 *
 * All functions return 0, or -1 on bad arguments (NULL with m > 0, parameters out
 * of range) or if the keystream of one seed (2^32 blocks) would run out. */

/* Bounds on the parameters (checked in C and by the Python wrappers). */
uint64_t secagg_noise_dgauss_max_den(void);      /* 2^16 */
uint64_t secagg_noise_dgauss_max_variance(void); /* 2^40: sigma <= 2^20 */
uint64_t secagg_noise_skellam_max_den(void);     /* 2^32 */
uint64_t secagg_noise_skellam_max_mu(void);      /* 2^24 */
size_t secagg_noise_seedbytes(void);             /* 32 */

/* out[i] ~ Bernoulli(exp(-num/den)), i < m; den >= 1, num <= 2^62, den <= 2^62. */
int secagg_noise_bernoulli_exp(uint8_t *out, size_t m, uint64_t num, uint64_t den,
                               const uint8_t *seed);

/* out[i] ~ discrete Laplace, P(x) proportional to exp(-|x|/t); 1 <= t <= 2^32. */
int secagg_noise_dlaplace(int64_t *out, size_t m, uint64_t t, const uint8_t *seed);

/* out[i] ~ discrete Gaussian on Z with P(x) proportional to exp(-x^2 / (2 s2)),
 * s2 = num/den: 1 <= den <= 2^16, num >= 1, num/den <= 2^40. */
int secagg_noise_dgauss(int64_t *out, size_t m, uint64_t num, uint64_t den,
                        const uint8_t *seed);

/* out[i] ~ Poisson(mu), mu = num/den: 1 <= den <= 2^32, 0 <= num/den <= 2^24.
 * Sum of ceil(2 mu) Poisson(mu / ceil(2 mu)) pieces, each drawn exactly: O(mu) work. */
int secagg_noise_poisson(int64_t *out, size_t m, uint64_t num, uint64_t den,
                         const uint8_t *seed);

/* out[i] ~ Skellam(mu, mu) = Poisson(mu) - Poisson(mu) (variance 2 mu), same bounds. */
int secagg_noise_skellam(int64_t *out, size_t m, uint64_t num, uint64_t den,
                         const uint8_t *seed);
