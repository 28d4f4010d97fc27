"""The cost model's predictions beside measured sessions: a markdown table.

    .venv/bin/secagg bench calibrate
    .venv/bin/secagg bench protocol ... --json > grid.jsonl
    .venv/bin/python bench/costmodel_check.py grid.jsonl [more.jsonl ...]
    .venv/bin/python bench/costmodel_check.py --extrapolate

For each ``ok`` record, predicts the same session (planner's k and t, the record's
dropout and stage) with the cached unit costs and prints measured / predicted for
the client's CPU time (median over clients), the server's CPU time, the bytes a
client sends, and the server heap bound; a ratio outside [0.75, 1.25] is marked,
and each miss of a time is followed by its stages (measured / predicted), which is
where its cause shows.

``--extrapolate`` prints the predictions for deployments (every client checks the
whole key directory and stretches the graph seed itself) at n = 10^4 to 10^6, 10 %
dropout at the masked-input stage: the table of docs/benchmarks.md, as ``secagg plan``
would give them one by one.
"""

from __future__ import annotations

import json
import sys

from secagg import costmodel as cm
from secagg.config import SecAggConfig
from secagg.errors import SecAggValueError


def _cell(measured: float | None, predicted: float, scale: float) -> tuple[str, bool | None]:
    if measured is None:
        return f"- / {predicted / scale:.3g}", None
    ratio = predicted / measured if measured else float("inf")
    ok = 0.75 <= ratio <= 1.25
    mark = "" if ok else "**"
    return f"{measured / scale:.3g} / {predicted / scale:.3g}, {mark}{ratio:.2f}{mark}", ok


def _stages(r: dict, p: cm.Prediction, side: str) -> str:
    stages = p.client_stage_s if side == "client" else p.server_stage_s
    key = "client_{}_s_median" if side == "client" else "server_{}_s"
    return ", ".join(f"{s} {r[key.format(s)]:.3g} / {v:.3g}" for s, v in stages.items())


def check(paths: list[str]) -> int:
    costs, source = cm.load_unit_costs()
    print(f"unit costs: {source}\n")
    print("| n | m | graph | k | t | dropout | client s (meas / pred, ratio) | server s | "
          "upload MB | server heap MB |")
    print("|---:|---:|---|---:|---:|---|---|---|---|---|")
    cells = misses = 0
    notes: list[str] = []
    for path in paths:
        for line in open(path):
            r = json.loads(line)
            if r["status"] != "ok":
                continue
            w = cm.workload(r["clients"], r["length"], r["k"], r["t"], bits=r["bits"], graph=r["graph_used"],
                            dropout=r["dropout"], stage=r["dropout_stage"], cipher=r["cipher"],
                            threads=r["server_threads"], simulated=True)
            p = cm.predict(w, costs)
            row = [
                _cell(r["client_total_s_median"], p.client_s, 1),
                _cell(r["server_total_s"], p.server_s, 1),
                _cell(r["upload_bytes_median"], p.upload_bytes, 1e6),
                _cell(r["server_peak_bytes"], p.server_peak_bytes, 1e6),
            ]
            for _, ok in row:
                if ok is not None:
                    cells += 1
                    misses += not ok
            drop = f"{r['dropout']:.0%} @ {r['dropout_stage']}" if r["dropout"] else "0"
            head = (f"| {r['clients']:,} | {r['length']:,} | {r['graph_used']} | {r['k']} | {r['t']} "
                    f"| {drop} | ")
            print(head + " | ".join(text for text, _ in row) + " |")
            for side, (_, ok) in zip(("client", "server"), row[:2], strict=True):
                if ok is False:
                    notes.append(f"- n={r['clients']} m={r['length']} {r['graph_used']} {drop}, {side} "
                                 f"per stage (s, measured / predicted): {_stages(r, p, side)}")
    print(f"\n{cells - misses} of {cells} predictions within 25 % (ratio = predicted / measured)")
    if notes:
        print("\nMisses of a time, per stage:\n")
        print("\n".join(notes))
    return 0


def extrapolate() -> int:
    costs, source = cm.load_unit_costs()
    print(f"unit costs: {source}\n")
    print("| n | m | graph | k | t | client CPU s | of it: directory check | client MB up / down "
          "| server CPU s (1 thread) | server heap MB |")
    print("|---:|---:|---|---:|---:|---:|---:|---|---:|---:|")
    for n in (10_000, 100_000, 1_000_000):
        for m in (10_000, 100_000, 1_000_000):
            for graph in ("harary", "complete"):
                if graph == "complete" and n > 100_000:
                    continue
                try:
                    config = SecAggConfig.plan(n, m, clip=1.0, graph=graph, dropout_rate=0.1,
                                               corrupt_fraction=0.05)
                except SecAggValueError:
                    continue
                w = cm.workload(n, m, config.degree, config.threshold, bits=config.bits,
                                graph=config.graph, dropout=0.1)
                p = cm.predict(w, costs)
                record = costs.directory_record_s or costs.verify_s
                directory = n * record + (costs.stretch_s if config.graph == "harary" else 0.0)
                print(f"| {n:,} | {m:,} | {config.graph} | {config.degree:,} | {config.threshold:,} "
                      f"| {p.client_s:.3g} | {directory:.3g} | {p.upload_bytes / 1e6:.3g} / "
                      f"{p.download_bytes / 1e6:.3g} | {p.server_s:.3g} | {p.server_peak_bytes / 1e6:.3g} |")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--extrapolate"]:
        sys.exit(extrapolate())
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: bench/costmodel_check.py RECORDS.jsonl [...] | --extrapolate")
    sys.exit(check(sys.argv[1:]))
