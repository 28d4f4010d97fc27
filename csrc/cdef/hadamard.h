/* Fast Walsh-Hadamard transform, in place on n float64 values, n a power of two
 * (1 <= n <= 2^40), in natural (Sylvester) order and unnormalised: applying it
 * twice multiplies by n. O(n log n) additions; -1 if n is not a power of two. */
int secagg_hadamard_fwht(double *x, size_t n);
