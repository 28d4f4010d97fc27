/* Runtime dispatch: the CPU's features are detected once, and each kernel runs
 * the best implementation this CPU supports. The ids are stable; tests and
 * benchmarks can name one to run it (every implementation is byte-identical). */
enum secagg_impl_id {
    SECAGG_IMPL_BEST = -1,
    SECAGG_IMPL_SCALAR = 0,
    SECAGG_IMPL_SSE2 = 1,
    SECAGG_IMPL_AVX2 = 2,
    SECAGG_IMPL_AVX512 = 3
};

/* The keystream ciphers a mask can be drawn from, and the AES-256-CTR
 * implementations (ids of their own: there is no scalar AES). */
enum secagg_cipher_id {
    SECAGG_CIPHER_CHACHA20 = 0,
    SECAGG_CIPHER_AES256CTR = 1
};
enum secagg_aes256ctr_impl_id {
    SECAGG_IMPL_AESNI = 0,
    SECAGG_IMPL_VAES_AVX2 = 1,
    SECAGG_IMPL_VAES_AVX512 = 2
};

/* 1 if this build has the x86-64 SIMD paths (AES-NI, VAES, SSE2, AVX2, AVX-512),
 * 0 for the portable build (-DSECAGG_NO_SIMD, or a CPU other than x86-64). */
int secagg_runtime_simd_built(void);

/* ChaCha20 implementations. Number of ids (valid ids are 0 .. count-1). */
int secagg_runtime_impl_count(void);

/* 1 if implementation `impl` exists in this build and runs on this CPU, else 0. */
int secagg_runtime_impl_available(int impl);

/* The id of the fastest available implementation. */
int secagg_runtime_impl_best(void);

/* A short name ("scalar", "sse2", "avx2", "avx512"), or NULL for an unknown id. */
const char *secagg_runtime_impl_name(int impl);

/* The same for any cipher: the number of cipher ids, a cipher's short name
 * ("chacha20", "aes256ctr"; NULL if unknown), and its implementations. A cipher
 * may have no implementation on a CPU (AES-256-CTR needs AES-NI): then
 * impl_best returns -1. */
int secagg_runtime_cipher_count(void);
const char *secagg_runtime_cipher_name(int cipher);
int secagg_runtime_cipher_impl_count(int cipher);
int secagg_runtime_cipher_impl_available(int cipher, int impl);
int secagg_runtime_cipher_impl_best(int cipher);
const char *secagg_runtime_cipher_impl_name(int cipher, int impl);
