/* Fused mask accumulation: acc += sign_k * mask(key_k) mod 2^bits, for every key k.
 *
 * The mask of a key is fixed (every client and the server derive the same one):
 * take the ChaCha20 keystream (RFC 8439) with that key, the all-zero 12-byte
 * nonce and block counter 0; element i of the mask is the i-th little-endian
 * 32-bit word of the stream (uint32 storage, 1 <= bits <= 32) or the i-th
 * little-endian 64-bit word (uint64 storage, 33 <= bits <= 64), reduced mod 2^bits.
 *
 * acc holds elements offset .. offset+m-1 of the full vector, so callers can
 * split a vector into slices (any offset works; block-aligned ones, multiples of
 * 16 for u32 and 8 for u64, are fastest). keys is nkeys*32 bytes, signs nkeys
 * values each +1 (add) or -1 (subtract). acc's values must be reduced (< 2^bits);
 * results are reduced. The work runs over cache-sized tiles of acc, each key's
 * keystream added straight from registers: no per-key vector is made.
 * impl is SECAGG_IMPL_BEST or an available SECAGG_IMPL_* id.
 *
 * Returns 0, or -1 (acc unchanged) on: bits out of range for the storage, NULL
 * pointers, a sign other than +1/-1, an unavailable impl, or an element past
 * the 2^32 blocks of one ChaCha20 stream. */
/* Blocks in one mask stream (2^32: the 32-bit block counter), for either cipher. */
uint64_t secagg_mask_max_blocks(void);
int secagg_mask_accumulate_u32(uint32_t *acc, size_t m, size_t offset, unsigned bits,
                               const uint8_t *keys, const int8_t *signs, size_t nkeys, int impl);
int secagg_mask_accumulate_u64(uint64_t *acc, size_t m, size_t offset, unsigned bits,
                               const uint8_t *keys, const int8_t *signs, size_t nkeys, int impl);

/* The same with the mask drawn from cipher `cipher` (SECAGG_CIPHER_*), with
 * impl an id of that cipher's implementations. For SECAGG_CIPHER_AES256CTR
 * the keystream is AES-256-CTR (cdef/aes256ctr.h) with the key, the all-zero
 * nonce and counter 0, read as above; 16-byte blocks, so one stream holds
 * 2^34 uint32 or 2^33 uint64 elements. Also -1 for an unknown cipher. */
int secagg_mask_accumulate_cipher_u32(uint32_t *acc, size_t m, size_t offset, unsigned bits,
                                      const uint8_t *keys, const int8_t *signs, size_t nkeys,
                                      int cipher, int impl);
int secagg_mask_accumulate_cipher_u64(uint64_t *acc, size_t m, size_t offset, unsigned bits,
                                      const uint8_t *keys, const int8_t *signs, size_t nkeys,
                                      int cipher, int impl);
