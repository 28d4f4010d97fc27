/* AES-256-CTR keystream: argument checks, then the implementation the runtime picked. */
#include <string.h>

#include "aes256ctr_impl.h"
#include "secret.h"

size_t secagg_aes256ctr_keybytes(void) { return 32; }
size_t secagg_aes256ctr_noncebytes(void) { return 12; }
size_t secagg_aes256ctr_blockbytes(void) { return 16; }

void secagg_aes256_expand(secagg_aes256_schedule *ks, const uint8_t key[32])
{
#if SECAGG_X86_SIMD
    secagg_aes256_expand_aesni(ks, key);
#else
    (void)key;
    memset(ks, 0, sizeof *ks); /* unreachable: no implementation exists in this build */
#endif
}

int secagg_aes256ctr_keystream_impl(int impl, uint8_t *out, size_t len, const uint8_t *key,
                                    const uint8_t *nonce, uint32_t counter)
{
    const secagg_aes256ctr_impl *im = secagg_runtime_aes256ctr(impl);
    if (im == NULL)
        return -1;
    if (len == 0)
        return 0;
    if (out == NULL || key == NULL || nonce == NULL)
        return -1;
    size_t full = len / 16, rest = len % 16;
    size_t nblocks = full + (rest != 0);
    if (nblocks - 1 > (size_t)(UINT32_MAX - counter))
        return -1;
    secagg_aes256_schedule ks;
    secagg_aes256_expand(&ks, key);
    im->blocks(out, full, &ks, nonce, counter, SECAGG_CHACHA20_STORE);
    if (rest) {
        uint8_t last[16];
        im->blocks(last, 1, &ks, nonce, counter + (uint32_t)full, SECAGG_CHACHA20_STORE);
        memcpy(out + 16 * full, last, rest);
        secagg_memzero(last, sizeof last);
    }
    secagg_memzero(&ks, sizeof ks); /* the expanded key */
    secagg_stack_burn();            /* and the round keys the kernel spilled */
    return 0;
}

int secagg_aes256ctr_keystream(uint8_t *out, size_t len, const uint8_t *key,
                               const uint8_t *nonce, uint32_t counter)
{
    return secagg_aes256ctr_keystream_impl(SECAGG_IMPL_BEST, out, len, key, nonce, counter);
}
