/* Internal interface between the AES-256-CTR dispatcher, its implementations,
 * the fused mask kernel and the runtime. Not part of the cffi API.
 *
 * Counter blocks are nonce (12 bytes) || block counter (32-bit big-endian), as
 * in GCM and RFC 3686; block j of the stream is AES-256_key(nonce || BE32(j)).
 * There is no portable implementation: a table-free constant-time software AES
 * is slow and easy to get wrong, so the suite exists only where AES-NI does. */
#ifndef SECAGG_AES256CTR_IMPL_H
#define SECAGG_AES256CTR_IMPL_H

#include "chacha20_impl.h" /* SECAGG_X86_SIMD and the ops of enum secagg_chacha20_op */

#define SECAGG_AES256_ROUNDS 14

/* The 15 round keys of one AES-256 key (FIPS 197 section 5.2), 16-byte aligned. */
typedef struct secagg_aes256_schedule {
    _Alignas(16) uint8_t rk[(SECAGG_AES256_ROUNDS + 1) * 16];
} secagg_aes256_schedule;

/* One implementation. blocks() handles nblocks whole 16-byte blocks starting at
 * block `counter` of the stream (nonce, schedule), applying `op` (an
 * enum secagg_chacha20_op, here on 4 uint32 or 2 uint64 words per block) to
 * dst + 16*i for block i. The caller has checked that counter + nblocks - 1
 * does not overflow 32 bits and that dst points to 16*nblocks bytes (uint32 /
 * uint64 aligned for the ADD/SUB ops). */
typedef struct secagg_aes256ctr_impl {
    const char *name;
    void (*blocks)(uint8_t *dst, size_t nblocks, const secagg_aes256_schedule *ks,
                   const uint8_t nonce[12], uint32_t counter, int op);
} secagg_aes256ctr_impl;

#if SECAGG_X86_SIMD
/* Key expansion with AES-NI; every implementation needs AES-NI. */
void secagg_aes256_expand_aesni(secagg_aes256_schedule *ks, const uint8_t key[32]);
void secagg_aes256ctr_aesni_blocks(uint8_t *dst, size_t nblocks, const secagg_aes256_schedule *ks,
                                   const uint8_t nonce[12], uint32_t counter, int op);
void secagg_aes256ctr_vaes_avx2_blocks(uint8_t *dst, size_t nblocks,
                                       const secagg_aes256_schedule *ks, const uint8_t nonce[12],
                                       uint32_t counter, int op);
void secagg_aes256ctr_vaes_avx512_blocks(uint8_t *dst, size_t nblocks,
                                         const secagg_aes256_schedule *ks,
                                         const uint8_t nonce[12], uint32_t counter, int op);
#endif

/* The implementation with id `impl` (SECAGG_IMPL_AESNI.., or SECAGG_IMPL_BEST),
 * or NULL if it is unknown or this CPU cannot run it. Defined in runtime.c. */
const secagg_aes256ctr_impl *secagg_runtime_aes256ctr(int impl);

/* Expands `key` into `ks` for an implementation that secagg_runtime_aes256ctr
 * returned (so AES-NI is there). */
void secagg_aes256_expand(secagg_aes256_schedule *ks, const uint8_t key[32]);

#endif /* SECAGG_AES256CTR_IMPL_H */
