/* Portable scalar ChaCha20 (RFC 8439): the reference every SIMD path must match. */
#include <string.h>

#include "chacha20_impl.h"

#define ROTL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                                                   \
    do {                                                                 \
        a += b; d ^= a; d = ROTL32(d, 16);                               \
        c += d; b ^= c; b = ROTL32(b, 12);                               \
        a += b; d ^= a; d = ROTL32(d, 8);                                \
        c += d; b ^= c; b = ROTL32(b, 7);                                \
    } while (0)

static uint32_t load32_le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void store32_le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void secagg_chacha20_state_init(uint32_t state[16], const uint8_t *key, const uint8_t *nonce,
                                uint32_t counter)
{
    state[0] = 0x61707865u;
    state[1] = 0x3320646eu;
    state[2] = 0x79622d32u;
    state[3] = 0x6b206574u;
    for (int i = 0; i < 8; i++)
        state[4 + i] = load32_le(key + 4 * i);
    state[12] = counter;
    for (int i = 0; i < 3; i++)
        state[13 + i] = load32_le(nonce + 4 * i);
}

/* One block: the 16 keystream words (host integers) of the block `in` describes. */
static void chacha20_block(uint32_t out[16], const uint32_t in[16])
{
    uint32_t x[16];
    memcpy(x, in, sizeof x);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++)
        out[i] = x[i] + in[i];
    secagg_memzero(x, sizeof x);
}

/* Keystream word i of a block is the little-endian word at bytes 4i..4i+3, so
 * adding word pairs (2i, 2i+1) as one uint64 adds the little-endian 64-bit word i. */
void secagg_chacha20_ref_blocks(uint8_t *dst, size_t nblocks, const uint32_t state[16], int op)
{
    uint32_t in[16], ks[16];
    memcpy(in, state, sizeof in);
    for (size_t b = 0; b < nblocks; b++, in[12]++) {
        chacha20_block(ks, in);
        uint8_t *p = dst + 64 * b;
        uint32_t *w32 = (uint32_t *)(void *)p;
        uint64_t *w64 = (uint64_t *)(void *)p;
        switch (op) {
        case SECAGG_CHACHA20_STORE:
            for (int i = 0; i < 16; i++)
                store32_le(p + 4 * i, ks[i]);
            break;
        case SECAGG_CHACHA20_ADD32:
            for (int i = 0; i < 16; i++)
                w32[i] += ks[i];
            break;
        case SECAGG_CHACHA20_SUB32:
            for (int i = 0; i < 16; i++)
                w32[i] -= ks[i];
            break;
        case SECAGG_CHACHA20_ADD64:
            for (int i = 0; i < 8; i++)
                w64[i] += (uint64_t)ks[2 * i] | ((uint64_t)ks[2 * i + 1] << 32);
            break;
        case SECAGG_CHACHA20_SUB64:
            for (int i = 0; i < 8; i++)
                w64[i] -= (uint64_t)ks[2 * i] | ((uint64_t)ks[2 * i + 1] << 32);
            break;
        default:
            break;
        }
    }
    secagg_memzero(in, sizeof in); /* the key */
    secagg_memzero(ks, sizeof ks);
}
