"""Distributed DP as an ``fl`` aggregator: clients noise their own rows inside secure aggregation.

Each sender encodes its row with a :class:`secagg.ddp.DistributedDp` (L2 clip, randomised
Hadamard rotation, conditional rounding, its share of exact integer noise, mod 2^bits)
and the real SecAgg(+) state machines (``secagg.simulation.run_session`` with encoded
inputs) add the vectors; the server decodes the unmasked modular sum. The server never
sees a noiseless sum: the noise was added by the clients before masking.

The SecAgg threshold is raised to at least ``min_survivors + max_colluders - 1`` (a released
sum containing an honest input holds at least threshold + 1 - max_colluders honest survivors;
see ``secagg.ddp.check_secagg_config``), so a round with fewer survivors aborts and releases
nothing; the accountant counts exactly ``min_survivors`` noise shares.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

import numpy as np

from fl.aggregators import Aggregate, AggregationAborted, Aggregator, RoundContext, _check, _dropouts
from secagg import SecAggConfig
from secagg.ddp import DistributedDp, check_secagg_config, secagg_threshold_for
from secagg.errors import SecAggError, SecAggValueError, ensure
from secagg.planner import planned_dropouts

__all__ = ["DistributedDpSum", "mechanism_for", "accountant_for"]


@dataclass
class DistributedDpSum(Aggregator):
    """The secure sum of client-noised rows (distributed DP, DDGauss or Skellam).

    Each row is scaled by its weight (in [0, 1], so its L2 norm stays within the clip the
    noise is calibrated for) before encoding, and the weight travels in SecAgg's weight
    element as in ``SecureSum``: the server learns the survivors' weight sum, exactly as it
    does without distributed DP.
    """

    ddp: DistributedDp
    graph: str = "harary"
    dropout: float = 0.0
    seed: int = 0
    max_colluders: int = 0
    #: True when who sends is public (cross-silo: every hospital, every round). The SecAgg
    #: graph and threshold are planned from the number of senders, so with a secret cohort
    #: they would reveal its size: they are then private figures, never published under DP.
    cohort_public: bool = False
    name: str = "distributed-dp"

    def aggregate(self, rows: np.ndarray, weights: np.ndarray, ctx: RoundContext) -> Aggregate:
        """Encode and noise every row client-side, sum them through SecAgg, decode."""
        from secagg.simulation import run_session

        rows, weights = _check(rows, weights, ctx)
        p = self.ddp
        ensure(rows.shape[1] == p.dim, f"rows have {rows.shape[1]} coordinates, the mechanism {p.dim}")
        n = rows.shape[0]
        ensure(n <= p.max_clients, f"{n} senders exceed the {p.max_clients} the wrap bound allows for")
        need = p.min_survivors + self.max_colluders
        if n < max(2, need):
            raise AggregationAborted(f"{n} senders cannot give {need} survivors")
        threshold = secagg_threshold_for(p, self.max_colluders)
        gone, stage, _ = _dropouts(n, self.dropout, self.seed, ctx.round)
        start = time.perf_counter()
        try:
            # The cohort's SecAgg config: planned per round (the cohort size is random), so a
            # cohort too small or sparse for the threshold aborts the round, releasing nothing.
            cfg = SecAggConfig.plan(n, p.d, clip=1.0, scale=1.0, graph=self.graph, bits=p.bits,
                                    dropout_rate=max(self.dropout, 0.05))
            if cfg.threshold < threshold:
                cfg = _raise_threshold(cfg, threshold, planned_dropouts(n, self.dropout))
            check_secagg_config(p, cfg, max_colluders=self.max_colluders)
            rotation_seed = os.urandom(32)  # public, fresh per round, independent of the rows
            encoded = np.empty((n, p.d + 1), dtype=np.uint32)
            for i in range(n):
                encoded[i, :-1] = self.encode_row(i, weights[i] * rows[i], rotation_seed)
                encoded[i, -1] = np.uint32(round(weights[i] * cfg.weight_scale))
            outcome = run_session(cfg, encoded, None, {int(i): stage for i in gone}, encoded=True)
        except SecAggError as exc:
            raise AggregationAborted(f"distributed-DP aggregation aborted: {exc}") from exc
        if outcome.result is None:
            raise AggregationAborted("secure aggregation aborted: too few survivors")
        res = outcome.result
        total = p.decode(np.asarray(res.raw[:-1], dtype=np.uint32), rotation_seed)
        planned = {"threshold": cfg.threshold, "graph": cfg.graph, "degree": cfg.degree}
        return Aggregate(
            total, float(res.weight_sum), tuple(int(i) for i in res.survivors),
            time.perf_counter() - start,
            public={"mechanism": p.mechanism, "bits": p.bits, "gamma": p.gamma,
                    "noise_share": float(p.noise), "min_survivors": p.min_survivors,
                    **(planned if self.cohort_public else {})},
            private={"clipped_rows": int(np.count_nonzero(np.linalg.norm(rows, axis=1) > p.clip)),
                     **({} if self.cohort_public else planned)})

    def encode_row(self, sender: int, row: np.ndarray, rotation_seed: bytes) -> np.ndarray:
        """What sender ``sender`` (a row position) puts into the secure sum: its encoded, noised
        row. Tests that play colluding clients override this to leave their noise out."""
        return self.ddp.encode(row, rotation_seed)


def _raise_threshold(cfg: SecAggConfig, threshold: int, dropouts: int) -> SecAggConfig:
    """``cfg`` with ``threshold``, the graph's degree raised to hold it if it must be.

    A higher threshold only ever needs more survivors. Every client must keep ``threshold``
    neighbours after ``dropouts`` of them vanish, so a Harary graph's degree is raised to
    the smallest even value >= threshold + dropouts (SecAgg+ with more neighbours); when that
    is not below n - 1 the graph is complete. Small cohorts (cross-silo) therefore run on a
    dense graph: the noise guarantee needs that many survivors in every neighbourhood.
    """
    n = cfg.num_clients
    ensure(threshold <= n - 1, f"the SecAgg threshold {threshold} that min_survivors and"
           f" max_colluders need is more than the {n - 1} neighbours a client has in a round of {n}")
    degree = max(cfg.degree, threshold + dropouts)
    degree += degree % 2
    if cfg.graph == "harary" and degree < n - 1:
        return dataclasses.replace(cfg, degree=degree, threshold=threshold)
    return dataclasses.replace(cfg, graph="complete", degree=n - 1, threshold=threshold)


def mechanism_for(mechanism: str, *, noise_multiplier: float, clip: float, width: int,
                  max_clients: int, min_survivors: int, bits: int,
                  max_skellam_mu: int = 2**20, max_records: int | None = None) -> DistributedDp:
    """The finest-grained ``DistributedDp`` whose aggregate noise std is ``noise_multiplier * clip``.

    The total noise of ``min_survivors`` shares matches central DP's std (each share is
    rounded up to an exact rational); gamma is the smallest on a quarter-decade grid whose
    wrap bound holds at ``bits``. Rounding inflates the sensitivity a little at that gamma;
    the accountant charges the inflated value, so the epsilon reported is honest. Skellam
    shares are capped at ``max_skellam_mu`` (the exact sampler costs O(sqrt(mu)) per value), which
    forces a coarser gamma. ``max_records`` selects the record unit (cross-silo DP-SGD:
    each client sends a sum of up to that many clipped records; see ``DistributedDp``).
    """
    from secagg.ddp import rational_at_least

    ensure(noise_multiplier > 0, "distributed DP needs a noise multiplier > 0")
    ensure(2 <= bits <= 32, f"distributed DP needs 2 <= bits <= 32, got {bits}")
    best: DistributedDp | None = None
    for k in range(0, 41):
        gamma = clip * 10.0 ** (-k / 4.0)
        share = (noise_multiplier * clip / gamma) ** 2 / min_survivors
        if mechanism == "ddgauss":
            noise = max(rational_at_least(share, 2**16), rational_at_least(0.25, 4))
        else:
            noise = rational_at_least(share / 2.0, 2**16)
            if noise > max_skellam_mu:
                break
        try:
            best = DistributedDp(mechanism, dim=width, clip=clip, gamma=gamma, bits=bits,
                                 noise=noise, max_clients=max_clients, min_survivors=min_survivors,
                                 unit="client" if max_records is None else "record",
                                 max_records=max_records)
        except SecAggError:
            if best is not None:
                break
    if best is None:
        raise SecAggValueError(f"no gamma lets {bits} bits carry {max_clients} clients' sum with"
                               f" noise multiplier {noise_multiplier:g}: raise --bits")
    return best


def accountant_for(ddp: DistributedDp, *, delta: float, sampling_rate: float):
    """The accountant of a run that releases one ``ddp`` sum per round (secagg.ddp.accounting)."""
    from secagg.ddp import DistributedDpAccountant

    return DistributedDpAccountant(ddp.mechanism, float(ddp.noise), ddp.min_survivors, ddp.l2_bound,
                                   ddp.l1_bound, ddp.d, delta, sampling_rate, ddp.unit)
