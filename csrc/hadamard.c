/* Fast Walsh-Hadamard transform (unnormalised, Sylvester order), in place. */
#include "secagg.h"

/* n above the 2^40 limit; a size_t narrower than 41 bits cannot be. */
static int too_long(size_t n)
{
#if SIZE_MAX > 0xFFFFFFFFFFu
    return n > ((size_t)1 << 40);
#else
    (void)n;
    return 0;
#endif
}

int secagg_hadamard_fwht(double *x, size_t n)
{
    if (n == 0 || (n & (n - 1)) != 0 || too_long(n))
        return -1;
    if (x == NULL)
        return -1;
    for (size_t h = 1; h < n; h <<= 1) {
        for (size_t i = 0; i < n; i += 2 * h) {
            double *lo = x + i, *hi = x + i + h;
            for (size_t j = 0; j < h; j++) {
                double a = lo[j], b = hi[j];
                lo[j] = a + b;
                hi[j] = a - b;
            }
        }
    }
    return 0;
}
