/* Fused mask accumulation: every key's ChaCha20 or AES-256-CTR mask added to
 * (or subtracted from) the accumulator in one pass over cache-sized tiles per
 * batch of keys. Semantics in cdef/mask.h. */
#include <string.h>

#include "aes256ctr_impl.h"
#include "chacha20_impl.h"
#include "secret.h"

/* Accumulator bytes per tile: 8 KiB, which stays in L1 while every key passes over it. */
#define TILE_BYTES 8192
/* AES-256 keys expanded at once: 32 schedules are 7.5 KiB of stack. */
#define AES_BATCH 32

static const uint8_t mask_nonce[12] = {0};

uint64_t secagg_mask_max_blocks(void) { return (uint64_t)UINT32_MAX + 1; }

static uint32_t load32_le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t load64_le(const uint8_t *p)
{
    return (uint64_t)load32_le(p) | ((uint64_t)load32_le(p + 4) << 32);
}

/* The keystream masks are read from: one cipher, one implementation, and the
 * keys of the current batch, prepared (for AES, expanded) once per batch. */
typedef struct stream {
    size_t block_bytes;
    size_t batch; /* keys prepared at once */
    const secagg_chacha20_impl *chacha;
    const secagg_aes256ctr_impl *aes;
    const uint8_t *keys; /* the current batch */
    secagg_aes256_schedule sched[AES_BATCH];
} stream;

static int stream_init(stream *s, int cipher, int impl)
{
    s->chacha = NULL;
    s->aes = NULL;
    s->keys = NULL;
    if (cipher == SECAGG_CIPHER_CHACHA20) {
        s->chacha = secagg_runtime_chacha20(impl);
        s->block_bytes = 64;
        s->batch = SIZE_MAX; /* a state is set up per tile: nothing to prepare */
        return s->chacha == NULL ? -1 : 0;
    }
    if (cipher == SECAGG_CIPHER_AES256CTR) {
        s->aes = secagg_runtime_aes256ctr(impl);
        s->block_bytes = 16;
        s->batch = AES_BATCH;
        return s->aes == NULL ? -1 : 0;
    }
    return -1;
}

static void stream_prepare(stream *s, const uint8_t *keys, size_t nkeys)
{
    s->keys = keys;
    if (s->aes != NULL)
        for (size_t k = 0; k < nkeys; k++)
            secagg_aes256_expand(&s->sched[k], keys + 32 * k);
}

/* Applies `op` to nblocks whole blocks of key k (of the batch) from block `block`. */
static void stream_run(const stream *s, size_t k, uint8_t *dst, size_t nblocks, uint32_t block,
                       int op)
{
    if (s->aes != NULL) {
        s->aes->blocks(dst, nblocks, &s->sched[k], mask_nonce, block, op);
    } else {
        uint32_t state[16];
        secagg_chacha20_state_init(state, s->keys + 32 * k, mask_nonce, block);
        s->chacha->blocks(dst, nblocks, state, op);
        secagg_memzero(state, sizeof state); /* holds the key */
    }
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
                          const stream *s, const int8_t *signs, size_t nkeys)
{
    uint8_t ks[64];
    for (size_t k = 0; k < nkeys; k++) {
        stream_run(s, k, ks, 1, block, SECAGG_CHACHA20_STORE);
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
    secagg_memzero(ks, sizeof ks);
}

/* The keys of one prepared batch over elements pos .. end-1, held at p. */
static void accumulate_batch(uint8_t *p, int wide, size_t pos, size_t end, uint64_t mask,
                             const stream *s, const int8_t *signs, size_t nkeys)
{
    const size_t es = wide ? 8 : 4, bb = s->block_bytes, epb = bb / es;
    const size_t tile_blocks = TILE_BYTES / bb;
    const int add = wide ? SECAGG_CHACHA20_ADD64 : SECAGG_CHACHA20_ADD32;
    const int sub = wide ? SECAGG_CHACHA20_SUB64 : SECAGG_CHACHA20_SUB32;
    const size_t m = end - pos;

    if (pos % epb) { /* a slice that starts inside a block */
        size_t first = pos % epb, count = epb - first < m ? epb - first : m;
        partial_block(p, wide, first, count, (uint32_t)(pos / epb), s, signs, nkeys);
        reduce(p, wide, count, mask);
        p += es * count;
        pos += count;
    }
    size_t nfull = (end - pos) / epb;
    for (size_t t = 0; t < nfull; t += tile_blocks) {
        size_t nb = nfull - t < tile_blocks ? nfull - t : tile_blocks;
        uint8_t *tile = p + bb * t;
        for (size_t k = 0; k < nkeys; k++)
            stream_run(s, k, tile, nb, (uint32_t)(pos / epb + t), signs[k] > 0 ? add : sub);
        reduce(tile, wide, nb * epb, mask);
    }
    p += bb * nfull;
    pos += epb * nfull;
    if (pos < end) { /* a slice that ends inside a block */
        partial_block(p, wide, 0, end - pos, (uint32_t)(pos / epb), s, signs, nkeys);
        reduce(p, wide, end - pos, mask);
    }
}

/* Adding mod 2^32 (or 2^64) and reducing mod 2^bits once at the end gives the
 * same result as reducing every step, since 2^bits divides 2^32 (2^64). */
static int accumulate(void *acc, int wide, size_t m, size_t offset, unsigned bits,
                      const uint8_t *keys, const int8_t *signs, size_t nkeys, int cipher,
                      int impl)
{
    stream s;
    if (stream_init(&s, cipher, impl) != 0)
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
    const size_t epb = s.block_bytes / (wide ? 8 : 4); /* elements per block */
    if (acc == NULL || offset > SIZE_MAX - m || (offset + m - 1) / epb > UINT32_MAX)
        return -1;
    const uint64_t mask = wide ? UINT64_MAX >> (64 - bits) : UINT32_MAX >> (32 - bits);
    for (size_t k = 0; k < nkeys; k += s.batch) {
        size_t nk = nkeys - k < s.batch ? nkeys - k : s.batch;
        stream_prepare(&s, keys + 32 * k, nk);
        accumulate_batch(acc, wide, offset, offset + m, mask, &s, signs + k, nk);
    }
    if (s.aes != NULL) /* the expanded keys of the last batch (and what earlier ones left) */
        secagg_memzero(s.sched, sizeof s.sched);
    secagg_stack_burn(); /* what the kernels spilled */
    return 0;
}

int secagg_mask_accumulate_u32(uint32_t *acc, size_t m, size_t offset, unsigned bits,
                               const uint8_t *keys, const int8_t *signs, size_t nkeys, int impl)
{
    return accumulate(acc, 0, m, offset, bits, keys, signs, nkeys, SECAGG_CIPHER_CHACHA20, impl);
}

int secagg_mask_accumulate_u64(uint64_t *acc, size_t m, size_t offset, unsigned bits,
                               const uint8_t *keys, const int8_t *signs, size_t nkeys, int impl)
{
    return accumulate(acc, 1, m, offset, bits, keys, signs, nkeys, SECAGG_CIPHER_CHACHA20, impl);
}

int secagg_mask_accumulate_cipher_u32(uint32_t *acc, size_t m, size_t offset, unsigned bits,
                                      const uint8_t *keys, const int8_t *signs, size_t nkeys,
                                      int cipher, int impl)
{
    return accumulate(acc, 0, m, offset, bits, keys, signs, nkeys, cipher, impl);
}

int secagg_mask_accumulate_cipher_u64(uint64_t *acc, size_t m, size_t offset, unsigned bits,
                                      const uint8_t *keys, const int8_t *signs, size_t nkeys,
                                      int cipher, int impl)
{
    return accumulate(acc, 1, m, offset, bits, keys, signs, nkeys, cipher, impl);
}
