/* AES-256 in counter mode (NIST SP 800-38A): 256-bit key, 96-bit nonce, 32-bit
 * big-endian block counter. Block j of the keystream is AES-256_key(nonce ||
 * BE32(j)), the counter block layout of GCM and RFC 3686; it equals any CTR
 * implementation given the 16-byte initial counter block nonce || BE32(counter),
 * as long as the 32-bit counter does not wrap (such requests are refused).
 * Runs only on CPUs with AES-NI (there is no portable implementation). */
size_t secagg_aes256ctr_keybytes(void);
size_t secagg_aes256ctr_noncebytes(void);
size_t secagg_aes256ctr_blockbytes(void);

/* Writes len bytes of keystream starting at block `counter`. Returns -1 if a
 * pointer is NULL (with len > 0), the 32-bit block counter would overflow
 * (counter + ceil(len/16) - 1 > 2^32 - 1), or this CPU has no AES-NI. */
int secagg_aes256ctr_keystream(uint8_t *out, size_t len, const uint8_t *key,
                               const uint8_t *nonce, uint32_t counter);

/* The same with implementation `impl` (SECAGG_IMPL_AESNI, ...); also -1 if it
 * is not available on this CPU. For tests and benchmarks. */
int secagg_aes256ctr_keystream_impl(int impl, uint8_t *out, size_t len, const uint8_t *key,
                                    const uint8_t *nonce, uint32_t counter);
