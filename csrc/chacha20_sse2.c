/* ChaCha20 with SSE2: 4 blocks at once, one block per 32-bit lane. */
#include "chacha20_impl.h"

#if SECAGG_X86_SIMD
#include <immintrin.h>

#define TARGET __attribute__((target("sse2")))
#define INLINE static inline __attribute__((always_inline, target("sse2")))

#define ADD(a, b) _mm_add_epi32(a, b)
#define XOR(a, b) _mm_xor_si128(a, b)
#define ROTL(x, n) _mm_or_si128(_mm_slli_epi32(x, n), _mm_srli_epi32(x, 32 - (n)))
/* Rotating by 16 swaps the 16-bit halves of each word. */
#define ROTL16(x) _mm_shufflehi_epi16(_mm_shufflelo_epi16(x, 0xB1), 0xB1)
#define QR(a, b, c, d)                                                         \
    do {                                                                       \
        a = ADD(a, b); d = XOR(d, a); d = ROTL16(d);                           \
        c = ADD(c, d); b = XOR(b, c); b = ROTL(b, 12);                         \
        a = ADD(a, b); d = XOR(d, a); d = ROTL(d, 8);                          \
        c = ADD(c, d); b = XOR(b, c); b = ROTL(b, 7);                          \
    } while (0)

INLINE void put(uint8_t *p, __m128i v, int op)
{
    switch (op) {
    case SECAGG_CHACHA20_STORE:
        _mm_storeu_si128((__m128i *)(void *)p, v);
        break;
    case SECAGG_CHACHA20_ADD32:
        _mm_storeu_si128((__m128i *)(void *)p,
                         _mm_add_epi32(_mm_loadu_si128((const __m128i *)(const void *)p), v));
        break;
    case SECAGG_CHACHA20_SUB32:
        _mm_storeu_si128((__m128i *)(void *)p,
                         _mm_sub_epi32(_mm_loadu_si128((const __m128i *)(const void *)p), v));
        break;
    case SECAGG_CHACHA20_ADD64:
        _mm_storeu_si128((__m128i *)(void *)p,
                         _mm_add_epi64(_mm_loadu_si128((const __m128i *)(const void *)p), v));
        break;
    default:
        _mm_storeu_si128((__m128i *)(void *)p,
                         _mm_sub_epi64(_mm_loadu_si128((const __m128i *)(const void *)p), v));
        break;
    }
}

/* Words 4q..4q+3 of blocks 0..3 from the four word vectors a, b, c, d. */
INLINE void transpose_put(uint8_t *dst, __m128i a, __m128i b, __m128i c, __m128i d, int op)
{
    __m128i t0 = _mm_unpacklo_epi32(a, b), t1 = _mm_unpackhi_epi32(a, b);
    __m128i t2 = _mm_unpacklo_epi32(c, d), t3 = _mm_unpackhi_epi32(c, d);
    put(dst + 0 * 64, _mm_unpacklo_epi64(t0, t2), op);
    put(dst + 1 * 64, _mm_unpackhi_epi64(t0, t2), op);
    put(dst + 2 * 64, _mm_unpacklo_epi64(t1, t3), op);
    put(dst + 3 * 64, _mm_unpackhi_epi64(t1, t3), op);
}

INLINE void blocks4(uint8_t *dst, size_t ngroups, const uint32_t st[16], int op)
{
    for (size_t g = 0; g < ngroups; g++, dst += 4 * 64) {
        const __m128i ctr =
            _mm_add_epi32(_mm_set1_epi32((int)(st[12] + 4u * (uint32_t)g)), _mm_set_epi32(3, 2, 1, 0));
        __m128i x0 = _mm_set1_epi32((int)st[0]), x1 = _mm_set1_epi32((int)st[1]);
        __m128i x2 = _mm_set1_epi32((int)st[2]), x3 = _mm_set1_epi32((int)st[3]);
        __m128i x4 = _mm_set1_epi32((int)st[4]), x5 = _mm_set1_epi32((int)st[5]);
        __m128i x6 = _mm_set1_epi32((int)st[6]), x7 = _mm_set1_epi32((int)st[7]);
        __m128i x8 = _mm_set1_epi32((int)st[8]), x9 = _mm_set1_epi32((int)st[9]);
        __m128i x10 = _mm_set1_epi32((int)st[10]), x11 = _mm_set1_epi32((int)st[11]);
        __m128i x12 = ctr, x13 = _mm_set1_epi32((int)st[13]);
        __m128i x14 = _mm_set1_epi32((int)st[14]), x15 = _mm_set1_epi32((int)st[15]);
        for (int i = 0; i < 10; i++) {
            QR(x0, x4, x8, x12);
            QR(x1, x5, x9, x13);
            QR(x2, x6, x10, x14);
            QR(x3, x7, x11, x15);
            QR(x0, x5, x10, x15);
            QR(x1, x6, x11, x12);
            QR(x2, x7, x8, x13);
            QR(x3, x4, x9, x14);
        }
        x0 = ADD(x0, _mm_set1_epi32((int)st[0]));
        x1 = ADD(x1, _mm_set1_epi32((int)st[1]));
        x2 = ADD(x2, _mm_set1_epi32((int)st[2]));
        x3 = ADD(x3, _mm_set1_epi32((int)st[3]));
        x4 = ADD(x4, _mm_set1_epi32((int)st[4]));
        x5 = ADD(x5, _mm_set1_epi32((int)st[5]));
        x6 = ADD(x6, _mm_set1_epi32((int)st[6]));
        x7 = ADD(x7, _mm_set1_epi32((int)st[7]));
        x8 = ADD(x8, _mm_set1_epi32((int)st[8]));
        x9 = ADD(x9, _mm_set1_epi32((int)st[9]));
        x10 = ADD(x10, _mm_set1_epi32((int)st[10]));
        x11 = ADD(x11, _mm_set1_epi32((int)st[11]));
        x12 = ADD(x12, ctr);
        x13 = ADD(x13, _mm_set1_epi32((int)st[13]));
        x14 = ADD(x14, _mm_set1_epi32((int)st[14]));
        x15 = ADD(x15, _mm_set1_epi32((int)st[15]));
        transpose_put(dst + 0, x0, x1, x2, x3, op);
        transpose_put(dst + 16, x4, x5, x6, x7, op);
        transpose_put(dst + 32, x8, x9, x10, x11, op);
        transpose_put(dst + 48, x12, x13, x14, x15, op);
    }
}

/* One copy of the loop per op, so the op is a constant inside it. */
static TARGET __attribute__((noinline)) void blocks4_store(uint8_t *d, size_t n, const uint32_t *s)
{ blocks4(d, n, s, SECAGG_CHACHA20_STORE); }
static TARGET __attribute__((noinline)) void blocks4_add32(uint8_t *d, size_t n, const uint32_t *s)
{ blocks4(d, n, s, SECAGG_CHACHA20_ADD32); }
static TARGET __attribute__((noinline)) void blocks4_sub32(uint8_t *d, size_t n, const uint32_t *s)
{ blocks4(d, n, s, SECAGG_CHACHA20_SUB32); }
static TARGET __attribute__((noinline)) void blocks4_add64(uint8_t *d, size_t n, const uint32_t *s)
{ blocks4(d, n, s, SECAGG_CHACHA20_ADD64); }
static TARGET __attribute__((noinline)) void blocks4_sub64(uint8_t *d, size_t n, const uint32_t *s)
{ blocks4(d, n, s, SECAGG_CHACHA20_SUB64); }

void secagg_chacha20_sse2_blocks(uint8_t *dst, size_t nblocks, const uint32_t state[16], int op)
{
    size_t groups = nblocks / 4;
    switch (op) {
    case SECAGG_CHACHA20_STORE: blocks4_store(dst, groups, state); break;
    case SECAGG_CHACHA20_ADD32: blocks4_add32(dst, groups, state); break;
    case SECAGG_CHACHA20_SUB32: blocks4_sub32(dst, groups, state); break;
    case SECAGG_CHACHA20_ADD64: blocks4_add64(dst, groups, state); break;
    case SECAGG_CHACHA20_SUB64: blocks4_sub64(dst, groups, state); break;
    default: return;
    }
    size_t done = 4 * groups;
    if (done < nblocks) {
        uint32_t rest[16];
        for (int i = 0; i < 16; i++)
            rest[i] = state[i];
        rest[12] += (uint32_t)done;
        secagg_chacha20_ref_blocks(dst + 64 * done, nblocks - done, rest, op);
        secagg_memzero(rest, sizeof rest); /* a copy of the key */
    }
}

#else
typedef int secagg_chacha20_sse2_unused; /* ISO C forbids an empty translation unit. */
#endif
