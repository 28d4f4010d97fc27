/* secagg C core: the exported API.
 *
 * Conventions (after libsodium): functions are named secagg_<module>_<op>,
 * lengths are element counts as size_t, and functions return 0 on success
 * and -1 on bad arguments. The declarations live in cdef/<module>.h, which
 * cffi reads as well, so each one is written exactly once.
 */
#ifndef SECAGG_H
#define SECAGG_H

#include <stddef.h>
#include <stdint.h>

#include "cdef/aes256ctr.h"
#include "cdef/chacha20.h"
#include "cdef/fixedpoint.h"
#include "cdef/hadamard.h"
#include "cdef/mask.h"
#include "cdef/memzero.h"
#include "cdef/noise.h"
#include "cdef/pack.h"
#include "cdef/runtime.h"
#include "cdef/shamir.h"

#endif /* SECAGG_H */
