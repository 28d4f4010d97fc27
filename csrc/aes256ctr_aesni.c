/* AES-256-CTR with AES-NI: key expansion, and 8 blocks in flight per step so
 * that the aesenc latency is hidden. */
#include "aes256ctr_impl.h"

#if SECAGG_X86_SIMD
#include <immintrin.h>

#define TARGET __attribute__((target("aes,ssse3,sse4.1")))
#define INLINE static inline __attribute__((always_inline, target("aes,ssse3,sse4.1")))

/* FIPS 197 key expansion for 256-bit keys, after Intel's AES-NI white paper:
 * even round keys mix SubWord(RotWord(w)) ^ rcon, odd ones SubWord(w). */
INLINE __m128i spread(__m128i k)
{
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, _mm_slli_si128(k, 4));
}

#define EVEN(prev2, prev1, rcon) \
    _mm_xor_si128(spread(prev2), _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev1, rcon), 0xff))
#define ODD(prev2, prev1) \
    _mm_xor_si128(spread(prev2), _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev1, 0), 0xaa))

TARGET void secagg_aes256_expand_aesni(secagg_aes256_schedule *ks, const uint8_t key[32])
{
    __m128i k[15];
    k[0] = _mm_loadu_si128((const __m128i *)(const void *)key);
    k[1] = _mm_loadu_si128((const __m128i *)(const void *)(key + 16));
    k[2] = EVEN(k[0], k[1], 0x01);
    k[3] = ODD(k[1], k[2]);
    k[4] = EVEN(k[2], k[3], 0x02);
    k[5] = ODD(k[3], k[4]);
    k[6] = EVEN(k[4], k[5], 0x04);
    k[7] = ODD(k[5], k[6]);
    k[8] = EVEN(k[6], k[7], 0x08);
    k[9] = ODD(k[7], k[8]);
    k[10] = EVEN(k[8], k[9], 0x10);
    k[11] = ODD(k[9], k[10]);
    k[12] = EVEN(k[10], k[11], 0x20);
    k[13] = ODD(k[11], k[12]);
    k[14] = EVEN(k[12], k[13], 0x40);
    for (int i = 0; i < 15; i++)
        _mm_store_si128((__m128i *)(void *)(ks->rk + 16 * i), k[i]);
    secagg_memzero(k, sizeof k); /* in case the compiler spilled the round keys here */
}

INLINE void put(uint8_t *p, __m128i v, int op)
{
    __m128i *q = (__m128i *)(void *)p;
    switch (op) {
    case SECAGG_CHACHA20_STORE: _mm_storeu_si128(q, v); break;
    case SECAGG_CHACHA20_ADD32: _mm_storeu_si128(q, _mm_add_epi32(_mm_loadu_si128(q), v)); break;
    case SECAGG_CHACHA20_SUB32: _mm_storeu_si128(q, _mm_sub_epi32(_mm_loadu_si128(q), v)); break;
    case SECAGG_CHACHA20_ADD64: _mm_storeu_si128(q, _mm_add_epi64(_mm_loadu_si128(q), v)); break;
    default: _mm_storeu_si128(q, _mm_sub_epi64(_mm_loadu_si128(q), v)); break;
    }
}

/* The counter block byte-reversed, so the 32-bit big-endian counter is the low
 * dword and one epi32 add steps it (no carry: the caller ruled out overflow). */
INLINE __m128i reversed_block(const uint8_t nonce[12], uint32_t counter, __m128i rev)
{
    uint8_t b[16];
    for (int i = 0; i < 12; i++)
        b[i] = nonce[i];
    b[12] = b[13] = b[14] = b[15] = 0;
    return _mm_add_epi32(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(void *)b), rev),
                         _mm_cvtsi32_si128((int)counter));
}

#define NPAR 8

INLINE void blocks(uint8_t *dst, size_t nblocks, const secagg_aes256_schedule *ks,
                   const uint8_t nonce[12], uint32_t counter, int op)
{
    const __m128i rev = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i one = _mm_cvtsi32_si128(1);
    __m128i rk[15];
    for (int i = 0; i < 15; i++)
        rk[i] = _mm_load_si128((const __m128i *)(const void *)(ks->rk + 16 * i));
    __m128i ctr = reversed_block(nonce, counter, rev);
    size_t b = 0;
    for (; b + NPAR <= nblocks; b += NPAR, dst += 16 * NPAR) {
        __m128i x[NPAR];
        for (int j = 0; j < NPAR; j++) {
            x[j] = _mm_xor_si128(_mm_shuffle_epi8(ctr, rev), rk[0]);
            ctr = _mm_add_epi32(ctr, one);
        }
        for (int r = 1; r < SECAGG_AES256_ROUNDS; r++)
            for (int j = 0; j < NPAR; j++)
                x[j] = _mm_aesenc_si128(x[j], rk[r]);
        for (int j = 0; j < NPAR; j++)
            put(dst + 16 * j, _mm_aesenclast_si128(x[j], rk[SECAGG_AES256_ROUNDS]), op);
    }
    for (; b < nblocks; b++, dst += 16) {
        __m128i x = _mm_xor_si128(_mm_shuffle_epi8(ctr, rev), rk[0]);
        ctr = _mm_add_epi32(ctr, one);
        for (int r = 1; r < SECAGG_AES256_ROUNDS; r++)
            x = _mm_aesenc_si128(x, rk[r]);
        put(dst, _mm_aesenclast_si128(x, rk[SECAGG_AES256_ROUNDS]), op);
    }
}

/* One copy of the loop per op, so the op is a constant inside it. */
#define PER_OP(name, op)                                                                   \
    static TARGET __attribute__((noinline)) void name(uint8_t *d, size_t n,              \
                                                      const secagg_aes256_schedule *ks,   \
                                                      const uint8_t *nonce, uint32_t c)   \
    { blocks(d, n, ks, nonce, c, op); }
PER_OP(blocks_store, SECAGG_CHACHA20_STORE)
PER_OP(blocks_add32, SECAGG_CHACHA20_ADD32)
PER_OP(blocks_sub32, SECAGG_CHACHA20_SUB32)
PER_OP(blocks_add64, SECAGG_CHACHA20_ADD64)
PER_OP(blocks_sub64, SECAGG_CHACHA20_SUB64)

void secagg_aes256ctr_aesni_blocks(uint8_t *dst, size_t nblocks, const secagg_aes256_schedule *ks,
                                   const uint8_t nonce[12], uint32_t counter, int op)
{
    switch (op) {
    case SECAGG_CHACHA20_STORE: blocks_store(dst, nblocks, ks, nonce, counter); break;
    case SECAGG_CHACHA20_ADD32: blocks_add32(dst, nblocks, ks, nonce, counter); break;
    case SECAGG_CHACHA20_SUB32: blocks_sub32(dst, nblocks, ks, nonce, counter); break;
    case SECAGG_CHACHA20_ADD64: blocks_add64(dst, nblocks, ks, nonce, counter); break;
    case SECAGG_CHACHA20_SUB64: blocks_sub64(dst, nblocks, ks, nonce, counter); break;
    default: break;
    }
}

#else
typedef int secagg_aes256ctr_aesni_unused; /* ISO C forbids an empty translation unit. */
#endif
