/* Sets n bytes at p to zero with stores the compiler may not elide, as it may a
 * memset of memory that is never read again. Used on every secret the core
 * leaves in its own memory (key schedules, cipher states, keystream, Shamir
 * accumulators), and by Python on its mutable buffers of secrets. NULL or n == 0
 * does nothing. */
void secagg_memzero(void *p, size_t n);
