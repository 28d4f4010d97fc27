"""Aggregators: one round's encoded client rows in, one released vector out.

The interface is small on purpose, in the manner of TFF's aggregation factories and
Flower's strategies: a FedAvg round hands an :class:`Aggregator` the rows its clients
sent (already clipped and encoded, every coordinate in ``[-ctx.bound, ctx.bound]``),
their weights in [0, 1], and a :class:`RoundContext` naming the blocks of coordinates
and how far one client can move each; it gets back an :class:`Aggregate` or an
:class:`AggregationAborted`. Implementations:

- :class:`PlaintextSum`: the weighted sum in the clear (a baseline and for speed);
- :class:`SecureSum`: the same sum through secure aggregation (``secagg.simulate``: the
  real client and server state machines in one process);
- :class:`CentralGaussian`: wraps either and adds N(0, (z_b * s_b)^2) to every coordinate of
  each block b (multiplier z_b, sensitivity s_b): central DP, the trusted server adds the noise.

Distributed DP plugs in here as one more implementation (clients encode and add integer
noise, the secure sum decodes), and so can a Flower strategy wrapper. Contract for new
implementations:

1. Return the sum over the survivors of ``weights[i] * rows[i]`` (rows clipped to the bound),
   plus whatever noise the aggregator adds; name the survivors by their row positions.
2. On failure raise :class:`AggregationAborted`: the round then releases nothing, the model
   does not move and the accountant charges nothing.
3. Put figures that may be published in ``Aggregate.public`` (functions of the configuration
   and of public cohort facts); anything computed from client values (quantisation error,
   clipped-coordinate counts, weight sums) goes in ``Aggregate.private``, which a DP run never
   publishes.

Dropouts are simulated here: a fraction ``dropout`` of the senders vanishes at a stage
drawn at random. That randomness is simulation of the world, not a privacy mechanism, so
it may come from a seeded numpy generator.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fl import noise
from secagg.errors import SecAggError, SecAggValueError, ensure

__all__ = [
    "Block",
    "RoundContext",
    "Aggregate",
    "AggregationAborted",
    "Aggregator",
    "PlaintextSum",
    "SecureSum",
    "CentralGaussian",
    "DROPOUT_STAGES",
    "dropped_count",
]

DROPOUT_STAGES = ("advertise", "share", "masked", "consistency", "unmask")


def dropped_count(n: int, rate: float) -> int:
    """How many of ``n`` senders the simulation drops at dropout rate ``rate``.

    The same rule secagg's simulation uses, so the plaintext and secure paths lose the same
    number of clients.
    """
    return int(round(rate * n))


class AggregationAborted(SecAggValueError):
    """The round produced no sum (too few survivors, a refused configuration, ...)."""


@dataclass(frozen=True)
class Block:
    """``size`` consecutive coordinates of every row; one client moves their weighted sum by at
    most ``sensitivity`` in L2 norm (None: unbounded, so no DP guarantee can cover them)."""

    name: str
    size: int
    sensitivity: float | None = None


@dataclass(frozen=True)
class RoundContext:
    """What an aggregator needs to know about a round besides the rows."""

    round: int
    bound: float
    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        """Bound positive and finite, at least one block."""
        ensure(self.bound > 0 and np.isfinite(self.bound), f"bound must be finite and > 0,"
               f" got {self.bound}")
        ensure(len(self.blocks) >= 1, "a round needs at least one block")

    @property
    def width(self) -> int:
        """Coordinates per row."""
        return sum(b.size for b in self.blocks)


@dataclass(frozen=True)
class Aggregate:
    """A round's released sum, who is in it, and its figures (public or not)."""

    sum: np.ndarray
    weight_sum: float
    survivors: tuple[int, ...]
    seconds: float
    public: dict[str, object] = field(default_factory=dict)
    private: dict[str, object] = field(default_factory=dict)


class Aggregator(ABC):
    """One round's weighted sum of encoded rows (see the module docstring for the contract)."""

    name: str = "aggregator"

    @abstractmethod
    def aggregate(self, rows: np.ndarray, weights: np.ndarray, ctx: RoundContext) -> Aggregate:
        """Sum ``weights[i] * rows[i]`` over the survivors; raise AggregationAborted on failure."""


def _check(rows: np.ndarray, weights: np.ndarray, ctx: RoundContext) -> tuple[np.ndarray, np.ndarray]:
    rows = np.asarray(rows, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    ensure(rows.ndim == 2 and weights.shape == (rows.shape[0],),
           f"need rows (n, m) and weights (n,), got {rows.shape} and {weights.shape}")
    ensure(rows.shape[1] == ctx.width, f"rows have {rows.shape[1]} coordinates, the round's"
           f" blocks {ctx.width}")
    ensure(bool(np.all((weights >= 0) & (weights <= 1))), "weights must lie in [0, 1]")
    return rows, weights


def _dropouts(n: int, rate: float, seed: int, rnd: int) -> tuple[np.ndarray, str, int]:
    """Which senders vanish this round, at which stage, and a seed for the protocol run."""
    rng = np.random.default_rng([seed, 7, rnd])
    stage = str(rng.choice(DROPOUT_STAGES)) if rate > 0 else "masked"
    gone = rng.choice(n, size=dropped_count(n, rate), replace=False) if n else np.zeros(0, int)
    return np.sort(gone), stage, int(rng.integers(2**31))


@dataclass
class PlaintextSum(Aggregator):
    """The weighted sum in the clear, with the same coordinate clip and dropouts as SecureSum."""

    dropout: float = 0.0
    seed: int = 0
    name: str = "plaintext"

    def aggregate(self, rows: np.ndarray, weights: np.ndarray, ctx: RoundContext) -> Aggregate:
        """Sum over the senders that do not drop out."""
        rows, weights = _check(rows, weights, ctx)
        start = time.perf_counter()
        n = rows.shape[0]
        gone, _, _ = _dropouts(n, self.dropout, self.seed, ctx.round)
        survivors = tuple(i for i in range(n) if i not in set(gone.tolist()))
        if not survivors:
            raise AggregationAborted("no client survived the round")
        idx = list(survivors)
        total = (weights[idx, None] * np.clip(rows[idx], -ctx.bound, ctx.bound)).sum(0)
        return Aggregate(total, float(weights[idx].sum()), survivors, time.perf_counter() - start,
                         private={"clipped_coordinates": int(np.count_nonzero(
                             np.abs(rows) > ctx.bound))})


@dataclass
class SecureSum(Aggregator):
    """The weighted sum through SecAgg+ (``graph="harary"``) or SecAgg (``"complete"``).

    Refuses fewer than two senders: one client alone would reveal its update to the server.
    """

    graph: str = "harary"
    bits: int | None = 32
    dropout: float = 0.0
    seed: int = 0
    name: str = "secagg"

    def aggregate(self, rows: np.ndarray, weights: np.ndarray, ctx: RoundContext) -> Aggregate:
        """Run one secagg session over the rows; raise AggregationAborted if it aborts."""
        from secagg import SimulationConfig, simulate

        rows, weights = _check(rows, weights, ctx)
        if rows.shape[0] < 2:
            raise AggregationAborted(f"secure aggregation needs at least 2 clients, got"
                                     f" {rows.shape[0]}")
        _, stage, seed = _dropouts(rows.shape[0], self.dropout, self.seed, ctx.round)
        start = time.perf_counter()
        try:
            cfg = SimulationConfig(graph=self.graph, clip=ctx.bound, bits=self.bits,
                                   dropout=self.dropout, dropout_stage=stage, seed=seed)
            res = simulate(rows, weights, cfg)
        except SecAggError as exc:
            raise AggregationAborted(f"secure aggregation aborted: {exc}") from exc
        return Aggregate(
            np.asarray(res.sum, dtype=np.float64), float(res.weight_sum),
            tuple(int(i) for i in res.survivors), time.perf_counter() - start,
            public={"bits": res.bits},
            private={"k": res.k, "t": res.t, "quantisation_error": float(res.max_abs_error),
                     "upload_bytes_per_client": int(res.upload_bytes_per_client),
                     "clipped_coordinates": int(np.count_nonzero(np.abs(rows) > ctx.bound))})


@dataclass
class CentralGaussian(Aggregator):
    """Central DP: the inner aggregator's sum plus N(0, (z_b * sensitivity_b)^2) per block.

    Every block of the round must have a finite sensitivity and a multiplier here, so nothing
    leaves un-noised. Noise comes from ``fl.noise`` (ChaCha20 keyed from ``os.urandom``).
    """

    inner: Aggregator
    multipliers: Mapping[str, float]
    name: str = "central-dp"

    def stds(self, ctx: RoundContext) -> np.ndarray:
        """Per-coordinate noise std for the round's layout."""
        out = []
        for block in ctx.blocks:
            ensure(block.name in self.multipliers and block.sensitivity is not None,
                   f"block {block.name!r} has no noise multiplier or no sensitivity: it would be"
                   f" released without noise")
            z = float(self.multipliers[block.name])
            ensure(z > 0 and np.isfinite(z), f"noise multiplier for {block.name!r} must be > 0")
            out.append(np.full(block.size, z * float(block.sensitivity)))
        return np.concatenate(out)

    def aggregate(self, rows: np.ndarray, weights: np.ndarray, ctx: RoundContext) -> Aggregate:
        """Inner sum plus Gaussian noise; an aborted inner round stays aborted (nothing noised)."""
        stds = self.stds(ctx)
        agg = self.inner.aggregate(rows, weights, ctx)
        noised = agg.sum + noise.gaussian(stds.size, 1.0) * stds
        return Aggregate(noised, agg.weight_sum, agg.survivors, agg.seconds, dict(agg.public),
                         dict(agg.private))
