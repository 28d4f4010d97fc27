/* ChaCha20 keystream (RFC 8439: 256-bit key, 96-bit nonce, 32-bit block counter). */
size_t secagg_chacha20_keybytes(void);
size_t secagg_chacha20_noncebytes(void);
size_t secagg_chacha20_blockbytes(void);

/* Writes len bytes of keystream starting at block `counter`. Returns -1 if a
 * pointer is NULL (with len > 0) or the 32-bit block counter would overflow
 * (counter + ceil(len/64) - 1 > 2^32 - 1). Uses the fastest implementation. */
int secagg_chacha20_keystream(uint8_t *out, size_t len, const uint8_t *key,
                              const uint8_t *nonce, uint32_t counter);

/* The same with implementation `impl` (SECAGG_IMPL_*); also -1 if it is not
 * available on this CPU. For tests and benchmarks. */
int secagg_chacha20_keystream_impl(int impl, uint8_t *out, size_t len, const uint8_t *key,
                                   const uint8_t *nonce, uint32_t counter);
