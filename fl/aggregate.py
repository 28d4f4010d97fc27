"""One round's weighted sum: through secure aggregation (secagg.simulate) or in plaintext.

Both paths clip every coordinate to [-clip, clip] before weighting and drop the
same kind of clients, so they differ only by secagg's fixed-point quantisation.
Weights must lie in [0, 1] (FedAvg uses n_i / max_j n_j) so |w * x| <= clip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from secagg.errors import ensure

__all__ = ["AggregateResult", "aggregate", "DROPOUT_STAGES"]

DROPOUT_STAGES = ("advertise", "share", "masked", "consistency", "unmask")


@dataclass(frozen=True)
class AggregateResult:
    """The survivors' weighted sum and what the round cost."""

    sum: np.ndarray
    weight_sum: float
    survivors: tuple[int, ...]
    clipped: int
    seconds: float
    secure: bool
    k: int | None = None
    t: int | None = None
    bits: int | None = None
    max_abs_error: float | None = None
    upload_bytes_per_client: int | None = None


def aggregate(inputs: np.ndarray, weights: np.ndarray, *, secure: bool, clip: float,
              graph: str = "harary", bits: int | None = 32, dropout: float = 0.0,
              dropout_stage: str = "masked", seed: int | None = None) -> AggregateResult:
    """Sum ``weights[i] * clip(inputs[i])`` over the clients that do not drop out."""
    inputs = np.asarray(inputs, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    ensure(inputs.ndim == 2 and weights.shape == (inputs.shape[0],),
           f"need inputs (n, m) and weights (n,), got {inputs.shape} and {weights.shape}")
    ensure(bool(np.all((weights >= 0) & (weights <= 1))), "weights must lie in [0, 1]")
    ensure(clip > 0 and np.isfinite(clip), f"clip must be finite and > 0, got {clip}")
    clipped = int(np.count_nonzero(np.abs(inputs) > clip))
    start = time.perf_counter()
    if secure:
        from secagg import SimulationConfig, simulate

        # One client alone would reveal its update to the server: secagg needs two or more.
        ensure(inputs.shape[0] >= 2, f"secure aggregation needs at least 2 clients, got"
               f" {inputs.shape[0]}")

        cfg = SimulationConfig(graph=graph, clip=clip, bits=bits, dropout=dropout,
                               dropout_stage=dropout_stage, seed=seed)
        res = simulate(inputs, weights, cfg)
        return AggregateResult(np.asarray(res.sum, dtype=np.float64), float(res.weight_sum),
                               tuple(int(i) for i in res.survivors), clipped,
                               time.perf_counter() - start, True, res.k, res.t, res.bits,
                               float(res.max_abs_error), int(res.upload_bytes_per_client))
    n = inputs.shape[0]
    rng = np.random.default_rng(seed)
    gone = set(rng.choice(n, size=int(round(dropout * n)), replace=False).tolist()) if n else set()
    survivors = tuple(i for i in range(n) if i not in gone)
    idx = list(survivors)
    total = (weights[idx, None] * np.clip(inputs[idx], -clip, clip)).sum(0)
    return AggregateResult(total, float(weights[idx].sum()), survivors, clipped,
                           time.perf_counter() - start, False)
