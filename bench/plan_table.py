"""Print the planner tables of docs/planner.md (Markdown), so they can be regenerated.

Run: .venv/bin/python bench/plan_table.py
"""

from __future__ import annotations

from secagg.errors import SecAggValueError
from secagg.planner import plan_complete, plan_graph, required_bits

NS = [100, 1_000, 10_000, 100_000, 1_000_000]
SETTINGS = [  # (dropout, corrupt, malicious server)
    (0.05, 0.05, True),
    (0.05, 0.05, False),
    (0.10, 0.10, True),
    (0.20, 0.10, True),
    (0.33, 0.05, False),
    (0.05, 0.33, True),
]


def graph_table() -> str:
    """SecAgg+ degree and threshold for each (n, setting), with the complete-graph t."""
    rows = [
        "| n | dropout | corrupt | server | graph | k | t | 2t - k - 1 | complete-graph t |",
        "|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for d, c, mal in SETTINGS:
        for n in NS:
            p = plan_graph(n, dropout_rate=d, corrupt_fraction=c, malicious_server=mal)
            try:
                tc = str(plan_complete(n, d, c, malicious_server=mal).t)
            except SecAggValueError:
                tc = "infeasible"
            server = "malicious" if mal else "curious"
            rows.append(
                f"| {n:,} | {d:.2f} | {c:.2f} | {server} | {p.kind} | {p.k} | {p.t} | "
                f"{2 * p.t - p.k - 1 if mal else '-'} | {tc} |"
            )
    return "\n".join(rows)


def bits_table() -> str:
    """required_bits for a few (n, clip, scale)."""
    rows = ["| n | clip (max_abs) | scale | required b |", "|---:|---:|---:|---:|"]
    for n, clip, scale in [
        (100, 1.0, 2**16), (100, 1.0, 2**20), (1_000, 1.0, 2**16), (1_000, 10.0, 2**16),
        (10_000, 1.0, 2**16), (10_000, 0.1, 2**20), (1_000_000, 1.0, 2**16),
        (1_000_000, 1.0, 2**40),
    ]:
        rows.append(f"| {n:,} | {clip:g} | 2^{scale.bit_length() - 1} | "
                    f"{required_bits(n, clip, float(scale))} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(graph_table())
    print()
    print(bits_table())
