"""The test suite's helpers: the public in-memory cohort of ``secagg.testing``."""

from secagg.bindings import SIMD_BUILT
from secagg.testing.cohort import ROUND_OF, Cohort, Sent, make_config, raw_message, reencode

# Why AES-256-CTR tests skip: the portable build has no AES at all, whatever the CPU.
NO_AES_REASON = (
    "no AES-256-CTR here: this CPU has no AES-NI" if SIMD_BUILT
    else "no AES-256-CTR here: the core was built without SIMD (-DSECAGG_NO_SIMD)"
)

__all__ = ["NO_AES_REASON", "ROUND_OF", "Cohort", "Sent", "make_config", "raw_message", "reencode"]
