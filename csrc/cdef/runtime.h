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

/* Number of implementation ids (valid ids are 0 .. count-1). */
int secagg_runtime_impl_count(void);

/* 1 if implementation `impl` exists in this build and runs on this CPU, else 0. */
int secagg_runtime_impl_available(int impl);

/* The id of the fastest available implementation. */
int secagg_runtime_impl_best(void);

/* A short name ("scalar", "sse2", "avx2", "avx512"), or NULL for an unknown id. */
const char *secagg_runtime_impl_name(int impl);
