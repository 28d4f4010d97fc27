/* Portable scalar ChaCha20 (RFC 8439). */
#include <string.h>

#include "secagg.h"

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

static void chacha20_block(uint8_t out[64], const uint32_t in[16])
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
        store32_le(out + 4 * i, x[i] + in[i]);
}

/* Writes `nblocks` whole blocks of keystream; the caller has checked that the
 * counter does not overflow. */
void secagg_chacha20_ref_blocks(uint8_t *out, size_t nblocks, const uint8_t *key,
                                const uint8_t *nonce, uint32_t counter)
{
    uint32_t state[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u};
    for (int i = 0; i < 8; i++)
        state[4 + i] = load32_le(key + 4 * i);
    state[12] = counter;
    for (int i = 0; i < 3; i++)
        state[13 + i] = load32_le(nonce + 4 * i);
    for (size_t b = 0; b < nblocks; b++) {
        chacha20_block(out + 64 * b, state);
        state[12]++;
    }
}
