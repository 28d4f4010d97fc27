"""Accuracy against field bits for central Gaussian, DDGauss and Skellam noise at one epsilon.

Run: ``PYTHONPATH=. .venv/bin/python bench/ddp_bits_results.py --level record --seeds 5``
(``--level client`` for DP-FedAvg). Each row is a noise mechanism at a field width b; its
noise multiplier is the smallest whose epsilon (the run's own accountant: PLD for the central
Gaussian, secagg.ddp's RDP for the distributed mechanisms, whose rounding and modular wrap
inflate the sensitivity at small b) is at most ``--epsilon`` at the task's delta after the
configured rounds. Accuracy is the mean +- sd over seeds (a seed fixes the data split and the
initial model; sampling and noise are secret and fresh). Prints a markdown table and writes
``--json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from fl.crosssilo import record_aggregator, run_cross_silo
from fl.distributed_dp import DistributedDpSum, accountant_for
from fl.fedavg import FLConfig, make_aggregator, run_fedavg, train_centralised
from fl.privacy import ClientAccountant
from fl.tasks import RECORD_LEVEL, TASKS, load_task
from secagg.ddp.planner import smallest_noise
from secagg.errors import SecAggError


def _config(task: str, level: str, bits: int, mechanism: str, z: float, dp: str) -> FLConfig:
    d = {**TASKS[task], **(RECORD_LEVEL.get(task, {}) if level == "record" else {})}
    return FLConfig(rounds=int(d["rounds"]), sample_rate=float(d["sample_rate"]),
                    local_epochs=int(d["local_epochs"]), batch_size=int(d["batch_size"]),
                    lr=float(d["lr"]), clip=float(d["clip"]), delta=float(d["delta"]),
                    server_momentum=float(d.get("server_momentum", 0.0)), secure=dp != "central",
                    dp=dp, noise_multiplier=z, mechanism=mechanism, bits=bits, level=level,
                    max_colluders=2 if level == "record" else 0,
                    dropout=0.1 if level == "record" else 0.0)


def _epsilon(cfg: FLConfig, data_sizes: list[int], width: int) -> float:
    if cfg.dp == "central":
        return ClientAccountant(cfg.noise_multiplier, "poisson", cfg.delta, "pld",
                                rate=cfg.sample_rate).epsilon(cfg.rounds)
    clients = len(data_sizes)
    if cfg.level == "record":
        agg = record_aggregator(cfg, width, clients, sum(data_sizes))
    else:
        agg = make_aggregator(cfg, cfg.sample_rate * clients, width, clients)
    assert isinstance(agg, DistributedDpSum)
    return accountant_for(agg.ddp, delta=cfg.delta, sampling_rate=cfg.sample_rate).epsilon(cfg.rounds)


def _matched(cfg: FLConfig, target: float, sizes: list[int], width: int) -> FLConfig | None:
    def eps(z: float) -> float:
        try:
            return _epsilon(replace(cfg, noise_multiplier=z), sizes, width)
        except SecAggError:
            return float("inf")
    try:
        z = smallest_noise(eps, target, 0.3, 2.0, limit=64.0)
    except SecAggError:
        return None
    return replace(cfg, noise_multiplier=z)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", default="hospitals")
    ap.add_argument("--level", choices=["client", "record"], default="record")
    ap.add_argument("--epsilon", type=float, default=3.0)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--bits", type=int, nargs="+", default=[12, 14, 16, 18, 20])
    ap.add_argument("--mechanisms", nargs="+", default=["ddgauss", "skellam"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = TASKS[args.task]
    probe = load_task(args.task, int(d["clients"]), float(d["alpha"]), 0)
    sizes = [int(c[0].shape[0]) for c in probe.clients]
    width = sum(p.numel() for p in probe.make_model().parameters())
    rows: list[dict[str, object]] = []
    plans = [("central Gaussian (float)", _config(args.task, args.level, 32, "ddgauss", 1.0,
                                                  "central"))]
    for mech in args.mechanisms:
        for b in args.bits:
            plans.append((f"{mech} b={b}", _config(args.task, args.level, b, mech, 1.0,
                                                   "distributed")))
    central: list[float] = []
    for seed in range(args.seeds):
        data = load_task(args.task, int(d["clients"]), float(d["alpha"]), seed)
        central.append(train_centralised(data, int(d["central_epochs"]), int(d["batch_size"]),
                                         float(d["lr"]), seed)[1][data.metric])
    rows.append({"row": "centralised, no DP", "mean": statistics.mean(central),
                 "sd": statistics.stdev(central) if len(central) > 1 else 0.0})
    print(f"| noise | z | epsilon | {probe.metric} (mean +- sd, {args.seeds} seeds) | seconds |")
    print("|---|---|---|---|---|")
    print(f"| centralised, no DP | - | - | {rows[0]['mean']:.4f} +- {rows[0]['sd']:.4f} | - |",
          flush=True)
    for name, cfg in plans:
        start = time.perf_counter()
        matched = _matched(cfg, args.epsilon, sizes, width)
        if matched is None:
            rows.append({"row": name, "z": None})
            print(f"| {name} | refused: epsilon {args.epsilon:g} out of reach | - | - | - |",
                  flush=True)
            continue
        eps = _epsilon(matched, sizes, width)
        values = []
        for seed in range(args.seeds):
            data = load_task(args.task, int(d["clients"]), float(d["alpha"]), seed)
            run = run_cross_silo if args.level == "record" else run_fedavg
            hist = run(data, replace(matched, seed=seed))
            values.append(float(hist.final[data.metric]))
        row = {"row": name, "z": matched.noise_multiplier, "epsilon": eps,
               "mean": statistics.mean(values),
               "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
               "seconds": time.perf_counter() - start}
        rows.append(row)
        print(f"| {name} | {row['z']:.3f} | {eps:.3f} | {row['mean']:.4f} +- {row['sd']:.4f} |"
              f" {row['seconds']:.0f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"task": args.task, "level": args.level,
                                         "epsilon": args.epsilon, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
