/* Constant-time check after Adam Langley's ctgrind: secrets are marked undefined
 * for valgrind's memcheck, which then reports every conditional jump and every
 * memory index that depends on them. Built with -DSECAGG_CTGRIND and run by
 * tests/test_ctgrind.py under `valgrind --error-exitcode=1`.
 *
 * argv[1] picks what runs: "core" (every secret-handling kernel) or "canary" (a
 * deliberate secret-dependent branch, which must be reported: the check works). */
#include <stdio.h>
#include <string.h>
#include <valgrind/memcheck.h>

#include "secagg.h"

#define SECRET(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#define PUBLIC(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))

static int failures;

static void expect(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "ctgrind: %s failed\n", what);
        failures++;
    }
}

static void shamir(void)
{
    enum { N = 5, T = 3, C = 5 };
    uint64_t secret[C], coeffs[(T - 1) * C], xs[N], shares[N * C], lag[T], back[C];
    const uint64_t p = secagg_shamir_prime();
    for (int c = 0; c < C; c++)
        secret[c] = (p - 1 - 977u * (uint64_t)c) ^ (c & 1); /* values near p exercise reductions */
    for (int i = 0; i < (T - 1) * C; i++)
        coeffs[i] = p - 2 - (uint64_t)i * 0x1234567u;
    for (int i = 0; i < N; i++)
        xs[i] = (uint64_t)i + 1;
    SECRET(secret, sizeof secret);
    SECRET(coeffs, sizeof coeffs);
    expect(secagg_shamir_split(shares, secret, coeffs, xs, N, T, C) == 0, "split");
    expect(secagg_shamir_lagrange(lag, xs, T) == 0, "lagrange");
    SECRET(shares, sizeof shares); /* already undefined; explicit for clarity */
    expect(secagg_shamir_combine(back, shares, lag, T, C) == 0, "combine");
    PUBLIC(back, sizeof back);
    PUBLIC(secret, sizeof secret);
    expect(memcmp(back, secret, sizeof back) == 0, "shamir round trip");
}

static void fixedpoint(void)
{
    enum { M = 300 };
    double x[M], dec[M];
    float xf[M];
    uint32_t out32[M];
    uint64_t out64[M];
    uint8_t seed[32];
    size_t clipped, bad;
    for (int i = 0; i < M; i++) {
        x[i] = (i % 7 == 0 ? 1e30 : (i - M / 2) * 0.0173) * (i % 2 ? 1 : -1);
        xf[i] = (float)x[i];
    }
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(7 * i + 1);
    SECRET(x, sizeof x);
    SECRET(xf, sizeof xf);
    SECRET(seed, sizeof seed);
    expect(secagg_fixedpoint_encode_f64_u32(out32, x, M, 1.0, 1 << 20, 32, seed, &clipped, &bad)
               == 0, "encode f64 u32");
    expect(secagg_fixedpoint_encode_f32_u64(out64, xf, M, 2.5, 1e9, 48, seed, &clipped, &bad)
               == 0, "encode f32 u64");
    expect(secagg_fixedpoint_decode_u32(dec, out32, M, 1 << 20, 32) == 0, "decode u32");
    expect(secagg_fixedpoint_decode_u64(dec, out64, M, 1e9, 48) == 0, "decode u64");
}

static void masks(void)
{
    enum { M = 1000, K = 3 };
    uint8_t keys[32 * K], stream[200];
    int8_t signs[K] = {1, -1, 1};
    uint32_t acc32[M];
    uint64_t acc64[M];
    const uint8_t nonce[12] = {0};
    for (int i = 0; i < 32 * K; i++)
        keys[i] = (uint8_t)(i * 13 + 5);
    for (int i = 0; i < M; i++) {
        acc32[i] = (uint32_t)i * 2654435761u;
        acc64[i] = (uint64_t)i * 0x9E3779B97F4A7C15u;
    }
    SECRET(keys, sizeof keys);
    SECRET(acc32, sizeof acc32);
    SECRET(acc64, sizeof acc64);
    expect(secagg_chacha20_keystream(stream, sizeof stream, keys, nonce, 7) == 0, "chacha20");
    /* Offsets inside a block take the partial-block path too. */
    expect(secagg_mask_accumulate_u32(acc32, M - 3, 3, 27, keys, signs, K, SECAGG_IMPL_BEST) == 0,
           "mask u32");
    expect(secagg_mask_accumulate_u64(acc64, M - 5, 5, 64, keys, signs, K, SECAGG_IMPL_BEST) == 0,
           "mask u64");
    if (secagg_runtime_cipher_impl_best(SECAGG_CIPHER_AES256CTR) >= 0) {
        expect(secagg_aes256ctr_keystream(stream, sizeof stream, keys, nonce, 7) == 0, "aes");
        expect(secagg_mask_accumulate_cipher_u32(acc32, M - 3, 3, 32, keys, signs, K,
                                                 SECAGG_CIPHER_AES256CTR, SECAGG_IMPL_BEST) == 0,
               "aes mask u32");
    }
}

static void canary(void)
{
    uint64_t secret = 12345;
    SECRET(&secret, sizeof secret);
    if (secret & 1) /* a secret-dependent branch: memcheck must report it */
        printf("odd\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "canary") == 0) {
        canary();
        return 0;
    }
    shamir();
    fixedpoint();
    masks();
    return failures != 0;
}
