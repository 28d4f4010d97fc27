/* ChaCha20 keystream (RFC 8439: 256-bit key, 96-bit nonce, 32-bit block counter). */
size_t secagg_chacha20_keybytes(void);
size_t secagg_chacha20_noncebytes(void);
size_t secagg_chacha20_blockbytes(void);

/* Writes len bytes of keystream starting at block `counter`. Returns -1 if the
 * 32-bit block counter would overflow. Uses the fastest implementation. */
int secagg_chacha20_keystream(uint8_t *out, size_t len, const uint8_t *key,
                              const uint8_t *nonce, uint32_t counter);
