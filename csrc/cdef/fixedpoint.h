/* Fixed-point encoding: floats <-> integers mod 2^bits (two's complement).
 *
 * Encoding, per element x[i]:
 *   1. refuse NaN and +-inf (return -1, *first_bad = i of the first one);
 *   2. clip to [-clip, clip], counting the elements that were outside;
 *   3. y = x * scale (IEEE double);
 *   4. unbiased stochastic rounding: k = floor(y) + 1 if u_i < (y - floor(y)) * 2^32
 *      else floor(y), where u_i is the i-th little-endian 32-bit word of the
 *      ChaCha20 keystream (RFC 8439) keyed by `seed` with an all-zero nonce and
 *      block counter 0. So P(round up) = ceil(frac * 2^32) / 2^32: the bias is
 *      below 2^-32 of one unit (1/scale). Float32 input is widened to double
 *      first, and both input types use 32 random bits per element;
 *   5. out[i] = k mod 2^bits.
 * Requirements (else -1 with *first_bad = m): 2 <= bits <= 64 for the chosen
 * storage, clip and scale finite and > 0, ceil(clip * scale) <= 2^(bits-1) - 1
 * (so every rounded value is representable as signed), m <= 2^36 (the keystream
 * counter; secagg_fixedpoint_max_length()). Storage: uint32_t for bits <= 32,
 * uint64_t for 33..64.
 *
 * Decoding reads each value as a signed bits-bit integer and divides it by
 * scale. Returns -1 if a value has bits set above `bits`. */
uint64_t secagg_fixedpoint_max_length(void);
int secagg_fixedpoint_encode_f32_u32(uint32_t *out, const float *x, size_t m, double clip,
                                     double scale, unsigned bits, const uint8_t *seed,
                                     size_t *n_clipped, size_t *first_bad);
int secagg_fixedpoint_encode_f32_u64(uint64_t *out, const float *x, size_t m, double clip,
                                     double scale, unsigned bits, const uint8_t *seed,
                                     size_t *n_clipped, size_t *first_bad);
int secagg_fixedpoint_encode_f64_u32(uint32_t *out, const double *x, size_t m, double clip,
                                     double scale, unsigned bits, const uint8_t *seed,
                                     size_t *n_clipped, size_t *first_bad);
int secagg_fixedpoint_encode_f64_u64(uint64_t *out, const double *x, size_t m, double clip,
                                     double scale, unsigned bits, const uint8_t *seed,
                                     size_t *n_clipped, size_t *first_bad);
int secagg_fixedpoint_decode_u32(double *out, const uint32_t *v, size_t m, double scale,
                                 unsigned bits);
int secagg_fixedpoint_decode_u64(double *out, const uint64_t *v, size_t m, double scale,
                                 unsigned bits);
