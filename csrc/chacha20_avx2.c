/* ChaCha20 with AVX2: 8 blocks at once, one block per 32-bit lane. */
#include "chacha20_impl.h"

#if SECAGG_X86_SIMD
#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline, target("avx2")))

#define ADD(a, b) _mm256_add_epi32(a, b)
#define XOR(a, b) _mm256_xor_si256(a, b)
#define ROTL(x, n) _mm256_or_si256(_mm256_slli_epi32(x, n), _mm256_srli_epi32(x, 32 - (n)))
#define ROTL16(x) _mm256_shuffle_epi8(x, rot16)
#define ROTL8(x) _mm256_shuffle_epi8(x, rot8)
#define QR(a, b, c, d)                                                         \
    do {                                                                       \
        a = ADD(a, b); d = XOR(d, a); d = ROTL16(d);                           \
        c = ADD(c, d); b = XOR(b, c); b = ROTL(b, 12);                         \
        a = ADD(a, b); d = XOR(d, a); d = ROTL8(d);                            \
        c = ADD(c, d); b = XOR(b, c); b = ROTL(b, 7);                          \
    } while (0)
#define BCAST(i) _mm256_set1_epi32((int)st[i])

INLINE void put(uint8_t *p, __m256i v, int op)
{
    __m256i *q = (__m256i *)(void *)p;
    switch (op) {
    case SECAGG_CHACHA20_STORE:
        _mm256_storeu_si256(q, v);
        break;
    case SECAGG_CHACHA20_ADD32:
        _mm256_storeu_si256(q, _mm256_add_epi32(_mm256_loadu_si256(q), v));
        break;
    case SECAGG_CHACHA20_SUB32:
        _mm256_storeu_si256(q, _mm256_sub_epi32(_mm256_loadu_si256(q), v));
        break;
    case SECAGG_CHACHA20_ADD64:
        _mm256_storeu_si256(q, _mm256_add_epi64(_mm256_loadu_si256(q), v));
        break;
    default:
        _mm256_storeu_si256(q, _mm256_sub_epi64(_mm256_loadu_si256(q), v));
        break;
    }
}

/* After the 4x4 transposes within 128-bit lanes, a_r..d_r hold words 0-15 of
 * block r (low lane) and block 4+r (high lane); regroup the lanes. */
INLINE void transpose_put(uint8_t *dst, __m256i x0, __m256i x1, __m256i x2, __m256i x3,
                          __m256i x4, __m256i x5, __m256i x6, __m256i x7, __m256i x8,
                          __m256i x9, __m256i x10, __m256i x11, __m256i x12, __m256i x13,
                          __m256i x14, __m256i x15, int op)
{
    __m256i t0, t1, t2, t3;
    __m256i a[4], b[4], c[4], d[4];
#define T4(o, w, p, y, z)                                                     \
    t0 = _mm256_unpacklo_epi32(w, p); t1 = _mm256_unpackhi_epi32(w, p);        \
    t2 = _mm256_unpacklo_epi32(y, z); t3 = _mm256_unpackhi_epi32(y, z);        \
    o[0] = _mm256_unpacklo_epi64(t0, t2); o[1] = _mm256_unpackhi_epi64(t0, t2); \
    o[2] = _mm256_unpacklo_epi64(t1, t3); o[3] = _mm256_unpackhi_epi64(t1, t3);
    T4(a, x0, x1, x2, x3)
    T4(b, x4, x5, x6, x7)
    T4(c, x8, x9, x10, x11)
    T4(d, x12, x13, x14, x15)
#undef T4
    for (int r = 0; r < 4; r++) {
        put(dst + 64 * r, _mm256_permute2x128_si256(a[r], b[r], 0x20), op);
        put(dst + 64 * r + 32, _mm256_permute2x128_si256(c[r], d[r], 0x20), op);
        put(dst + 64 * (4 + r), _mm256_permute2x128_si256(a[r], b[r], 0x31), op);
        put(dst + 64 * (4 + r) + 32, _mm256_permute2x128_si256(c[r], d[r], 0x31), op);
    }
}

INLINE void blocks8(uint8_t *dst, size_t ngroups, const uint32_t st[16], int op)
{
    const __m256i rot16 = _mm256_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2,
                                          13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2);
    const __m256i rot8 = _mm256_set_epi8(14, 13, 12, 15, 10, 9, 8, 11, 6, 5, 4, 7, 2, 1, 0, 3,
                                         14, 13, 12, 15, 10, 9, 8, 11, 6, 5, 4, 7, 2, 1, 0, 3);
    for (size_t g = 0; g < ngroups; g++, dst += 8 * 64) {
        const __m256i ctr = _mm256_add_epi32(_mm256_set1_epi32((int)(st[12] + 8u * (uint32_t)g)),
                                             _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0));
        __m256i x0 = BCAST(0), x1 = BCAST(1), x2 = BCAST(2), x3 = BCAST(3);
        __m256i x4 = BCAST(4), x5 = BCAST(5), x6 = BCAST(6), x7 = BCAST(7);
        __m256i x8 = BCAST(8), x9 = BCAST(9), x10 = BCAST(10), x11 = BCAST(11);
        __m256i x12 = ctr, x13 = BCAST(13), x14 = BCAST(14), x15 = BCAST(15);
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
        x0 = ADD(x0, BCAST(0)); x1 = ADD(x1, BCAST(1));
        x2 = ADD(x2, BCAST(2)); x3 = ADD(x3, BCAST(3));
        x4 = ADD(x4, BCAST(4)); x5 = ADD(x5, BCAST(5));
        x6 = ADD(x6, BCAST(6)); x7 = ADD(x7, BCAST(7));
        x8 = ADD(x8, BCAST(8)); x9 = ADD(x9, BCAST(9));
        x10 = ADD(x10, BCAST(10)); x11 = ADD(x11, BCAST(11));
        x12 = ADD(x12, ctr); x13 = ADD(x13, BCAST(13));
        x14 = ADD(x14, BCAST(14)); x15 = ADD(x15, BCAST(15));
        transpose_put(dst, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15,
                      op);
    }
}

/* One copy of the loop per op, so the op is a constant inside it. */
static TARGET __attribute__((noinline)) void blocks8_store(uint8_t *d, size_t n, const uint32_t *s)
{ blocks8(d, n, s, SECAGG_CHACHA20_STORE); }
static TARGET __attribute__((noinline)) void blocks8_add32(uint8_t *d, size_t n, const uint32_t *s)
{ blocks8(d, n, s, SECAGG_CHACHA20_ADD32); }
static TARGET __attribute__((noinline)) void blocks8_sub32(uint8_t *d, size_t n, const uint32_t *s)
{ blocks8(d, n, s, SECAGG_CHACHA20_SUB32); }
static TARGET __attribute__((noinline)) void blocks8_add64(uint8_t *d, size_t n, const uint32_t *s)
{ blocks8(d, n, s, SECAGG_CHACHA20_ADD64); }
static TARGET __attribute__((noinline)) void blocks8_sub64(uint8_t *d, size_t n, const uint32_t *s)
{ blocks8(d, n, s, SECAGG_CHACHA20_SUB64); }

void secagg_chacha20_avx2_blocks(uint8_t *dst, size_t nblocks, const uint32_t state[16], int op)
{
    size_t groups = nblocks / 8;
    switch (op) {
    case SECAGG_CHACHA20_STORE: blocks8_store(dst, groups, state); break;
    case SECAGG_CHACHA20_ADD32: blocks8_add32(dst, groups, state); break;
    case SECAGG_CHACHA20_SUB32: blocks8_sub32(dst, groups, state); break;
    case SECAGG_CHACHA20_ADD64: blocks8_add64(dst, groups, state); break;
    case SECAGG_CHACHA20_SUB64: blocks8_sub64(dst, groups, state); break;
    default: return;
    }
    size_t done = 8 * groups;
    if (done < nblocks) {
        uint32_t rest[16];
        for (int i = 0; i < 16; i++)
            rest[i] = state[i];
        rest[12] += (uint32_t)done;
        secagg_chacha20_sse2_blocks(dst + 64 * done, nblocks - done, rest, op);
        secagg_memzero(rest, sizeof rest); /* a copy of the key */
    }
}

#else
typedef int secagg_chacha20_avx2_unused; /* ISO C forbids an empty translation unit. */
#endif
