/* CPU feature detection and the implementation table (after libsodium's
 * runtime.c). Features are detected once; the table itself is constant. */
#include <stdatomic.h>

#include "aes256ctr_impl.h"
#include "chacha20_impl.h"

enum {
    FEATURE_DETECTED = 1,
    FEATURE_SSE2 = 2,
    FEATURE_AVX2 = 4,
    FEATURE_AVX512F = 8,
    FEATURE_AESNI = 16, /* AES-NI with the SSSE3 / SSE4.1 shuffles its path uses */
    FEATURE_VAES = 32,
    FEATURE_AVX512BW = 64
};

/* 0 until detected. Every thread that races to fill it computes the same value. */
static _Atomic int cpu_features;

static int detect_features(void)
{
    int f = FEATURE_DETECTED;
#if SECAGG_X86_SIMD
    /* These builtins also check that the OS saves the wide registers (XGETBV). */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse2"))
        f |= FEATURE_SSE2;
    if (__builtin_cpu_supports("avx2"))
        f |= FEATURE_AVX2;
    if (__builtin_cpu_supports("avx512f"))
        f |= FEATURE_AVX512F;
    if (__builtin_cpu_supports("avx512bw"))
        f |= FEATURE_AVX512BW;
    if (__builtin_cpu_supports("aes") && __builtin_cpu_supports("ssse3") &&
        __builtin_cpu_supports("sse4.1"))
        f |= FEATURE_AESNI;
    if (__builtin_cpu_supports("vaes"))
        f |= FEATURE_VAES;
#endif
    return f;
}

static int features(void)
{
    int f = atomic_load_explicit(&cpu_features, memory_order_relaxed);
    if (f == 0) {
        f = detect_features();
        atomic_store_explicit(&cpu_features, f, memory_order_relaxed);
    }
    return f;
}

/* Indexed by SECAGG_IMPL_*; `needs` is the feature set a CPU must have. */
static const struct {
    secagg_chacha20_impl chacha20;
    int needs;
} impls[] = {
    [SECAGG_IMPL_SCALAR] = {{"scalar", secagg_chacha20_ref_blocks}, FEATURE_DETECTED},
#if SECAGG_X86_SIMD
    [SECAGG_IMPL_SSE2] = {{"sse2", secagg_chacha20_sse2_blocks}, FEATURE_SSE2},
    [SECAGG_IMPL_AVX2] = {{"avx2", secagg_chacha20_avx2_blocks}, FEATURE_SSE2 | FEATURE_AVX2},
    [SECAGG_IMPL_AVX512] = {{"avx512", secagg_chacha20_avx512_blocks},
                            FEATURE_SSE2 | FEATURE_AVX2 | FEATURE_AVX512F},
#else
    [SECAGG_IMPL_SSE2] = {{"sse2", NULL}, 0},
    [SECAGG_IMPL_AVX2] = {{"avx2", NULL}, 0},
    [SECAGG_IMPL_AVX512] = {{"avx512", NULL}, 0},
#endif
};

#define IMPL_COUNT ((int)(sizeof impls / sizeof impls[0]))

int secagg_runtime_impl_count(void) { return IMPL_COUNT; }

int secagg_runtime_simd_built(void) { return SECAGG_X86_SIMD; }

int secagg_runtime_impl_available(int impl)
{
    if (impl < 0 || impl >= IMPL_COUNT || impls[impl].chacha20.blocks == NULL)
        return 0;
    return (features() & impls[impl].needs) == impls[impl].needs;
}

int secagg_runtime_impl_best(void)
{
    for (int impl = IMPL_COUNT - 1; impl > 0; impl--)
        if (secagg_runtime_impl_available(impl))
            return impl;
    return SECAGG_IMPL_SCALAR;
}

const char *secagg_runtime_impl_name(int impl)
{
    if (impl < 0 || impl >= IMPL_COUNT)
        return NULL;
    return impls[impl].chacha20.name;
}

const secagg_chacha20_impl *secagg_runtime_chacha20(int impl)
{
    if (impl == SECAGG_IMPL_BEST)
        impl = secagg_runtime_impl_best();
    if (!secagg_runtime_impl_available(impl))
        return NULL;
    return &impls[impl].chacha20;
}

/* AES-256-CTR, indexed by SECAGG_IMPL_AESNI..; no portable entry (see aes256ctr_impl.h). */
static const struct {
    secagg_aes256ctr_impl aes;
    int needs;
} aes_impls[] = {
#if SECAGG_X86_SIMD
    [SECAGG_IMPL_AESNI] = {{"aesni", secagg_aes256ctr_aesni_blocks}, FEATURE_AESNI},
    [SECAGG_IMPL_VAES_AVX2] = {{"vaes-avx2", secagg_aes256ctr_vaes_avx2_blocks},
                               FEATURE_AESNI | FEATURE_VAES | FEATURE_AVX2},
    [SECAGG_IMPL_VAES_AVX512] = {{"vaes-avx512", secagg_aes256ctr_vaes_avx512_blocks},
                                 FEATURE_AESNI | FEATURE_VAES | FEATURE_AVX2 | FEATURE_AVX512F |
                                     FEATURE_AVX512BW},
#else
    [SECAGG_IMPL_AESNI] = {{"aesni", NULL}, 0},
    [SECAGG_IMPL_VAES_AVX2] = {{"vaes-avx2", NULL}, 0},
    [SECAGG_IMPL_VAES_AVX512] = {{"vaes-avx512", NULL}, 0},
#endif
};

#define AES_IMPL_COUNT ((int)(sizeof aes_impls / sizeof aes_impls[0]))

static int aes_available(int impl)
{
    if (impl < 0 || impl >= AES_IMPL_COUNT || aes_impls[impl].aes.blocks == NULL)
        return 0;
    return (features() & aes_impls[impl].needs) == aes_impls[impl].needs;
}

const secagg_aes256ctr_impl *secagg_runtime_aes256ctr(int impl)
{
    if (impl == SECAGG_IMPL_BEST)
        impl = secagg_runtime_cipher_impl_best(SECAGG_CIPHER_AES256CTR);
    if (!aes_available(impl))
        return NULL;
    return &aes_impls[impl].aes;
}

int secagg_runtime_cipher_count(void) { return 2; }

const char *secagg_runtime_cipher_name(int cipher)
{
    switch (cipher) {
    case SECAGG_CIPHER_CHACHA20: return "chacha20";
    case SECAGG_CIPHER_AES256CTR: return "aes256ctr";
    default: return NULL;
    }
}

int secagg_runtime_cipher_impl_count(int cipher)
{
    switch (cipher) {
    case SECAGG_CIPHER_CHACHA20: return IMPL_COUNT;
    case SECAGG_CIPHER_AES256CTR: return AES_IMPL_COUNT;
    default: return 0;
    }
}

int secagg_runtime_cipher_impl_available(int cipher, int impl)
{
    switch (cipher) {
    case SECAGG_CIPHER_CHACHA20: return secagg_runtime_impl_available(impl);
    case SECAGG_CIPHER_AES256CTR: return aes_available(impl);
    default: return 0;
    }
}

int secagg_runtime_cipher_impl_best(int cipher)
{
    for (int impl = secagg_runtime_cipher_impl_count(cipher) - 1; impl >= 0; impl--)
        if (secagg_runtime_cipher_impl_available(cipher, impl))
            return impl;
    return -1;
}

const char *secagg_runtime_cipher_impl_name(int cipher, int impl)
{
    switch (cipher) {
    case SECAGG_CIPHER_CHACHA20: return secagg_runtime_impl_name(impl);
    case SECAGG_CIPHER_AES256CTR:
        return impl < 0 || impl >= AES_IMPL_COUNT ? NULL : aes_impls[impl].aes.name;
    default: return NULL;
    }
}
