/* Internal interface between the ChaCha20 dispatcher, its implementations and
 * the runtime (after libsodium's stream_chacha20.h). Not part of the cffi API. */
#ifndef SECAGG_CHACHA20_IMPL_H
#define SECAGG_CHACHA20_IMPL_H

#include "secagg.h"

/* The x86-64 SIMD paths. -DSECAGG_NO_SIMD builds only the portable core, as
 * on other CPUs (and lets x86 machines test that build). */
#if defined(__x86_64__) && !defined(SECAGG_NO_SIMD)
#define SECAGG_X86_SIMD 1
#else
#define SECAGG_X86_SIMD 0
#endif

/* What an implementation does with each 64-byte keystream block it computes. */
enum secagg_chacha20_op {
    SECAGG_CHACHA20_STORE = 0, /* dst[0..64) = keystream bytes */
    SECAGG_CHACHA20_ADD32 = 1, /* 16 uint32 words at dst += keystream words (mod 2^32) */
    SECAGG_CHACHA20_SUB32 = 2, /* 16 uint32 words at dst -= keystream words (mod 2^32) */
    SECAGG_CHACHA20_ADD64 = 3, /* 8 uint64 words at dst += keystream words (mod 2^64) */
    SECAGG_CHACHA20_SUB64 = 4  /* 8 uint64 words at dst -= keystream words (mod 2^64) */
};

/* One implementation. blocks() handles nblocks whole blocks starting at block
 * state[12], applying `op` to dst + 64*i for block i. The caller has checked
 * that state[12] + nblocks - 1 does not overflow 32 bits, and that dst points
 * to 64*nblocks bytes (uint32/uint64 aligned for the ADD/SUB ops). */
typedef struct secagg_chacha20_impl {
    const char *name;
    void (*blocks)(uint8_t *dst, size_t nblocks, const uint32_t state[16], int op);
} secagg_chacha20_impl;

/* The initial state: constants, key, counter, nonce (RFC 8439 section 2.3). */
void secagg_chacha20_state_init(uint32_t state[16], const uint8_t *key, const uint8_t *nonce,
                                uint32_t counter);

void secagg_chacha20_ref_blocks(uint8_t *dst, size_t nblocks, const uint32_t state[16], int op);
#if SECAGG_X86_SIMD
void secagg_chacha20_sse2_blocks(uint8_t *dst, size_t nblocks, const uint32_t state[16], int op);
void secagg_chacha20_avx2_blocks(uint8_t *dst, size_t nblocks, const uint32_t state[16], int op);
void secagg_chacha20_avx512_blocks(uint8_t *dst, size_t nblocks, const uint32_t state[16],
                                   int op);
#endif

/* The implementation with id `impl` (SECAGG_IMPL_*, or SECAGG_IMPL_BEST), or
 * NULL if it is unknown or this CPU cannot run it. Defined in runtime.c. */
const secagg_chacha20_impl *secagg_runtime_chacha20(int impl);

#endif /* SECAGG_CHACHA20_IMPL_H */
