/* Looks for secrets that a kernel left on the stack after it returned, for
 * tests/test_c_wipe.py. The stack below main is scrubbed, the kernel runs, then
 * a function with a large uninitialised (volatile) frame over the same addresses
 * searches it for the secret: the key (ChaCha20 state words and AES round keys 0-1
 * are the key's bytes in order) or a piece of the fixed-point rounding keystream.
 * Exit 0: not found; 1: found; 2: the kernel failed.
 *
 * Reading an uninitialised array is outside the C standard; with volatile, noinline
 * and no optimisation of these two helpers it is the usual way such tests look at
 * dead stack, and the test suite only runs it with the compilers it was checked on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secagg.h"

#define DEPTH 65536

__attribute__((noinline)) static void scrub(void)
{
    volatile uint8_t frame[DEPTH];
    for (size_t i = 0; i < DEPTH; i++)
        frame[i] = 0x5a;
}

__attribute__((noinline)) static int found(const uint8_t *needle, size_t n)
{
    volatile uint8_t frame[DEPTH];
    for (size_t i = 0; i + n <= DEPTH; i++) {
        size_t j = 0;
        while (j < n && frame[i + j] == needle[j])
            j++;
        if (j == n)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *what = argv[1];
    uint8_t *key = malloc(32 * 3), *needle = malloc(32), *out = malloc(4096);
    uint32_t *acc = calloc(4096, sizeof *acc);
    double *x = calloc(2048, sizeof *x);
    const uint8_t nonce[12] = {0};
    int8_t signs[3] = {1, -1, 1};
    size_t clipped, bad;
    if (!key || !needle || !out || !acc || !x)
        return 2;
    for (int i = 0; i < 96; i++)
        key[i] = (uint8_t)(0xA7 ^ (i * 29));
    memcpy(needle, key, 32);
    int rc = 0;
    if (strcmp(what, "fixedpoint") == 0) /* keystream bytes 64..95 of the seed: block 1 */
        rc = secagg_chacha20_keystream(needle, 32, key, nonce, 1);
    scrub();
    if (strcmp(what, "chacha20") == 0)
        rc |= secagg_chacha20_keystream(out, 200, key, nonce, 3);
    else if (strncmp(what, "chacha20-", 9) == 0) /* chacha20-<impl id> */
        rc |= secagg_chacha20_keystream_impl(atoi(what + 9), out, 200, key, nonce, 3);
    else if (strncmp(what, "aes256ctr-", 10) == 0)
        rc |= secagg_aes256ctr_keystream_impl(atoi(what + 10), out, 200, key, nonce, 3);
    else if (strcmp(what, "aes256ctr") == 0)
        rc |= secagg_aes256ctr_keystream(out, 200, key, nonce, 3);
    else if (strcmp(what, "mask-chacha20") == 0)
        rc |= secagg_mask_accumulate_u32(acc, 4000, 3, 32, key, signs, 3, SECAGG_IMPL_BEST);
    else if (strcmp(what, "mask-aes256ctr") == 0)
        rc |= secagg_mask_accumulate_cipher_u32(acc, 4000, 3, 32, key, signs, 3,
                                                SECAGG_CIPHER_AES256CTR, SECAGG_IMPL_BEST);
    else if (strcmp(what, "fixedpoint") == 0)
        rc |= secagg_fixedpoint_encode_f64_u32((uint32_t *)(void *)out, x, 1000, 1.0, 1024.0, 32,
                                               key, &clipped, &bad);
    else
        return 2;
    if (rc != 0)
        return 2;
    int hit = found(needle, 32);
    printf("%s: %s\n", what, hit ? "secret left on the stack" : "clean");
    return hit;
}
