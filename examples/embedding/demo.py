"""Run one secure-aggregation session over loopback TCP and compare with the plaintext sum.

    .venv/bin/python examples/embedding/demo.py

Eight clients, two of which vanish (one before sending its masked input, one
before unmasking); the server closes each round when every awaited client has
answered or after ROUND_TIMEOUT seconds. Everything listens on 127.0.0.1 and
is closed before the script exits.
"""

from __future__ import annotations

import numpy as np
from tcp_transport import LoopbackTCPTransport

from secagg import SecAggConfig
from secagg.testing import Schedule, SystemClock, run_schedule

ROUND_TIMEOUT = 2.0


def main() -> None:
    n, m = 8, 5
    config = SecAggConfig.plan(n, m, clip=1.0, graph="complete", dropout_rate=0.25)
    x = np.random.default_rng(0).uniform(-1, 1, size=(n, m))  # example data, not secrets
    verdict = run_schedule(config, x, None, Schedule({2: "masked", 5: "unmask"}),
                           transport=LoopbackTCPTransport(), clock=SystemClock(),
                           round_timeout=ROUND_TIMEOUT)
    if verdict.result is None:
        raise SystemExit(f"aborted: {verdict.abort_reason}")
    s = list(verdict.survivors)
    print("survivors:", s)
    print("secure sum:   ", np.round(verdict.result.sum, 4))
    print("plaintext sum:", np.round(x[s].sum(axis=0), 4))
    print("max error:", float(np.max(np.abs(verdict.result.sum - x[s].sum(axis=0)))),
          "bound:", len(s) / config.scale)


if __name__ == "__main__":
    main()
