"""The graph-aware oracle: what an honest session must do under a given vanishing schedule.

``expected_outcome`` replays the protocol's rules, not its cryptography: which
clients advertise, share, send a masked input, sign and answer the unmasking
request when some clients vanish at chosen stages, where the server and each
client must refuse to go on (too few clients, a secret with fewer than ``t``
helpers left among its neighbours), and, if the session completes, which
clients' inputs are in the sum, the sum itself and the tolerance the fixed-point
encoding allows. Because SecAgg+ neighbourhoods depend on the session id, a
Harary-graph session needs its ``Graph`` (``secagg.testing.Verdict.graph``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

import numpy as np

from secagg.bindings import storage_dtype
from secagg.config import SecAggConfig
from secagg.errors import SecAggValueError, ensure
from secagg.graph import Graph, complete_graph
from secagg.rounds import Round
from secagg.simulation import STAGES

__all__ = ["AbortKind", "Expected", "Schedule", "classify_abort", "expected_outcome"]

#: The round in which each stage's messages are collected by the server.
_ROUND_OF_STAGE = (
    Round.ADVERTISE_KEYS, Round.SHARE_KEYS, Round.MASKED_INPUT, Round.CONSISTENCY_CHECK, Round.UNMASKING,
)


class AbortKind(enum.Enum):
    """Why an honest server must abort (each is one check of ``secagg.server``)."""

    QUORUM = "fewer than t clients left in a round"
    UNRECOVERABLE = "a needed secret has fewer than t neighbours left to help"
    TOO_FEW_SHARES = "fewer than t shares of a secret arrived"


def classify_abort(reason: str) -> AbortKind | None:
    """The ``AbortKind`` of a server's abort reason (None if it is none of them)."""
    if "fewer than t=" in reason and "left to unmask" in reason:
        return AbortKind.UNRECOVERABLE
    if " shares of " in reason and "need t=" in reason:
        return AbortKind.TOO_FEW_SHARES
    if reason.startswith("only ") and "need at least t=" in reason:
        return AbortKind.QUORUM
    return None


@dataclass(frozen=True)
class Schedule:
    """Who vanishes, and from which stage on (``secagg.simulation.STAGES``) they send nothing."""

    vanish: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for client, stage in self.vanish.items():
            ensure(stage in STAGES, f"stage must be one of {STAGES}, got {stage!r}")
            ensure(isinstance(client, int) and client >= 0, f"client ids are ints >= 0, got {client!r}")

    def gone_at(self, client: int) -> int:
        """The index of the first stage in which ``client`` sends nothing (5 if it never vanishes)."""
        stage = self.vanish.get(client)
        return len(STAGES) if stage is None else STAGES.index(stage)

    def active(self, client: int, stage: int) -> bool:
        return stage < self.gone_at(client)


@dataclass(frozen=True)
class Expected:
    """What a session must end with: the exact sum and its survivors, or an abort and why."""

    completed: bool
    survivors: tuple[int, ...] = ()  #: clients whose input is in the sum (if completed)
    sum: np.ndarray | None = None  #: sum of clip(weight * input) over the survivors (float inputs)
    weight_sum: float = 0.0  #: sum of the survivors' weights
    raw: np.ndarray | None = None  #: exact sum mod 2^bits (encoded inputs only)
    tolerance: float = 0.0  #: |sum - decoded| bound per coordinate: survivors / scale
    weight_tolerance: float = 0.0  #: the same for the weight: survivors / weight_scale
    abort_round: Round | None = None  #: the round whose close must abort
    abort_kind: AbortKind | None = None
    detail: str = ""  #: which client or count the abort is about
    responders: tuple[int, ...] = ()  #: clients whose unmasking response the server must accept

    def describe(self) -> str:
        if self.completed:
            return f"completes with survivors {list(self.survivors)}"
        return f"aborts in {self.abort_round.name if self.abort_round else '?'}: {self.detail}"


def _neighbours(graph: Graph, client: int, group: set[int]) -> set[int]:
    return {v for v in graph.neighbours(client) if v in group}


def expected_outcome(
    config: SecAggConfig,
    inputs: np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
    schedule: Schedule | Mapping[int, str] | None = None,
    graph: Graph | None = None,
    *,
    encoded: bool = False,
) -> Expected:
    """What an honest server and honest clients must produce (see the module docstring).

    ``inputs`` is (n, m) floats, or (n, m + 1) integers mod 2^bits (weight last)
    with ``encoded=True``; ``weights`` default to 1. ``graph`` is the session's
    neighbour graph; it may be left out for the complete graph.
    """
    n, t = config.num_clients, config.threshold
    if not isinstance(schedule, Schedule):
        schedule = Schedule(dict(schedule or {}))
    ensure(all(c < n for c in schedule.vanish), f"the schedule names clients outside [0, {n})")
    if graph is None and config.graph == "complete":
        graph = complete_graph(n)
    ensure(graph is None or (graph.n == n and graph.degree == config.degree),
           "the graph does not match the config")

    def abort(stage: int, kind: AbortKind, detail: str, responders: Set[int] = frozenset()) -> Expected:
        return Expected(False, abort_round=_ROUND_OF_STAGE[stage], abort_kind=kind, detail=detail,
                        responders=tuple(sorted(responders)))

    def on(stage: int, group: set[int]) -> set[int]:
        return {c for c in group if schedule.active(c, stage)}

    def nb(c: int, group: set[int]) -> set[int]:
        if graph is None:
            raise SecAggValueError("a Harary-graph session that passes round 0 needs its graph "
                                   "(Verdict.graph)")
        return _neighbours(graph, c, group)

    # Round 0: advertise. The server needs t adverts; each client needs t advertised neighbours.
    u1 = on(0, set(range(n)))
    if len(u1) < t:
        return abort(0, AbortKind.QUORUM, f"only {len(u1)} clients advertised keys")
    # Round 1: those still there that see t advertised neighbours share keys.
    u2 = {u for u in on(1, u1) if len(nb(u, u1)) >= t}
    if len(u2) < t:
        return abort(1, AbortKind.QUORUM, f"only {len(u2)} clients shared keys")
    # Round 2: a client masks once it holds shares from t neighbours.
    u3 = {v for v in on(2, u2) if len(nb(v, u2)) >= t}
    if len(u3) < t:
        return abort(2, AbortKind.QUORUM, f"only {len(u3)} masked inputs arrived")

    def recoverable(helpers: set[int]) -> int | None:
        """The first needed secret's owner with fewer than t helpers, or None."""
        for v in sorted(u2):
            needed = v in u3 or bool(nb(v, u3))
            if needed and len(nb(v, helpers)) < t:
                return v
        return None

    bad = recoverable(u3)
    if bad is not None:
        return abort(2, AbortKind.UNRECOVERABLE, f"client {bad} has fewer than t neighbours left")
    if config.consistency_check:
        # Round 3: each survivor signs if t of its neighbours survived (always true here).
        u4 = {u for u in on(3, u3) if len(nb(u, u3)) >= t}
        bad = recoverable(u4)
        if bad is not None:
            return abort(3, AbortKind.UNRECOVERABLE, f"client {bad} has fewer than t signers left")
        asked = u4
        unmask_stage = 4
        u5 = {u for u in on(4, asked) if len(nb(u, u4)) >= t and len(nb(u, u3)) >= t}
    else:
        asked = u3
        unmask_stage = 4
        u5 = {u for u in on(unmask_stage, asked) if len(nb(u, u3)) >= t}
    # Round 4: t shares of each survivor's seed and of each needed dropped client's key.
    for v in sorted(u3):
        if len(nb(v, u5)) < t:
            return abort(4, AbortKind.TOO_FEW_SHARES, f"the self-mask seed of client {v}", u5)
    for v in sorted(u2 - u3):
        if nb(v, u3) and len(nb(v, u5)) < t:
            return abort(4, AbortKind.TOO_FEW_SHARES, f"the mask key of dropped client {v}", u5)
    return _completed(config, inputs, weights, sorted(u3), u5, encoded)


def _completed(
    config: SecAggConfig,
    inputs: np.ndarray,
    weights: Sequence[float] | np.ndarray | None,
    survivors: list[int],
    responders: set[int],
    encoded: bool,
) -> Expected:
    n = config.num_clients
    # Stochastic rounding is off by less than 1/scale per client; decoding in float64 adds
    # a few ulps of the largest magnitude the sum can reach.
    ulps = 8 * np.finfo(np.float64).eps * max(1, len(survivors))
    tol = len(survivors) / config.scale + ulps * config.clip
    wtol = len(survivors) / config.weight_scale + ulps * config.max_weight
    if encoded:
        ensure(inputs.shape == (n, config.encoded_length), f"encoded inputs must be ({n}, m + 1)")
        total = inputs[survivors].astype(object).sum(axis=0) % (1 << config.bits)
        raw = np.asarray(total, dtype=np.uint64).astype(storage_dtype(config.bits))
        return Expected(True, tuple(survivors), raw=raw, responders=tuple(sorted(responders)))
    ensure(inputs.shape == (n, config.vector_length), f"inputs must be ({n}, {config.vector_length})")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    block = np.clip(inputs[survivors].astype(np.float64) * w[survivors, None], -config.clip, config.clip)
    total = block.sum(axis=0) if survivors else np.zeros(config.vector_length)
    weight_sum = float(np.clip(w[survivors], -config.max_weight, config.max_weight).sum())
    return Expected(True, tuple(survivors), sum=total, weight_sum=weight_sum, tolerance=tol,
                    weight_tolerance=wtol, responders=tuple(sorted(responders)))
