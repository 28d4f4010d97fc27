"""Run whole sessions in one process, through the real state machines.

``simulate`` is what ``secagg simulate`` and the ``fl`` layer call: it plans a
configuration, makes every client and the server, delivers every message in
memory, makes chosen clients vanish at a chosen stage, and times both sides.
``run_session`` is the lower-level driver for a given ``SecAggConfig``.
"""

from __future__ import annotations

import functools
import statistics
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np

from secagg import crypto
from secagg.client import Client
from secagg.config import GRAPHS, SecAggConfig
from secagg.errors import ProtocolError, SecAggTypeError, ensure
from secagg.planner import planned_dropouts
from secagg.rounds import Round
from secagg.server import AggregationResult, Server

__all__ = [
    "STAGES",
    "SimulationConfig",
    "SimulationResult",
    "SessionOutcome",
    "run_session",
    "simulate",
]

#: Where a client can vanish: it sends nothing from that stage on.
STAGES = ("advertise", "share", "masked", "consistency", "unmask")
_STAGE_OF_ROUND = {
    Round.ADVERTISE_KEYS: 0,
    Round.SHARE_KEYS: 1,
    Round.MASKED_INPUT: 2,
    Round.CONSISTENCY_CHECK: 3,
    Round.UNMASKING: 4,
}
_T = TypeVar("_T")


class _Rows(Protocol):
    """What ``run_session`` needs of its inputs: row i is client i's vector."""

    def __getitem__(self, i: int, /) -> np.ndarray: ...


@dataclass(frozen=True)
class SimulationConfig:
    """How to run a simulated session (the protocol parameters are planned from it)."""

    graph: str = "harary"
    clip: float = 1.0
    bits: int | None = 32
    scale: float | None = None
    dropout: float = 0.0
    dropout_stage: str = "masked"
    consistency_check: bool = True
    seed: int | None = None  #: picks which clients vanish; never used for cryptography
    planned_dropout: float | None = None  #: dropout rate the planner provisions for (>= dropout)
    corrupt_fraction: float = 0.05
    max_weight: float = 1.0
    server_threads: int | None = None
    cipher: str = "chacha20"

    def __post_init__(self) -> None:
        ensure(self.graph in GRAPHS, f"graph must be one of {GRAPHS}, got {self.graph!r}")
        ensure(self.dropout_stage in STAGES,
               f"dropout_stage must be one of {STAGES}, got {self.dropout_stage!r}")
        ensure(isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1,
               f"dropout must be in [0, 1), got {self.dropout!r}")

    def plan(self, n: int, m: int) -> SecAggConfig:
        """The session parameters for n clients and vectors of length m.

        The planner provisions for ``planned_dropout``, by default the larger of
        ``dropout`` and 5 %.
        """
        planned = self.planned_dropout if self.planned_dropout is not None else max(self.dropout, 0.05)
        return SecAggConfig.plan(
            n, m, clip=self.clip, graph=self.graph, bits=self.bits, scale=self.scale,
            dropout_rate=planned, corrupt_fraction=self.corrupt_fraction,
            max_weight=self.max_weight, consistency_check=self.consistency_check,
            cipher=self.cipher,
        )

    def vanishing(self, n: int) -> dict[int, str]:
        """Which of n clients vanish (``planned_dropouts(n, dropout)``, drawn from ``seed``), and when."""
        rng = np.random.default_rng(self.seed)
        count = planned_dropouts(n, self.dropout)
        chosen: np.ndarray | list[int] = rng.choice(n, size=count, replace=False) if count else []
        return {int(i): self.dropout_stage for i in chosen}


@dataclass(frozen=True)
class SessionOutcome:
    """What ``run_session`` observed; ``result`` is None if the session aborted."""

    result: AggregationResult | None
    server: Server
    clients: list[Client]
    client_seconds: list[float]
    server_seconds: float
    upload_bytes: list[int]
    #: Per client, seconds spent in each of ``STAGES`` (the stage the client was in when it acted).
    client_stage_seconds: list[list[float]] = field(default_factory=list)
    #: Server seconds per stage: ``receive`` calls in that round plus the ``close_round`` ending it.
    server_stage_seconds: list[float] = field(default_factory=list)
    #: Bytes each client received from the server, over all rounds.
    download_bytes: list[int] = field(default_factory=list)
    #: With ``measure_memory``: the server's heap high-water mark in bytes (see ``_ServerMeter``).
    server_peak_bytes: int | None = None


@dataclass(frozen=True)
class SimulationResult:
    """The aggregate and the figures of one simulated session."""

    sum: np.ndarray
    weight_sum: float
    survivors: list[int]
    k: int
    t: int
    bits: int
    scale: float
    max_abs_error: float
    client_seconds: float
    server_seconds: float
    upload_bytes_per_client: int

    def summary(self) -> dict[str, object]:
        """The JSON-friendly figures (everything but the sum vector)."""
        return {
            "survivors": self.survivors,
            "k": self.k,
            "t": self.t,
            "bits": self.bits,
            "scale": self.scale,
            "weight_sum": self.weight_sum,
            "max_abs_error": self.max_abs_error,
            "client_seconds": self.client_seconds,
            "server_seconds": self.server_seconds,
            "upload_bytes_per_client": self.upload_bytes_per_client,
        }


class _ServerMeter:
    """Times server calls per stage and, optionally, bounds the server's heap with tracemalloc.

    With ``memory``, tracemalloc traces the whole session (it slows every call, so time
    and memory should come from separate runs). Each server call adds its net
    allocation (traced bytes after minus before) to a running total, and the high-water
    mark is the largest running total plus a call's own transient peak. Frees made
    outside server calls are not seen, except the outgoing messages, which are taken
    off once delivered. It bounds the server's Python and numpy heap, not the RSS.
    """

    def __init__(self, memory: bool, clock: Callable[[], float] = time.perf_counter) -> None:
        self.stages = [0.0] * len(STAGES)
        self.clock = clock
        self.memory = memory
        self.held = 0
        self.peak = 0
        self._started = False

    def __enter__(self) -> _ServerMeter:
        if self.memory and not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            tracemalloc.stop()

    def call(self, stage: int, fn: Callable[[], _T]) -> _T:
        if self.memory:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        start = self.clock()
        try:
            return fn()
        finally:
            self.stages[stage] += self.clock() - start
            if self.memory:
                current, peak = tracemalloc.get_traced_memory()
                self.peak = max(self.peak, self.held + peak - before)
                self.held += current - before

    def delivered(self, outgoing: Mapping[int, bytes]) -> None:
        """The messages of a closed round were handed over: the server no longer holds them."""
        if self.memory:
            self.held -= sum(len(b) for b in {id(b): b for b in outgoing.values()}.values())


def run_session(
    config: SecAggConfig,
    inputs: np.ndarray | _Rows,
    weights: np.ndarray | None = None,
    vanish: Mapping[int, str] | None = None,
    *,
    encoded: bool = False,
    server_threads: int | None = None,
    measure_memory: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> SessionOutcome:
    """Run one session; ``vanish`` maps client -> stage from which it sends nothing.

    With ``encoded=True``, ``inputs`` are already integers mod 2^bits with the
    weight element last. If the server aborts, ``result`` is None and
    ``server.result()`` raises ``AbortedError`` with the reason. ``inputs`` need only
    support ``inputs[i]``. ``measure_memory`` bounds the server's heap with tracemalloc
    (every call is slower, so take times from another run; see ``_ServerMeter``).
    ``clock`` times the calls: wall time by default; ``time.process_time`` gives the CPU
    time of each call (all threads), which other jobs on the machine disturb far less.
    """
    n = config.num_clients
    vanish = dict(vanish or {})
    for stage in vanish.values():
        ensure(stage in STAGES, f"stage must be one of {STAGES}, got {stage!r}")
    gone_at = {c: STAGES.index(s) for c, s in vanish.items()}
    identities = [crypto.generate_signing_keypair() for _ in range(n)]
    public = [k.public for k in identities]
    clients = [Client(config, i, identities[i].secret, public) for i in range(n)]
    server = Server(config, threads=server_threads)
    seconds = [0.0] * n
    stage_seconds = [[0.0] * len(STAGES) for _ in range(n)]
    upload = [0] * n
    download = [0] * n
    meter = _ServerMeter(measure_memory, clock)

    def act(i: int, call: Callable[[Client], bytes | None], received: int = 0) -> None:
        """Let client i act (on ``received`` bytes), unless it has vanished; pass what it sends on."""
        client = clients[i]
        stage = _STAGE_OF_ROUND.get(client.round)
        if stage is None or stage >= gone_at.get(i, 99):
            return
        download[i] += received
        start = clock()
        try:
            out = call(client)
        except ProtocolError:
            out = None  # the client aborted itself; to the server it just goes quiet
        elapsed = clock() - start
        seconds[i] += elapsed
        stage_seconds[i][stage] += elapsed
        if out is not None:
            upload[i] += len(out)
            meter.call(_STAGE_OF_ROUND[server.round], lambda: server.receive(i, out))

    def give_input(client: Client, i: int) -> bytes | None:
        if encoded:
            return client.set_encoded_input(inputs[i])
        return client.set_input(inputs[i], 1.0 if weights is None else float(weights[i]))

    with meter:
        for i in range(n):
            act(i, lambda c: c.start())
        while server.round not in (Round.COMPLETED, Round.ABORTED):
            outgoing = meter.call(_STAGE_OF_ROUND[server.round], server.close_round)
            for i, data in outgoing.items():
                if server.round is Round.MASKED_INPUT:
                    # The input is given just before it is needed, so that the simulation holds
                    # one encoded vector at a time rather than n of them.
                    act(i, functools.partial(give_input, i=i))
                act(i, functools.partial(Client.handle, data=data), len(data))
            meter.delivered(outgoing)
            del outgoing
    result = server.result() if server.round is Round.COMPLETED else None
    return SessionOutcome(result, server, clients, seconds, sum(meter.stages), upload,
                          stage_seconds, meter.stages, download,
                          meter.peak if meter.memory else None)


def simulate(
    inputs: np.ndarray,
    weights: np.ndarray | None = None,
    config: SimulationConfig | None = None,
) -> SimulationResult:
    """Securely aggregate ``inputs`` (an (n, m) float array) in one process.

    Returns the weighted sum over the clients whose input was counted, with the
    figures of the run. Raises ``AbortedError`` if too few clients survive.
    """
    config = config or SimulationConfig()
    ensure(isinstance(inputs, np.ndarray), "inputs must be a numpy array", raising=SecAggTypeError)
    ensure(inputs.ndim == 2 and inputs.shape[0] >= 2 and inputs.shape[1] >= 1,
           f"inputs must have shape (n >= 2, m >= 1), got {inputs.shape}")
    ensure(np.issubdtype(inputs.dtype, np.floating), f"inputs must be floats, got {inputs.dtype}",
           raising=SecAggTypeError)
    n, m = inputs.shape
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        ensure(weights.shape == (n,), f"weights must have shape ({n},), got {weights.shape}")
    secagg_config = config.plan(n, m)
    outcome = run_session(
        secagg_config, inputs, weights, config.vanishing(n), server_threads=config.server_threads,
    )
    result = outcome.server.result()  # raises AbortedError if the session aborted
    survivors = list(result.survivors)
    error = _max_abs_error(inputs, weights, survivors, secagg_config.clip, result.sum)
    # Per-client figures over the survivors: the clients that ran every stage they were asked to.
    active = survivors or [c for c in range(n) if outcome.upload_bytes[c] > 0]
    return SimulationResult(
        sum=result.sum,
        weight_sum=result.weight_sum,
        survivors=survivors,
        k=secagg_config.degree,
        t=secagg_config.threshold,
        bits=secagg_config.bits,
        scale=secagg_config.scale,
        max_abs_error=error,
        client_seconds=statistics.median(outcome.client_seconds[c] for c in active),
        server_seconds=outcome.server_seconds,
        upload_bytes_per_client=int(statistics.median(outcome.upload_bytes[c] for c in active)),
    )




def _max_abs_error(
    inputs: np.ndarray, weights: np.ndarray | None, survivors: list[int], clip: float, total: np.ndarray
) -> float:
    """Largest |plaintext sum - secure sum| over coordinates, in column blocks to bound memory."""
    if not survivors:
        return 0.0
    w = np.ones(len(survivors)) if weights is None else weights[survivors]
    worst = 0.0
    step = max(1, (1 << 24) // len(survivors))
    for lo in range(0, inputs.shape[1], step):
        block = inputs[survivors, lo : lo + step].astype(np.float64) * w[:, None]
        plain = np.clip(block, -clip, clip).sum(axis=0)
        worst = max(worst, float(np.max(np.abs(plain - total[lo : lo + step]))))
    return worst
