"""Redraw the papers' figures from saved ``secagg bench protocol --json`` records, with growth rates.

    .venv/bin/python bench/protocol_figures.py OUT_DIR RECORDS.jsonl [...]

Draws the PNGs of ``secagg.bench_plots`` into OUT_DIR and prints, for each curve
(graph, length, dropout), the log-log slope of client and server CPU time against n
(least squares over the curve's points): the growth exponent to set beside the papers'
asymptotics (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from secagg.bench_plots import draw_figures


def _slope(points: list[tuple[float, float]]) -> float | None:
    if len({x for x, _ in points}) < 2:
        return None
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0])


def main(out: str, paths: list[str]) -> int:
    records = [json.loads(line) for path in paths for line in open(path)]
    records = [r for r in records if r["status"] == "ok"]
    for path in draw_figures(records, out):
        print(f"wrote {path}")
    curves: dict[tuple, list[dict]] = {}
    for r in records:
        curves.setdefault((r["graph"], r["length"], r["dropout"], r["dropout_stage"]), []).append(r)
    print("\n| graph | m | dropout | n | client time ~ n^a | server time ~ n^a | bytes up ~ n^a |")
    print("|---|---:|---|---|---:|---:|---:|")
    for (graph, m, dropout, stage), rs in sorted(curves.items(), key=lambda kv: str(kv[0])):
        ns = sorted({r["clients"] for r in rs})
        if len(ns) < 2:
            continue
        fits = [_slope([(r["clients"], r[key]) for r in rs])
                for key in ("client_total_s_median", "server_total_s", "upload_bytes_median")]
        drop = f"{dropout:.0%} @ {stage}" if dropout else "0"
        print(f"| {graph} | {m:,} | {drop} | {ns[0]}-{ns[-1]} | "
              + " | ".join("-" if f is None else f"{f:.2f}" for f in fits) + " |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: bench/protocol_figures.py OUT_DIR RECORDS.jsonl [...]")
    sys.exit(main(sys.argv[1], sys.argv[2:]))
