/* ChaCha20 with AVX-512F: 16 blocks at once, one block per 32-bit lane. */
#include "chacha20_impl.h"

#if SECAGG_X86_SIMD
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline, target("avx512f")))

#define ADD(a, b) _mm512_add_epi32(a, b)
#define XOR(a, b) _mm512_xor_si512(a, b)
#define QR(a, b, c, d)                                                         \
    do {                                                                       \
        a = ADD(a, b); d = XOR(d, a); d = _mm512_rol_epi32(d, 16);             \
        c = ADD(c, d); b = XOR(b, c); b = _mm512_rol_epi32(b, 12);             \
        a = ADD(a, b); d = XOR(d, a); d = _mm512_rol_epi32(d, 8);              \
        c = ADD(c, d); b = XOR(b, c); b = _mm512_rol_epi32(b, 7);              \
    } while (0)
#define BCAST(i) _mm512_set1_epi32((int)st[i])

INLINE void put(uint8_t *p, __m512i v, int op)
{
    switch (op) {
    case SECAGG_CHACHA20_STORE:
        _mm512_storeu_si512(p, v);
        break;
    case SECAGG_CHACHA20_ADD32:
        _mm512_storeu_si512(p, _mm512_add_epi32(_mm512_loadu_si512(p), v));
        break;
    case SECAGG_CHACHA20_SUB32:
        _mm512_storeu_si512(p, _mm512_sub_epi32(_mm512_loadu_si512(p), v));
        break;
    case SECAGG_CHACHA20_ADD64:
        _mm512_storeu_si512(p, _mm512_add_epi64(_mm512_loadu_si512(p), v));
        break;
    default:
        _mm512_storeu_si512(p, _mm512_sub_epi64(_mm512_loadu_si512(p), v));
        break;
    }
}

/* x_j holds word j of blocks 0..15. A 4x4 transpose within each 128-bit lane
 * leaves a_r (words 0-3), b_r (4-7), c_r (8-11), d_r (12-15) with block 4l+r in
 * lane l; a 4x4 transpose of lanes then gives whole blocks. */
INLINE void transpose_put(uint8_t *dst, __m512i x0, __m512i x1, __m512i x2, __m512i x3,
                          __m512i x4, __m512i x5, __m512i x6, __m512i x7, __m512i x8,
                          __m512i x9, __m512i x10, __m512i x11, __m512i x12, __m512i x13,
                          __m512i x14, __m512i x15, int op)
{
    __m512i t0, t1, t2, t3;
    __m512i a[4], b[4], c[4], d[4];
#define T4(o, w, p, y, z)                                                     \
    t0 = _mm512_unpacklo_epi32(w, p); t1 = _mm512_unpackhi_epi32(w, p);        \
    t2 = _mm512_unpacklo_epi32(y, z); t3 = _mm512_unpackhi_epi32(y, z);        \
    o[0] = _mm512_unpacklo_epi64(t0, t2); o[1] = _mm512_unpackhi_epi64(t0, t2); \
    o[2] = _mm512_unpacklo_epi64(t1, t3); o[3] = _mm512_unpackhi_epi64(t1, t3);
    T4(a, x0, x1, x2, x3)
    T4(b, x4, x5, x6, x7)
    T4(c, x8, x9, x10, x11)
    T4(d, x12, x13, x14, x15)
#undef T4
    for (int r = 0; r < 4; r++) {
        __m512i e0 = _mm512_shuffle_i32x4(a[r], b[r], 0x44); /* a.l0 a.l1 b.l0 b.l1 */
        __m512i e1 = _mm512_shuffle_i32x4(a[r], b[r], 0xEE); /* a.l2 a.l3 b.l2 b.l3 */
        __m512i f0 = _mm512_shuffle_i32x4(c[r], d[r], 0x44);
        __m512i f1 = _mm512_shuffle_i32x4(c[r], d[r], 0xEE);
        put(dst + 64 * (0 + r), _mm512_shuffle_i32x4(e0, f0, 0x88), op);
        put(dst + 64 * (4 + r), _mm512_shuffle_i32x4(e0, f0, 0xDD), op);
        put(dst + 64 * (8 + r), _mm512_shuffle_i32x4(e1, f1, 0x88), op);
        put(dst + 64 * (12 + r), _mm512_shuffle_i32x4(e1, f1, 0xDD), op);
    }
}

INLINE void blocks16(uint8_t *dst, size_t ngroups, const uint32_t st[16], int op)
{
    for (size_t g = 0; g < ngroups; g++, dst += 16 * 64) {
        const __m512i ctr =
            _mm512_add_epi32(_mm512_set1_epi32((int)(st[12] + 16u * (uint32_t)g)),
                             _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
        __m512i x0 = BCAST(0), x1 = BCAST(1), x2 = BCAST(2), x3 = BCAST(3);
        __m512i x4 = BCAST(4), x5 = BCAST(5), x6 = BCAST(6), x7 = BCAST(7);
        __m512i x8 = BCAST(8), x9 = BCAST(9), x10 = BCAST(10), x11 = BCAST(11);
        __m512i x12 = ctr, x13 = BCAST(13), x14 = BCAST(14), x15 = BCAST(15);
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
static TARGET __attribute__((noinline)) void blocks16_store(uint8_t *d, size_t n, const uint32_t *s)
{ blocks16(d, n, s, SECAGG_CHACHA20_STORE); }
static TARGET __attribute__((noinline)) void blocks16_add32(uint8_t *d, size_t n, const uint32_t *s)
{ blocks16(d, n, s, SECAGG_CHACHA20_ADD32); }
static TARGET __attribute__((noinline)) void blocks16_sub32(uint8_t *d, size_t n, const uint32_t *s)
{ blocks16(d, n, s, SECAGG_CHACHA20_SUB32); }
static TARGET __attribute__((noinline)) void blocks16_add64(uint8_t *d, size_t n, const uint32_t *s)
{ blocks16(d, n, s, SECAGG_CHACHA20_ADD64); }
static TARGET __attribute__((noinline)) void blocks16_sub64(uint8_t *d, size_t n, const uint32_t *s)
{ blocks16(d, n, s, SECAGG_CHACHA20_SUB64); }

/* The runtime offers this implementation only on CPUs that also have AVX2,
 * which finishes the last (fewer than 16) blocks. */
void secagg_chacha20_avx512_blocks(uint8_t *dst, size_t nblocks, const uint32_t state[16],
                                   int op)
{
    size_t groups = nblocks / 16;
    switch (op) {
    case SECAGG_CHACHA20_STORE: blocks16_store(dst, groups, state); break;
    case SECAGG_CHACHA20_ADD32: blocks16_add32(dst, groups, state); break;
    case SECAGG_CHACHA20_SUB32: blocks16_sub32(dst, groups, state); break;
    case SECAGG_CHACHA20_ADD64: blocks16_add64(dst, groups, state); break;
    case SECAGG_CHACHA20_SUB64: blocks16_sub64(dst, groups, state); break;
    default: return;
    }
    size_t done = 16 * groups;
    if (done < nblocks) {
        uint32_t rest[16];
        for (int i = 0; i < 16; i++)
            rest[i] = state[i];
        rest[12] += (uint32_t)done;
        secagg_chacha20_avx2_blocks(dst + 64 * done, nblocks - done, rest, op);
        secagg_memzero(rest, sizeof rest); /* a copy of the key */
    }
}

#else
typedef int secagg_chacha20_avx512_unused; /* ISO C forbids an empty translation unit. */
#endif
