"""The test suite's helpers: the public in-memory cohort of ``secagg.testing``."""

from secagg.testing.cohort import ROUND_OF, Cohort, Sent, make_config, raw_message, reencode

__all__ = ["ROUND_OF", "Cohort", "Sent", "make_config", "raw_message", "reencode"]
