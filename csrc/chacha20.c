/* ChaCha20 keystream: argument checks and dispatch to the best implementation. */
#include <string.h>

#include "secagg.h"

void secagg_chacha20_ref_blocks(uint8_t *out, size_t nblocks, const uint8_t *key,
                                const uint8_t *nonce, uint32_t counter);

size_t secagg_chacha20_keybytes(void) { return 32; }
size_t secagg_chacha20_noncebytes(void) { return 12; }
size_t secagg_chacha20_blockbytes(void) { return 64; }

int secagg_chacha20_keystream(uint8_t *out, size_t len, const uint8_t *key,
                              const uint8_t *nonce, uint32_t counter)
{
    if (len == 0)
        return 0;
    if (out == NULL || key == NULL || nonce == NULL)
        return -1;
    size_t nblocks = (len + 63) / 64;
    if ((uint64_t)counter + nblocks - 1 > UINT32_MAX)
        return -1;
    size_t full = len / 64;
    secagg_chacha20_ref_blocks(out, full, key, nonce, counter);
    if (len % 64) {
        uint8_t last[64];
        secagg_chacha20_ref_blocks(last, 1, key, nonce, counter + (uint32_t)full);
        memcpy(out + 64 * full, last, len % 64);
    }
    return 0;
}
