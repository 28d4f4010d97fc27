/* AES-256-CTR with VAES: vaesenc on 256-bit (2 blocks) or 512-bit (4 blocks)
 * registers, 8 registers in flight, so 16 or 32 blocks per step. Fewer than a
 * step's blocks go to the AES-NI path. */
#include "aes256ctr_impl.h"

#if SECAGG_X86_SIMD
#include <immintrin.h>

#define T256 "aes,vaes,avx2"
#define T512 "aes,vaes,avx2,avx512f,avx512bw"
#define NPAR 8

/* The counter block byte-reversed (see aes256ctr_aesni.c): the counter is the low dword. */
static inline __attribute__((always_inline, target(T256))) __m128i
reversed_block(const uint8_t nonce[12], uint32_t counter, __m128i rev)
{
    uint8_t b[16];
    for (int i = 0; i < 12; i++)
        b[i] = nonce[i];
    b[12] = b[13] = b[14] = b[15] = 0;
    return _mm_add_epi32(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(void *)b), rev),
                         _mm_cvtsi32_si128((int)counter));
}

/* ---- 256-bit -------------------------------------------------------------- */

#define INLINE256 static inline __attribute__((always_inline, target(T256)))

INLINE256 void put256(uint8_t *p, __m256i v, int op)
{
    __m256i *q = (__m256i *)(void *)p;
    switch (op) {
    case SECAGG_CHACHA20_STORE: _mm256_storeu_si256(q, v); break;
    case SECAGG_CHACHA20_ADD32: _mm256_storeu_si256(q, _mm256_add_epi32(_mm256_loadu_si256(q), v)); break;
    case SECAGG_CHACHA20_SUB32: _mm256_storeu_si256(q, _mm256_sub_epi32(_mm256_loadu_si256(q), v)); break;
    case SECAGG_CHACHA20_ADD64: _mm256_storeu_si256(q, _mm256_add_epi64(_mm256_loadu_si256(q), v)); break;
    default: _mm256_storeu_si256(q, _mm256_sub_epi64(_mm256_loadu_si256(q), v)); break;
    }
}

INLINE256 void blocks256(uint8_t *dst, size_t nsteps, const secagg_aes256_schedule *ks,
                         const uint8_t nonce[12], uint32_t counter, int op)
{
    const __m128i rev128 = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m256i rev = _mm256_broadcastsi128_si256(rev128);
    const __m256i two = _mm256_set_epi32(0, 0, 0, 2, 0, 0, 0, 2);
    __m256i rk[15];
    for (int i = 0; i < 15; i++)
        rk[i] = _mm256_broadcastsi128_si256(
            _mm_load_si128((const __m128i *)(const void *)(ks->rk + 16 * i)));
    __m256i ctr = _mm256_add_epi32(_mm256_broadcastsi128_si256(reversed_block(nonce, counter, rev128)),
                                   _mm256_set_epi32(0, 0, 0, 1, 0, 0, 0, 0));
    for (size_t s = 0; s < nsteps; s++, dst += 32 * NPAR) {
        __m256i x[NPAR];
        for (int j = 0; j < NPAR; j++) {
            x[j] = _mm256_xor_si256(_mm256_shuffle_epi8(ctr, rev), rk[0]);
            ctr = _mm256_add_epi32(ctr, two);
        }
        for (int r = 1; r < SECAGG_AES256_ROUNDS; r++)
            for (int j = 0; j < NPAR; j++)
                x[j] = _mm256_aesenc_epi128(x[j], rk[r]);
        for (int j = 0; j < NPAR; j++)
            put256(dst + 32 * j, _mm256_aesenclast_epi128(x[j], rk[SECAGG_AES256_ROUNDS]), op);
    }
}

/* ---- 512-bit -------------------------------------------------------------- */

#define INLINE512 static inline __attribute__((always_inline, target(T512)))

INLINE512 void put512(uint8_t *p, __m512i v, int op)
{
    void *q = p;
    switch (op) {
    case SECAGG_CHACHA20_STORE: _mm512_storeu_si512(q, v); break;
    case SECAGG_CHACHA20_ADD32: _mm512_storeu_si512(q, _mm512_add_epi32(_mm512_loadu_si512(q), v)); break;
    case SECAGG_CHACHA20_SUB32: _mm512_storeu_si512(q, _mm512_sub_epi32(_mm512_loadu_si512(q), v)); break;
    case SECAGG_CHACHA20_ADD64: _mm512_storeu_si512(q, _mm512_add_epi64(_mm512_loadu_si512(q), v)); break;
    default: _mm512_storeu_si512(q, _mm512_sub_epi64(_mm512_loadu_si512(q), v)); break;
    }
}

INLINE512 void blocks512(uint8_t *dst, size_t nsteps, const secagg_aes256_schedule *ks,
                         const uint8_t nonce[12], uint32_t counter, int op)
{
    const __m128i rev128 = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i rev = _mm512_broadcast_i32x4(rev128);
    const __m512i four = _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4);
    __m512i rk[15];
    for (int i = 0; i < 15; i++)
        rk[i] = _mm512_broadcast_i32x4(
            _mm_load_si128((const __m128i *)(const void *)(ks->rk + 16 * i)));
    __m512i ctr = _mm512_add_epi32(_mm512_broadcast_i32x4(reversed_block(nonce, counter, rev128)),
                                   _mm512_set_epi32(0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0));
    for (size_t s = 0; s < nsteps; s++, dst += 64 * NPAR) {
        __m512i x[NPAR];
        for (int j = 0; j < NPAR; j++) {
            x[j] = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, rev), rk[0]);
            ctr = _mm512_add_epi32(ctr, four);
        }
        for (int r = 1; r < SECAGG_AES256_ROUNDS; r++)
            for (int j = 0; j < NPAR; j++)
                x[j] = _mm512_aesenc_epi128(x[j], rk[r]);
        for (int j = 0; j < NPAR; j++)
            put512(dst + 64 * j, _mm512_aesenclast_epi128(x[j], rk[SECAGG_AES256_ROUNDS]), op);
    }
}

/* One copy of each loop per op, so the op is a constant inside it. */
typedef void (*step_fn)(uint8_t *, size_t, const secagg_aes256_schedule *, const uint8_t *,
                        uint32_t);
#define PER_OP(width, tgt, name, op)                                                    \
    static __attribute__((noinline, target(tgt))) void name(                               \
        uint8_t *d, size_t n, const secagg_aes256_schedule *ks, const uint8_t *nonce,      \
        uint32_t c)                                                                        \
    { blocks##width(d, n, ks, nonce, c, op); }
PER_OP(256, T256, s256_store, SECAGG_CHACHA20_STORE)
PER_OP(256, T256, s256_add32, SECAGG_CHACHA20_ADD32)
PER_OP(256, T256, s256_sub32, SECAGG_CHACHA20_SUB32)
PER_OP(256, T256, s256_add64, SECAGG_CHACHA20_ADD64)
PER_OP(256, T256, s256_sub64, SECAGG_CHACHA20_SUB64)
PER_OP(512, T512, s512_store, SECAGG_CHACHA20_STORE)
PER_OP(512, T512, s512_add32, SECAGG_CHACHA20_ADD32)
PER_OP(512, T512, s512_sub32, SECAGG_CHACHA20_SUB32)
PER_OP(512, T512, s512_add64, SECAGG_CHACHA20_ADD64)
PER_OP(512, T512, s512_sub64, SECAGG_CHACHA20_SUB64)

static const step_fn steps256[] = {s256_store, s256_add32, s256_sub32, s256_add64, s256_sub64};
static const step_fn steps512[] = {s512_store, s512_add32, s512_sub32, s512_add64, s512_sub64};

/* Whole steps of `per_step` blocks with `fn`, the rest with AES-NI. */
static void run(const step_fn *fns, size_t per_step, uint8_t *dst, size_t nblocks,
                const secagg_aes256_schedule *ks, const uint8_t nonce[12], uint32_t counter,
                int op)
{
    if (op < SECAGG_CHACHA20_STORE || op > SECAGG_CHACHA20_SUB64)
        return;
    size_t nsteps = nblocks / per_step, done = nsteps * per_step;
    if (nsteps)
        fns[op](dst, nsteps, ks, nonce, counter);
    if (done < nblocks)
        secagg_aes256ctr_aesni_blocks(dst + 16 * done, nblocks - done, ks, nonce,
                                      counter + (uint32_t)done, op);
}

void secagg_aes256ctr_vaes_avx2_blocks(uint8_t *dst, size_t nblocks,
                                       const secagg_aes256_schedule *ks, const uint8_t nonce[12],
                                       uint32_t counter, int op)
{
    run(steps256, 2 * NPAR, dst, nblocks, ks, nonce, counter, op);
}

void secagg_aes256ctr_vaes_avx512_blocks(uint8_t *dst, size_t nblocks,
                                         const secagg_aes256_schedule *ks,
                                         const uint8_t nonce[12], uint32_t counter, int op)
{
    run(steps512, 4 * NPAR, dst, nblocks, ks, nonce, counter, op);
}

#else
typedef int secagg_aes256ctr_vaes_unused; /* ISO C forbids an empty translation unit. */
#endif
