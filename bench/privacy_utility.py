"""Privacy-utility tables per task: the metric (mean +- sd over seeds) and epsilon per z and R.

Run: ``PYTHONPATH=. .venv/bin/python bench/privacy_utility.py [--tasks hospitals fraud]
[--seeds 5] [--secagg] [--only none "central z=1"] [--cache DIR [--cached-only]]``
(``--secagg`` aggregates through SecAgg+ instead of the plaintext sum, which secagg matches
within ~1e-7). Writes docs/results.md (keeping its hand-written notes section and the sections
of tasks not rerun) and docs/img/privacy_utility_<task>.png. ``--only`` runs and tabulates only
the named rows; ``--cache`` keeps each finished run (keyed by its whole configuration and seed)
as JSON, so a long grid can be run in parts, one process at a time, and tabulated at the end;
``--cached-only`` tabulates what the cache holds (a row with fewer seeds says how many).

Tasks whose evaluation is expensive (keyboard: 10,683 held-out sequences) are evaluated only at
the reported rounds and every ``EVAL_EVERY`` rounds (the plot's points), on the full test set;
the model and its training are those of ``run_fedavg``, only the unreported evaluations are
skipped.

Each row is one DP setting: no DP, clip-only (z = 0: the cost of clipping without noise),
central DP at several z, and other modes at z = 1. Client-level epsilons are PLD at the
task's delta with secret Poisson sampling; for each epsilon the table of attack bounds gives
the largest membership-inference TPR at 0.1 % FPR that (epsilon, delta)-DP allows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch

from fl.fedavg import FLConfig, run_fedavg, train_centralised
from fl.privacy import ClientAccountant, membership_tpr_bound
from fl.tasks import TASKS, TaskData, load_task

ROOT = Path(__file__).resolve().parents[1]
FPR = 1e-3
GRID = {  # task: (noise multipliers, rounds to report)
    "hospitals": ((0.5, 1.0, 2.0, 4.0), (5, 10, 20)),
    "fraud": ((0.5, 1.0, 2.0, 4.0), (10, 20, 30)),
    "keyboard": ((1.0,), (20, 60)),
}
EVAL_EVERY = {"keyboard": 10}  # evaluate only every k rounds (and at the reported rounds)
EPSILON_ONLY = {  # task: (noise multipliers, rounds) of an accounting-only table (no training)
    "keyboard": ((0.7, 1.0, 1.5, 2.0), (20, 60, 100)),
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


def _cached(cache: Path | None, key: dict[str, object], run: Callable[[], dict],
            cached_only: bool = False) -> dict | None:
    """``run()``, or its result stored under ``cache`` for the same ``key``; with
    ``cached_only``, None instead of running what is not stored."""
    if cache is None:
        return run()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    path = cache / f"{key['task']}-{digest[:16]}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))["result"]
    if cached_only:
        return None
    result = run()
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "result": result}, default=str), encoding="utf-8")
    return result


def _sparse(data: TaskData, rounds: int, at: set[int]) -> TaskData:
    """``data`` whose evaluate runs only at rounds in ``at`` and at the end (the final metrics);
    run_fedavg calls it once per round, then once more."""
    calls = [0]

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        calls[0] += 1
        if calls[0] in at or calls[0] > rounds:
            return data.evaluate(model)
        return {}
    return replace(data, evaluate=evaluate)


def _runs(task: str, cfg: FLConfig, seeds: range, report: tuple[int, ...],
          cache: Path | None, cached_only: bool = False
          ) -> tuple[list[list], list[list], float]:
    """Metric and epsilon per round, one list per seed (data split and init follow the seed);
    the metric is None at rounds not evaluated (see ``EVAL_EVERY``). With ``cached_only``,
    only the seeds already in ``cache``. Also the seconds the runs took (when they ran)."""
    d = TASKS[task]
    every = EVAL_EVERY.get(task, 1)
    at = set(report) | set(range(every, cfg.rounds + 1, every))
    metrics, eps, seconds = [], [], 0.0
    for seed in seeds:
        def run(seed: int = seed) -> dict[str, list]:
            data = load_task(task, int(d["clients"]), float(d["alpha"]), seed)
            start = time.perf_counter()
            hist = run_fedavg(_sparse(data, cfg.rounds, at), replace(cfg, seed=seed))
            return {"metric": [r["metric"] for r in hist.rounds],
                    "epsilon": [r["epsilon"] for r in hist.rounds],
                    "seconds": time.perf_counter() - start}
        out = _cached(cache, {"task": task, "fedavg": asdict(replace(cfg, seed=seed))}, run,
                      cached_only)
        if out is None:
            continue
        print(f"  {task} seed {seed} {out['metric'][-1]:.4f} ({out['seconds']:.0f} s)", flush=True)
        metrics.append(out["metric"])
        eps.append(out["epsilon"])
        seconds += out["seconds"]
    return metrics, eps, seconds


def _centralised(task: str, seeds: range, cache: Path | None,
                 cached_only: bool = False) -> tuple[list[float], float]:
    """The centralised baseline's metric per seed (TASKS' central_epochs, batch size and lr),
    and the seconds the runs took."""
    d = TASKS[task]
    out, seconds = [], 0.0
    for seed in seeds:
        key = {"task": task, "centralised": {k: d[k] for k in ("central_epochs", "batch_size",
                                                                "lr", "clients", "alpha")},
               "seed": seed}

        def run(seed: int = seed) -> dict[str, float]:
            data = load_task(task, int(d["clients"]), float(d["alpha"]), seed)
            start = time.perf_counter()
            metrics = train_centralised(data, int(d["central_epochs"]), int(d["batch_size"]),
                                        float(d["lr"]), seed)[1]
            return {"metric": metrics[data.metric], "seconds": time.perf_counter() - start}
        res = _cached(cache, key, run, cached_only)
        if res is None:
            continue
        print(f"  {task} centralised seed {seed} {res['metric']:.4f} ({res['seconds']:.0f} s)",
              flush=True)
        out.append(res["metric"])
        seconds += res["seconds"]
    return out, seconds


def _cell(values: list[float], of: int | None = None) -> str:
    """mean ± sd, and how many seeds when fewer than ``of`` ran."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    few = f" ({len(values)} seed{'s' * (len(values) > 1)})" if of and len(values) < of else ""
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}{few}"


def _eps_text(values: list) -> str:
    if any(v is None for v in values):
        return "-"
    lo, hi = min(values), max(values)
    return f"{hi:.2f}" if hi - lo < 0.005 else f"{statistics.fmean(values):.2f} (max {hi:.2f})"


def _local(d: dict[str, object]) -> str:
    """The task's local training and server step, in words."""
    steps = d.get("max_local_steps")
    text = (f"{d['local_epochs']} local epoch(s) of batch {d['batch_size']} at lr {d['lr']:g}"
            + (f", at most {steps} steps" if steps else ""))
    momentum = d.get("server_momentum") or 0.0
    return text + (f"; FedAvgM, server momentum {momentum:g}" if momentum else "")


def _epsilon_only(task: str) -> list[str]:
    """Accounting-only table: the PLD (RDP) epsilon per z and R at the task's q and delta."""
    if task not in EPSILON_ONLY:
        return []
    zs, rounds = EPSILON_ONLY[task]
    d = TASKS[task]
    q, delta = float(d["sample_rate"]), float(d["delta"])

    def eps(z: float, r: int, accountant: str) -> float:
        return ClientAccountant(z, "poisson", delta, accountant, rate=q,
                                population=int(d["clients"])).epsilon(r)

    lines = [f"Epsilon that client-level DP buys at q={q:g} (about {q * int(d['clients']):.0f}"
             f" clients a round), delta={delta:g}, secret Poisson sampling (accounting only: PLD,"
             f" RDP in brackets; TPR bound at {FPR:.1%} FPR from PLD's epsilon at"
             f" R={d['rounds']}, the default):", "",
             "| z | " + " | ".join(f"{r} rounds" for r in rounds) + f" | TPR bound at R={d['rounds']} |",
             "|---|" + "---|" * (len(rounds) + 1)]
    for z in zs:
        cells = [f"{eps(z, r, 'pld'):.2f} ({eps(z, r, 'rdp'):.2f})" for r in rounds]
        bound = membership_tpr_bound(eps(z, int(d["rounds"]), "pld"), delta, FPR)
        lines.append(f"| {z:g} | " + " | ".join(cells) + f" | {bound:.4f} |")
    return lines + [""]


def _task_table(task: str, secure: bool, seeds: range, only: list[str] | None = None,
                cache: Path | None = None, cached_only: bool = False
                ) -> tuple[list[str], dict[str, object]]:
    zs, report = GRID[task]
    d = TASKS[task]
    rounds = max(report)
    metric = load_task(task, int(d["clients"]), float(d["alpha"]), 0).metric
    central, seconds = _centralised(task, seeds, cache, cached_only)
    base = _base(task, rounds, secure)
    settings = [("none", base), ("clip only z=0", replace(base, dp="central", noise_multiplier=0.0))]
    settings += [(f"central z={z:g}", replace(base, dp="central", noise_multiplier=z)) for z in zs]
    settings += [(f"{m} z=1", replace(base, dp=m, noise_multiplier=1.0)) for m in EXTRA[task]]
    if only is not None:
        unknown = set(only) - {name for name, _ in settings}
        if unknown:
            raise SystemExit(f"--only: no rows named {sorted(unknown)} for {task}")
        settings = [(name, cfg) for name, cfg in settings if name in only]
    rows, curves, epsilons = [], {}, {}
    for name, cfg in settings:
        metrics, eps, took = _runs(task, cfg, seeds, report, cache, cached_only)
        seconds += took
        if not metrics:
            continue
        rows.append((name, metrics, eps))
        done = [i for i, v in enumerate(metrics[0]) if v is not None]
        curves[name] = ([statistics.fmean(m[i] for m in metrics) for i in done],
                        [eps[0][i] for i in done])
        for r in report:
            at = [e[r - 1] for e in eps]
            if all(v is not None for v in at):
                epsilons[(name, r)] = max(at)
    head = " | ".join(f"R={r}: {metric} | eps" for r in report)
    lines = [f"### {task}", "",
             f"{d['clients']} clients, q={d['sample_rate']}, clip C={d['clip']},"
             f" delta={d['delta']:g}, {len(seeds)} seeds (mean ± sd); centralised {metric}"
             f" {_cell(central, len(seeds))} ({d['central_epochs']} epochs). Clients: {_local(d)}."
             f" Aggregation: {'SecAgg+' if secure else 'plaintext sum'}. (Runs took {seconds / 60:.0f} min"
             " in all.)", "",
             f"| DP | {head} |", "|---|" + "---|---|" * len(report)]
    for name, metrics, eps in rows:
        cells = []
        for r in report:
            cells.append(_cell([m[r - 1] for m in metrics], len(seeds)))
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
    lines += _epsilon_only(task)
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
    if "none" in info["curves"]:
        ax.axhline(info["curves"]["none"][0][-1], color="tab:green", ls=":",
                   label="FedAvg, no DP")
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
    parser.add_argument("--only", nargs="*", help="run and tabulate only these rows")
    parser.add_argument("--cache", type=Path, help="directory keeping finished runs")
    parser.add_argument("--cached-only", action="store_true",
                        help="tabulate the runs in --cache, run nothing (rows say how many seeds)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = ROOT / "docs" / "results.md"
    previous = results.read_text(encoding="utf-8") if results.exists() else ""
    sections = _sections(previous)
    for task in args.tasks:
        lines, info = _task_table(task, args.secagg, range(args.seeds), args.only, args.cache,
                                  args.cached_only)
        img = ROOT / "docs" / "img" / f"privacy_utility_{task}.png"
        _plot(task, info, img)
        sections[task] = "\n".join(lines + [f"![{task}](img/{img.name})", ""])
        print("\n".join(lines), flush=True)
        notes = previous[previous.find(_NOTES):] if _NOTES in previous else ""
        body = "\n".join(sections[t] for t in GRID if t in sections)
        results.write_text("\n".join(_HEADER) + "\n" + body + "\n" + notes, encoding="utf-8")


if __name__ == "__main__":
    main()
