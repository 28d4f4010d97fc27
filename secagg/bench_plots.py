"""PNG figures of ``secagg bench protocol`` records, with the axes of the papers' figures.

Bonawitz et al. (CCS 2017) plot client and server running time and bytes per
client against the number of clients, with server curves per dropout fraction;
Bell et al. (CCS 2020) plot per-client cost against n for SecAgg (complete graph)
and SecAgg+ (Harary graph). matplotlib comes with the ``fl`` extra and is imported
only here, when plots are asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from secagg.bench_protocol import record_number
from secagg.errors import SecAggValueError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["require_matplotlib", "draw_figures"]

Record = dict[str, object]
#: Records that share a curve: the values of the fields it is grouped by.
Group = tuple[object, ...]
Label = Callable[[Group], str]


def require_matplotlib() -> ModuleType:
    """Import matplotlib with a file backend, or say how to install it; return ``matplotlib.pyplot``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SecAggValueError(
            "--plots needs matplotlib: pip install 'secagg[fl]' (or pip install matplotlib)"
        ) from None
    return plt


def _series(records: Iterable[Record], key: Callable[[Record], Group], y: str
            ) -> dict[Group, list[tuple[float, float]]]:
    """Records grouped by ``key``, as sorted (clients, y) pairs."""
    out: dict[Group, list[tuple[float, float]]] = {}
    for r in records:
        if r.get("status") == "ok" and r.get(y) is not None:
            out.setdefault(key(r), []).append((record_number(r, "clients"), record_number(r, y)))
    return {k: sorted(v) for k, v in sorted(out.items(), key=lambda kv: str(kv[0]))}


def _plot(ax: Axes, series: dict[Group, list[tuple[float, float]]], label: Label) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ticks: set[float] = set()
    for group, pairs in series.items():
        xs, ys = zip(*pairs, strict=True)
        ax.plot(xs, ys, marker="o", label=label(group))
        ticks.update(xs)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if ticks:  # label the measured n, not powers of ten
        ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("number of clients n")
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize=7)


def _graph_name(graph: object) -> str:
    return "SecAgg (complete)" if graph == "complete" else "SecAgg+ (Harary)"


def _no_dropout(records: Sequence[Record]) -> list[Record]:
    lowest = min((record_number(r, "dropout") for r in records), default=0.0)
    return [r for r in records if record_number(r, "dropout") == lowest]


def draw_figures(records: Sequence[Record], directory: str | os.PathLike[str]) -> list[Path]:
    """Write the figures for ``records`` into ``directory``; return their paths."""
    plt = require_matplotlib()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    base = _no_dropout(records)
    paths = []

    def save(fig: Figure, name: str) -> None:
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    # Bonawitz et al. Fig. (a): client running time against n, per vector length.
    fig, ax = plt.subplots(figsize=(6, 4))
    _plot(ax, _series(base, lambda r: (r["graph"], r["length"]), "client_total_s_median"),
          lambda g: f"{_graph_name(g[0])}, m = {g[1]:,}")
    ax.set_ylabel("client CPU time, all rounds (s, median)")
    ax.set_title("Client running time")
    save(fig, "client_time_vs_clients.png")

    # Bonawitz et al. Fig. (b): server running time against n, per dropout fraction.
    graphs = sorted({str(r["graph"]) for r in records})
    fig, axes = plt.subplots(1, len(graphs) or 1, figsize=(6 * max(len(graphs), 1), 4), squeeze=False)
    for ax, graph in zip(axes[0], graphs, strict=False):
        _plot(ax, _series([r for r in records if r["graph"] == graph],
                          lambda r: (r["length"], record_number(r, "dropout"), r["dropout_stage"]),
                          "server_total_s"),
              lambda g: f"m = {g[0]:,}, {g[1]:.0%} drop ({g[2]})")
        ax.set_ylabel("server CPU time, all rounds (s)")
        ax.set_title(f"Server running time, {_graph_name(graph)}")
    save(fig, "server_time_vs_clients.png")

    # Bonawitz et al. Fig. (c): bytes per client against n.
    def sent_or_received(word: str) -> Label:
        return lambda g: f"{word}: {_graph_name(g[0])}, m = {g[1]:,}"

    fig, ax = plt.subplots(figsize=(6, 4))
    for y, word in (("upload_bytes_median", "sent"), ("download_bytes_median", "received")):
        _plot(ax, _series(base, lambda r: (r["graph"], r["length"]), y), sent_or_received(word))
    ax.set_ylabel("bytes per client, all rounds")
    ax.set_title("Communication per client")
    save(fig, "bytes_per_client_vs_clients.png")

    # Bell et al.: SecAgg against SecAgg+, client and server cost against n.
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, y, what in ((axes[0], "client_total_s_median", "client"), (axes[1], "server_total_s", "server")):
        _plot(ax, _series(base, lambda r: (r["graph"], r["length"]), y),
              lambda g: f"{_graph_name(g[0])}, m = {g[1]:,}")
        ax.set_ylabel(f"{what} CPU time, all rounds (s)")
        ax.set_title(f"SecAgg vs SecAgg+: {what}")
    save(fig, "secagg_vs_secaggplus.png")
    return paths
