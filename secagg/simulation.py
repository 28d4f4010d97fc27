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
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class SessionOutcome:
    """What ``run_session`` observed; ``result`` is None if the session aborted."""

    result: AggregationResult | None
    server: Server
    clients: list[Client]
    client_seconds: list[float]
    server_seconds: float
    upload_bytes: list[int]


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


def run_session(
    config: SecAggConfig,
    inputs: np.ndarray,
    weights: np.ndarray | None = None,
    vanish: Mapping[int, str] | None = None,
    *,
    encoded: bool = False,
    server_threads: int | None = None,
) -> SessionOutcome:
    """Run one session; ``vanish`` maps client -> stage from which it sends nothing.

    With ``encoded=True``, ``inputs`` are already integers mod 2^bits with the
    weight element last. If the server aborts, ``result`` is None and
    ``server.result()`` raises ``AbortedError`` with the reason.
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
    upload = [0] * n
    server_seconds = 0.0

    def act(i: int, call: Callable[[Client], bytes | None]) -> None:
        """Let client i act, unless it has vanished; pass what it sends to the server."""
        nonlocal server_seconds
        client = clients[i]
        if client.round not in _STAGE_OF_ROUND or _STAGE_OF_ROUND[client.round] >= gone_at.get(i, 99):
            return
        start = time.perf_counter()
        try:
            out = call(client)
        except ProtocolError:
            out = None  # the client aborted itself; to the server it just goes quiet
        seconds[i] += time.perf_counter() - start
        if out is not None:
            upload[i] += len(out)
            start = time.perf_counter()
            server.receive(i, out)
            server_seconds += time.perf_counter() - start

    def give_input(client: Client, i: int) -> bytes | None:
        if encoded:
            return client.set_encoded_input(inputs[i])
        return client.set_input(inputs[i], 1.0 if weights is None else float(weights[i]))

    for i in range(n):
        act(i, lambda c: c.start())
    while server.round not in (Round.COMPLETED, Round.ABORTED):
        start = time.perf_counter()
        outgoing = server.close_round()
        server_seconds += time.perf_counter() - start
        for i, data in outgoing.items():
            if server.round is Round.MASKED_INPUT:
                # The input is given just before it is needed, so that the simulation holds
                # one encoded vector at a time rather than n of them.
                act(i, functools.partial(give_input, i=i))
            act(i, functools.partial(Client.handle, data=data))
    result = server.result() if server.round is Round.COMPLETED else None
    return SessionOutcome(result, server, clients, seconds, server_seconds, upload)


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
    planned = config.planned_dropout if config.planned_dropout is not None else max(config.dropout, 0.05)
    secagg_config = SecAggConfig.plan(
        n, m, clip=config.clip, graph=config.graph, bits=config.bits, scale=config.scale,
        dropout_rate=planned, corrupt_fraction=config.corrupt_fraction,
        max_weight=config.max_weight, consistency_check=config.consistency_check,
        cipher=config.cipher,
    )
    rng = np.random.default_rng(config.seed)
    drop_count = planned_dropouts(n, config.dropout)
    vanished: list[int] = rng.choice(n, size=drop_count, replace=False).tolist() if drop_count else []
    outcome = run_session(
        secagg_config, inputs, weights, {int(i): config.dropout_stage for i in vanished},
        server_threads=config.server_threads,
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
