/* Bit packing of vectors of bits-bit integers (1 <= bits <= 64).
 *
 * Format: one little-endian bit stream. Element i occupies stream bits
 * [i*bits, (i+1)*bits), least significant bit first; stream bit j is bit
 * (j mod 8) of byte j / 8. The stream is exactly secagg_pack_size(m, bits) =
 * ceil(m * bits / 8) bytes; the pad bits of the last byte are zero.
 *
 * encode: returns -1 if a value has bits set above `bits` (out is then garbage).
 * decode: returns -1 if nbytes != secagg_pack_size(m, bits) or a pad bit is set.
 * Storage: uint32_t for bits <= 32, uint64_t for 33..64. m <= secagg_pack_max_length()
 * = 2^56: encode and decode return -1 for a larger m (whatever nbytes says), and
 * secagg_pack_size returns SIZE_MAX, never a valid size, for arguments out of range
 * (also when the size does not fit a size_t, as on 32-bit targets). */
uint64_t secagg_pack_max_length(void);
size_t secagg_pack_size(size_t m, unsigned bits);
int secagg_pack_encode_u32(uint8_t *out, const uint32_t *v, size_t m, unsigned bits);
int secagg_pack_encode_u64(uint8_t *out, const uint64_t *v, size_t m, unsigned bits);
int secagg_pack_decode_u32(uint32_t *out, const uint8_t *in, size_t nbytes, size_t m,
                           unsigned bits);
int secagg_pack_decode_u64(uint64_t *out, const uint8_t *in, size_t nbytes, size_t m,
                           unsigned bits);
