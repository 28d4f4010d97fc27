"""``secagg bench protocol``: sweeps of whole sessions, one record per point.

Each point runs one real session in this process through the ``Client`` and
``Server`` state machines (``secagg.simulation.run_session``): real X25519,
Ed25519, AEAD, Shamir and mask expansion, with a chosen fraction of clients
vanishing at a chosen stage. A point's record (``RECORD_KEYS``, documented in
docs/benchmarks.md) gives the client seconds per stage (median and spread over
the clients that did not vanish), the server seconds per stage (CPU time, so that
other jobs on a shared machine disturb them less), the bytes each
client sent and received, and a tracemalloc bound on the server's heap (from a
second run of the point, since tracing slows every call).

Points run cheapest first; with a budget, a point that would not finish in the
time left (by the cost model's prediction, ``secagg.costmodel``) is skipped and
reported, and nothing is interrupted half-way.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import SupportsFloat

import numpy as np

from secagg.config import GRAPHS
from secagg.errors import AbortedError, SecAggValueError, ensure
from secagg.simulation import STAGES, SimulationConfig, run_session

__all__ = [
    "SCHEMA",
    "RECORD_KEYS",
    "SweepPoint",
    "SweepResult",
    "sweep_points",
    "run_point",
    "run_sweep",
    "write_csv",
    "record_number",
]

#: Version tag carried by every record; bumped if a key changes meaning.
SCHEMA = "secagg.bench.protocol/1"
#: How ``server_peak_bytes`` is measured (see ``secagg.simulation._ServerMeter``).
MEMORY_METHOD = "tracemalloc-server-calls"

_SPREAD = ("median", "p10", "p90")

#: Every record has exactly these keys, in this order (the CSV columns).
RECORD_KEYS: tuple[str, ...] = (
    "schema", "status", "error",
    "clients", "length", "graph", "graph_used", "k", "t", "bits", "cipher",
    "dropout", "dropout_stage", "vanished", "survivors", "server_threads", "seed",
    *(f"client_{s}_s_{q}" for s in (*STAGES, "total") for q in _SPREAD),
    *(f"server_{s}_s" for s in STAGES), "server_total_s",
    "upload_bytes_median", "upload_bytes_max", "download_bytes_median", "download_bytes_max",
    "server_peak_bytes", "memory_method", "max_abs_error", "wall_s", "timer",
)
#: What the ``*_s`` figures count: CPU seconds of each call (all threads of the process),
#: which other jobs on a shared machine disturb far less than wall time.
TIMER = "process_time"


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep."""

    clients: int
    length: int
    graph: str = "harary"
    dropout: float = 0.0
    dropout_stage: str = "masked"
    bits: int = 32
    cipher: str = "chacha20"

    def __post_init__(self) -> None:
        ensure(type(self.clients) is int and 3 <= self.clients <= 10**6,
               f"clients must be an int in [3, 10^6], got {self.clients!r}")
        ensure(type(self.length) is int and 1 <= self.length <= 10**8,
               f"length must be an int in [1, 10^8], got {self.length!r}")
        ensure(self.graph in GRAPHS, f"graph must be one of {GRAPHS}, got {self.graph!r}")
        ensure(isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1,
               f"dropout must be in [0, 1), got {self.dropout!r}")
        ensure(self.dropout_stage in STAGES,
               f"dropout stage must be one of {STAGES}, got {self.dropout_stage!r}")
        ensure(type(self.bits) is int and 2 <= self.bits <= 64, f"bits must be in [2, 64], got {self.bits!r}")
        from secagg import prg

        ensure(self.cipher in prg.ciphers(),
               f"cipher must be one of {prg.ciphers()} on this CPU, got {self.cipher!r}")

    def label(self) -> str:
        return (f"n={self.clients} m={self.length} {self.graph} drop={self.dropout:g}@{self.dropout_stage} "
                f"b={self.bits} {self.cipher}")


def sweep_points(
    clients: Iterable[int],
    lengths: Iterable[int],
    graphs: Iterable[str] = ("harary",),
    dropouts: Iterable[float] = (0.0,),
    stages: Iterable[str] = ("masked",),
    bits: Iterable[int] = (32,),
    ciphers: Iterable[str] = ("chacha20",),
) -> list[SweepPoint]:
    """Every combination of the given values, as points (checked), without duplicates."""
    points = [
        SweepPoint(n, m, g, float(f), s, b, c)
        for n, m, g, f, s, b, c in itertools.product(
            clients, lengths, graphs, dropouts, stages, bits, ciphers)
    ]
    # With no dropout the stage is irrelevant: keep one such point.
    unique = {(p if p.dropout else SweepPoint(**{**asdict(p), "dropout_stage": "masked"})): None
              for p in points}
    return list(unique)


class _RepeatedRows:
    """Client i's input is row i mod r of a small float32 matrix: real encoding work, bounded memory."""

    def __init__(self, length: int, rows: int, seed: int) -> None:
        self.rows = np.random.default_rng(seed).uniform(-1, 1, size=(rows, length)).astype(np.float32)

    def __getitem__(self, i: int) -> np.ndarray:
        row: np.ndarray = self.rows[i % len(self.rows)]
        return row

    def expected_sum(self, survivors: Sequence[int]) -> np.ndarray:
        counts = np.bincount(np.asarray(survivors, dtype=np.int64) % len(self.rows),
                             minlength=len(self.rows))
        return counts.astype(np.float64) @ self.rows.astype(np.float64)


def _spread(values: Sequence[float]) -> tuple[float, float, float]:
    if not values:
        return (math.nan, math.nan, math.nan)
    median, p10, p90 = np.percentile(np.asarray(values, dtype=np.float64), [50, 10, 90])
    return float(median), float(p10), float(p90)


def _empty_record(point: SweepPoint, seed: int, threads: int) -> dict[str, object]:
    record: dict[str, object] = dict.fromkeys(RECORD_KEYS)
    record.update(schema=SCHEMA, clients=point.clients, length=point.length, graph=point.graph,
                  bits=point.bits, cipher=point.cipher, dropout=point.dropout,
                  dropout_stage=point.dropout_stage, server_threads=threads, seed=seed, timer=TIMER)
    return record


def record_number(record: Mapping[str, object], key: str) -> float:
    """``record[key]`` as a float: a numeric field of a record (also as read back from JSON)."""
    value = record[key]
    if not isinstance(value, (SupportsFloat, str)):
        raise TypeError(f"record field {key!r} is not a number: {value!r}")
    return float(value)


def run_point(
    point: SweepPoint, *, seed: int = 0, server_threads: int = 1, memory: bool = True
) -> dict[str, object]:
    """Run one session at ``point``; return its record (keys ``RECORD_KEYS``).

    ``status`` is "ok", "aborted" (the session aborted: too few clients left) or
    "refused" (the planner found no secure parameters); then ``error`` says why.
    """
    record = _empty_record(point, seed, server_threads)
    sim = SimulationConfig(graph=point.graph, dropout=point.dropout, dropout_stage=point.dropout_stage,
                           bits=point.bits, seed=seed, cipher=point.cipher)
    try:
        config = sim.plan(point.clients, point.length)
    except SecAggValueError as exc:
        record.update(status="refused", error=str(exc))
        return record
    vanish = sim.vanishing(point.clients)
    inputs = _RepeatedRows(point.length, min(point.clients, 4), seed)
    record.update(graph_used=config.graph, k=config.degree, t=config.threshold, bits=config.bits,
                  vanished=len(vanish))
    start = time.perf_counter()
    outcome = run_session(config, inputs, vanish=vanish, server_threads=server_threads,
                          clock=time.process_time)
    record["wall_s"] = time.perf_counter() - start
    if memory:  # tracemalloc slows everything: the heap bound comes from a second run
        heap = run_session(config, inputs, vanish=vanish, server_threads=server_threads,
                           measure_memory=True).server_peak_bytes
        record.update(server_peak_bytes=heap, memory_method=MEMORY_METHOD)
    stayed = [c for c in range(point.clients) if c not in vanish]
    for j, stage in enumerate((*STAGES, "total")):
        per_client = [outcome.client_seconds[c] if stage == "total" else outcome.client_stage_seconds[c][j]
                      for c in stayed]
        for q, value in zip(_SPREAD, _spread(per_client), strict=True):
            record[f"client_{stage}_s_{q}"] = value
    for j, stage in enumerate(STAGES):
        record[f"server_{stage}_s"] = outcome.server_stage_seconds[j]
    record["server_total_s"] = outcome.server_seconds
    up = [outcome.upload_bytes[c] for c in stayed]
    down = [outcome.download_bytes[c] for c in stayed]
    record.update(
        upload_bytes_median=int(np.median(up)) if up else None, upload_bytes_max=max(up, default=None),
        download_bytes_median=int(np.median(down)) if down else None,
        download_bytes_max=max(down, default=None),
    )
    try:
        result = outcome.server.result()
    except AbortedError as exc:
        record.update(status="aborted", error=str(exc))
        return record
    expected = inputs.expected_sum(result.survivors)
    record.update(status="ok", survivors=len(result.survivors),
                  max_abs_error=float(np.max(np.abs(result.sum - expected))))
    return record


@dataclass(frozen=True)
class SweepResult:
    """The records of the points that ran, and the points skipped for the budget."""

    records: list[dict[str, object]]
    skipped: list[SweepPoint]


def run_sweep(
    points: Sequence[SweepPoint],
    *,
    budget: float | None = None,
    predict: Callable[[SweepPoint], float] | None = None,
    seed: int = 0,
    server_threads: int = 1,
    memory: bool = True,
    on_start: Callable[[int, SweepPoint], None] | None = None,
    on_record: Callable[[dict[str, object]], None] | None = None,
) -> SweepResult:
    """Run ``points`` cheapest first (by ``predict``, seconds of wall time, if given).

    With ``budget`` seconds, a point is skipped when its predicted time exceeds the
    time left, or once the time is up; no session is cut short. ``on_start`` and
    ``on_record`` let a caller show progress and stream records.
    """
    ensure(budget is None or (isinstance(budget, (int, float)) and budget > 0),
           f"budget must be a positive number of seconds, got {budget!r}")
    order = sorted(points, key=lambda p: (predict(p) if predict else p.clients * p.length))
    records: list[dict[str, object]] = []
    skipped: list[SweepPoint] = []
    start = time.monotonic()
    # Warm up (first calls load code paths and thread pools), unrecorded.
    run_point(SweepPoint(5, 16, "complete"), memory=False)
    for i, point in enumerate(order):
        if budget is not None:
            left = budget - (time.monotonic() - start)
            if left <= 0 or (predict is not None and predict(point) > left):
                skipped.append(point)
                continue
        if on_start:
            on_start(i, point)
        record = run_point(point, seed=seed, server_threads=server_threads, memory=memory)
        records.append(record)
        if on_record:
            on_record(record)
    return SweepResult(records, skipped)


def write_csv(path: str | os.PathLike[str], records: Iterable[dict[str, object]]) -> None:
    """Write records as CSV with the ``RECORD_KEYS`` columns (empty cell for None)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RECORD_KEYS)
        writer.writeheader()
        for record in records:
            writer.writerow({k: ("" if record[k] is None else record[k]) for k in RECORD_KEYS})
