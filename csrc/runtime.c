/* CPU feature detection and the implementation table (after libsodium's
 * runtime.c). Features are detected once; the table itself is constant. */
#include <stdatomic.h>

#include "chacha20_impl.h"

enum {
    FEATURE_DETECTED = 1,
    FEATURE_SSE2 = 2,
    FEATURE_AVX2 = 4,
    FEATURE_AVX512F = 8
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
