/* Exact integer noise for distributed differential privacy.
 *
 * Every sampler is exact in integer arithmetic: no floating point anywhere, so
 * the output distribution is the stated one (the attacks of Mironov, CCS 2012,
 * and Jin et al., S&P 2022, on floating-point noise do not apply). Randomness is
 * the ChaCha20 keystream (RFC 8439) keyed by the 32-byte `seed`, all-zero nonce,
 * block counter from 0, read as little-endian 32-bit words (two of them, low first,
 * make a 64-bit word); callers key it from the OS CSPRNG. Which words decide what
 * is fixed by the code, not part of the contract: the law is.
 *
 * Building blocks (Canonne, Kamath, Steinke, NeurIPS 2020, "CKS"):
 *  - Bernoulli(p), p = num/den rational: U < p for a uniform U read 32 or 64 bits at
 *    a time. With u the next w bits, U < p is certain when (u + 1) den <= num 2^w,
 *    impossible when u den >= num 2^w, and otherwise (probability < den/2^w) decided
 *    by U' < (num 2^w - u den)/den on the following bits: one multiplication per
 *    step, almost always one step;
 *  - Bernoulli(exp(-g)), g = num/den >= 0: CKS Algorithm 1 (von Neumann's series
 *    trick, with floor(g) independent Bernoulli(exp(-1)) first). Bernoulli(exp(-1))
 *    itself is [K odd] with P(K > k) = 1/k!, read off one 32-bit word against the
 *    thresholds floor(2^32/k!), k <= 12 (exact: the one undecided word value per
 *    threshold continues on fresh bits, K > 12 with fresh Bernoulli(1/k));
 *  - discrete Laplace with integer scale t: CKS Algorithm 2;
 *  - discrete Gaussian N_Z(0, s2): CKS Algorithm 3 with discrete Laplace scale
 *    t = max(1, floor(sigma + 7/10)). CKS take floor(sigma) + 1; the acceptance test
 *    exp(-(|y| - s2/t)^2 / (2 s2)) is exact for every integer t >= 1 (the accepted
 *    law is proportional to exp(-|y|/t - (|y| - s2/t)^2/(2 s2)) = exp(-y^2/(2 s2)) times
 *    a constant), and this t accepts more candidates for small sigma.
 * Candidates are drawn in batches and rejections are counted rather than branched
 * on; each kept value still comes from its own independent randomness, in order, so
 * the outputs are i.i.d. with the stated law.
 *
 * Poisson(mu), mu = a/b. For mu < 6: the sum of ceil(2 mu) Poisson(mu/ceil(2 mu))
 * pieces, each exact (Bernoulli(g/k) series, O(mu) work). For mu >= 6: rejection from
 * a two-sided geometric proposal, with only rational Bernoulli trials (no exp), and
 * O(sqrt mu) expected work. Derivation: m = floor(mu) is a mode and the ratios to it
 * are products of rationals,
 *     f(k) = p(k)/p(m) = prod_{j=m+1..k} mu/j   (k > m; factors < 1),
 *     f(k) = prod_{j=k+1..m} j/mu               (k < m; factors <= 1).
 * Proposal: q(k) proportional to rho^|k-m| on all of Z, rho = (n-1)/n, n = 2^s near
 * sqrt(2 mu) (drawn as m + D or m - D, D geometric read as s-bit groups until an
 * all-zero one, the sign from one bit, (-, 0) redrawn; k < 0 is rejected, as the
 * target is 0 there). Write phi_j = mu/(j rho) = a n / (b j (n-1)), decreasing in j,
 * and psi_j = j/(mu rho) = j n b / (a (n-1)), increasing in j. Then
 *     f(k)/rho^(k-m) = prod_{j=m+1..k} phi_j   (k >= m),
 *     f(k)/rho^(m-k) = prod_{j=k+1..m} psi_j   (k <= m).
 * With J = max {j : phi_j >= 1} = floor(a n / (b (n-1))) >= m and
 * I = min {j >= 1 : psi_j >= 1} = max(1, ceil(a (n-1) / (n b))) <= m + 1, the first
 * product is largest at k = J, C+ = prod_{j=m+1..J} phi_j >= 1, and the second at
 * k = I - 1, C- = prod_{j=I..m} psi_j >= 1. So with C = C+ C- >= max(C+, C-):
 *     f(k)/(C rho^|k-m|) = R(max(k, m)) L(min(k, m)),
 *     R(k) = prod_{j=k+1..J} 1/phi_j (k <= J),  prod_{j=J+1..k} phi_j (k > J),
 *     L(k) = prod_{j=I..k} 1/psi_j (k >= I-1),  prod_{j=k+1..I-1} psi_j (k < I-1),
 * (R(m) = 1/C+, L(m) = 1/C-) where every factor is a rational <= 1. Accepting k with
 * probability R(max(k, m)) L(min(k, m)), one exact Bernoulli per factor, is rejection
 * sampling with the envelope C rho^|k-m| >= f(k): the output is exactly Poisson(mu).
 * The factors of a product are close to 1 and monotone in j, so a range of 24 or more
 * is thinned: with 2^-e >= the largest failure probability 1 - f_j in it (read off
 * the two ends), each j is a candidate with probability 2^-e (the gaps between
 * candidates are geometric, found e bits per j in whole words) and a candidate fails
 * with probability (1 - f_j) 2^e, an exact Bernoulli; every factor thus fails
 * independently with probability exactly 1 - f_j, at about e/64 words per factor.
 * Each factor's numerator and denominator is a product of at most three of a, b, n,
 * j, n-1, below 2^128. C+ and C- are each about exp(c^2/2), c = sqrt(mu)/n in
 * [0.57, 1.16) (n^2 in (3m/4, 3m]), so about sqrt(pi/2) c exp(-c^2) of the proposals
 * are accepted (0.38 to 0.54), and each takes O(sqrt mu) factors and about n s/64
 * words of geometric: O(sqrt mu) per value.
 *
 * Truncation (stated, not hidden): the discrete Gaussian sampler returns the
 * distribution conditioned on |Y| < 64 t (t >= 0.7 sigma for sigma >= 1, t = 1 >=
 * sigma below), whose dropped mass is below exp(-1000); every Bernoulli(exp(-g)),
 * g <= 1, is conditioned on K < 64 (dropped mass < 2^-290 per draw), and the Poisson
 * pieces of mu < 6 on fewer than 64 events per piece of rate <= 1/2 (dropped mass
 * < 2^-350 per piece). These bounds keep all integer arithmetic within 128 bits. The
 * total-variation distance to the untruncated law, summed over any realistic number
 * of draws, stays below 2^-250, which adds at most that to a DP delta. The Poisson
 * rejection sampler (mu >= 6) truncates nothing.
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
 * O(mu) work per value for mu < 6, O(sqrt mu) from there (see above). */
int secagg_noise_poisson(int64_t *out, size_t m, uint64_t num, uint64_t den,
                         const uint8_t *seed);

/* out[i] ~ Skellam(mu, mu) = Poisson(mu) - Poisson(mu) (variance 2 mu), same bounds. */
int secagg_noise_skellam(int64_t *out, size_t m, uint64_t num, uint64_t den,
                         const uint8_t *seed);
