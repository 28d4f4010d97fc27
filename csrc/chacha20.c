/* ChaCha20 keystream: argument checks, then the implementation the runtime picked. */
#include <string.h>

#include "chacha20_impl.h"
#include "secret.h"

size_t secagg_chacha20_keybytes(void) { return 32; }
size_t secagg_chacha20_noncebytes(void) { return 12; }
size_t secagg_chacha20_blockbytes(void) { return 64; }

int secagg_chacha20_keystream_impl(int impl, uint8_t *out, size_t len, const uint8_t *key,
                                   const uint8_t *nonce, uint32_t counter)
{
    const secagg_chacha20_impl *im = secagg_runtime_chacha20(impl);
    if (im == NULL)
        return -1;
    if (len == 0)
        return 0;
    if (out == NULL || key == NULL || nonce == NULL)
        return -1;
    size_t full = len / 64, rest = len % 64;
    size_t nblocks = full + (rest != 0);
    if (nblocks - 1 > (size_t)(UINT32_MAX - counter))
        return -1;
    uint32_t state[16];
    secagg_chacha20_state_init(state, key, nonce, counter);
    im->blocks(out, full, state, SECAGG_CHACHA20_STORE);
    if (rest) {
        uint8_t last[64];
        state[12] = counter + (uint32_t)full;
        im->blocks(last, 1, state, SECAGG_CHACHA20_STORE);
        memcpy(out + 64 * full, last, rest);
        secagg_memzero(last, sizeof last);
    }
    secagg_memzero(state, sizeof state); /* holds the key */
    secagg_stack_burn();                 /* and what the kernel spilled */
    return 0;
}

int secagg_chacha20_keystream(uint8_t *out, size_t len, const uint8_t *key,
                              const uint8_t *nonce, uint32_t counter)
{
    return secagg_chacha20_keystream_impl(SECAGG_IMPL_BEST, out, len, key, nonce, counter);
}
