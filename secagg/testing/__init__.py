"""Testing aids for secagg and for systems that embed it (the core never imports this package).

- ``expected_outcome`` (the oracle): the exact sum and survivors, or the abort
  an honest server must reach and why, for a config, inputs and a vanishing
  ``Schedule``; it knows the neighbour graph.
- ``run_schedule``: drives real clients and a real server through a
  ``Transport`` (``InMemoryTransport`` by default, or the embedder's own) under
  a ``Schedule`` and a ``DeliveryPlan`` of faults, on a ``FakeClock`` or
  ``SystemClock``, and returns a ``Verdict``; ``verdict.check(expected)``
  compares the two. ``effective_schedule`` folds lost messages into the schedule.
- ``Cohort``: n clients and a server wired back to back in memory, with hooks
  that let a test play a malicious server or network; ``secagg.testing.attacks``
  has ready-made malicious-server behaviours and the checks they must fail.
- ``run_session`` (from ``secagg.simulation``): the timed in-memory driver.
- ``secagg.testing.strategies``: Hypothesis strategies (needs the ``test``
  extra); imported on demand so that this package works without Hypothesis.

See docs/embedding.md for a worked example with a loopback TCP transport.
"""

from secagg.simulation import STAGES, SessionOutcome, run_session
from secagg.testing.cohort import Cohort, make_config
from secagg.testing.oracle import AbortKind, Expected, Schedule, classify_abort, expected_outcome
from secagg.testing.transport import (
    Clock,
    DeliveryPlan,
    FakeClock,
    Fault,
    InMemoryTransport,
    SystemClock,
    Transport,
    Verdict,
    effective_schedule,
    run_schedule,
)

__all__ = [
    "STAGES",
    "AbortKind",
    "Clock",
    "Cohort",
    "DeliveryPlan",
    "Expected",
    "FakeClock",
    "Fault",
    "InMemoryTransport",
    "Schedule",
    "SessionOutcome",
    "SystemClock",
    "Transport",
    "Verdict",
    "classify_abort",
    "effective_schedule",
    "expected_outcome",
    "make_config",
    "run_schedule",
    "run_session",
]
