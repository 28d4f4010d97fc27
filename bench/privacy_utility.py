"""Privacy-utility tables per task: the metric (mean +- sd over seeds) and epsilon per z and R.

Run: ``PYTHONPATH=. .venv/bin/python bench/privacy_utility.py [--tasks hospitals fraud]
[--seeds 5] [--secagg]`` (``--secagg`` aggregates through SecAgg+ instead of the plaintext sum,
which secagg matches within ~1e-7). Writes docs/results.md (keeping its hand-written notes
section and the sections of tasks not rerun) and docs/img/privacy_utility_<task>.png.

Each row is one DP setting: no DP, clip-only (z = 0: the cost of clipping without noise),
central DP at several z, and other modes at z = 1. Client-level epsilons are PLD at the
task's delta with secret Poisson sampling; for each epsilon the table of attack bounds gives
the largest membership-inference TPR at 0.1 % FPR that (epsilon, delta)-DP allows.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from fl.fedavg import FLConfig, run_fedavg, train_centralised
from fl.privacy import membership_tpr_bound
from fl.tasks import TASKS, load_task

ROOT = Path(__file__).resolve().parents[1]
FPR = 1e-3
GRID = {  # task: (noise multipliers, rounds to report)
    "hospitals": ((0.5, 1.0, 2.0, 4.0), (5, 10, 20)),
    "fraud": ((0.5, 1.0, 2.0, 4.0), (10, 20, 30)),
    "keyboard": ((1.0,), (10, 30)),
}
EXTRA = {  # other DP modes at z=1, longest round count
    "hospitals": ("local", "record"),
    "fraud": ("local",),
    "keyboard": (),
}


def _base(task: str, rounds: int, secure: bool) -> FLConfig:
    d = TASKS[task]
    return FLConfig(rounds=rounds, sample_rate=d["sample_rate"], local_epochs=d["local_epochs"],
                    batch_size=d["batch_size"], lr=d["lr"], clip=d["clip"], delta=d["delta"],
                    max_local_steps=d.get("max_local_steps"),
                    server_momentum=d.get("server_momentum", 0.0), secure=secure)


def _runs(task: str, cfg: FLConfig, seeds: range) -> tuple[list[list[float]], list[list]]:
    """Metric and epsilon per round, one list per seed (data split and init follow the seed)."""
    d = TASKS[task]
    metrics, eps = [], []
    for seed in seeds:
        data = load_task(task, int(d["clients"]), float(d["alpha"]), seed)
        hist = run_fedavg(data, replace(cfg, seed=seed))
        metrics.append([r["metric"] for r in hist.rounds])
        eps.append([r["epsilon"] for r in hist.rounds])
    return metrics, eps


def _cell(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}"


def _eps_text(values: list) -> str:
    if any(v is None for v in values):
        return "-"
    lo, hi = min(values), max(values)
    return f"{hi:.2f}" if hi - lo < 0.005 else f"{statistics.fmean(values):.2f} (max {hi:.2f})"


def _task_table(task: str, secure: bool, seeds: range) -> tuple[list[str], dict[str, object]]:
    zs, report = GRID[task]
    d = TASKS[task]
    rounds = max(report)
    start = time.perf_counter()
    metric = load_task(task, int(d["clients"]), float(d["alpha"]), 0).metric
    central = [train_centralised(load_task(task, int(d["clients"]), float(d["alpha"]), s),
                                 int(d["central_epochs"]), int(d["batch_size"]), float(d["lr"]),
                                 s)[1][metric] for s in seeds]
    base = _base(task, rounds, secure)
    settings = [("none", base), ("clip only z=0", replace(base, dp="central", noise_multiplier=0.0))]
    settings += [(f"central z={z:g}", replace(base, dp="central", noise_multiplier=z)) for z in zs]
    settings += [(f"{m} z=1", replace(base, dp=m, noise_multiplier=1.0)) for m in EXTRA[task]]
    rows, curves, epsilons = [], {}, {}
    for name, cfg in settings:
        metrics, eps = _runs(task, cfg, seeds)
        rows.append((name, metrics, eps))
        curves[name] = ([statistics.fmean(v) for v in zip(*metrics, strict=True)], eps[0])
        for r in report:
            at = [e[r - 1] for e in eps]
            if all(v is not None for v in at):
                epsilons[(name, r)] = max(at)
    seconds = time.perf_counter() - start
    head = " | ".join(f"R={r}: {metric} | eps" for r in report)
    lines = [f"### {task}", "",
             f"{d['clients']} clients, q={d['sample_rate']}, clip C={d['clip']},"
             f" delta={d['delta']:g}, {len(seeds)} seeds (mean ± sd); centralised {metric}"
             f" {_cell(central)}. Aggregation: {'SecAgg+' if secure else 'plaintext sum'}."
             f" ({seconds:.0f} s)", "",
             f"| DP | {head} |", "|---|" + "---|---|" * len(report)]
    for name, metrics, eps in rows:
        cells = []
        for r in report:
            cells.append(_cell([m[r - 1] for m in metrics]))
            cells.append(_eps_text([e[r - 1] for e in eps]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Membership-attack bound: the largest TPR at {FPR:.1%} FPR that"
              f" (epsilon, delta={d['delta']:g})-DP allows (worst seed's epsilon).", "",
              "| DP | " + " | ".join(f"R={r}: eps -> TPR" for r in report) + " |",
              "|---|" + "---|" * len(report)]
    for name, _, _ in rows:
        if (name, report[0]) not in epsilons:
            continue
        cells = []
        for r in report:
            eps = epsilons[(name, r)]
            cells.append(f"{eps:.2f} -> {membership_tpr_bound(eps, float(d['delta']), FPR):.4f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines, {"curves": curves, "central": statistics.fmean(central), "metric": metric}


def _plot(task: str, info: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, (vals, eps) in info["curves"].items():
        if eps and all(e is not None for e in eps):
            ax.plot(eps, vals, marker=".", label=name)
    ax.axhline(info["central"], color="k", ls="--", label="centralised")
    ax.axhline(info["curves"]["none"][0][-1], color="tab:green", ls=":", label="FedAvg, no DP")
    ax.set_xscale("log")
    ax.set_xlabel("epsilon (PLD)")
    ax.set_ylabel(str(info["metric"]))
    ax.set_title(f"{task}: metric (seed mean) against epsilon as rounds accumulate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


_NOTES = "## Reading these numbers"
_HEADER = ["# Privacy-utility results", "",
           "Produced by `bench/privacy_utility.py` (see docs/fl.md for what each mode means).",
           "Each metric cell: mean ± sd over the seeds after R rounds; each eps cell: the epsilon",
           "spent by then (PLD, secret Poisson sampling; client level, or record level for",
           "`record` rows, where it is the worst client's and varies with participation).", ""]


def _sections(text: str) -> dict[str, str]:
    """Existing '### task' sections of results.md, to keep the tasks not rerun."""
    body = text.split(_NOTES)[0]
    parts = re.split(r"(?m)^### ", body)[1:]
    return {p.split("\n", 1)[0].strip(): "### " + p.rstrip() + "\n" for p in parts}


def main() -> None:
    """Run the grid and rewrite docs/results.md (notes and other tasks' sections kept)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--secagg", action="store_true")
    parser.add_argument("--tasks", nargs="*", default=list(GRID))
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = ROOT / "docs" / "results.md"
    previous = results.read_text(encoding="utf-8") if results.exists() else ""
    sections = _sections(previous)
    for task in args.tasks:
        lines, info = _task_table(task, args.secagg, range(args.seeds))
        img = ROOT / "docs" / "img" / f"privacy_utility_{task}.png"
        _plot(task, info, img)
        sections[task] = "\n".join(lines + [f"![{task}](img/{img.name})", ""])
        print("\n".join(lines), flush=True)
        notes = previous[previous.find(_NOTES):] if _NOTES in previous else ""
        body = "\n".join(sections[t] for t in GRID if t in sections)
        results.write_text("\n".join(_HEADER) + "\n" + body + "\n" + notes, encoding="utf-8")


if __name__ == "__main__":
    main()
