"""The work behind ``secagg bench protocol``, ``secagg bench calibrate`` and ``secagg plan``.

``secagg.cli`` parses the arguments and calls these; they check the values,
run, and print. Errors are ``SecAggValueError`` with a one-line message (the CLI
prints it and exits with status 2).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from secagg.errors import SecAggValueError

if TYPE_CHECKING:
    from secagg.bench_protocol import SweepPoint

__all__ = ["run_protocol_command", "run_calibrate_command", "run_plan_command"]

_T = TypeVar("_T")


def _split(text: str, name: str, convert: Callable[[str], _T]) -> list[_T]:
    values = []
    for item in str(text).split(","):
        item = item.strip()
        try:
            values.append(convert(item))
        except ValueError:
            raise SecAggValueError(
                f"--{name}: cannot read {item!r} (expected a comma-separated list)") from None
    if not values:
        raise SecAggValueError(f"--{name} is empty")
    return values


def _count(text: str) -> int:
    """An int, also written as 1e4 or 10^4."""
    text = text.replace("_", "")
    if "^" in text:
        base, _, exp = text.partition("^")
        power: int = int(base) ** int(exp)
        return power
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text not in options:
            raise ValueError(text)
        return text
    return convert


class _Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.total, self.start = total, time.monotonic()
        self.enabled = sys.stderr.isatty()

    def show(self, i: int, label: str) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.start
            sys.stderr.write(f"\r\033[K[{i + 1}/{self.total}] {elapsed:6.0f}s  {label}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


#: How much slower a session runs with tracemalloc on (the memory run), measured roughly.
_TRACEMALLOC_SLOWDOWN = 3.0


def _predictor(memory: bool) -> Callable[[SweepPoint], float]:
    """Wall seconds of a point by the cost model (cached calibration, or defaults)."""
    from secagg import costmodel
    from secagg.simulation import SimulationConfig

    costs, _ = costmodel.load_unit_costs()

    def predict(point: SweepPoint) -> float:
        sim = SimulationConfig(graph=point.graph, dropout=point.dropout, bits=point.bits, cipher=point.cipher)
        try:
            config = sim.plan(point.clients, point.length)
        except SecAggValueError:
            return 0.0  # refused at once
        w = costmodel.workload(point.clients, point.length, config.degree, config.threshold,
                               bits=config.bits, graph=config.graph, dropout=point.dropout,
                               stage=point.dropout_stage, cipher=point.cipher, simulated=True)
        wall = costmodel.predict(w, costs).wall_s(point.clients)
        return wall * (1 + _TRACEMALLOC_SLOWDOWN) if memory else wall

    return predict


def _short(record: dict[str, object]) -> str:
    if record["status"] != "ok":
        return f"{record['status']}: {record['error']}"
    heap = record["server_peak_bytes"]
    return (f"k={record['k']} t={record['t']}  client {record['client_total_s_median']:.4g} s  "
            f"server {record['server_total_s']:.4g} s  up {record['upload_bytes_median']} B  "
            f"down {record['download_bytes_median']} B  server heap "
            + (f"{heap / 1e6:.1f} MB" if isinstance(heap, (int, float)) else "-"))


def run_protocol_command(args: argparse.Namespace) -> int:
    from secagg.bench_protocol import run_sweep, sweep_points, write_csv
    from secagg.config import GRAPHS
    from secagg.simulation import STAGES

    points = sweep_points(
        _split(args.clients, "clients", _count),
        _split(args.length, "length", _count),
        _split(args.graph, "graph", _choice(GRAPHS)),
        _split(args.dropout, "dropout", float),
        _split(args.dropout_stage, "dropout-stage", _choice(STAGES)),
        _split(args.bits, "bits", int),
        _split(args.cipher, "cipher", str),
    )
    if args.server_threads < 1:
        raise SecAggValueError(f"--server-threads must be >= 1, got {args.server_threads}")
    if args.budget is not None and not (math.isfinite(args.budget) and args.budget > 0):
        raise SecAggValueError(f"--budget must be a positive number of seconds, got {args.budget}")
    if args.plots:
        from secagg.bench_plots import require_matplotlib

        require_matplotlib()
    progress = _Progress(len(points))

    def on_record(record: dict[str, object]) -> None:
        progress.done()
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            print(f"n={record['clients']} m={record['length']} {record['graph']} "
                  f"drop={record['dropout']:g}@{record['dropout_stage']} b={record['bits']} "
                  f"{record['cipher']}: {_short(record)}", flush=True)

    result = run_sweep(
        points, budget=args.budget, predict=_predictor(not args.no_memory), seed=args.seed,
        server_threads=args.server_threads, memory=not args.no_memory,
        on_start=lambda i, p: progress.show(i, p.label()), on_record=on_record,
    )
    progress.done()
    if result.skipped:
        print(f"secagg: budget of {args.budget:g} s reached: skipped {len(result.skipped)} of "
              f"{len(points)} points: " + "; ".join(p.label() for p in result.skipped), file=sys.stderr)
    if args.csv:
        write_csv(args.csv, result.records)
    if args.plots:
        from secagg.bench_plots import draw_figures

        for path in draw_figures(result.records, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def run_calibrate_command(args: argparse.Namespace) -> int:
    from secagg import costmodel

    def log(step: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\r\033[Kcalibrating: {step}")
            sys.stderr.flush()

    costs = costmodel.calibrate(log)
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    path = costmodel.save_unit_costs(costs, args.output)
    if args.json:
        print(json.dumps(costs.to_json()))
    else:
        for name, value in costs.to_json().items():
            print(f"{name:<24} {value}")
        print(f"stored in {path}")
    return 0


def run_plan_command(args: argparse.Namespace) -> int:
    from secagg import costmodel
    from secagg.config import SecAggConfig

    if args.clients < 3:
        raise SecAggValueError(f"--clients must be >= 3, got {args.clients}")
    if args.length < 1:
        raise SecAggValueError(f"--length must be >= 1, got {args.length}")
    if args.server_threads < 1:
        raise SecAggValueError(f"--server-threads must be >= 1, got {args.server_threads}")
    config = SecAggConfig.plan(
        args.clients, args.length, clip=args.clip, graph=args.graph, bits=args.bits,
        dropout_rate=args.dropout, corrupt_fraction=args.corrupt, cipher=args.cipher,
    )
    costs, source = costmodel.load_unit_costs(args.unit_costs)
    w = costmodel.workload(
        args.clients, args.length, config.degree, config.threshold, bits=config.bits,
        graph=config.graph, dropout=args.dropout, stage=args.dropout_stage, cipher=args.cipher,
        threads=args.server_threads,
    )
    prediction = costmodel.predict(w, costs)
    out = {
        "clients": args.clients, "length": args.length, "graph": args.graph, "graph_used": config.graph,
        "k": config.degree, "t": config.threshold, "bits": config.bits, "scale": config.scale,
        "dropout": args.dropout, "dropout_stage": args.dropout_stage, "corrupt": args.corrupt,
        "cipher": args.cipher, "server_threads": args.server_threads,
        **prediction.to_json(),
        "extrapolated": args.clients > costmodel.CALIBRATED_UP_TO,
        "unit_costs": source,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"planner: {config.graph} graph, k = {config.degree} neighbours, t = {config.threshold}, "
          f"b = {config.bits} bits (scale {config.scale:g})")
    print(f"client, per round:  {prediction.client_s:.4g} s CPU  "
          + ", ".join(f"{s} {v:.3g}" for s, v in prediction.client_stage_s.items()))
    print(f"                    {prediction.upload_bytes / 1e6:.4g} MB up, "
          f"{prediction.download_bytes / 1e6:.4g} MB down, {prediction.client_messages} messages sent")
    print(f"server, per round:  {prediction.server_s:.4g} s CPU with {args.server_threads} thread(s)  "
          + ", ".join(f"{s} {v:.3g}" for s, v in prediction.server_stage_s.items()))
    print(f"                    {prediction.server_peak_bytes / 1e6:.4g} MB heap, "
          f"{prediction.server_broadcasts} rounds of messages to the clients")
    if out["extrapolated"]:
        print(f"note: n > {costmodel.CALIBRATED_UP_TO}: an extrapolation beyond the measured sessions")
    print(f"unit costs: {source}")
    return 0
