"""Privacy-utility table per task: epsilon against the metric for several z and round counts.

Run: ``PYTHONPATH=. .venv/bin/python bench/privacy_utility.py`` (add ``--secagg`` to aggregate
through SecAgg+ instead of the plaintext sum, which secagg matches within ~1e-7).
Writes docs/results.md and docs/img/privacy_utility_<task>.png.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from fl.fedavg import FLConfig, run_fedavg, train_centralised
from fl.tasks import TASKS, load_task

ROOT = Path(__file__).resolve().parents[1]
GRID = {  # task: (noise multipliers, rounds to report, seeds)
    "hospitals": ((0.5, 1.0, 2.0, 4.0), (5, 10, 20), (0, 1, 2)),
    "fraud": ((0.5, 1.0, 2.0, 4.0), (10, 20, 30), (0, 1, 2)),
    "keyboard": ((0.5, 1.0, 2.0), (10, 20), (0,)),
}
EXTRA = {  # other DP modes at z=1, longest round count
    "hospitals": ("local", "record"),
    "fraud": ("local",),
    "keyboard": (),
}


def _base(task: str, rounds: int, secure: bool, seed: int) -> FLConfig:
    d = TASKS[task]
    return FLConfig(rounds=rounds, sample_rate=d["sample_rate"], local_epochs=d["local_epochs"],
                    batch_size=d["batch_size"], lr=d["lr"], clip=d["clip"], delta=d["delta"],
                    secure=secure, seed=seed)


def _curve(task: str, cfg: FLConfig, seeds: tuple[int, ...]) -> tuple[list[float], list]:
    """Mean metric per round over seeds, and epsilon per round."""
    per_seed = []
    eps = []
    for seed in seeds:
        d = TASKS[task]
        data = load_task(task, int(d["clients"]), float(d["alpha"]), seed)
        hist = run_fedavg(data, replace(cfg, seed=seed))
        per_seed.append([r["metric"] for r in hist.rounds])
        eps = [r["epsilon"] for r in hist.rounds]
    return [statistics.fmean(v) for v in zip(*per_seed, strict=True)], eps


def _task_table(task: str, secure: bool) -> tuple[list[str], dict[str, object]]:
    zs, report, seeds = GRID[task]
    d = TASKS[task]
    rounds = max(report)
    metric = load_task(task, int(d["clients"]), float(d["alpha"]), 0).metric
    start = time.perf_counter()
    central = statistics.fmean(
        train_centralised(load_task(task, int(d["clients"]), float(d["alpha"]), s),
                          int(d["central_epochs"]), int(d["batch_size"]), float(d["lr"]), s)[1][metric]
        for s in seeds)
    rows: list[tuple[str, list[float], list]] = []
    curves = {}
    base = _base(task, rounds, secure, 0)
    plain, _ = _curve(task, base, seeds)
    rows.append(("none", plain, [None] * rounds))
    curves["no DP"] = (plain, None)
    for z in zs:
        vals, eps = _curve(task, replace(base, dp="central", noise_multiplier=z), seeds)
        rows.append((f"central z={z:g}", vals, eps))
        curves[f"central z={z:g}"] = (vals, eps)
    for mode in EXTRA[task]:
        vals, eps = _curve(task, replace(base, dp=mode, noise_multiplier=1.0), seeds)
        rows.append((f"{mode} z=1", vals, eps))
    seconds = time.perf_counter() - start
    head = " | ".join(f"R={r}: {metric} (eps)" for r in report)
    lines = [f"### {task}", "",
             f"{d['clients']} clients, q={d['sample_rate']}, clip C={d['clip']},"
             f" delta={d['delta']:g}, {len(seeds)} seed(s) averaged; centralised {metric}"
             f" {central:.4f}. Aggregation: {'SecAgg+' if secure else 'plaintext sum'}."
             f" ({seconds:.0f} s)", "",
             f"| DP | {head} |", "|---|" + "---|" * len(report)]
    for name, vals, eps in rows:
        cells = []
        for r in report:
            e = eps[r - 1]
            cells.append(f"{vals[r - 1]:.4f} ({'-' if e is None else f'{e:.2f}'})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines, {"curves": curves, "central": central, "metric": metric}


def _plot(task: str, info: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, (vals, eps) in info["curves"].items():
        if eps is None:
            continue
        ax.plot(eps, vals, marker=".", label=name)
    plain = info["curves"]["no DP"][0][-1]
    ax.axhline(info["central"], color="k", ls="--", label="centralised")
    ax.axhline(plain, color="tab:green", ls=":", label="FedAvg, no DP")
    ax.set_xscale("log")
    ax.set_xlabel("epsilon (client level)")
    ax.set_ylabel(str(info["metric"]))
    ax.set_title(f"{task}: metric against epsilon as rounds accumulate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


_NOTES = "## Reading these numbers"


def main() -> None:
    """Run the grid and write docs/results.md (its notes section is kept)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--secagg", action="store_true")
    parser.add_argument("--tasks", nargs="*", default=list(GRID))
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = ["# Privacy-utility results", "",
           "Produced by `bench/privacy_utility.py` (see docs/fl.md for what each mode means).",
           "Each cell: the metric after R rounds (mean over seeds) and the client-level epsilon",
           "spent by then (RDP, Poisson sampling); `record` rows give record-level epsilon.", ""]
    for task in args.tasks:
        lines, info = _task_table(task, args.secagg)
        img = ROOT / "docs" / "img" / f"privacy_utility_{task}.png"
        _plot(task, info, img)
        out += lines + [f"![{task}](img/{img.name})", ""]
        print("\n".join(lines), flush=True)
    results = ROOT / "docs" / "results.md"
    # The hand-written reading of the numbers is kept from the previous file.
    previous = results.read_text(encoding="utf-8") if results.exists() else ""
    notes = previous[previous.find(_NOTES):] if _NOTES in previous else ""
    results.write_text("\n".join(out) + "\n" + notes, encoding="utf-8")


if __name__ == "__main__":
    main()
