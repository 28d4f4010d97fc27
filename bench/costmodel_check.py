"""The cost model's predictions beside measured sessions: a markdown table.

    .venv/bin/secagg bench calibrate
    .venv/bin/secagg bench protocol ... --json > grid.jsonl
    .venv/bin/python bench/costmodel_check.py grid.jsonl [more.jsonl ...]

For each ``ok`` record, predicts the same session (planner's k and t, the record's
dropout and stage) with the cached unit costs and prints measured / predicted for
the client's CPU time (median over clients), the server's CPU time, the bytes a
client sends, and the server heap bound; a ratio outside [0.75, 1.25] is marked.
"""

from __future__ import annotations

import json
import sys

from secagg import costmodel as cm


def _cell(measured: float | None, predicted: float, scale: float) -> tuple[str, bool | None]:
    if measured is None:
        return f"- / {predicted / scale:.3g}", None
    ratio = predicted / measured if measured else float("inf")
    ok = 0.75 <= ratio <= 1.25
    mark = "" if ok else "**"
    return f"{measured / scale:.3g} / {predicted / scale:.3g}, {mark}{ratio:.2f}{mark}", ok


def main(paths: list[str]) -> int:
    costs, source = cm.load_unit_costs()
    print(f"unit costs: {source}\n")
    print("| n | m | graph | k | t | dropout | client s (meas / pred, ratio) | server s | "
          "upload MB | server heap MB |")
    print("|---:|---:|---|---:|---:|---|---|---|---|---|")
    cells = misses = 0
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
    print(f"\n{cells - misses} of {cells} predictions within 25 % (ratio = predicted / measured)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: bench/costmodel_check.py RECORDS.jsonl [...]")
    sys.exit(main(sys.argv[1:]))
