/* CPU feature detection and the implementation table (after libsodium's
 * runtime.c). Features are detected once; the table itself is constant. */
#include <stdatomic.h>
#include <stdint.h>

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

#if SECAGG_X86_SIMD
/* CPUID leaf `leaf`, sub-leaf `sub`: {eax, ebx, ecx, edx}. Inline assembly, not
 * __builtin_cpu_supports: clang 14 rejects feature names such as "vaes", and newer
 * compilers turn an unknown name into a constant 0, silently disabling a path. */
static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* XCR0: which register states the OS saves on a context switch. Only called once
 * CPUID says OSXSAVE, so the instruction exists and is enabled. */
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

#define BIT(n) ((uint32_t)1 << (n))
/* XCR0 bits: SSE (XMM), AVX (upper YMM), opmask, ZMM_Hi256, Hi16_ZMM. */
#define XCR0_YMM (BIT(1) | BIT(2))
#define XCR0_ZMM (XCR0_YMM | BIT(5) | BIT(6) | BIT(7))
#endif

/* The features a path needs, each only if the CPU has it and the OS saves its
 * registers: AVX2 and VAES need the YMM state, AVX-512 the ZMM and mask state. */
static int detect_features(void)
{
    int f = FEATURE_DETECTED;
#if SECAGG_X86_SIMD
    uint32_t r[4];
    cpuid(0, 0, r);
    const uint32_t max_leaf = r[0];
    if (max_leaf < 1)
        return f;
    cpuid(1, 0, r);
    const uint32_t ecx1 = r[2], edx1 = r[3];
    uint32_t ebx7 = 0, ecx7 = 0;
    if (max_leaf >= 7) {
        cpuid(7, 0, r);
        ebx7 = r[1];
        ecx7 = r[2];
    }
    const int osxsave = (ecx1 & BIT(27)) != 0;
    const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    const int ymm = osxsave && (ecx1 & BIT(28)) /* AVX */ && (xcr0 & XCR0_YMM) == XCR0_YMM;
    const int zmm = ymm && (xcr0 & XCR0_ZMM) == XCR0_ZMM;

    if (edx1 & BIT(26))
        f |= FEATURE_SSE2;
    if ((ecx1 & BIT(25)) && (ecx1 & BIT(9)) && (ecx1 & BIT(19))) /* AES, SSSE3, SSE4.1 */
        f |= FEATURE_AESNI;
    if (ymm && (ebx7 & BIT(5)))
        f |= FEATURE_AVX2;
    if (ymm && (ecx7 & BIT(9)))
        f |= FEATURE_VAES;
    if (zmm && (ebx7 & BIT(16)))
        f |= FEATURE_AVX512F;
    if (zmm && (ebx7 & BIT(30)))
        f |= FEATURE_AVX512BW;
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
