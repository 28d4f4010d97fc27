/* Drives the Shamir C API from stdin, for tests/test_c_builds.py: build it with and
 * without -DSECAGG_NO_INT128 and compare both against Python's big integers.
 *
 * Input (decimal, whitespace-separated): n t chunks, then chunks secret values,
 * (t-1)*chunks coefficients and n x-coordinates. Output: the return codes and
 * values of split (n*chunks shares), lagrange (over the first t xs) and combine
 * (of the first t shares), one line each. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "secagg.h"

static uint64_t *read_n(size_t count)
{
    uint64_t *v = calloc(count ? count : 1, sizeof *v);
    for (size_t i = 0; v != NULL && i < count; i++)
        if (scanf("%" SCNu64, &v[i]) != 1)
            exit(3);
    return v;
}

static void print_n(const char *name, int rc, const uint64_t *v, size_t count)
{
    printf("%s %d", name, rc);
    for (size_t i = 0; i < count; i++)
        printf(" %" PRIu64, v[i]);
    printf("\n");
}

int main(void)
{
    size_t n, t, chunks;
    if (scanf("%zu %zu %zu", &n, &t, &chunks) != 3 || t == 0 || t > n || chunks == 0)
        return 3;
    uint64_t *secret = read_n(chunks), *coeffs = read_n((t - 1) * chunks), *xs = read_n(n);
    uint64_t *shares = calloc(n * chunks, sizeof *shares), *lag = calloc(t, sizeof *lag);
    uint64_t *back = calloc(chunks, sizeof *back);
    if (!secret || !coeffs || !xs || !shares || !lag || !back)
        return 4;
    int rc = secagg_shamir_split(shares, secret, t > 1 ? coeffs : NULL, xs, n, t, chunks);
    print_n("split", rc, shares, n * chunks);
    rc = secagg_shamir_lagrange(lag, xs, t);
    print_n("lagrange", rc, lag, t);
    rc = secagg_shamir_combine(back, shares, lag, t, chunks);
    print_n("combine", rc, back, chunks);
    free(secret), free(coeffs), free(xs), free(shares), free(lag), free(back);
    return 0;
}
