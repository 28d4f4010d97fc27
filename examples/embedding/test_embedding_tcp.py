"""Copy this file to test your own transport with secagg.testing.

Replace ``LoopbackTCPTransport`` by your transport (anything with the methods of
``secagg.testing.Transport``). Each test runs real secagg clients and a real
server through it and checks the outcome against the protocol's oracle: the
exact sum over the clients that must survive, or the abort that must happen.
CI runs this file against the loopback TCP transport of docs/embedding.md.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from tcp_transport import LoopbackTCPTransport

from secagg.testing import (
    DeliveryPlan,
    Fault,
    Schedule,
    SystemClock,
    effective_schedule,
    expected_outcome,
    make_config,
    run_schedule,
)
from secagg.testing import strategies as sst

#: How long a round waits for answers on a real clock. Vanished clients close their
#: connection, so only LATE faults make a round wait this long.
ROUND_TIMEOUT = 0.5


def _run(case: dict) -> None:
    verdict = run_schedule(**case, transport=LoopbackTCPTransport(), clock=SystemClock(),
                           round_timeout=ROUND_TIMEOUT)
    schedule = effective_schedule(case["config"], case["schedule"], case["plan"])
    verdict.check(expected_outcome(case["config"], case["inputs"], case["weights"], schedule,
                                   verdict.graph, encoded=case["encoded"]))


def test_a_session_without_faults_sums_exactly():
    config = make_config(n=8, threshold=5)
    x = np.random.default_rng(0).uniform(-1, 1, size=(8, config.vector_length))
    _run(dict(config=config, inputs=x, weights=None, schedule=Schedule({3: "masked", 6: "unmask"}),
              plan=DeliveryPlan(), encoded=False))


def test_duplicated_and_reordered_messages_change_nothing():
    config = make_config(n=6, threshold=4)
    x = np.random.default_rng(1).uniform(-1, 1, size=(6, config.vector_length))
    faults = {(c, stage): Fault.DUPLICATE for c in range(6) for stage in ("advertise", "masked")}
    _run(dict(config=config, inputs=x, weights=None, schedule=Schedule(),
              plan=DeliveryPlan(faults, order_seed=3), encoded=False))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(sst.sessions(max_clients=8))
def test_the_transport_gives_the_verdicts_the_protocol_requires(case):
    _run(case)
