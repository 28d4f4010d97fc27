/* Fused mask accumulation: every key's ChaCha20 mask added to (or subtracted
 * from) the accumulator in one pass over cache-sized tiles. Semantics in
 * cdef/mask.h. */
#include <string.h>

#include "chacha20_impl.h"

/* Accumulator blocks per tile: 8 KiB, which stays in L1 while every key passes over it. */
#define TILE_BLOCKS 128

static const uint8_t mask_nonce[12] = {0};

static uint32_t load32_le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t load64_le(const uint8_t *p)
{
    return (uint64_t)load32_le(p) | ((uint64_t)load32_le(p + 4) << 32);
}

/* acc[0..count) &= mask, for u32 or u64 elements. */
static void reduce(void *acc, int wide, size_t count, uint64_t mask)
{
    if (wide) {
        uint64_t *a = acc;
        if (mask != UINT64_MAX)
            for (size_t i = 0; i < count; i++)
                a[i] &= mask;
    } else {
        uint32_t *a = acc;
        uint32_t m32 = (uint32_t)mask;
        if (m32 != UINT32_MAX)
            for (size_t i = 0; i < count; i++)
                a[i] &= m32;
    }
}

/* Elements first .. first+count-1 of block `block` of every mask, into acc[0..count). */
static void partial_block(void *acc, int wide, size_t first, size_t count, uint32_t block,
                          const secagg_chacha20_impl *im, const uint8_t *keys,
                          const int8_t *signs, size_t nkeys)
{
    uint32_t state[16];
    uint8_t ks[64];
    for (size_t k = 0; k < nkeys; k++) {
        secagg_chacha20_state_init(state, keys + 32 * k, mask_nonce, block);
        im->blocks(ks, 1, state, SECAGG_CHACHA20_STORE);
        if (wide) {
            uint64_t *a = acc;
            for (size_t i = 0; i < count; i++) {
                uint64_t w = load64_le(ks + 8 * (first + i));
                a[i] = signs[k] > 0 ? a[i] + w : a[i] - w;
            }
        } else {
            uint32_t *a = acc;
            for (size_t i = 0; i < count; i++) {
                uint32_t w = load32_le(ks + 4 * (first + i));
                a[i] = signs[k] > 0 ? a[i] + w : a[i] - w;
            }
        }
    }
}

/* Adding mod 2^32 (or 2^64) and reducing mod 2^bits once at the end gives the
 * same result as reducing every step, since 2^bits divides 2^32 (2^64). */
static int accumulate(void *acc, int wide, size_t m, size_t offset, unsigned bits,
                      const uint8_t *keys, const int8_t *signs, size_t nkeys, int impl)
{
    const secagg_chacha20_impl *im = secagg_runtime_chacha20(impl);
    if (im == NULL)
        return -1;
    if (wide ? (bits < 33 || bits > 64) : (bits < 1 || bits > 32))
        return -1;
    if (nkeys > 0 && (keys == NULL || signs == NULL))
        return -1;
    for (size_t k = 0; k < nkeys; k++)
        if (signs[k] != 1 && signs[k] != -1)
            return -1;
    if (m == 0 || nkeys == 0)
        return 0;
    const size_t es = wide ? 8 : 4, epb = 64 / es; /* element size, elements per block */
    if (acc == NULL || offset > SIZE_MAX - m || (offset + m - 1) / epb > UINT32_MAX)
        return -1;
    const uint64_t mask = wide ? UINT64_MAX >> (64 - bits) : UINT32_MAX >> (32 - bits);
    const int add = wide ? SECAGG_CHACHA20_ADD64 : SECAGG_CHACHA20_ADD32;
    const int sub = wide ? SECAGG_CHACHA20_SUB64 : SECAGG_CHACHA20_SUB32;
    uint8_t *p = acc;
    size_t pos = offset, end = offset + m;

    if (pos % epb) { /* a slice that starts inside a block */
        size_t first = pos % epb, count = epb - first < m ? epb - first : m;
        partial_block(p, wide, first, count, (uint32_t)(pos / epb), im, keys, signs, nkeys);
        reduce(p, wide, count, mask);
        p += es * count;
        pos += count;
    }
    size_t nfull = (end - pos) / epb;
    uint32_t state[16];
    for (size_t t = 0; t < nfull; t += TILE_BLOCKS) {
        size_t nb = nfull - t < TILE_BLOCKS ? nfull - t : TILE_BLOCKS;
        uint8_t *tile = p + 64 * t;
        for (size_t k = 0; k < nkeys; k++) {
            secagg_chacha20_state_init(state, keys + 32 * k, mask_nonce,
                                       (uint32_t)(pos / epb + t));
            im->blocks(tile, nb, state, signs[k] > 0 ? add : sub);
        }
        reduce(tile, wide, nb * epb, mask);
    }
    p += 64 * nfull;
    pos += epb * nfull;
    if (pos < end) { /* a slice that ends inside a block */
        partial_block(p, wide, 0, end - pos, (uint32_t)(pos / epb), im, keys, signs, nkeys);
        reduce(p, wide, end - pos, mask);
    }
    return 0;
}

int secagg_mask_accumulate_u32(uint32_t *acc, size_t m, size_t offset, unsigned bits,
                               const uint8_t *keys, const int8_t *signs, size_t nkeys, int impl)
{
    return accumulate(acc, 0, m, offset, bits, keys, signs, nkeys, impl);
}

int secagg_mask_accumulate_u64(uint64_t *acc, size_t m, size_t offset, unsigned bits,
                               const uint8_t *keys, const int8_t *signs, size_t nkeys, int impl)
{
    return accumulate(acc, 1, m, offset, bits, keys, signs, nkeys, impl);
}
